"""Telegram Bot API: ``sendMessage``.

``POST {TELEGRAM_API_BASE}/bot{TELEGRAM_BOT_TOKEN}/sendMessage`` with JSON ``{"chat_id", "text"}`` (and
``reply_markup: {"inline_keyboard": [[{"text", "callback_data"}]]}`` for a message with buttons).
The answer is ``{"ok": true, "result": Message}``; a failure ``{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}``. The token is in the URL, so no URL ever goes into
an error or a log line. Telegram takes no idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.outbound.destinations import Destination
from chalicelib.outbound.senders import Button, ProviderUnavailable, SendResult, post, unavailable_or_rejected
from chalicelib.settings import TELEGRAM_BOT_TOKEN, get_secret, get_settings

PROVIDER = "telegram"


def send(destination: Destination, text: str, message_id: str, *, buttons: Sequence[Button] = ()) -> SendResult:
    """Send to the chat; Telegram's message ids are per chat, so ours is ``<chat_id>:<message_id>``.

    ``buttons``: an inline keyboard under the message, one row, each button's ``callback_data`` its id (a tap
    comes back as a ``callback_query`` whose data is the text)."""
    chat_id: int | str = int(destination.to) if destination.to.lstrip("-").isdigit() else destination.to
    url = f"{get_settings().telegram_api_base}/bot{get_secret(TELEGRAM_BOT_TOKEN)}/sendMessage"
    body: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if buttons:
        body["reply_markup"] = {"inline_keyboard": [[{"text": b.title, "callback_data": b.id} for b in buttons]]}
    answer = post(PROVIDER, url, json=body)
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.ok and body.get("ok") is True:
        result = body.get("result")
        sent = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(sent, int):
            raise ProviderUnavailable(PROVIDER, "answered ok without a message_id")
        return SendResult(PROVIDER, f"{chat_id}:{sent}")
    description = str(body.get("description") or f"HTTP {answer.status}")
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(retry_after, int):
        raise ProviderUnavailable(PROVIDER, description, retry_after)
    # 400 (chat not found, empty text) and 403 (the customer blocked the bot) are final; a bad token is
    # 401 (or 404 for a malformed one): ops fix it and redrive, as for 5xx and 429.
    raise unavailable_or_rejected(PROVIDER, answer, description, final=answer.status in (400, 403))
