"""The routing configuration's code is split by concern, and everything it offered is still where it was.

``chalicelib.routing.config`` is a package: the values the rest of Switchboard reads, the pydantic schema of the
document, the checks across fields, the YAML line tracker that names where a mistake is, building values from
the validated document, and loading (file, SSM override, cache). Every name the single module offered imports as
before (``from chalicelib.routing.config import X``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import chalicelib.routing.config as config

PACKAGE = Path(config.__file__).parent
MODULES = ("values", "problems", "schema", "checks", "lines", "build", "loading")
# The public names of the former chalicelib/routing/config.py.
PUBLIC = (
    "CHANNELS",
    "DAYS",
    "DEFAULT_ACKNOWLEDGEMENT",
    "DEFAULT_CHANNEL_COSTS",
    "DEFAULT_FILE",
    "DEFAULT_SLA_SECONDS",
    "REFRESH_SECONDS",
    "ROUTING_CONFIG_SETTING",
    "Conditions",
    "ConfigError",
    "EscalationStep",
    "Hours",
    "OutOfHours",
    "Problem",
    "QueueConfig",
    "RoutingConfig",
    "Rule",
    "TimeWindow",
    "current_config",
    "default_config",
    "forget_current_config",
    "load_file",
    "parse_config",
    "parse_duration",
    "publish_override",
)


def test_config_is_a_package_of_one_module_per_concern() -> None:
    assert Path(config.__file__).name == "__init__.py"
    for name in MODULES:
        module = importlib.import_module(f"chalicelib.routing.config.{name}")
        assert module.__doc__ and module.__doc__.strip(), f"{name} says what it is for"
        lines = len(Path(str(module.__file__)).read_text(encoding="utf-8").splitlines())
        assert lines <= 420, f"config/{name}.py has {lines} lines: split it further"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_name_the_module_offered_still_imports(name: str) -> None:
    assert hasattr(config, name)
    assert name in config.__all__


def test_the_values_the_engine_reads_depend_on_neither_yaml_nor_pydantic_nor_aws() -> None:
    """The frozen values (what the router and a simulator read) stand alone."""
    tree = ast.parse((PACKAGE / "values.py").read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in ("yaml", "pydantic", "pydantic_core", "boto3", "botocore")}
    assert not {m for m in imported if m.startswith(("chalicelib.store", "chalicelib.settings"))}


def test_the_deployed_file_stays_beside_the_routing_package() -> None:
    # pyproject ships chalicelib.routing's *.yaml as package data: the file must stay in that package.
    assert PACKAGE.parent / "routing.yaml" == config.DEFAULT_FILE
    assert config.DEFAULT_FILE.is_file()
    assert config.default_config().rules
