"""Deployment stages (dev, prod) as `.chalice/config.json` names them, for the CDK app and the ops commands.

A stage's resources are named ``switchboard-<stage>-...``; its functions' settings are the config's app-wide
environment variables overlaid with the stage's. Not used inside Lambda (the config is not packaged).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chalicelib import settings
from chalicelib.settings import reload_settings

CHALICE_CONFIG = Path(__file__).resolve().parents[1] / ".chalice" / "config.json"


class UnknownStage(ValueError):
    """A stage `.chalice/config.json` does not have."""


def stage_names() -> list[str]:
    return sorted(_config()["stages"])


def prefix(stage: str) -> str:
    """What the stage's resource names start with."""
    return f"switchboard-{stage}"


def queue_names(stage: str) -> dict[str, str]:
    """The stage's queues by role; each has a dead-letter queue (store.resources.dead_letter_queue_name)."""
    return {
        "routing": f"{prefix(stage)}-routing.fifo",
        "timers": f"{prefix(stage)}-timers",
        "outbox": f"{prefix(stage)}-outbox",
    }


def environment(stage: str) -> dict[str, str]:
    """The environment variables every function of the stage gets from the config."""
    config = _config()
    if stage not in config["stages"]:
        raise UnknownStage(f"unknown stage {stage!r}: .chalice/config.json has {', '.join(stage_names())}")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def api_gateway_stage(stage: str) -> str:
    environment(stage)  # the stage exists
    return str(_config()["stages"][stage].get("api_gateway_stage", "api"))


def app_name() -> str:
    """The Chalice app's name: the REST API's name too (X-Ray names its segments ``<app name>/<API stage>``)."""
    return str(_config()["app_name"])


def trace_percent(stage: str) -> float:
    """The percent of the stage's REST requests X-Ray traces (``SWITCHBOARD_TRACE_PERCENT``)."""
    return settings.trace_percent(environment(stage))


def application_log_level(stage: str) -> str:
    """The stage's functions' ApplicationLogLevel (its ``LOG_LEVEL``), for their LoggingConfig."""
    return settings.application_log_level(environment(stage))


def system_log_level(stage: str) -> str:
    """The stage's functions' SystemLogLevel (``SWITCHBOARD_SYSTEM_LOG_LEVEL``): the cost model prices its lines."""
    return settings.system_log_level(environment(stage))


def tracing_mode(percent: float) -> str:
    """The functions' X-Ray mode in a stage tracing ``percent`` % (README, "Traces").

    API Gateway's sampling rule decides for REST requests; SQS carries the decision on to the queues' functions
    (AWSTraceHeader). Below 100 % every function is PassThrough: it traces only what arrives sampled, so
    WebSocket messages and schedule runs, which have no sampler in front of them, are not traced. Active would
    have Lambda sample those itself at a fixed rate (the first request of each second and 5 % of the rest:
    nearly all of them at a contact centre's volume), so only a stage tracing everything runs Active.
    """
    return "Active" if percent >= 100 else "PassThrough"


def traced_fractions(stage: str) -> dict[str, float]:
    """Fraction of entry requests X-Ray records in ``stage`` (the cost model's): ``rest``, REST requests (and
    what they queue); ``direct``, WebSocket messages and schedule runs (and what they queue)."""
    percent = trace_percent(stage)
    return {"rest": percent / 100, "direct": 1.0 if tracing_mode(percent) == "Active" else 0.0}


def use(stage: str) -> None:
    """Point this process's settings at a deployed stage (tables, queues, SSM prefix): ops commands' --stage."""
    queues = queue_names(stage)
    os.environ.update(
        {
            **environment(stage),
            "SWITCHBOARD_ROUTING_QUEUE": queues["routing"],
            "SWITCHBOARD_TIMER_QUEUE": queues["timers"],
            "SWITCHBOARD_OUTBOX_QUEUE": queues["outbox"],
        }
    )
    reload_settings()


def _config() -> dict[str, Any]:
    return dict(json.loads(CHALICE_CONFIG.read_text()))
