"""Every setting Switchboard reads, named in one place.

Plain settings come from the environment (Chalice stage variables in AWS,
the shell locally). Secrets come from the environment locally and from SSM
SecureString parameters in AWS: when ``SWITCHBOARD_SSM_PREFIX`` is set, a
secret ``NAME`` is read from ``<prefix>/NAME`` through Powertools
parameters, cached for ``SECRETS_MAX_AGE`` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

# Names of the secrets; nothing else may read them from the environment.
WEBCHAT_SECRET = "WEBCHAT_SECRET"
API_CHANNEL_SECRET = "API_CHANNEL_SECRET"
TWILIO_AUTH_TOKEN = "TWILIO_AUTH_TOKEN"
# The secret of the Twilio API key (SK...) that signs the console softphone's access tokens.
TWILIO_API_KEY_SECRET = "TWILIO_API_KEY_SECRET"
META_APP_SECRET = "META_APP_SECRET"
META_VERIFY_TOKEN = "META_VERIFY_TOKEN"
TELEGRAM_SECRET_TOKEN = "TELEGRAM_SECRET_TOKEN"
MAILGUN_SIGNING_KEY = "MAILGUN_SIGNING_KEY"
# Bearer token for the Graph API sends (WhatsApp Cloud, Messenger, Instagram).
META_ACCESS_TOKEN = "META_ACCESS_TOKEN"
# The bot's token from @BotFather: Telegram takes it in the path of every Bot API call.
TELEGRAM_BOT_TOKEN = "TELEGRAM_BOT_TOKEN"
# PEM private key that signs local sign-in tokens when SWITCHBOARD_DEV_AUTH=1 (chalicelib.auth.generate_dev_key).
DEV_SIGNING_KEY = "DEV_SIGNING_KEY"
SECRET_NAMES = (
    WEBCHAT_SECRET,
    API_CHANNEL_SECRET,
    TWILIO_AUTH_TOKEN,
    TWILIO_API_KEY_SECRET,
    META_APP_SECRET,
    META_VERIFY_TOKEN,
    TELEGRAM_SECRET_TOKEN,
    MAILGUN_SIGNING_KEY,
    META_ACCESS_TOKEN,
    TELEGRAM_BOT_TOKEN,
    DEV_SIGNING_KEY,
)
# What each secret is for, as the deploy checklist tells the operator.
SECRET_PURPOSES = {
    WEBCHAT_SECRET: "web chat: signs what the widget posts (any long random string)",
    API_CHANNEL_SECRET: "API channel: your own systems sign their posts with it",
    TWILIO_AUTH_TOKEN: "Twilio SMS, voice and WhatsApp: the account's Auth Token",
    TWILIO_API_KEY_SECRET: "Twilio voice softphone: the secret of the API key (TWILIO_API_KEY_SID) signing tokens",
    META_APP_SECRET: "WhatsApp Cloud, Messenger, Instagram: the Meta app's App Secret",
    META_VERIFY_TOKEN: "Meta: the Verify Token you type into the webhook settings (any random string)",
    META_ACCESS_TOKEN: "Meta: the system user's access token, to send replies",
    TELEGRAM_SECRET_TOKEN: "Telegram: the secret_token given to setWebhook (any random string)",
    TELEGRAM_BOT_TOKEN: "Telegram: the bot's token from @BotFather, to send replies",
    MAILGUN_SIGNING_KEY: "Mailgun: the HTTP webhook signing key",
    DEV_SIGNING_KEY: "local sign-in only; never set in AWS",
}
# The secrets a deployed stage reads (DEV_SIGNING_KEY signs local tokens only).
DEPLOYED_SECRETS = tuple(name for name in SECRET_NAMES if name != DEV_SIGNING_KEY)
SECRETS_MAX_AGE = 300
DEFAULT_RECONNECT_GRACE_SECONDS = 120
DEFAULT_HEARTBEAT_SECONDS = 240.0
DEFAULT_DECISION_RETENTION_DAYS = 90
DEFAULT_CONTACT_RECORD_RETENTION_DAYS = 400
# Idempotency records (INBOUND# delivery records, REPLYKEY# reply keys; the OUTBOUND#, CALL# and VOICE# records
# status callbacks look up): kept past any retry that could come,
# the longest being a message waiting out SQS's 14-day retention (or a DLQ redrive); never less than that.
DEFAULT_IDEMPOTENCY_RETENTION_DAYS = 30
MIN_IDEMPOTENCY_RETENTION_DAYS = 15


@dataclass(frozen=True)
class Settings:
    """Non-secret settings, read once per container."""

    stage: str
    region: str
    data_table: str
    routing_table: str
    routing_queue_name: str
    websocket_endpoint: str | None
    max_body_bytes: int
    ssm_prefix: str | None
    # The public URL prefix providers call (https://api.example.com/api); Twilio signs the full URL.
    public_base_url: str
    # SNS topics allowed to post to /webhooks/email/ses.
    sns_topic_arns: tuple[str, ...]
    # SSM parameter holding the routing configuration (YAML) that overrides the deployed routing.yaml.
    routing_config_parameter: str | None = None
    # Outbound sends. The account our Twilio messages are sent from (AC...), with TWILIO_AUTH_TOKEN.
    twilio_account_sid: str | None = None
    # The console's softphone: the API key (SK...) whose secret (TWILIO_API_KEY_SECRET) signs its access tokens,
    # and the TwiML App (AP...) its calls go to (Voice URL: /webhooks/twilio/voice/agent).
    twilio_api_key_sid: str | None = None
    twilio_twiml_app_sid: str | None = None
    # Provider API roots; tests point them at local fakes.
    twilio_api_base: str = "https://api.twilio.com"
    meta_graph_base: str = "https://graph.facebook.com"
    telegram_api_base: str = "https://api.telegram.org"
    # From of the e-mails we send through SES (a verified identity); unset: the address the customer wrote to.
    email_from_address: str | None = None
    # Cognito user pool that signs agents' tokens: https://cognito-idp.<region>.amazonaws.com/<pool id>.
    cognito_issuer: str | None = None
    # The user pool app client the agent desktop signs in through (the ID tokens' aud; access tokens are refused).
    cognito_client_id: str | None = None
    # Cognito's API as the console calls it, and where the pool's keys are (``<endpoint>/<pool id>/.well-known/
    # jwks.json``): unset in AWS (https://cognito-idp.<region>.amazonaws.com); tests point it at moto's server.
    cognito_endpoint: str | None = None
    # Local sign-in: tokens signed with DEV_SIGNING_KEY instead of Cognito's. Never on in AWS.
    dev_auth: bool = False
    # True when PUBLIC_BASE_URL was given; otherwise webhooks served by API Gateway use the URL they came in on.
    public_base_url_set: bool = False
    # CloudWatch namespace of the EMF metrics (one per stage, so dev and prod in one account stay apart).
    metrics_namespace: str = "Switchboard"
    # META_HUMAN_AGENT_TAG=1: the Meta app has Meta's Human Agent permission, so an agent's Messenger or
    # Instagram reply 24 h to 7 days after the customer's last message goes with the HUMAN_AGENT tag.
    meta_human_agent_tag: bool = False
    # How long an agent whose last WebSocket closed keeps their presence, open offers and work while the
    # console reconnects (API Gateway closes idle sockets after 10 minutes and every socket after 2 hours);
    # then they go Offline and their open offers move on. 0: at once.
    reconnect_grace_seconds: int = DEFAULT_RECONNECT_GRACE_SECONDS
    # How often a connected client sends {"action": "heartbeat"}; told to clients in every answer. Well inside
    # API Gateway's 10-minute idle timeout, so one lost heartbeat does not close the socket.
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    # The WebSocket URL agents' consoles connect to (wss://{api-id}.execute-api.{region}.amazonaws.com/{stage} in
    # AWS, the local gateway's ws:// URL locally): /auth/options hands it to the console, whose CSP allows only it.
    websocket_url: str | None = None
    # Further WebSocket URLs a console may be pointed at with ?ws= (a custom domain, say); any other ?ws= is ignored.
    websocket_allowed_urls: tuple[str, ...] = ()
    # How long the routing table keeps an offer's decision record (why that agent), and a contact record (its
    # lifecycle, read by reports and replay); DynamoDB's TTL deletes them afterwards.
    decision_retention_days: int = DEFAULT_DECISION_RETENTION_DAYS
    contact_record_retention_days: int = DEFAULT_CONTACT_RECORD_RETENTION_DAYS
    idempotency_retention_days: int = DEFAULT_IDEMPOTENCY_RETENTION_DAYS
    # The private S3 bucket the widget's visitors upload attachments to (presigned POSTs; read by presigned GETs).
    attachments_bucket: str = "switchboard-attachments"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (cached; call ``reload_settings`` after changing env in tests)."""
    return Settings(
        stage=_env("SWITCHBOARD_STAGE", "dev"),
        region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
        data_table=_env("SWITCHBOARD_DATA_TABLE", "switchboard-data"),
        routing_table=_env("SWITCHBOARD_ROUTING_TABLE", "switchboard-routing"),
        attachments_bucket=_env("SWITCHBOARD_ATTACHMENTS_BUCKET", "switchboard-attachments"),
        routing_queue_name=routing_queue_name(),
        # API Gateway management endpoint of the WebSocket API:
        # https://{api-id}.execute-api.{region}.amazonaws.com/{stage} in AWS,
        # the local gateway's address locally.
        websocket_endpoint=os.environ.get("WEBSOCKET_MANAGEMENT_ENDPOINT") or None,
        max_body_bytes=int(_env("MAX_WEBHOOK_BODY_BYTES", str(64 * 1024))),
        ssm_prefix=os.environ.get("SWITCHBOARD_SSM_PREFIX") or None,
        public_base_url=_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        sns_topic_arns=tuple(a.strip() for a in os.environ.get("SNS_TOPIC_ARNS", "").split(",") if a.strip()),
        routing_config_parameter=os.environ.get("SWITCHBOARD_ROUTING_CONFIG_PARAMETER") or None,
        twilio_account_sid=os.environ.get("TWILIO_ACCOUNT_SID") or None,
        twilio_api_key_sid=os.environ.get("TWILIO_API_KEY_SID") or None,
        twilio_twiml_app_sid=os.environ.get("TWILIO_TWIML_APP_SID") or None,
        twilio_api_base=_env("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/"),
        meta_graph_base=_env("META_GRAPH_BASE", "https://graph.facebook.com").rstrip("/"),
        telegram_api_base=_env("TELEGRAM_API_BASE", "https://api.telegram.org").rstrip("/"),
        email_from_address=os.environ.get("EMAIL_FROM_ADDRESS") or None,
        cognito_issuer=(os.environ.get("COGNITO_ISSUER") or "").rstrip("/") or None,
        cognito_client_id=os.environ.get("COGNITO_CLIENT_ID") or None,
        cognito_endpoint=(os.environ.get("COGNITO_ENDPOINT") or "").rstrip("/") or None,
        dev_auth=os.environ.get("SWITCHBOARD_DEV_AUTH") == "1",
        public_base_url_set=bool(os.environ.get("PUBLIC_BASE_URL")),
        metrics_namespace=metrics_namespace(),
        meta_human_agent_tag=os.environ.get("META_HUMAN_AGENT_TAG") == "1",
        reconnect_grace_seconds=max(
            0, int(_env("SWITCHBOARD_RECONNECT_GRACE_SECONDS", str(DEFAULT_RECONNECT_GRACE_SECONDS)))
        ),
        heartbeat_seconds=float(_env("SWITCHBOARD_HEARTBEAT_SECONDS", str(DEFAULT_HEARTBEAT_SECONDS))),
        websocket_url=os.environ.get("WEBSOCKET_URL") or None,
        websocket_allowed_urls=tuple(
            u.strip() for u in os.environ.get("WEBSOCKET_ALLOWED_URLS", "").split(",") if u.strip()
        ),
        decision_retention_days=max(
            1, int(_env("SWITCHBOARD_DECISION_RETENTION_DAYS", str(DEFAULT_DECISION_RETENTION_DAYS)))
        ),
        contact_record_retention_days=max(
            1, int(_env("SWITCHBOARD_CONTACT_RECORD_RETENTION_DAYS", str(DEFAULT_CONTACT_RECORD_RETENTION_DAYS)))
        ),
        idempotency_retention_days=max(
            MIN_IDEMPOTENCY_RETENTION_DAYS,
            int(_env("SWITCHBOARD_IDEMPOTENCY_RETENTION_DAYS", str(DEFAULT_IDEMPOTENCY_RETENTION_DAYS))),
        ),
    )


