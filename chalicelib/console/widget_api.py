"""What the widget reads before a chat (``GET /widget/config``) and the offline form (``POST /widget/offline``).

The config is routing.yaml's ``widget:`` (``routing.config.widget``) with whether web chat is open now: the
queue of ``widget.queue``, else the one the rules give a web-chat message (overflow followed), open by its
business hours (``routing.hours``). Closed, the widget shows an offline form instead of the chat.

What the offline form sends becomes an e-mail-channel message from the address the visitor typed, stored and
routed exactly as an e-mail would be (``inbox.receive``): a conversation of that e-mail identity, waiting for
its queue to open, answered by e-mail. The address is unverified (as any e-mail's From is), so the message is
marked so for the agent, and the answer says nothing about who that address belongs to. Throttling and the
WAF's per-IP rate rule in front of the API cover it as they cover ``POST /widget/messages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chalicelib import clock
from chalicelib.channels.fields import Email, Id, Language, MessageText, Name, load_json_object
from chalicelib.conversations import identity, inbox
from chalicelib.conversations.models import InboundMessage
from chalicelib.errors import Forbidden, InvalidPayload, PayloadTooLarge
from chalicelib.routing import config as routing_config
from chalicelib.routing.config import RoutingConfig
from chalicelib.routing.hours import is_open, next_opening, overflow_destination
from chalicelib.routing.rules import ContactFacts, classify
from chalicelib.settings import get_settings
from chalicelib.store import attachments

OFFLINE_PROVIDER = "widget-offline"
_MAX_LANGUAGE = 35


class OfflineMessage(BaseModel):
    """The offline form: who to answer by e-mail, and what they asked. ``message_id`` makes a retry one message."""

    model_config = ConfigDict(strict=True, extra="forbid")

    site: Id
    message_id: Id
    name: Name
    email: Email
    message: MessageText
    visitor_id: Id | None = None
    language: Language | None = None


def web_chat_hours(config: RoutingConfig, at: datetime) -> dict[str, Any]:
    """Whether the widget's queue takes chats at ``at``; closed, when it opens next (None: not foreseeable)."""
    name = config.widget.queue
    if name is None or name not in config.queues:
        name = classify(config, ContactFacts.of("webchat"), at).queue  # overflow already followed
    else:
        name = overflow_destination(config, name, at) or name
    queue = config.queues[name]
    if is_open(queue, at):
        return {"open": True, "opens_at": None, "queue": name}
    opens = next_opening(queue, at)
    return {"open": False, "opens_at": clock.to_iso(opens) if opens else None, "queue": name}


def widget_config(query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /widget/config?site=&lang=``: the greeting in the visitor's language, the forms, the limits, the hours."""
    site, language = query.get("site", ""), query.get("lang", "")
    bad = []
    if not site or len(site) > 128 or not all(c.isalnum() or c in "._:@-" for c in site):
        bad.append({"field": "site", "problem": "required: 1-128 of A-Z a-z 0-9 . _ : @ -"})
    if len(language) > _MAX_LANGUAGE:
        bad.append({"field": "lang", "problem": "a language tag such as en or de-CH"})
    if bad:
        raise InvalidPayload("send ?site=...", bad)
    config = routing_config.current_config()
    widget = config.widget
    hours = web_chat_hours(config, datetime.now(UTC))
    return {
        "site": site,
        "greeting": widget.greeting(language),
        "pre_chat_form": widget.pre_chat_form,
        "attachments": {
            "enabled": widget.attachments_enabled,
            "max_bytes": widget.max_attachment_bytes,
            "types": list(widget.attachment_types),
        },
        "open": hours["open"],
        "opens_at": hours["opens_at"],
    }


class AttachmentRequest(BaseModel):
    """What the widget asks to upload: checked against routing.yaml's ``widget.attachments`` before S3 is."""

    model_config = ConfigDict(strict=True, extra="forbid")

    site: Id
    visitor_id: Id
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    content_type: Annotated[str, StringConstraints(max_length=100, pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=1)]


def post_attachment(raw_body: bytes) -> dict[str, Any]:
    """``POST /widget/attachments``: a presigned S3 POST for one file of an allowed type and size, and its key."""
    asked = load_json_object(raw_body or b"null", AttachmentRequest)
    widget = routing_config.current_config().widget
    if not widget.attachments_enabled:
        raise Forbidden("this site's widget takes no attachments")
    bad = []
    if not widget.allows_type(asked.content_type):
        allowed = ", ".join(widget.attachment_types)
        bad.append({"field": "content_type", "problem": f"{asked.content_type} is not allowed (allowed: {allowed})"})
    if asked.size > widget.max_attachment_bytes:
        bad.append({"field": "size", "problem": f"larger than the limit of {widget.max_attachment_bytes} bytes"})
    if bad:
        raise InvalidPayload("; ".join(d["problem"] for d in bad), bad)
    key = attachments.new_key(asked.site, asked.visitor_id, asked.filename)
    form = attachments.upload_form(key, asked.content_type, widget.max_attachment_bytes)
    return {
        "upload": form,
        "attachment": {"key": key, "filename": asked.filename, "content_type": asked.content_type},
        "expires_in": attachments.UPLOAD_SECONDS,
    }


def post_offline(raw_body: bytes) -> dict[str, Any]:
    """``POST /widget/offline``: the offline form, stored and routed as an e-mail from the address given."""
    if len(raw_body) > get_settings().max_body_bytes:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {get_settings().max_body_bytes}")
    form = load_json_object(raw_body or b"null", OfflineMessage)
    sender = identity.email(form.email)
    metadata: dict[str, Any] = {"source": "widget_offline", "site": form.site, "email_verified": False}
    if form.visitor_id:
        metadata["visitor_id"] = form.visitor_id
    message = InboundMessage(
        channel="email",
        provider=OFFLINE_PROVIDER,
        # Scoped to the address: another sender's id can neither collide with it nor learn it was used.
        provider_message_id=f"{form.site}/{sender.value}/{form.message_id}",
        identity=sender,
        text=form.message,
        name=form.name.strip() or None,
        language=form.language,
        subject=f"Message left on the web chat of {form.site}",
        metadata=metadata,
    )
    stored = inbox.receive(message)
    return {"status": "duplicate" if stored.duplicate else "received", "message_id": form.message_id}
