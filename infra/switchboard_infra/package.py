"""What ships in the Lambda package: the one definition the stack deploys and ``make bench`` measures.

``chalice package`` zips app.py, all of chalicelib/ and the requirements' closure, without bytecode. Here the
package loses what no function runs (the local stack, the CLI, the demo, the numpy-only Erlang report) and
gains compiled bytecode: unchecked-hash ``.pyc`` files beside every ``.py``, which Python loads without
looking at the source's mtime (the zip has none worth trusting) and without compiling at each cold start.

No CDK import here: the benchmark lays out its package with the same functions.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

# Relative paths (POSIX, from the package root) that never ship; a directory excludes all under it.
EXCLUDED = (
    "chalicelib/local",  # the local stack and the demo (`make local`, `make demo`)
    "chalicelib/cli.py",  # the `switchboard` command line
    "chalicelib/sim/report.py",  # the simulator's report and its Erlang C baseline: numpy, a dev dependency
    "chalicelib/sim/erlang.py",
    "tests",
    "bench",
    # twilio's own dependencies for its REST client's async transport; only twilio.jwt ships (ONLY_UNDER).
    "aiohttp",
    "aiohttp_retry",
    "aiohappyeyeballs",
    "aiosignal",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    # numpy (bm25s's one dependency, chalicelib/kb): its Fortran and build tools no function imports.
    "numpy/f2py",
    "numpy/distutils",
)
# Under these directories, no directory of these names ships (a package's own test suites).
EXCLUDED_DIRECTORY_NAMES = {"numpy": ("tests",)}
# Directories of which only these paths (relative to the directory; a directory keeps all under it) ship.
ONLY_UNDER = {
    # The console softphone's npm packages (`npm ci` in chalicelib/console/vendor): the SDK's browser file, which
    # GET /console/voice-sdk/<file> serves, and its licence. Not the SDK's sources, nor its dependencies.
    "chalicelib/console/vendor/node_modules": ("@twilio/voice-sdk/dist/twilio.min.js", "@twilio/voice-sdk/LICENSE.md"),
    # The twilio package, for the softphone's access tokens (chalicelib/voice/tokens.py): twilio.jwt, which imports
    # PyJWT alone. Its REST client (24 MB) is never imported by a function.
    "twilio": ("__init__.py", "jwt"),
}


class RuntimeMismatch(UserWarning):
    """The build Python is not the Lambda runtime's: bytecode would be ignored there, so none is shipped."""


def runtime_tag(version: tuple[int, int] | None = None) -> str:
    """The Lambda runtime name of a Python version (default: the running one), e.g. ``python3.11``."""
    major, minor = version or sys.version_info[:2]
    return f"python{major}.{minor}"


def ships(relative: str) -> bool:
    """Whether the file at ``relative`` (POSIX, from the package root) belongs in the deployed package."""
    path = PurePosixPath(relative)
    if "__pycache__" in path.parts or path.suffix == ".pyc":
        return False  # stale or foreign bytecode: ours is compiled fresh below
    for directory, names in EXCLUDED_DIRECTORY_NAMES.items():
        if PurePosixPath(directory) in path.parents and any(part in names for part in path.parent.parts):
            return False
    for directory, kept in ONLY_UNDER.items():
        if PurePosixPath(directory) in path.parents:
            return any(_within(path, PurePosixPath(directory, k)) for k in kept)
    return not any(_within(path, PurePosixPath(x)) for x in EXCLUDED)


def _within(path: PurePosixPath, prefix: PurePosixPath) -> bool:
    return path == prefix or prefix in path.parents


def bytecode(relative: str, source: bytes) -> tuple[str, bytes]:
    """The unchecked-hash ``.pyc`` of a source file: (its path beside the source, its bytes).

    The layout importlib reads (PEP 552): magic, flags (hash-based, source not checked), the source's hash,
    the marshalled code. Python fixes the code's file name to where it finds the source, so the relative
    name given to ``compile`` shows nowhere.
    """
    path = PurePosixPath(relative)
    code = compile(source, relative, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
    cache = path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
    return str(cache), header + marshal.dumps(code)


def _compile_here(runtime: str) -> bool:
    if runtime == runtime_tag():
        return True
    warnings.warn(
        f"NOT SHIPPING BYTECODE: building with {runtime_tag()} for the {runtime} runtime; every cold start "
        f"compiles the package. Build with {runtime} (make synth / make deploy) to ship bytecode.",
        RuntimeMismatch,
        stacklevel=3,
    )
    print(f"WARNING: the Lambda package ships no bytecode ({runtime_tag()} is not {runtime})", file=sys.stderr)
    return False


def _compilable(relative: str, source: bytes) -> tuple[str, bytes] | None:
    try:
        return bytecode(relative, source)
    except (SyntaxError, ValueError):
        return None  # a dependency's file Python would not import anyway (templates, other Pythons' code)


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory, name)
            yield path.relative_to(root).as_posix(), path


def lean_directory(root: Path, runtime: str | None = None) -> None:
    """Make an unpacked package directory what ships: excluded files gone, bytecode beside every module."""
    compile_here = _compile_here(runtime or runtime_tag())
    for relative, path in list(_files(root)):
        if not ships(relative):
            path.unlink()
        elif compile_here and relative.endswith(".py"):
            compiled = _compilable(relative, path.read_bytes())
            if compiled is not None:
                target = root / compiled[0]
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(compiled[1])
    for directory, _subdirectories, _names in sorted(os.walk(root), reverse=True):
        if directory != str(root) and not os.listdir(directory):
            os.rmdir(directory)  # what the excluded files leave behind


def lean_zip(zip_path: Path, runtime: str) -> None:
    """Rewrite the zip ``chalice package`` made (deployment.zip) as what ships, in place.

    Entries keep Chalice's order and attributes; each module's ``.pyc`` follows it, stamped with a fixed time:
    the bytecode adds no timestamp of its own to the zip (whose hash names the CDK asset).
    """
    compile_here = _compile_here(runtime)
    handle, temporary = tempfile.mkstemp(dir=zip_path.parent, suffix=".zip")
    os.close(handle)
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.is_dir() or not ships(info.filename):
                continue
            data = source.read(info)
            target.writestr(info, data)
            compiled = _compilable(info.filename, data) if compile_here and info.filename.endswith(".py") else None
            if compiled is not None:
                entry = zipfile.ZipInfo(compiled[0], date_time=(1980, 1, 1, 0, 0, 0))
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(entry, compiled[1])
    shutil.move(temporary, zip_path)


def lean_sam_package(sam_package_dir: Path) -> None:
    """Post-process what ``chalice package`` wrote: its deployment.zip, for the runtime its sam.json names."""
    import json

    template = json.loads((sam_package_dir / "sam.json").read_text())
    runtimes = {
        resource["Properties"]["Runtime"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    if len(runtimes) != 1:
        raise ValueError(f"expected one Lambda runtime in the package, found {sorted(runtimes)}")
    runtime = runtimes.pop()
    for name in ("deployment.zip", "layer-deployment.zip"):  # the layer only with Chalice's automatic_layer
        if (sam_package_dir / name).exists():
            lean_zip(sam_package_dir / name, runtime)
