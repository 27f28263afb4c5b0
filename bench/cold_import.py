"""Section 3, cold import: each function's handler imported as Lambda imports it, beside a bare Chalice app.

Lambda runs ``chalice package``'s zip: app.py, chalicelib/, the requirements and Chalice's runtime
(``chalice/__init__.py`` and ``chalice/app.py``); the stack then makes it what ships
(infra/switchboard_infra/package.py: no local stack, CLI or demo; compiled bytecode). The section builds two
such directories from this checkout and the virtualenv (the distributions that requirements.txt needs, with
their dependencies):

- ``switchboard``: app.py + chalicelib + requirements.txt's closure, made what ships by the stack's own function;
- ``bare``: an app.py that makes a Chalice app and one boto3 client, + chalice's runtime + boto3's closure, as
  ``chalice package`` leaves it (no ``.pyc``: every module compiles at each cold start).

Each handler is imported in a fresh ``python -B -S`` (nothing written, no site-packages but the package's)
with Lambda's environment variables, runs interleaved so a noisy machine hits every variant alike; the
medians, the ratio to the bare app and the peak RSS (the probe's own high-water mark) are reported.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))  # what ships is defined once, beside the stack that deploys it

from switchboard_infra.package import lean_directory  # noqa: E402

# Function name (as infra/switchboard_infra/functions.py names them) -> the object in app.py Lambda calls.
HANDLERS = {
    "api_handler": "app",
    "websocket_connect": "ws_connect",
    "websocket_message": "ws_message",
    "websocket_disconnect": "ws_disconnect",
    "on_routing_event": "on_routing_event",
    "on_timer": "on_timer",
    "on_outbox": "on_outbox",
    "sweep_offers": "sweep_offers",
}
BARE_APP = '''"""A bare Chalice app that creates one boto3 client at import."""
import boto3
from chalice import Chalice

app = Chalice(app_name="bare")
dynamodb = boto3.client("dynamodb")


@app.route("/")
def index():
    return {"hello": "world"}
'''
PROBE = """
import json, sys, time
started, cpu_started = time.perf_counter(), time.process_time()
import app
handler = getattr(app, sys.argv[1])
imported = time.perf_counter()
if sys.argv[2] == "switchboard":
    from chalicelib.store import aws
    aws.client("dynamodb")
