"""Meta: WhatsApp Cloud API, Messenger and Instagram messaging, through one app webhook.

``GET /webhooks/meta`` is Meta's verification handshake: ``hub.mode=subscribe``,
``hub.verify_token`` (must equal the ``META_VERIFY_TOKEN`` setting) and
``hub.challenge``, which we answer as plain text.

``POST /webhooks/meta`` carries events, signed with
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` under the
app secret (``META_APP_SECRET``). One body may batch many events across
``entry[]``; the ``object`` field says which product sent them:

* ``whatsapp_business_account``: ``entry[].changes[]`` with ``field: "messages"``
  and a ``value`` holding ``messages[]`` (customers writing), ``contacts[]``
  (their profile names, by ``wa_id``) and ``statuses[]`` (what became of what
  we sent). Channel ``whatsapp``; the sender is their phone number, the same
  identity as an SMS or a Twilio WhatsApp message from that number.
* ``page`` (Messenger) and ``instagram``: ``entry[].messaging[]``, one event per
  item: ``message``, ``postback``, ``delivery``, ``read``... Channels
  ``messenger`` and ``instagram``; the sender is a page-scoped id (PSID) or an
  Instagram-scoped id (IGSID): the same person has another id on every page.

Decisions worth knowing:

* Media. WhatsApp gives a media id, not a public URL (fetching the bytes takes
  ``GET /<media-id>`` with the business's access token, and the URL it returns
  expires in minutes), so an attachment's ``url`` is the reference
  ``whatsapp-media:<media id>``. Messenger and Instagram give a CDN URL, which
  we keep as is; it expires too, so fetch it soon if the bytes matter.
* Meta retries anything but a 200 for days and disables webhooks that keep
  failing, so a batch is only refused when the body as a whole is not Meta's
  (bad signature, not JSON, no ``entry`` list). One event inside a good batch
  that does not parse is skipped, logged and named in ``Webhook.context["skipped"]``;
  the rest of the batch is still delivered.
* Ignored (answered 200, nothing stored): echoes of what the page sent
  (``message.is_echo``), deleted messages, Messenger ``read`` watermarks,
  reactions, referrals, opt-ins, handover (``standby``), and every WhatsApp
  change whose ``field`` is not ``messages`` (template, quality, account updates).
* Statuses: WhatsApp ``sent``/``delivered``/``read``/``failed`` become
  ``StatusUpdate(provider="whatsapp")`` keyed by the wamid, with ``errors[0]``
  as ``"<code>: <title>"`` (any other status value is ignored); Messenger ``delivery.mids`` become ``delivered`` and
  Instagram ``read.mid`` becomes ``read`` (providers ``messenger``/``instagram``).
* A WhatsApp message type we do not read (``contacts``, ``order``, ``system``,
  ``unsupported``...) is still stored, with the text ``[whatsapp <type> message]``
  and ``metadata["unsupported"] = True``, so an agent sees the customer wrote.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints, ValidationError

from chalicelib import clock
from chalicelib.channels.base import Reply, StatusUpdate, Webhook, WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.channels.signing import verify_sha256
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, Identity, InboundMessage, StoredMessage
from chalicelib.errors import Forbidden, InvalidPayload, PayloadTooLarge, SwitchboardError
from chalicelib.observability import redact
from chalicelib.settings import META_APP_SECRET, META_VERIFY_TOKEN, get_secret, get_settings

logger = Logger(service="switchboard", child=True)

PROVIDER = "meta"
WHATSAPP = "whatsapp"
MESSENGER = "messenger"
INSTAGRAM = "instagram"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_REFERENCE = "whatsapp-media:"  # + the Cloud API media id

_WHATSAPP_MEDIA = ("image", "audio", "video", "document", "sticker")
_STATUSES = frozenset({"sent", "delivered", "read", "failed"})
# Messenger and Instagram name an attachment's kind, not its MIME type.
_ATTACHMENT_TYPES = {
    "image": "image/*",
    "video": "video/*",
    "audio": "audio/*",
    "file": "application/octet-stream",
    "ig_reel": "video/*",
    "reel": "video/*",
}
_SKIPPED_LIMIT = 20


# --- the handshake --------------------------------------------------------------------------


def verify_subscription(query: Mapping[str, str], verify_token: str) -> Reply:
    """Answer Meta's ``GET`` handshake: the challenge as plain text, once the verify token matches."""
    query = query or {}
    mode, token, challenge = (query.get(f"hub.{name}") for name in ("mode", "verify_token", "challenge"))
    if not mode or token is None or challenge is None:
        raise InvalidPayload("a verification request needs hub.mode, hub.verify_token and hub.challenge")
    if mode != "subscribe":
        raise InvalidPayload(f"hub.mode must be subscribe, not {mode!r}")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise Forbidden("hub.verify_token does not match")
    return Reply(200, challenge, "text/plain")


