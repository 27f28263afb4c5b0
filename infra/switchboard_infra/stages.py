"""What a deployment stage is: `.chalice/config.json` for the app's settings, CDK context for the operator's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"


@dataclass(frozen=True)
class Stage:
    """One stage (dev, prod): the names its resources take and the choices the operator made."""

    name: str
    # Environment of every function: the app-wide variables, then the stage's (.chalice/config.json).
    environment: dict[str, str]
    api_gateway_stage: str
    # A custom domain in front of the REST API (https://hooks.example.com); unset: API Gateway's own URL.
    public_base_url: str | None = None
    # Who hears the alarms (an e-mail subscription to the alarm topic); unset: subscribe to the topic yourself.
    alarm_email: str | None = None
    # SNS topics SES publishes received mail to (the /webhooks/email/ses endpoint confirms only these).
    sns_topic_arns: tuple[str, ...] = ()
    # The SLA breach rate (percent of first responses late) that raises the alarm.
    sla_breach_percent: float = 20.0
    # Age of the oldest routing event, in seconds, that raises the alarm (routing normally takes under a second).
    routing_age_seconds: int = 120

    @property
    def prefix(self) -> str:
        """Resource names start with this: switchboard-prod-data, switchboard-prod-routing.fifo."""
        return f"switchboard-{self.name}"

    @property
    def ssm_prefix(self) -> str:
        return self.environment["SWITCHBOARD_SSM_PREFIX"]

    @property
    def production(self) -> bool:
        return self.name == "prod"


def stage_names() -> list[str]:
    return sorted(_config()["stages"])


def load_stage(name: str, context: dict[str, Any] | None = None) -> Stage:
    """The stage ``name`` of `.chalice/config.json`, with the operator's CDK context values (``-c alarmEmail=...``)."""
    config = _config()
    if name not in config["stages"]:
        raise ValueError(f"unknown stage {name!r}: .chalice/config.json has {', '.join(stage_names())}")
    stage_config = config["stages"][name]
    context = context or {}
    topics = context.get("snsTopicArns") or ""
    return Stage(
        name=name,
        environment={**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})},
        api_gateway_stage=stage_config.get("api_gateway_stage", "api"),
        public_base_url=(context.get("publicBaseUrl") or "").rstrip("/") or None,
        alarm_email=context.get("alarmEmail") or None,
        sns_topic_arns=tuple(t.strip() for t in topics.split(",") if t.strip()) if isinstance(topics, str) else (),
        sla_breach_percent=float(context.get("slaBreachPercent") or 20.0),
        routing_age_seconds=int(context.get("routingAgeSeconds") or 120),
    )


def _config() -> dict[str, Any]:
    return dict(json.loads(CHALICE_CONFIG.read_text()))
