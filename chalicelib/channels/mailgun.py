"""Inbound e-mail through Mailgun: a route's ``forward("https://.../webhooks/email/mailgun")`` action.

Mailgun posts the e-mail it parsed as form fields,
``application/x-www-form-urlencoded``, or ``multipart/form-data`` when the
e-mail has attachments (``attachment-1``, ``attachment-2``... as files).
Fields used: ``timestamp``, ``token``, ``signature`` (verification);
``from`` (else ``sender``, the SMTP envelope), ``recipient``, ``subject``,
``stripped-text`` (else ``body-plain``, stripped by ``mime``),
``message-headers`` (a JSON list of ``[name, value]``), and the e-mail's own
headers (``Message-Id``, ``In-Reply-To``, ``References``, ``Date``...),
read from their fields or else from ``message-headers``.

Verification: ``signature`` must be the hex HMAC-SHA256 of
``timestamp + token`` under the ``MAILGUN_SIGNING_KEY`` secret (Mailgun's
HTTP webhook signing key), and ``timestamp`` within five minutes of now
either way. A token is good once: the signature covers ``timestamp + token``
only, not the e-mail, so a captured forward could otherwise carry other
e-mails for five minutes. The adapter hands the token, with a digest of the
body, to the platform in ``Webhook.context["replay_token"]`` (a
``OneTimeToken``); the platform claims it with one conditional write before
storing anything (``chalicelib.store.replay``).

Answers: 200 once stored; 401 on any signature problem; 406, which tells
Mailgun to stop retrying, only for a genuine delivery we can never accept
(no sender address at all). Everything else that fails is retried by
Mailgun for eight hours.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.channels import auto_reply, mime
from chalicelib.channels.base import OneTimeToken, Reply, Webhook, WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.conversations.models import Attachment, InboundMessage, StoredMessage
from chalicelib.errors import InvalidJson, InvalidPayload, PayloadTooLarge, SwitchboardError, Unauthenticated
from chalicelib.settings import MAILGUN_SIGNING_KEY, get_secret

CHANNEL = "email"
PROVIDER = "mailgun"
REPLAY_NAMESPACE = "mailgun"
# Mailgun forwards attachments inline in the POST. API Gateway hands Lambda a binary body base64-encoded,
# and a Lambda request may be 6 MB, so about 4.5 MB of body is all that can arrive; 4 MiB is our limit.
MAX_BODY_BYTES = 4 * 1024 * 1024
TIMESTAMP_TOLERANCE_SECONDS = 300
_REPLAY_MARGIN_SECONDS = 60  # remembered a little beyond the window, for clocks that disagree
MAX_FORM_FIELDS = 1000
MAX_TOKEN_LENGTH = 256


class NotAcceptable(SwitchboardError):
    """A genuine delivery we will never accept; Mailgun stops retrying on 406."""

    status = 406
    code = "not_acceptable"


@dataclass(frozen=True)
class FormFile:
    """An uploaded file in a multipart form: what it is, not its bytes."""

    field: str
    content_type: str
    filename: str | None
    size: int


@dataclass(frozen=True)
class Form:
    """A posted form: text fields by lower-cased name (first occurrence wins) and files in order."""

    fields: dict[str, str] = field(default_factory=dict)
    files: tuple[FormFile, ...] = ()

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())


def parse(body: bytes, content_type: str | None, signing_key: str, now: float) -> Webhook:
    """Verify and parse one Mailgun forward: its message, and its token for the platform to accept only once."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    form = read_form(body, content_type)
    token, timestamp = verify(form, signing_key, now)
    # Remembered until the signature could no longer pass the timestamp check anyway.
    expires = timestamp + TIMESTAMP_TOLERANCE_SECONDS + _REPLAY_MARGIN_SECONDS
    claim = OneTimeToken(REPLAY_NAMESPACE, token, expires, hashlib.sha256(body).hexdigest())
    return Webhook(messages=(to_message(form),), context={"replay_token": claim})


# --- the form -------------------------------------------------------------------------------