# --- the payloads, as far as we read them ---------------------------------------------------


# Ids we dedupe and reply on: an empty one would make every such delivery "the same message".
ProviderId = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Payload(BaseModel):
    """Meta adds fields all the time: read the ones we use, ignore the rest; ids may come as numbers."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)


class WhatsAppText(_Payload):
    body: str = ""


class WhatsAppMedia(_Payload):
    id: str
    mime_type: str = "application/octet-stream"
    caption: str | None = None
    filename: str | None = None


class WhatsAppLocation(_Payload):
    latitude: FiniteFloat
    longitude: FiniteFloat
    name: str | None = None
    address: str | None = None
    url: str | None = None


class WhatsAppButton(_Payload):
    """A tap on a template's quick-reply button."""

    text: str = ""
    payload: str | None = None


class WhatsAppChoice(_Payload):
    id: str
    title: str = ""
    description: str | None = None


class WhatsAppInteractive(_Payload):
    type: str
    button_reply: WhatsAppChoice | None = None
    list_reply: WhatsAppChoice | None = None


class WhatsAppReaction(_Payload):
    message_id: str | None = None
    emoji: str | None = None  # absent when the customer removes their reaction


class WhatsAppContext(_Payload):
    id: str | None = None  # the wamid this message replies to
    forwarded: bool | None = None


class WhatsAppMessage(_Payload):
    sender: ProviderId = Field(alias="from")
    id: ProviderId
    timestamp: int | None = None
    type: str
    context: WhatsAppContext | None = None
    text: WhatsAppText | None = None
    image: WhatsAppMedia | None = None
    audio: WhatsAppMedia | None = None
    video: WhatsAppMedia | None = None
    document: WhatsAppMedia | None = None
    sticker: WhatsAppMedia | None = None
    location: WhatsAppLocation | None = None
    button: WhatsAppButton | None = None
    interactive: WhatsAppInteractive | None = None
    reaction: WhatsAppReaction | None = None


class WhatsAppProfile(_Payload):
    name: str | None = None


class WhatsAppContact(_Payload):
    wa_id: str | None = None
    profile: WhatsAppProfile | None = None


class WhatsAppError(_Payload):
    code: str | None = None
    title: str | None = None


class WhatsAppStatus(_Payload):
    id: ProviderId
    status: str
    timestamp: int | None = None
    recipient_id: str | None = None
    errors: list[WhatsAppError] = []


class WhatsAppMetadata(_Payload):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class MessagingParty(_Payload):
    id: ProviderId | None = None  # absent for a chat-plugin guest, who has a user_ref instead


class MessagingAttachmentPayload(_Payload):
    url: str | None = None


class MessagingAttachment(_Payload):
    type: str
    payload: MessagingAttachmentPayload | None = None


class MessagingQuickReply(_Payload):
    payload: str | None = None


class MessagingReplyTo(_Payload):
    mid: str | None = None


class MessagingMessage(_Payload):
    mid: ProviderId
    text: str | None = None
    attachments: list[MessagingAttachment] = []
    quick_reply: MessagingQuickReply | None = None
    reply_to: MessagingReplyTo | None = None
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False


class MessagingPostback(_Payload):
    mid: ProviderId | None = None
    title: str | None = None
    payload: str | None = None


class MessagingDelivery(_Payload):
    mids: list[str] = []
    watermark: int | None = None


class MessagingRead(_Payload):
    mid: str | None = None  # Instagram names the message; Messenger only gives a watermark
    watermark: int | None = None


class MessagingEvent(_Payload):
    sender: MessagingParty
    recipient: MessagingParty | None = None
    timestamp: int | None = None  # milliseconds
    message: MessagingMessage | None = None
    postback: MessagingPostback | None = None
    delivery: MessagingDelivery | None = None
    read: MessagingRead | None = None


