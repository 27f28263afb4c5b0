"""Lambda's own log lines per stage, read off the synthesized templates (README, "Logs").

Every function logs JSON (Lambda's advanced logging controls): the application level is the stage's
``LOG_LEVEL`` (Powertools takes Lambda's level over its own, so the two must agree), and the platform's
START/REPORT lines are kept or dropped by the stage's ``SWITCHBOARD_SYSTEM_LOG_LEVEL``. EMF metric lines carry
no ``level`` key, which Lambda reads as INFO: an application level above INFO would drop every metric.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.settings import application_log_level, system_log_level
from tests.infra.template import resources

pytestmark = pytest.mark.timeout(900)


def logging_configs(template: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    return {
        name: (f["Properties"]["LoggingConfig"], f["Properties"]["Environment"]["Variables"])
        for name, f in resources(template, "AWS::Serverless::Function").items()
    }


def test_every_function_logs_json_at_its_stages_levels(template):
    for name, (config, variables) in logging_configs(template).items():
        assert config["LogFormat"] == "JSON", name
        assert config["ApplicationLogLevel"] == application_log_level(variables), name
        assert config["ApplicationLogLevel"] in ("TRACE", "DEBUG", "INFO"), f"{name}: EMF lines would be dropped"
        assert config["SystemLogLevel"] == system_log_level(variables), name


def test_dev_keeps_the_platform_lines_prod_drops_them(templates):
    dev, prod = (logging_configs(templates[stage]) for stage in ("dev", "prod"))
    assert {(c["ApplicationLogLevel"], c["SystemLogLevel"]) for c, _ in dev.values()} == {("DEBUG", "INFO")}
    assert {(c["ApplicationLogLevel"], c["SystemLogLevel"]) for c, _ in prod.values()} == {("INFO", "WARN")}
