"""Telegram: a bot's webhook (Bot API ``setWebhook``).

``POST /webhooks/telegram`` with one JSON ``Update`` per request. Telegram
signs nothing; instead ``setWebhook`` is given a ``secret_token`` and every
request carries it back in ``X-Telegram-Bot-Api-Secret-Token``, which must
equal the ``TELEGRAM_SECRET_TOKEN`` setting.

What we read from an ``Update``:

* ``message`` and ``edited_message``: the sender (``from``) is the customer,
  ``Identity("telegram", str(from.id))``; text is ``text`` or ``caption``.
  An edit arrives as a new update (new ``update_id``), so it is stored as a
  new message with ``metadata["edited"] = True``.
* ``callback_query``: a tap on an inline keyboard button; its ``data`` is the
  text. The webhook's answer calls ``answerCallbackQuery`` for it (Telegram runs
  a method named in a webhook's reply), which stops the button's progress bar.
* Everything else (channel posts, inline queries, polls, chat member
  changes, messages from bots, service messages such as "joined the group")
  is answered 200 and stored nowhere.

Decisions worth knowing:

* ``provider_message_id`` is the ``update_id``: Telegram redelivers the same
  update with the same id, so retries are stored once. It is unique per bot;
  one deployment serves one bot.
* Files are references, ``telegram-file:<file_id>``: the bytes take
  ``getFile`` with the bot token. A photo is the largest of its sizes, and as
  Telegram re-encodes photos, ``image/jpeg``.
* A shared contact links the customer to that phone number (``also_known_as``)
  only when it is their own (``contact.user_id == from.id``); anybody else's
  number stays in the text and ``metadata["contact"]``.
* ``metadata`` always carries ``telegram_chat_id`` (where a reply goes; in a
  group it is not the sender) and ``telegram_message_id``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from chalicelib import clock
from chalicelib.channels.base import Reply, Webhook, WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, Identity, InboundMessage, StoredMessage
from chalicelib.errors import InvalidPayload, PayloadTooLarge, SwitchboardError, Unauthenticated
from chalicelib.settings import TELEGRAM_SECRET_TOKEN, get_secret, get_settings

CHANNEL = "telegram"
PROVIDER = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FILE_REFERENCE = "telegram-file:"  # + the Bot API file_id

# Message contents we store as a placeholder: the customer wrote something we do not render.
_UNSUPPORTED_CONTENT = ("poll", "dice", "game", "story", "invoice", "paid_media", "giveaway", "checklist")


class _Payload(BaseModel):
    """Telegram adds fields with every Bot API version: read the ones we use, ignore the rest."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class TelegramUser(_Payload):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    @property
    def full_name(self) -> str | None:
        return " ".join(part for part in (self.first_name, self.last_name) if part).strip() or None


class TelegramChat(_Payload):
    id: int
    type: str | None = None


class TelegramFile(_Payload):
    """PhotoSize, Document, Audio, Voice, Video, VideoNote, Animation and Sticker share these fields."""

    file_id: str
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    is_animated: bool = False
    is_video: bool = False


class TelegramContact(_Payload):
    phone_number: str
    first_name: str = ""
    last_name: str | None = None
    user_id: int | None = None


class TelegramLocation(_Payload):
    latitude: FiniteFloat
    longitude: FiniteFloat


class TelegramVenue(_Payload):
    location: TelegramLocation
    title: str = ""
    address: str = ""


class TelegramMessage(_Payload):
    message_id: int
    sender: TelegramUser | None = Field(default=None, alias="from")  # absent in channels
    chat: TelegramChat
    date: int
    edit_date: int | None = None
    text: str | None = None
    caption: str | None = None
    photo: list[TelegramFile] = []
    document: TelegramFile | None = None
    audio: TelegramFile | None = None
    voice: TelegramFile | None = None
    video: TelegramFile | None = None
    video_note: TelegramFile | None = None
    animation: TelegramFile | None = None
    sticker: TelegramFile | None = None
    contact: TelegramContact | None = None
    location: TelegramLocation | None = None
    venue: TelegramVenue | None = None


class TelegramMessageRef(_Payload):
    """The message a callback's button was on; may be inaccessible (then only these fields exist)."""

    message_id: int
    chat: TelegramChat


class TelegramCallbackQuery(_Payload):
    id: str
    sender: TelegramUser = Field(alias="from")
    message: TelegramMessageRef | None = None
    data: str | None = None  # absent for game buttons


def verify_secret(secret: str, header_value: str | None) -> None:
    """Raise ``Unauthenticated`` unless the header carries the secret token (constant-time compare)."""
    if not header_value:
        raise Unauthenticated(f"missing {SECRET_HEADER} header")
    if not hmac.compare_digest(header_value.encode(), secret.encode()):
        raise Unauthenticated(f"{SECRET_HEADER} does not match")


def parse(raw_body: bytes, secret_header: str | None, secret: str, max_body_bytes: int) -> Webhook:
    """Verify and read one ``Update``; an update we do not handle gives a ``Webhook`` with no messages."""
    if len(raw_body) > max_body_bytes:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {max_body_bytes}")
    verify_secret(secret, secret_header)
    document = load_json(raw_body)
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object (a Telegram Update)")
    update_id = document.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise InvalidPayload("update_id must be an integer", [{"field": "update_id", "problem": "required integer"}])
    try:
        message = _read_update(update_id, document)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None
    context: dict[str, Any] = {"update_id": update_id}
    if isinstance(document.get("callback_query"), dict):  # validated by _read_update: its id is a string
        context["callback_query_id"] = document["callback_query"]["id"]
    return Webhook(messages=(message,) if message else (), context=context)