# --- reading a batch ------------------------------------------------------------------------

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass
class _Batch:
    """What one POST carried, in the order it carried it, and what could not be read."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def read(self, model: type[_Model], raw: object, where: str) -> _Model | None:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            self.skip(where, "; ".join(f"{'.'.join(map(str, e['loc'])) or '(item)'}: {e['msg']}" for e in exc.errors()))
            return None

    def skip(self, where: str, why: str) -> None:
        if len(self.skipped) < _SKIPPED_LIMIT:
            self.skipped.append(f"{where}: {why}"[:300])

    def webhook(self, kind: str) -> Webhook:
        if self.skipped:
            logger.warning("meta events skipped", extra={"object": kind, "skipped": [redact(s) for s in self.skipped]})
        return Webhook(
            messages=tuple(self.messages),
            statuses=tuple(self.statuses),
            context={"object": kind, "skipped": list(self.skipped)},
        )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    try:
        return clock.to_iso(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def parse(raw_body: bytes, signature: str | None, app_secret: str, max_body_bytes: int) -> Webhook:
    """Verify and read one event POST; raises a ``SwitchboardError`` only when the body as a whole is bad."""
    if len(raw_body) > max_body_bytes:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {max_body_bytes}")
    verify_sha256(app_secret, raw_body, SIGNATURE_HEADER, signature)
    document = _json(raw_body)
    kind = document.get("object")
    entries = document.get("entry")
    if not isinstance(kind, str) or not isinstance(entries, list):
        raise InvalidPayload("body must be a JSON object with an object name and an entry list")
    batch = _Batch()
    for index, entry in enumerate(entries):
        entry = _dict(entry)
        if kind == "whatsapp_business_account":
            _read_whatsapp_entry(batch, entry, f"entry[{index}]")
        elif kind == "page":
            _read_messaging_entry(batch, entry, f"entry[{index}]", MESSENGER)
        elif kind == "instagram":
            _read_messaging_entry(batch, entry, f"entry[{index}]", INSTAGRAM)
        # Any other object (user, permissions, ...) is a subscription we do not use: nothing to store.
    return batch.webhook(kind)


def _json(raw_body: bytes) -> dict[str, Any]:
    document = load_json(raw_body)
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object")
    return document


# --- WhatsApp -------------------------------------------------------------------------------


def _read_whatsapp_entry(batch: _Batch, entry: dict[str, Any], where: str) -> None:
    for index, change in enumerate(_list(entry.get("changes"))):
        change = _dict(change)
        if change.get("field") != "messages":
            continue
        value = _dict(change.get("value"))
        here = f"{where}.changes[{index}]"
        business = batch.read(WhatsAppMetadata, value.get("metadata") or {}, f"{here}.metadata")
        names: dict[str, str] = {}
        for raw in _list(value.get("contacts")):
            contact = batch.read(WhatsAppContact, raw, f"{here}.contacts")
            if contact and contact.wa_id and contact.profile and contact.profile.name:
                names[contact.wa_id] = contact.profile.name
        context = {
            "waba_id": entry.get("id") if isinstance(entry.get("id"), str) else None,
            "phone_number_id": business.phone_number_id if business else None,
            "display_phone_number": business.display_phone_number if business else None,
        }
        for position, raw in enumerate(_list(value.get("messages"))):
            message = batch.read(WhatsAppMessage, raw, f"{here}.messages[{position}]")
            if message is not None:
                try:
                    batch.messages.append(_whatsapp_message(message, names, context))
                except SwitchboardError as exc:  # a sender that is not a phone number
                    batch.skip(f"{here}.messages[{position}]", exc.message)
        for position, raw in enumerate(_list(value.get("statuses"))):
            status = batch.read(WhatsAppStatus, raw, f"{here}.statuses[{position}]")
            if status is not None and status.status in _STATUSES:
                batch.statuses.append(_whatsapp_status(status))


def _whatsapp_message(message: WhatsAppMessage, names: Mapping[str, str], context: dict[str, Any]) -> InboundMessage:
    metadata: dict[str, Any] = {"whatsapp_type": message.type, **{k: v for k, v in context.items() if v}}
    if message.context and message.context.id:
        metadata["in_reply_to"] = message.context.id
    if message.context and message.context.forwarded:
        metadata["forwarded"] = True
    text, attachments = _whatsapp_content(message, metadata)
    return InboundMessage(
        channel=WHATSAPP,
        provider=PROVIDER,
        provider_message_id=message.id,
        identity=identity.phone(message.sender),
        text=text,
        attachments=attachments,
        sent_at=_iso(message.timestamp),
        name=names.get(message.sender),
        metadata=metadata,
    )


def _whatsapp_content(message: WhatsAppMessage, metadata: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    """The text and attachments of one message; what is only structure goes into ``metadata``."""
    kind = message.type
    if kind == "text" and message.text:
        return message.text.body, ()
    media = getattr(message, kind) if kind in _WHATSAPP_MEDIA else None
    if isinstance(media, WhatsAppMedia):
        attachment = Attachment(content_type=media.mime_type, url=MEDIA_REFERENCE + media.id, filename=media.filename)
        return media.caption or "", (attachment,)
    if kind == "location" and message.location:
        place = message.location
        metadata["location"] = place.model_dump(exclude_none=True)
        label = ", ".join(part for part in (place.name, place.address) if part)
        return f"Location: {label + ' ' if label else ''}({place.latitude}, {place.longitude})", ()
    if kind == "button" and message.button:
        if message.button.payload is not None:
            metadata["button_payload"] = message.button.payload
        return message.button.text, ()
    if kind == "interactive" and message.interactive:
        choice = message.interactive.button_reply or message.interactive.list_reply
        if choice is not None:
            metadata.update(interactive_type=message.interactive.type, interactive_id=choice.id)
            if choice.description:
                metadata["interactive_description"] = choice.description
            return choice.title, ()
        kind = f"interactive {message.interactive.type}"
    if kind == "reaction" and message.reaction:
        if message.reaction.message_id:
            metadata["reaction_to"] = message.reaction.message_id
        if not message.reaction.emoji:
            metadata["reaction_removed"] = True
        return message.reaction.emoji or "[reaction removed]", ()
    metadata["unsupported"] = True
    return f"[whatsapp {kind} message]", ()


def _whatsapp_status(status: WhatsAppStatus) -> StatusUpdate:
    error = None
    if status.errors:
        first = status.errors[0]
        error = ": ".join(part for part in (first.code, first.title) if part) or None
    return StatusUpdate(
        provider=WHATSAPP, provider_message_id=status.id, status=status.status, at=_iso(status.timestamp), error=error
    )


# --- Messenger and Instagram ----------------------------------------------------------------


def _read_messaging_entry(batch: _Batch, entry: dict[str, Any], where: str, channel: str) -> None:
    for index, raw in enumerate(_list(entry.get("messaging"))):
        event = batch.read(MessagingEvent, raw, f"{where}.messaging[{index}]")
        if event is None:
            continue
        at = event.timestamp / 1000 if event.timestamp is not None else None
        if event.delivery and event.delivery.mids:
            delivered_at = event.delivery.watermark / 1000 if event.delivery.watermark else at
            for mid in event.delivery.mids:
                batch.statuses.append(StatusUpdate(channel, mid, "delivered", at=_iso(delivered_at)))
        if event.read and event.read.mid:
            batch.statuses.append(StatusUpdate(channel, event.read.mid, "read", at=_iso(at)))
        if event.message is None and event.postback is None:
            continue  # delivery, read, reaction, referral, optin...: nothing a customer wrote
        if not event.sender.id:
            batch.skip(f"{where}.messaging[{index}]", "sender has no id")
            continue
        message = _messaging_message(event, event.sender.id, channel, at)
        if message is not None:
            batch.messages.append(message)


def _messaging_message(event: MessagingEvent, sender: str, channel: str, at: float | None) -> InboundMessage | None:
    business_key = "page_id" if channel == MESSENGER else "instagram_account_id"
    metadata: dict[str, Any] = {}
    if event.recipient and event.recipient.id:
        metadata[business_key] = event.recipient.id
    if event.message is not None:
        message = event.message
        if message.is_echo or message.is_deleted:
            return None  # our own outbound message, or the customer unsending one
        provider_message_id = message.mid
        text = message.text or ""
        attachments = tuple(
            Attachment(content_type=_ATTACHMENT_TYPES.get(a.type, "application/octet-stream"), url=a.payload.url)
            for a in message.attachments
            if a.payload and a.payload.url
        )
        if message.attachments:
            metadata["attachment_types"] = [a.type for a in message.attachments]
        if message.quick_reply and message.quick_reply.payload is not None:
            metadata["quick_reply_payload"] = message.quick_reply.payload
        if message.reply_to and message.reply_to.mid:
            metadata["in_reply_to"] = message.reply_to.mid
        if not text and not attachments:
            metadata["unsupported"] = True
            text = f"[{channel} message without text]"
    elif event.postback is not None:
        postback = event.postback
        # A postback has a mid on current API versions; older ones are keyed by who tapped when.
        provider_message_id = postback.mid or f"postback:{sender}:{event.timestamp}"
        text = postback.title or postback.payload or ""
        attachments = ()
        metadata["postback"] = True
        if postback.payload is not None:
            metadata["postback_payload"] = postback.payload
    else:
        return None
    return InboundMessage(
        channel=channel,
        provider=PROVIDER,
        provider_message_id=provider_message_id,
        identity=Identity(channel, sender),
        text=text,
        attachments=attachments,
        sent_at=_iso(at),
        metadata=metadata,
    )


# --- the adapter ----------------------------------------------------------------------------


class MetaAdapter:
    """``GET``/``POST /webhooks/meta``: the handshake, and WhatsApp, Messenger and Instagram events."""

    name = "meta"
    path = "/webhooks/meta"
    methods = ("GET", "POST")
    content_types = ("application/json",)

    def handle(self, request: WebhookRequest) -> Webhook:
        if request.method.upper() == "GET":
            return Webhook(immediate=verify_subscription(request.query, get_secret(META_VERIFY_TOKEN)))
        return parse(
            request.body,
            request.header(SIGNATURE_HEADER),
            get_secret(META_APP_SECRET),
            get_settings().max_body_bytes,
        )

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        # Meta wants a 200 within seconds and reads nothing from it.
        return Reply(200, "", "text/plain")


ADAPTER = MetaAdapter()
