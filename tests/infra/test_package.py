"""What ships in the Lambda package (infra/switchboard_infra/package.py), built as the benchmark builds it.

The package directory is bench/cold_import.py's: app.py, chalicelib/ and requirements.txt's closure from the
virtualenv, then made what ships by the same function the stack applies to Chalice's deployment.zip. Each
handler is imported from it as Lambda imports it (a fresh ``python -B -S``, Lambda's environment variables).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from switchboard_infra.package import RuntimeMismatch, lean_zip, runtime_tag

from bench import cold_import
from tests.infra.conftest import OUTDIRS

# Modules no function may carry: the local stack, the demo, the CLI, and the dev-only (numpy) Erlang report.
NEVER_SHIPPED = ("chalicelib/local", "chalicelib/cli.py", "chalicelib/sim/report.py", "chalicelib/sim/erlang.py")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cold_import.build_packages(tmp_path_factory.mktemp("package"))["switchboard"]


def _loaded(package: Path, function: str, code: str) -> dict[str, object]:
    """Run ``code`` after importing the function's handler in a fresh interpreter, as Lambda would."""
    probe = f"import json, sys\nimport app\nhandler = getattr(app, {cold_import.HANDLERS[function]!r})\n{code}"
    done = subprocess.run(
        [sys.executable, "-B", "-S", "-c", probe],
        cwd=package,
        env=cold_import._lambda_environment(function, package),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _is_unchecked_pyc(pyc: Path, source: Path) -> bool:
    if not pyc.exists():
        return False
    data = pyc.read_bytes()
    return (
        data[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(data[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)
        and data[8:16] == importlib.util.source_hash(source.read_bytes())
    )


def test_the_package_holds_no_local_stack_demo_or_cli(package: Path) -> None:
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert "app.py" in shipped and "chalicelib/routing/router.py" in shipped
    assert "chalicelib/sim/lab.py" in shipped  # PUT /admin/routing runs the routing lab in Lambda
    leaked = sorted(f for f in shipped if any(f == x or f.startswith(x + "/") for x in NEVER_SHIPPED))
    assert leaked == []
    assert not any(f.startswith(("tests/", "bench/")) for f in shipped)


def test_every_module_ships_its_bytecode_compiled_for_the_runtime(package: Path) -> None:
    sources = [p for p in package.rglob("*.py") if p.parts[len(package.parts)] in ("app.py", "chalicelib", "botocore")]
    assert len(sources) > 100
    tag = sys.implementation.cache_tag
    missing = [
        str(s.relative_to(package))
        for s in sources
        if not _is_unchecked_pyc(s.parent / "__pycache__" / f"{s.stem}.{tag}.pyc", s)
    ]
    assert missing == []


def test_the_shipped_bytecode_is_what_python_loads(package: Path) -> None:
    """Imported with ``-v``, every chalicelib module's code comes from its .pyc, none is compiled."""
    done = subprocess.run(
        [sys.executable, "-B", "-S", "-v", "-c", "import app"],
        cwd=package,
        env=cold_import._lambda_environment("api_handler", package),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    code_from = [line for line in done.stderr.splitlines() if line.startswith("# code object from")]
    ours = [line for line in code_from if "/chalicelib/" in line or line.endswith("/app.py'")]
    assert len(ours) > 20
    assert [line for line in ours if not line.endswith(".pyc'")] == []


@pytest.mark.parametrize("function", list(cold_import.HANDLERS))
def test_each_handler_imports_from_the_package(package: Path, function: str) -> None:
    loaded = _loaded(package, function, "print(json.dumps({'callable': callable(handler)}))")
    assert loaded == {"callable": True}


# What the router's functions never need: channel parsers, sign-in tokens, the console and widget, phone numbers.
NOT_FOR_THE_ROUTER = (
    "chalicelib.channels.meta",
    "chalicelib.channels.twilio",
    "chalicelib.channels.ses",
    "chalicelib.channels.mailgun",
    "chalicelib.channels.mime",
    "chalicelib.channels.telegram",
    "chalicelib.channels.webchat",
    "chalicelib.auth.tokens",
    "chalicelib.console.pages",
    "chalicelib.console.visitors",
    "jwt",
    "cryptography",
    "phonenumbers",
    "twilio",
)


@pytest.mark.parametrize("function", ["on_routing_event", "on_timer"])
def test_the_router_functions_import_no_channel_parser_auth_or_console(package: Path, function: str) -> None:
    loaded = _loaded(
        package, function, f"print(json.dumps({{'loaded': sorted(set(sys.modules) & set({NOT_FOR_THE_ROUTER!r}))}}))"
    )
    assert loaded == {"loaded": []}


def test_the_routing_lab_runs_in_the_package_without_numpy(package: Path) -> None:
    """PUT /admin/routing simulates a config with ``lab:`` in Lambda, where numpy (a dev dependency) is not."""
    loaded = _loaded(
        package,
        "api_handler",
        "from chalicelib.routing.config import default_config\n"
        "from chalicelib.sim import lab\n"
        "verdict = lab.compare(default_config(), default_config(), 'lab-check')\n"
        "print(json.dumps({'rows': len(verdict.rows), 'warnings': list(verdict.warnings),"
        " 'numpy': 'numpy' in sys.modules}))",
    )
    assert loaded["numpy"] is False and loaded["warnings"] == []
    assert isinstance(loaded["rows"], int) and loaded["rows"] > 0


def test_phone_numbers_normalise_in_the_package_without_the_geocoder_data(package: Path) -> None:
    """phonenumberslite: parsing and formatting as before, without 40 MB of geocoder, carrier and time-zone data."""
    loaded = _loaded(
        package,
        "api_handler",
        "from chalicelib.conversations import identity\n"
        "numbers = [identity.phone('whatsapp:447700900123').value, identity.phone('07700 900123', 'GB').value]\n"
        "print(json.dumps({'e164': numbers}))",
    )
    assert loaded == {"e164": ["+447700900123", "+447700900123"]}
    assert (package / "phonenumbers" / "data").is_dir()
    assert not any((package / "phonenumbers" / data).exists() for data in ("geodata", "carrierdata", "tzdata"))


def test_the_softphone_ships_the_sdk_browser_file_and_twilio_jwt_alone_and_mints_in_the_package(package: Path) -> None:
    """Of the npm packages only the SDK's browser file (and its licence); of twilio only twilio.jwt, and not the
    async transport of its REST client; still, a token is minted and the SDK served from the package."""
    vendor = package / "chalicelib/console/vendor"
    assert sorted(p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()) == [
        "node_modules/@twilio/voice-sdk/LICENSE.md",
        "node_modules/@twilio/voice-sdk/dist/twilio.min.js",
        "package-lock.json",
        "package.json",
    ]
    assert (package / "twilio/jwt/access_token/grants.py").is_file()
    assert not (package / "twilio/rest").exists() and not (package / "aiohttp").exists()
    loaded = _loaded(
        package,
        "api_handler",
        "import os\n"
        "cold = 'twilio' in sys.modules\n"
        "os.environ.update(TWILIO_ACCOUNT_SID='AC' + '0' * 32, TWILIO_API_KEY_SID='SK' + '1' * 32,"
        " TWILIO_API_KEY_SECRET='s3cret', TWILIO_TWIML_APP_SID='AP' + '2' * 32)\n"
        "from chalicelib.settings import reload_settings\n"
        "reload_settings()\n"
        "from chalicelib.voice import tokens\n"
        "from chalicelib.console import pages\n"
        "minted = tokens.mint('ada')\n"
        "print(json.dumps({'cold': cold, 'identity': minted.identity, 'parts': len(minted.token.split('.')),"
        " 'sdk': len(pages.voice_sdk(pages.voice_sdk_name())), 'rest': 'twilio.rest' in sys.modules}))",
    )
    assert loaded == {"cold": False, "identity": "ag_ada", "parts": 3, "sdk": 303272, "rest": False}


def _chalice_like_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", "import chalicelib.core\nANSWER = chalicelib.core.ANSWER\n")
        archive.writestr("chalicelib/__init__.py", "")
        archive.writestr("chalicelib/core.py", "ANSWER = 42\n")
        archive.writestr("chalicelib/__pycache__/core.cpython-27.pyc", b"stale")
        archive.writestr("chalicelib/cli.py", "raise SystemExit('the CLI shipped')\n")
        archive.writestr("chalicelib/local/__init__.py", "")
        archive.writestr("chalicelib/local/demo.py", "raise SystemExit('the demo shipped')\n")
        info = zipfile.ZipInfo("_native.so")
        info.external_attr = 0o755 << 16
        archive.writestr(info, b"\x7fELF")


def test_the_stack_leans_chalices_zip_the_same_way(tmp_path: Path) -> None:
    deployment = tmp_path / "deployment.zip"
    _chalice_like_zip(deployment)
    lean_zip(deployment, runtime_tag())
    first = deployment.read_bytes()

    with zipfile.ZipFile(deployment) as archive:
        names = archive.namelist()
        tag = sys.implementation.cache_tag
        assert sorted(names) == sorted(
            [
                "app.py",
                f"__pycache__/app.{tag}.pyc",
                "chalicelib/__init__.py",
                f"chalicelib/__pycache__/__init__.{tag}.pyc",
                "chalicelib/core.py",
                f"chalicelib/__pycache__/core.{tag}.pyc",
                "_native.so",
            ]
        )
        assert archive.getinfo("_native.so").external_attr >> 16 == 0o755  # Chalice's attributes kept
        archive.extractall(tmp_path / "unpacked")
    unpacked = tmp_path / "unpacked"
    assert _is_unchecked_pyc(
        unpacked / "chalicelib" / "__pycache__" / f"core.{tag}.pyc", unpacked / "chalicelib/core.py"
    )

    _chalice_like_zip(deployment)
    lean_zip(deployment, runtime_tag())
    assert deployment.read_bytes() == first  # the bytecode adds no timestamp: same input zip, same output


def test_a_build_python_that_is_not_the_runtime_ships_no_bytecode_and_says_so(tmp_path: Path) -> None:
    deployment = tmp_path / "deployment.zip"
    _chalice_like_zip(deployment)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lean_zip(deployment, "python3.99")
    assert any(issubclass(w.category, RuntimeMismatch) and "NOT SHIPPING BYTECODE" in str(w.message) for w in caught)
    with zipfile.ZipFile(deployment) as archive:
        names = archive.namelist()
    assert not any(n.endswith(".pyc") for n in names)
    assert "chalicelib/cli.py" not in names and "chalicelib/core.py" in names


def test_the_synthesized_stack_deploys_the_lean_package(templates: dict[str, dict[str, object]]) -> None:
    """The asset the functions' code comes from is Chalice's zip made what ships (stack.LeanChalice)."""
    for stage in templates:
        [package_zip] = [z for z in OUTDIRS[stage].glob("asset.*.zip") if "app.py" in zipfile.ZipFile(z).namelist()]
        names = zipfile.ZipFile(package_zip).namelist()
        assert not [n for n in names if any(n == x or n.startswith(x + "/") for x in NEVER_SHIPPED)]
        tag = sys.implementation.cache_tag
        assert f"__pycache__/app.{tag}.pyc" in names and f"chalicelib/routing/__pycache__/router.{tag}.pyc" in names
        vendored = sorted(n for n in names if n.startswith("chalicelib/console/vendor/node_modules/"))
        assert vendored == [
            "chalicelib/console/vendor/node_modules/@twilio/voice-sdk/LICENSE.md",
            "chalicelib/console/vendor/node_modules/@twilio/voice-sdk/dist/twilio.min.js",
        ]
        assert "twilio/jwt/access_token/__init__.py" in names
        assert not [n for n in names if n.startswith(("twilio/rest/", "aiohttp/"))]
        # Self-service retrieval (bm25s) needs numpy in Lambda; ``chalice package`` leaves out, with only a warning,
        # a dependency it finds no wheel of for the runtime's glibc (numpy 2.3 and later ship none for Python 3.11's
        # Amazon Linux 2), so the pin in requirements.txt must be one it can package.
        assert "numpy/__init__.py" in names and "bm25s/__init__.py" in names and "Stemmer" in " ".join(names)


@pytest.mark.parametrize("function", sorted(cold_import.HANDLERS))
def test_no_handler_imports_the_knowledge_base_index_on_its_import_path(package: Path, function: str) -> None:
    """bm25s and numpy (issue 14's retrieval) load on the first search, not on every cold start."""
    loaded = _loaded(
        package, function, "print(json.dumps({'loaded': sorted(set(sys.modules) & {'bm25s', 'numpy', 'Stemmer'})}))"
    )
    assert loaded == {"loaded": []}


def test_the_knowledge_base_searches_in_the_package_with_numpy_only(package: Path) -> None:
    """The shipped base is in the package and bm25s runs there without scipy, jax or numba (optional, not shipped)."""
    loaded = _loaded(
        package,
        "api_handler",
        "from chalicelib import kb\n"
        "hits = kb.search('Wann habt ihr geöffnet?', language='de')\n"
        "print(json.dumps({'top': hits[0].article_id, 'extra': sorted(set(sys.modules) & {'scipy', 'jax', 'numba'})}))",
    )
    assert loaded == {"top": "oeffnungszeiten", "extra": []}
    assert not any((package / name).exists() for name in ("scipy", "jax", "numba"))


def test_numpy_ships_without_its_test_suites_and_build_tools(package: Path) -> None:
    """numpy (for bm25s) is 70 MB unpacked; its tests, f2py and distutils (17+ MB) no function runs."""
    shipped = [p.relative_to(package).as_posix() for p in (package / "numpy").rglob("*") if p.is_file()]
    assert "numpy/__init__.py" in shipped
    leaked = [f for f in shipped if "/tests/" in f or f.startswith(("numpy/f2py/", "numpy/distutils/"))]
    assert leaked == []


def test_the_package_stays_within_lambdas_unzipped_limit_with_room(package: Path) -> None:
    """Lambda refuses more than 250 MB unzipped (code and layers); numpy for the knowledge base took ~56 MB."""
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    assert size < 200 * 1024 * 1024, f"{size / 1e6:.0f} MB unpacked"