def routing_queue_name() -> str:
    """Name of the FIFO routing queue; needed at import time by the SQS event source decorator."""
    return _env("SWITCHBOARD_ROUTING_QUEUE", "switchboard-routing.fifo")


def metrics_namespace() -> str:
    """CloudWatch namespace of the EMF metrics (Switchboard/<stage> in AWS); read at import by the Metrics object."""
    return _env("POWERTOOLS_METRICS_NAMESPACE", "Switchboard")


TRACE_PERCENT = "SWITCHBOARD_TRACE_PERCENT"


def trace_percent(environment: Mapping[str, str] | None = None) -> float:
    """Percent of REST requests X-Ray traces (0 to 100), per stage in `.chalice/config.json`; unset: 0, no traces.

    ``environment``: a stage's variables (the CDK app, the cost model); default: this process's. README, "Traces".
    """
    raw = (os.environ if environment is None else environment).get(TRACE_PERCENT) or "0"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise ValueError(f"{TRACE_PERCENT}={raw!r}: a percent from 0 to 100")
    return value


LOG_LEVEL = "LOG_LEVEL"
SYSTEM_LOG_LEVEL = "SWITCHBOARD_SYSTEM_LOG_LEVEL"
# Powertools' level names (LOG_LEVEL) as Lambda's advanced logging controls spell them (ApplicationLogLevel).
_LAMBDA_LEVELS = {"TRACE": "TRACE", "NOTSET": "TRACE", "DEBUG": "DEBUG", "INFO": "INFO"}


