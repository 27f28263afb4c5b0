"""Web chat: our own widget's webhook.

``POST /webhooks/webchat`` with a JSON body, signed with
``X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under
the ``WEBCHAT_SECRET`` setting. The body::

    {
      "site": "acme-shop",              # required: the business's site id
      "visitor_id": "v_2b9c1f",         # required: stable per browser
      "message_id": "m_0001",           # required: unique per site; retries reuse it
      "text": "Where is my order?",     # required: 1..4000 characters
      "sent_at": "2026-11-23T10:00:00Z",  # optional ISO-8601 time on the visitor's side
      "name": "Ada Lovelace",           # optional
      "email": "ada@example.com",       # optional
      "language": "en-GB",              # optional BCP 47 tag
      "metadata": {"page": "/orders"},  # optional: up to 20 string/number/boolean values
      "attachments": [                  # optional, up to 5: files the visitor sent (https, or the widget's S3)
        {"url": "https://...", "content_type": "image/png", "size": 5120, "filename": "receipt.png"}
      ]
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.channels.base import Reply, Webhook, WebhookRequest, receipt
from chalicelib.channels.fields import Email, Id, Language, MessageText, Metadata, Name, Timestamp, load_json_object
from chalicelib.channels.signing import verify_sha256
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, Identity, InboundMessage, StoredMessage
from chalicelib.errors import PayloadTooLarge
from chalicelib.settings import WEBCHAT_SECRET, get_secret, get_settings

CHANNEL = "webchat"
SIGNATURE_HEADER = "X-Switchboard-Signature"


class WebchatAttachment(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https|s3)://\S+$")]
    content_type: Annotated[str, StringConstraints(max_length=100, pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)] | None = None
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class WebchatPayload(BaseModel):
    """The web-chat webhook body; strict, so a number where text belongs is an error, not a coercion."""

    model_config = ConfigDict(strict=True, extra="forbid")

    site: Id
    visitor_id: Id
    message_id: Id
    text: MessageText
    sent_at: Timestamp | None = None
    name: Name | None = None
    email: Email | None = None
    language: Language | None = None
    metadata: Metadata = Field(default_factory=dict)
    attachments: list[WebchatAttachment] = Field(default_factory=list, max_length=5)


def parse(raw_body: bytes, headers: Mapping[str, str], secret: str, max_body_bytes: int) -> InboundMessage:
    """Verify and parse one web-chat webhook; raises a ``SwitchboardError`` naming what is wrong."""
    if len(raw_body) > max_body_bytes:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {max_body_bytes}")
    signature = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    verify_sha256(secret, raw_body, SIGNATURE_HEADER, signature)
    payload = load_json_object(raw_body, WebchatPayload)
    # The site's backend signs what the visitor told it, so their e-mail links them to the same customer.
    claimed = (identity.email(payload.email),) if payload.email else ()
    return InboundMessage(
        channel=CHANNEL,
        provider=CHANNEL,
        provider_message_id=f"{payload.site}/{payload.message_id}",
        identity=Identity(CHANNEL, f"{payload.site}/{payload.visitor_id}"),
        also_known_as=claimed,
        text=payload.text,
        sent_at=payload.sent_at,
        name=payload.name,
        language=payload.language,
        metadata=dict(payload.metadata),
        attachments=tuple(Attachment(a.content_type, a.url, a.size, a.filename) for a in payload.attachments),
    )


class WebchatAdapter:
    """``POST /webhooks/webchat``: our widget's signed JSON."""

    name = "webchat"
    path = "/webhooks/webchat"
    methods = ("POST",)
    content_types = ("application/json",)

    def handle(self, request: WebhookRequest) -> Webhook:
        message = parse(request.body, request.headers, get_secret(WEBCHAT_SECRET), get_settings().max_body_bytes)
        return Webhook(messages=(message,))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return receipt(stored)


ADAPTER = WebchatAdapter()
