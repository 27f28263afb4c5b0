"""Twilio Messages API: SMS and WhatsApp through Twilio.

``POST {TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, with HTTP
basic auth ``TWILIO_API_KEY_SID:TWILIO_API_KEY_SECRET`` when an API key is set, else
``AccountSid:TWILIO_AUTH_TOKEN`` (``rest_credentials``). Parameters: ``To``; ``From`` (our number, or
``whatsapp:+...``) or ``MessagingServiceSid`` (``MG...``); ``Body``; and ``StatusCallback``, our
``/webhooks/twilio/status``, so the message's later statuses reach it. Twilio answers ``201`` with
the Message resource (``sid`` ``SM...``, ``status`` ``queued``) and errors as JSON
``{"code", "message", "more_info", "status"}``. Twilio takes no idempotency key.
"""

from __future__ import annotations

from urllib.parse import quote

from chalicelib.outbound.destinations import Destination
from chalicelib.outbound.senders import (
    ProviderUnavailable,
    SendResult,
    final_by_status,
    post,
    unavailable_or_rejected,
)
from chalicelib.settings import TWILIO_API_KEY_SECRET, TWILIO_AUTH_TOKEN, get_secret, get_settings

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"


def rest_credentials(account_sid: str) -> tuple[str, str]:
    """HTTP Basic credentials for Twilio's REST API: the API key (``TWILIO_API_KEY_SID`` with its secret, the one
    that signs the softphone's tokens) when one is set, which ops can revoke alone; else ``AccountSid:AuthToken``.
    Twilio documents both; the account stays in the URL either way."""
    key_sid = get_settings().twilio_api_key_sid
    if key_sid:
        return key_sid, get_secret(TWILIO_API_KEY_SECRET)
    return account_sid, get_secret(TWILIO_AUTH_TOKEN)


def send(destination: Destination, text: str, message_id: str) -> SendResult:
    """Create the Message; its ``sid`` is what Twilio's status callbacks name."""
    settings = get_settings()
    account_sid = settings.twilio_account_sid
    if not account_sid:
        raise ProviderUnavailable(PROVIDER, "TWILIO_ACCOUNT_SID is not set")
    if not destination.sender:
        raise ProviderUnavailable(PROVIDER, "no sender number or Messaging Service for this message")
    form = {"To": destination.to, "Body": text, "StatusCallback": settings.public_base_url + STATUS_CALLBACK_PATH}
    if destination.sender.startswith("MG"):
        form["MessagingServiceSid"] = destination.sender
    else:
        form["From"] = destination.sender
    url = f"{settings.twilio_api_base}/{API_VERSION}/Accounts/{quote(account_sid, safe='')}/Messages.json"
    answer = post(PROVIDER, url, data=form, auth=rest_credentials(account_sid))
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.ok:
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderUnavailable(PROVIDER, f"HTTP {answer.status} without a message sid")
        return SendResult(PROVIDER, sid)
    code, message = body.get("code"), body.get("message")
    error = f"{code}: {message}" if code and message else str(message or code or f"HTTP {answer.status}")
    raise unavailable_or_rejected(PROVIDER, answer, error, final_by_status(answer.status))
