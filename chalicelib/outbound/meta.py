"""Meta Graph API: WhatsApp Cloud API, Messenger and Instagram messages.

- WhatsApp: ``POST {META_GRAPH_BASE}/v21.0/{phone_number_id}/messages`` with
  ``{"messaging_product": "whatsapp", "recipient_type": "individual", "to", "type": "text", "text": {"body"}}``;
  the answer's ``messages[0].id`` is the wamid the status webhooks name. With reply buttons (the self-service
  bot's): ``"type": "interactive", "interactive": {"type": "button", "body": {"text"}, "action": {"buttons":
  [{"type": "reply", "reply": {"id", "title"}}]}}`` (body at most 1,024 characters, 1 to 3 buttons, titles at
  most 20 and unique); a tap comes back as an inbound ``interactive`` ``button_reply`` naming the id.
- Messenger: ``POST .../v21.0/{page_id}/messages`` (``/me/messages`` when the page is unknown);
  Instagram: ``POST .../v21.0/me/messages``. Both with ``{"recipient": {"id"}, "messaging_type":
  "RESPONSE", "message": {"text"}}``, or ``"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"`` for an
  agent's reply after the 24-hour standard messaging window (``destinations.within_window``); the answer is
  ``{"recipient_id", "message_id"}``.

Every call carries ``Authorization: Bearer META_ACCESS_TOKEN``: one token for the three products,
so it must be granted ``whatsapp_business_messaging`` and ``pages_messaging`` (and
``instagram_manage_messages``), as a system user's token can be. Errors are
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``, mostly with HTTP 400
whatever the cause, so the ``code`` decides what is worth retrying. No idempotency key exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from chalicelib.outbound.destinations import Destination
from chalicelib.outbound.senders import (
    Answer,
    Button,
    ProviderUnavailable,
    SendResult,
    final_by_status,
    post,
    unavailable_or_rejected,
)
from chalicelib.settings import META_ACCESS_TOKEN, get_secret, get_settings

GRAPH_VERSION = "v21.0"
MAX_BUTTONS = 3  # an interactive message's reply buttons, at most
# Graph error codes that mean "later" (or "fix the token"), whatever the HTTP status: unknown and
# temporary errors, the many rate limits, WhatsApp's throughput and pair limits, service unavailable,
# and an expired or invalid access token (190), which ops renew and then redrive the dead letters.
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 190, 341, 613, 80007, 130429, 131000, 131016, 131048, 131056})


def send(destination: Destination, text: str, message_id: str, *, buttons: Sequence[Button] = ()) -> SendResult:
    """Send on WhatsApp (``provider == "whatsapp"``), Messenger or Instagram; ``buttons`` (WhatsApp only, up to
    three): an interactive message with reply buttons, ``text`` its body."""
    if destination.provider == "whatsapp":
        return _whatsapp(destination, text, buttons)
    return _messaging(destination, text)


def _whatsapp(destination: Destination, text: str, buttons: Sequence[Button] = ()) -> SendResult:
    if not destination.sender:
        raise ProviderUnavailable(destination.provider, "no phone_number_id to send from")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": destination.to,
        "type": "text",
        "text": {"preview_url": False, "body": text},
    }
    if buttons:
        del body["text"]
        body["type"] = "interactive"
        body["interactive"] = {
            "type": "button",
            "body": {"text": text},
            "action": {
                "buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in buttons[:MAX_BUTTONS]]
            },
        }
    answer = _post(destination.provider, f"{quote(destination.sender, safe='')}/messages", body)
    messages = answer.body.get("messages") if isinstance(answer.body, dict) else None
    wamid = messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
    if not isinstance(wamid, str) or not wamid:
        raise ProviderUnavailable(destination.provider, f"HTTP {answer.status} without a message id")
    return SendResult(destination.provider, wamid)


def _messaging(destination: Destination, text: str) -> SendResult:
    page = destination.sender if destination.provider == "messenger" and destination.sender else "me"
    body: dict[str, Any] = {"recipient": {"id": destination.to}, "messaging_type": "RESPONSE"}
    if destination.tag:  # outside the standard messaging window: only a tagged message is allowed
        body.update(messaging_type="MESSAGE_TAG", tag=destination.tag)
    body["message"] = {"text": text}
    answer = _post(destination.provider, f"{quote(page, safe='')}/messages", body)
    mid = answer.body.get("message_id") if isinstance(answer.body, dict) else None
    if not isinstance(mid, str) or not mid:
        raise ProviderUnavailable(destination.provider, f"HTTP {answer.status} without a message id")
    return SendResult(destination.provider, mid)


def _post(provider: str, path: str, body: dict[str, Any]) -> Answer:
    url = f"{get_settings().meta_graph_base}/{GRAPH_VERSION}/{path}"
    headers = {"Authorization": f"Bearer {get_secret(META_ACCESS_TOKEN)}"}
    answer = post(provider, url, json=body, headers=headers)
    if answer.ok:
        return answer
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = f"{code}: {error.get('message')}" if code is not None else f"HTTP {answer.status}"
    if answer.status >= 500 or code in RETRYABLE_CODES:
        raise unavailable_or_rejected(provider, answer, text, final=False)
    raise unavailable_or_rejected(provider, answer, text, final=code is not None or final_by_status(answer.status))