with_client, cpu = time.perf_counter(), time.process_time()
print(json.dumps({
    "import_and_client_cpu_s": cpu - cpu_started,
    "import_s": imported - started,
    "import_and_client_s": with_client - started,
    "modules": len(sys.modules),
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the bench process that started the probe.
    "peak_rss_mb": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
}))
"""


def _requirement_names(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def distributions(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions ``requirements`` need, their dependencies included (markers and extras honoured)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    extras_seen: dict[str, set[str]] = {}
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if name in found and extras <= extras_seen.get(name, set()):
            continue
        extras_seen.setdefault(name, set()).update(extras)
        dist = found.get(name) or metadata.distribution(requirement.name)
        found[name] = dist
        for line in dist.requires or []:
            dependency = Requirement(line)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in ({""} | extras)
            )
            if wanted:
                todo.append(dependency)
    return found


def _copy_distribution(dist: metadata.Distribution, target: Path, only: tuple[str, ...] = ()) -> None:
    for file in dist.files or []:
        relative = str(file)
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
            continue
        if only and relative not in only and ".dist-info/" not in relative:
            continue
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def build_packages(where: Path) -> dict[str, Path]:
    """The two package directories, as ``chalice package`` would lay them out."""
    from packaging.utils import canonicalize_name

    chalice_runtime = ("chalice/__init__.py", "chalice/app.py")
    switchboard, bare = where / "switchboard", where / "bare"
    for target, requirements, app_source in (
        (switchboard, _requirement_names(ROOT / "requirements.txt"), None),
        (bare, ["boto3"], BARE_APP),
    ):
        target.mkdir(parents=True)
        for name, dist in distributions(requirements).items():
            if name != canonicalize_name("chalice"):
                _copy_distribution(dist, target)
        _copy_distribution(metadata.distribution("chalice"), target, only=chalice_runtime)
        if app_source is None:
            shutil.copy2(ROOT / "app.py", target / "app.py")
            shutil.copytree(ROOT / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
            lean_directory(target)  # what the stack does to Chalice's zip (infra/switchboard_infra/package.py)
        else:
            (target / "app.py").write_text(app_source)
    return {"switchboard": switchboard, "bare": bare}


def _lambda_environment(function: str, package: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(package),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(package),
        "AWS_LAMBDA_FUNCTION_NAME": f"switchboard-bench-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "_HANDLER": f"app.{HANDLERS.get(function, 'app')}",
    }


def probe(package: Path, function: str, attribute: str, kind: str) -> dict[str, Any]:
    """One cold import in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-c", PROBE, attribute, kind],
        cwd=package,
        env=_lambda_environment(function, package),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold import of {function} failed: {result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _median_ratio(
    samples: list[dict[str, Any]], bare: list[dict[str, Any]], key: str, bare_key: str = "import_s"
) -> float:
    """The median over rounds of this variant's time over the bare app's time in the same round."""
    return round(statistics.median(s[key] / b[bare_key] for s, b in zip(samples, bare, strict=True)), 2)


def run(quick: bool = False) -> dict[str, Any]:
    runs = 1 if quick else 3
    functions = ["api_handler"] if quick else list(HANDLERS)
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as where:
        packages = build_packages(Path(where))
        shipped = packages["switchboard"] / "chalicelib"
        tooling = [p for p in ("local", "cli.py", "local/demo.py") if (shipped / p).exists()]
        variants = [("bare", "bare", "app")] + [(f, "switchboard", HANDLERS[f]) for f in functions]
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
        for _ in range(runs):  # interleaved: a noisy moment hits every variant
            for name, kind, attribute in variants:
                samples[name].append(probe(packages[kind], name, attribute, kind))
    rows = []
    for name, _kind, _attribute in variants:
        import_s = statistics.median(s["import_s"] for s in samples[name])
        with_client = statistics.median(s["import_and_client_s"] for s in samples[name])
        rows.append(
            {
                "function": "bare Chalice app + one boto3 client" if name == "bare" else name,
                "runs": len(samples[name]),
                "import_ms": round(import_s * 1000, 1),
                "import_and_first_client_ms": round(with_client * 1000, 1),
                # Each round's own ratio, then the median: a slow stretch of the machine hits both sides of it.
                "ratio_to_bare": _median_ratio(samples[name], samples["bare"], "import_s"),
                "ratio_to_bare_with_client": _median_ratio(samples[name], samples["bare"], "import_and_client_s"),
                # CPU seconds of the probe: what a busy machine's waiting does not inflate.
                "cpu_ratio_to_bare_with_client": _median_ratio(
                    samples[name], samples["bare"], "import_and_client_cpu_s", "import_and_client_cpu_s"
                ),
                "modules": samples[name][0]["modules"],
                "peak_rss_mb": round(statistics.median(s["peak_rss_mb"] for s in samples[name]), 1),
            }
        )

    # Every function imports the same app.py: pooled, their rounds give the steadiest ratio.
    def pooled(key: str, bare_key: str = "import_s") -> float:
        ratios = [s[key] / b[bare_key] for f in functions for s, b in zip(samples[f], samples["bare"], strict=True)]
        return round(statistics.median(ratios), 2)

    return {
        "runs_each": runs,
        "python": sys.version.split()[0],
        "rows": rows,
        "pooled_ratio_to_bare": pooled("import_s"),
        # The target's comparison: our import and our first client against the bare app's (its client included).
        "pooled_ratio_to_bare_with_client": pooled("import_and_client_s"),
        "pooled_cpu_ratio_to_bare_with_client": pooled("import_and_client_cpu_s", "import_and_client_cpu_s"),
        "pooled_samples": len(functions) * runs,
        # The local stack, the demo or the CLI in the package as it ships (infra/switchboard_infra/package.py).
        "ships_tooling": bool(tooling),
        "tooling_found": tooling,
    }
