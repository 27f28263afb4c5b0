"""One Logger, one Tracer and the Chalice middleware that gives every handler both.

Every Lambda entry point (REST, WebSocket, SQS, schedule) runs through ``middleware``:

- ``_logged``: the invocation's request id (``function_request_id``) on every line, and nothing appended during
  one invocation (a ``conversation_id``...) leaks into the next. Lean keys (every byte is billed at ingestion):
  not the function's name, ARN or memory, nor ``service`` (the log group names the stage's function), nor
  ``cold_start`` (the ColdStart metric counts them), nor an X-Ray trace id unless X-Ray records the invocation,
  nor ``location`` unless the level is DEBUG (dev). The event is never logged: events carry message bodies,
  phone numbers, e-mail addresses and tokens. Timestamps are RFC 3339, which Lambda's JSON log format reads
  (README, "Logs").
- ``tracer().capture_lambda_handler`` without ``capture_response``, in sampled invocations only:
  responses carry sign-in tokens and message texts, which do not belong in X-Ray metadata either.
  The tracer is made lazily (``tracer``): ``aws_xray_sdk`` costs ~0.2 s of a cold start (it builds
  botocore clients at import), so an invocation Lambda's trace header does not mark ``Sampled=1`` never
  imports it, nor does any invocation of a stage whose ``SWITCHBOARD_TRACE_PERCENT`` is 0 (README,
  "Traces"); such an invocation passes ``Sampled=0`` on to the queues (``_not_passed_on``). Only botocore is
  patched: the SDK's HTTP patches would record provider URLs, and
  Telegram's carries the bot token in its path. Outside Lambda (tests, the local stack, ``chalice
  local``) nothing is sampled; ``POWERTOOLS_TRACE_DISABLED=true`` turns tracing off everywhere.
- ``metrics.log_metrics`` with the cold-start metric, and the routing metrics (``chalicelib.metrics``) written
  when the handler returns: one EMF document per queue and channel the invocation touched.
- the correlation id: ``conversation_id`` where the event names one (a REST path parameter); code
  that learns it later calls ``correlate`` (``inbox.receive``, the router's record handler).

Child loggers (``Logger(service="switchboard", child=True)``) share this logger's handler and keys.

Log hygiene, for every ``logger.`` call in chalicelib: identifiers (conversation, customer, message,
agent, contact, offer ids), channel and provider names, counts and error *types* only. Never message
texts, phone numbers, e-mail addresses, tokens, secrets or raw provider payloads.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from chalice.app import Request

from chalicelib import metrics as routing_metrics
from chalicelib.settings import metrics_namespace, trace_percent

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "switchboard"
# What a traced invocation instruments: the AWS calls (names of tables, queues and operations only).
TRACED_MODULES = ("botocore",)
# The trace header Lambda sets for each invocation (Root=...;Parent=...;Sampled=1).
TRACE_HEADER = "_X_AMZN_TRACE_ID"

logger = Logger(service=SERVICE, use_rfc3339=True)
# Keys the log group already says (it is the stage's function's), or that only a developer needs.
REDUNDANT_KEYS = ("service",)
DEVELOPER_KEYS = ("location",)
metrics = Metrics(service=SERVICE, namespace=metrics_namespace())
# Most invocations give Powertools no metric (the routing metrics are chalicelib.metrics' own documents).
warnings.filterwarnings("ignore", message="No application metrics to publish")

# The AWS SDK's DEBUG lines dump request parameters and bodies (message texts, phone numbers, e-mail
# addresses): whatever level the root logger is set to, they stay quiet unless someone sets them lower.
for _name in ("boto3", "botocore", "urllib3", "s3transfer"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.INFO)

CORRELATION_KEY = "conversation_id"

_EMAIL = re.compile(r"[^\s'\"<>(),;:@]+@[^\s'\"<>(),;:@]+")
_PHONE = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")


def redact(text: str) -> str:
    """``text`` (a provider's error, a parser's complaint) with e-mail addresses and phone-like numbers masked."""
    return _PHONE.sub("<number>", _EMAIL.sub("<email>", text))


def correlate(conversation_id: str | None) -> None:
    """Put ``conversation_id`` on every following log line of this invocation (cleared by the middleware)."""
    if conversation_id:
        logger.append_keys(**{CORRELATION_KEY: conversation_id})


@functools.cache
def tracer() -> Tracer:
    """The Powertools Tracer, made (and botocore patched) at the first sampled invocation of the container."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)


def sampled() -> bool:
    """Whether X-Ray records this invocation: Lambda's trace header says ``Sampled=1`` and the stage traces."""
    fields = dict(part.partition("=")[::2] for part in os.environ.get(TRACE_HEADER, "").split(";"))
    if fields.get("Sampled") != "1":
        return False
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true", "yes", "on"):
        return False
    try:
        return trace_percent() > 0
    except ValueError:  # the stack checks the setting; a broken one by hand turns tracing off, not the app
        return False


def _not_passed_on() -> None:
    """An invocation X-Ray does not record passes ``Sampled=0`` on, whatever its header said: botocore sends
    ``_X_AMZN_TRACE_ID`` with every AWS request, SQS keeps it as the message's ``AWSTraceHeader``, and the queue's
    PassThrough function would trace a message marked ``Sampled=1``: a caller's forged header at a stage tracing
    0 % would otherwise be followed through the whole flow. Lambda sets the variable anew for each invocation."""
    header = os.environ.get(TRACE_HEADER, "")
    if "Sampled=1" in header:
        os.environ[TRACE_HEADER] = header.replace("Sampled=1", "Sampled=0")


def _traced(handler: Any, traced: bool) -> Any:
    return tracer().capture_lambda_handler(handler, capture_response=False) if traced else handler


def _fresh_keys(request_id: str | None, traced: bool) -> None:
    """This invocation's keys only: its request id, the trace id only if X-Ray records it."""
    logger.clear_state()
    lean = REDUNDANT_KEYS if logger.log_level <= logging.DEBUG else (*REDUNDANT_KEYS, *DEVELOPER_KEYS)
    logger.remove_keys(lean)
    keys: dict[str, Any] = {} if traced else {"xray_trace_id": None}  # None: Powertools leaves the key out
    if request_id:
        keys["function_request_id"] = request_id
    logger.append_keys(**keys)


def middleware(event: Any, get_response: Any) -> Any:
    """Chalice middleware for every event type; the handler's response passes through unchanged."""
    original_event, context = _original(event)
    traced = sampled()
    if not traced:
        _not_passed_on()

    @functools.wraps(get_response)
    def handler(_event: Any, _context: Any) -> Any:
        correlate(_conversation_of(event))
        try:
            return get_response(event)
        finally:
            routing_metrics.flush()

    if context is None or not hasattr(context, "aws_request_id"):  # invoked by hand, without a Lambda context
        _fresh_keys(None, traced)
        return _traced(handler, traced)(original_event, context)
    _fresh_keys(context.aws_request_id, traced)
    measured = metrics.log_metrics(handler, capture_cold_start_metric=True)
    return _traced(measured, traced)(original_event, context)


def _original(event: Any) -> tuple[Any, Any]:
    """The raw Lambda event and context behind a Chalice event (as ``chalice.ConvertToMiddleware`` finds them)."""
    if isinstance(event, Request):
        return event.to_original_event(), event.lambda_context
    return event.to_dict(), getattr(event, "context", None)


def _conversation_of(event: Any) -> str | None:
    if isinstance(event, Request):
        value = (event.uri_params or {}).get("conversation_id")
        return value if isinstance(value, str) else None
    return None