def _read_update(update_id: int, document: dict[str, Any]) -> InboundMessage | None:
    if isinstance(document.get("message"), dict):
        return _message(update_id, document["message"], edited=False)
    if isinstance(document.get("edited_message"), dict):
        return _message(update_id, document["edited_message"], edited=True)
    if isinstance(document.get("callback_query"), dict):
        return _callback(update_id, TelegramCallbackQuery.model_validate(document["callback_query"]))
    return None


def _message(update_id: int, raw: dict[str, Any], edited: bool) -> InboundMessage | None:
    message = TelegramMessage.model_validate(raw)
    sender = message.sender
    if sender is None or sender.is_bot:
        return None
    metadata: dict[str, Any] = {
        "telegram_chat_id": message.chat.id,
        "telegram_message_id": message.message_id,
    }
    if message.chat.type:
        metadata["chat_type"] = message.chat.type
    if sender.username:
        metadata["username"] = sender.username
    if edited:
        metadata["edited"] = True
    text = message.text or message.caption or ""
    attachments = _attachments(message)
    also_known_as: tuple[Identity, ...] = ()
    if message.contact:
        contact = message.contact
        shared = " ".join(p for p in (contact.first_name, contact.last_name, contact.phone_number) if p)
        text = text or f"Shared a contact: {shared}"
        metadata["contact"] = contact.model_dump(exclude_none=True)
        if contact.user_id == sender.id:  # their own number, vouched for by Telegram
            also_known_as = _own_phone(contact.phone_number)
    place = message.venue.location if message.venue else message.location
    if place:
        metadata["location"] = {"latitude": place.latitude, "longitude": place.longitude}
        label = f"{message.venue.title}, {message.venue.address} " if message.venue else ""
        text = text or f"Location: {label}({place.latitude}, {place.longitude})"
    if not text and not attachments:
        unsupported = next((key for key in _UNSUPPORTED_CONTENT if key in raw), None)
        if unsupported is None:
            return None  # a service message: someone joined, a title changed, a message was pinned...
        metadata["unsupported"] = True
        text = f"[telegram {unsupported} message]"
    return InboundMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        provider_message_id=str(update_id),
        identity=Identity(CHANNEL, str(sender.id)),
        also_known_as=also_known_as,
        text=text,
        attachments=attachments,
        sent_at=_iso(message.edit_date if edited and message.edit_date else message.date),
        name=sender.full_name,
        language=sender.language_code,
        metadata=metadata,
    )


def _attachments(message: TelegramMessage) -> tuple[Attachment, ...]:
    files: list[tuple[TelegramFile, str]] = []
    if message.photo:
        largest = max(message.photo, key=lambda size: ((size.width or 0) * (size.height or 0), size.file_size or 0))
        files.append((largest, "image/jpeg"))
    # An animation also comes as a document, for old clients: take it once.
    document = message.document if message.animation is None else None
    for item, default in (
        (document, "application/octet-stream"),
        (message.audio, "audio/mpeg"),
        (message.voice, "audio/ogg"),
        (message.video, "video/mp4"),
        (message.video_note, "video/mp4"),
        (message.animation, "video/mp4"),
    ):
        if item is not None:
            files.append((item, item.mime_type or default))
    if message.sticker is not None:
        sticker = message.sticker
        kind = "video/webm" if sticker.is_video else "application/x-tgsticker" if sticker.is_animated else "image/webp"
        files.append((sticker, kind))
    return tuple(
        Attachment(content_type=kind, url=FILE_REFERENCE + item.file_id, size=item.file_size, filename=item.file_name)
        for item, kind in files
    )


def _own_phone(raw: str) -> tuple[Identity, ...]:
    try:
        return (identity.phone(raw),)
    except SwitchboardError:
        return ()  # not a number we can normalise: keep it in the text, link nothing


def _callback(update_id: int, query: TelegramCallbackQuery) -> InboundMessage | None:
    if query.data is None or query.sender.is_bot:
        return None
    metadata: dict[str, Any] = {"callback_query_id": query.id, "callback_data": query.data}
    if query.message:
        metadata.update(telegram_chat_id=query.message.chat.id, telegram_message_id=query.message.message_id)
    if query.sender.username:
        metadata["username"] = query.sender.username
    return InboundMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        provider_message_id=str(update_id),
        identity=Identity(CHANNEL, str(query.sender.id)),
        text=query.data,
        name=query.sender.full_name,
        language=query.sender.language_code,
        metadata=metadata,
    )


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    try:
        return clock.to_iso(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


class TelegramAdapter:
    """``POST /webhooks/telegram``: one bot's updates."""

    name = "telegram"
    path = "/webhooks/telegram"
    methods = ("POST",)
    content_types = ("application/json",)

    def handle(self, request: WebhookRequest) -> Webhook:
        return parse(
            request.body,
            request.header(SECRET_HEADER),
            get_secret(TELEGRAM_SECRET_TOKEN),
            get_settings().max_body_bytes,
        )

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        """A 2xx is all Telegram needs, and a method named in the body would be executed: so the body names one
        only to answer a tapped button (``answerCallbackQuery``, whose progress bar spins on the customer's phone
        until it is answered), once the tap is stored. It costs no request of ours and carries no token; a retried
        tap is answered again (Telegram ignores a second answer)."""
        query_id = webhook.context.get("callback_query_id")
        if isinstance(query_id, str):
            return Reply(200, {"method": "answerCallbackQuery", "callback_query_id": query_id})
        return Reply(200, {})


ADAPTER = TelegramAdapter()