def application_log_level(environment: Mapping[str, str] | None = None) -> str:
    """The functions' ApplicationLogLevel: the stage's ``LOG_LEVEL`` (Powertools takes Lambda's level over its own).

    Above INFO is refused: EMF metric lines carry no ``level``, Lambda files them as INFO and would drop them all.
    """
    raw = ((os.environ if environment is None else environment).get(LOG_LEVEL) or "INFO").upper()
    if raw not in _LAMBDA_LEVELS:
        raise ValueError(
            f"{LOG_LEVEL}={raw!r}: DEBUG or INFO; above INFO Lambda would drop the EMF metric lines (no level in them)"
        )
    return _LAMBDA_LEVELS[raw]


def system_log_level(environment: Mapping[str, str] | None = None) -> str:
    """The functions' SystemLogLevel (``SWITCHBOARD_SYSTEM_LOG_LEVEL``): INFO keeps Lambda's START and REPORT lines
    of every invocation, WARN drops them (README, "Logs"). Unset: INFO, Lambda's default."""
    raw = ((os.environ if environment is None else environment).get(SYSTEM_LOG_LEVEL) or "INFO").upper()
    if raw not in ("DEBUG", "INFO", "WARN"):
        raise ValueError(f"{SYSTEM_LOG_LEVEL}={raw!r}: DEBUG, INFO or WARN")
    return raw


