"""One Logger, one Tracer and the Chalice middleware that gives every handler both.

Every Lambda entry point (REST, WebSocket, SQS, schedule) runs through ``middleware``:

- ``logger.inject_lambda_context(clear_state=True)``: the Lambda context keys on every line, and
  nothing appended during one invocation (a ``conversation_id``...) leaks into the next.
  ``log_event`` stays off: events carry message bodies, phone numbers, e-mail addresses and tokens.
- ``tracer.capture_lambda_handler`` without ``capture_response``: responses carry sign-in tokens
  and message texts, which do not belong in X-Ray metadata either. Outside Lambda (tests, the local
  stack, ``chalice local``) Powertools disables tracing by itself; ``POWERTOOLS_TRACE_DISABLED=true``
  does it explicitly.
- ``metrics.log_metrics`` with the cold-start metric: EMF flushed at the end of every invocation (the
  routing metrics themselves are ``single_metric`` lines, see ``chalicelib.metrics``, because one batch
  spans several queues and channels).
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
import re
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from chalice.app import Request

from chalicelib.settings import metrics_namespace

SERVICE = "switchboard"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=metrics_namespace())
# Most invocations publish no metric of their own (they come as single_metric lines); that is not news.
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


def middleware(event: Any, get_response: Any) -> Any:
    """Chalice middleware for every event type; the handler's response passes through unchanged."""
    original_event, context = _original(event)

    @functools.wraps(get_response)
    def handler(_event: Any, _context: Any) -> Any:
        correlate(_conversation_of(event))
        return get_response(event)

    if context is None or not hasattr(context, "aws_request_id"):  # invoked by hand, without a Lambda context
        logger.clear_state()
        return tracer.capture_lambda_handler(handler, capture_response=False)(original_event, context)
    logged = logger.inject_lambda_context(handler, log_event=False, clear_state=True)
    measured = metrics.log_metrics(logged, capture_cold_start_metric=True)
    return tracer.capture_lambda_handler(measured, capture_response=False)(original_event, context)


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