def read_form(body: bytes, content_type: str | None) -> Form:
    """Form fields and files of an urlencoded or multipart/form-data body."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return _multipart(body, content_type or "")
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        raise InvalidPayload(f"more than {MAX_FORM_FIELDS} form fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name.lower(), value)
    return Form(fields)


def _multipart(body: bytes, content_type: str) -> Form:
    # The stdlib MIME parser reads multipart/form-data once it sees the Content-Type with its boundary.
    header = b"Content-Type: " + content_type.encode("latin-1", errors="replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    # A part nesting deeper than mime.MAX_DEPTH (a forwarded .eml inside a forwarded .eml...) is cut before the
    # stdlib parser recurses into a RecursionError; the form's own fields sit at the top and are all kept.
    raw = mime.limit_nesting(header + body).raw
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not message.is_multipart():
        raise InvalidPayload("multipart/form-data body without parts (is the boundary right?)")
    fields: dict[str, str] = {}
    files: list[FormFile] = []
    parts = message.get_payload()
    for part in parts[:MAX_FORM_FIELDS] if isinstance(parts, list) else ():
        if not isinstance(part, Message) or part.is_multipart():
            continue
        name = _param(part, "name")
        if not name:
            continue
        payload = _payload(part)
        filename = _param(part, "filename")
        if filename is not None:
            files.append(FormFile(name, _content_type(part), filename or None, len(payload)))
        else:
            fields.setdefault(name.lower(), payload.decode(_charset(part), errors="replace"))
    return Form(fields, tuple(files))


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name, header="content-disposition")
    except mime.MALFORMED:
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return str(value)


def _payload(part: Message) -> bytes:
    try:
        payload: Any = part.get_payload(decode=True)
    except mime.MALFORMED:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type() if part.get("Content-Type") else "application/octet-stream"
    except mime.MALFORMED:
        return "application/octet-stream"


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() if part.get("Content-Type") else None
    except mime.MALFORMED:
        charset = None
    # Form fields carry no charset of their own; Mailgun sends UTF-8.
    if charset:
        try:
            "".encode(charset)
            return charset
        except LookupError:
            pass
    return "utf-8"


# --- verification ---------------------------------------------------------------------------


def sign(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of ``timestamp + token``."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify(form: Form, signing_key: str, now: float) -> tuple[str, int]:
    """Raise ``Unauthenticated`` unless the form is Mailgun's, signed within the tolerance; the token and time."""
    timestamp, token, signature = form.get("timestamp"), form.get("token"), form.get("signature")
    if not timestamp or not token or not signature:
        raise Unauthenticated("missing timestamp, token or signature")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Unauthenticated("timestamp must be seconds since the epoch")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("token is too long")
    expected = sign(signing_key, timestamp, token)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", errors="replace")):
        raise Unauthenticated("signature does not match timestamp and token")
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        raise Unauthenticated("stale timestamp: more than five minutes from now")
    return token, int(timestamp)


# --- the message ----------------------------------------------------------------------------


def to_message(form: Form) -> InboundMessage:
    """The inbound message a verified form describes; ``NotAcceptable`` when it names no sender."""
    headers = _message_headers(form.get("message-headers"))

    def header(name: str) -> str | None:
        return form.get(name) or headers.get(name.lower())

    sender, name = mime.address(form.get("from") or header("From") or "")
    if sender is None:  # no usable From: the SMTP envelope's MAIL FROM is all we have
        sender = mime.address(form.get("sender") or "")[0]
    if sender is None:
        raise NotAcceptable("the e-mail has no sender address")
    thread = mime.thread(header("Message-Id"), header("In-Reply-To"), header("References"))
    body_plain = form.get("body-plain") or mime.html_to_text(form.get("body-html") or "")
    stripped = (form.get("stripped-text") or "").strip()
    text = stripped or mime.strip_quoted(body_plain)
    metadata: dict[str, Any] = {"spam": (header("X-Mailgun-Sflag") or "").strip().lower() == "yes"}
    automatic = auto_reply.reason(header)
    if automatic:
        metadata["auto_submitted"] = automatic
    recipient = form.get("recipient")
    if recipient:
        metadata["recipient"] = recipient.strip().casefold()
    # Without a Message-Id, what the e-mail says is its identity: Mailgun's retries carry the same fields.
    said = "\n".join([sender.value, header("Date") or "", form.get("subject") or "", body_plain])
    provider_id = thread.message_id or "sha256:" + hashlib.sha256(said.encode("utf-8", errors="replace")).hexdigest()
    return InboundMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        provider_message_id=provider_id,
        identity=sender,
        text=text,
        attachments=tuple(
            Attachment(f.content_type, size=f.size, filename=f.filename)
            for f in form.files
            if f.field.lower().startswith("attachment")
        ),
        sent_at=mime.sent_at(header("Date")),
        name=name,
        subject=" ".join((form.get("subject") or header("Subject") or "").split()) or None,
        thread=thread,
        metadata=metadata,
        extra_dedupe_keys=mime.message_id_key(thread.message_id),
    )


def _message_headers(raw: str | None) -> dict[str, str]:
    try:
        pairs = load_json(raw) if raw else []
    except InvalidJson:
        return {}
    headers: dict[str, str] = {}
    for pair in pairs if isinstance(pairs, list) else ():
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
            headers.setdefault(pair[0].lower(), pair[1])
    return headers


# --- the adapter ----------------------------------------------------------------------------


class MailgunAdapter:
    """``POST /webhooks/email/mailgun``: a Mailgun route's ``forward()``."""

    name = "email_mailgun"
    path = "/webhooks/email/mailgun"
    methods = ("POST",)
    content_types = ("application/x-www-form-urlencoded", "multipart/form-data")

    def handle(self, request: WebhookRequest) -> Webhook:
        return parse(request.body, request.header("Content-Type"), get_secret(MAILGUN_SIGNING_KEY), time.time())

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return Reply(
            200,
            {
                "status": "duplicate" if all(s.duplicate for s in stored) else "accepted",
                "message_ids": [s.message_id for s in stored],
            },
        )


ADAPTER = MailgunAdapter()