def timer_queue_name() -> str:
    """Standard queue for delayed timers (offer timeouts, escalation steps): FIFO queues cannot delay one message."""
    return _env("SWITCHBOARD_TIMER_QUEUE", "switchboard-timers")


def routing_stream_arn() -> str:
    """The routing table's stream, read by the supervisor's live view (``agents.live``); needed at import time by the
    DynamoDB event source decorator. In AWS the stack points the event source at the table's real stream (its ARN
    is known only once deployed); locally the event pump reads the stream of the table this ARN names."""
    table = _env("SWITCHBOARD_ROUTING_TABLE", "switchboard-routing")
    region = _env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1"))
    return _env("SWITCHBOARD_ROUTING_STREAM_ARN", f"arn:aws:dynamodb:{region}:000000000000:table/{table}/stream/latest")


def outbox_queue_name() -> str:
    """Standard queue of messages to send to customers on their channel."""
    return _env("SWITCHBOARD_OUTBOX_QUEUE", "switchboard-outbox")


def reload_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()


def get_secret(name: str) -> str:
    """A secret by its name: from SSM (cached by Powertools) when a prefix is configured, else the environment."""
    prefix = get_settings().ssm_prefix
    if prefix:
        from chalicelib.store import parameters  # the store's clients read these settings: import it when first used

        return parameters.read_secret(f"{prefix}/{name}", max_age=SECRETS_MAX_AGE)
    value = os.environ.get(name, "")
    if not value:
        raise MissingSecret(name)
    return value


class MissingSecret(RuntimeError):
    """A secret the running code needs is not configured."""

    kind = "secret"

    def __init__(self, name: str) -> None:
        super().__init__(f"{self.kind} {name} is not configured")
        self.name = name


class MissingSetting(MissingSecret):
    """A plain setting the running code needs is not configured (answered like a missing secret: 503)."""

    kind = "setting"
