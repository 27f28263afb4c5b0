"""What a deployment stage is: `.chalice/config.json` for the app's settings, CDK context for the operator's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib import settings, stages

ROOT = Path(__file__).resolve().parents[2]
# CDK context keys that become the functions' plain settings (never secrets: those are SSM parameters).
CONTEXT_SETTINGS = {
    "twilioAccountSid": "TWILIO_ACCOUNT_SID",
    # The console softphone: the API key signing its tokens (its secret: SSM) and its TwiML App.
    "twilioApiKeySid": "TWILIO_API_KEY_SID",
    "twilioTwimlAppSid": "TWILIO_TWIML_APP_SID",
    "emailFromAddress": "EMAIL_FROM_ADDRESS",
    "metaHumanAgentTag": "META_HUMAN_AGENT_TAG",  # "1" once Meta granted the app the Human Agent permission
}


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
    # Requests per second the REST and WebSocket APIs take (steady, burst), and the widget's posts.
    api_rate: int = 200
    api_burst: int = 400
    widget_rate: int = 20
    # What one IP may post to the widget in five minutes before WAF blocks it.
    widget_posts_per_ip: int = 600
    # Plain settings for replies: TWILIO_ACCOUNT_SID, EMAIL_FROM_ADDRESS (from CONTEXT_SETTINGS).
    settings: tuple[tuple[str, str], ...] = ()
    # Percent of REST requests X-Ray traces: SWITCHBOARD_TRACE_PERCENT of the environment (README, "Traces").
    trace_percent: float = 0.0

    @property
    def prefix(self) -> str:
        """Resource names start with this: switchboard-prod-data, switchboard-prod-routing.fifo."""
        return stages.prefix(self.name)

    @property
    def queue_names(self) -> dict[str, str]:
        return stages.queue_names(self.name)

    @property
    def ssm_prefix(self) -> str:
        return self.environment["SWITCHBOARD_SSM_PREFIX"]

    @property
    def production(self) -> bool:
        return self.name == "prod"

    @property
    def tracing_mode(self) -> str:
        """Every function's X-Ray mode: Active only when the stage traces everything."""
        return stages.tracing_mode(self.trace_percent)

    @property
    def application_log_level(self) -> str:
        """Lambda's filter on the app's lines: the stage's LOG_LEVEL (DEBUG or INFO; above, metrics would go)."""
        return settings.application_log_level(self.environment)

    @property
    def system_log_level(self) -> str:
        """Lambda's filter on its own lines (SWITCHBOARD_SYSTEM_LOG_LEVEL): WARN drops START and REPORT."""
        return settings.system_log_level(self.environment)

    @property
    def rest_api_service_name(self) -> str:
        """What X-Ray calls the REST API's stage in its segments and sampling rules: ``<API name>/<stage>``."""
        return f"{stages.app_name()}/{self.api_gateway_stage}"


def load_stage(name: str, context: dict[str, Any] | None = None) -> Stage:
    """The stage ``name`` of `.chalice/config.json`, with the operator's CDK context values (``-c alarmEmail=...``)."""
    context = context or {}
    topics = context.get("snsTopicArns") or ""
    environment = stages.environment(name)
    if context.get("tracePercent") not in (None, ""):
        environment[settings.TRACE_PERCENT] = str(context["tracePercent"])
    # A level Lambda cannot take (or one that would drop the EMF metric lines) fails the synthesis here.
    settings.application_log_level(environment)
    settings.system_log_level(environment)
    return Stage(
        name=name,
        environment=environment,
        api_gateway_stage=stages.api_gateway_stage(name),
        public_base_url=(context.get("publicBaseUrl") or "").rstrip("/") or None,
        alarm_email=context.get("alarmEmail") or None,
        sns_topic_arns=tuple(t.strip() for t in topics.split(",") if t.strip()) if isinstance(topics, str) else (),
        sla_breach_percent=float(context.get("slaBreachPercent") or 20.0),
        routing_age_seconds=int(context.get("routingAgeSeconds") or 120),
        api_rate=int(context.get("apiRate") or 200),
        api_burst=int(context.get("apiBurst") or 400),
        widget_rate=int(context.get("widgetRate") or 20),
        widget_posts_per_ip=int(context.get("widgetPostsPerIp") or 600),
        settings=tuple((name, str(context[key])) for key, name in CONTEXT_SETTINGS.items() if context.get(key)),
        trace_percent=settings.trace_percent(environment),
    )
