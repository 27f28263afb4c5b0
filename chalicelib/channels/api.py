"""Our own signed channel for apps, in-store (POS) systems and voice assistants.

``POST /webhooks/api`` with a JSON body, signed over ``"<timestamp>.<raw body>"``::

    X-Switchboard-Timestamp: 1795428000                 # unix seconds; within 5 minutes of ours
    X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of "1795428000.<body>" under API_CHANNEL_SECRET>

    {
      "source": "pos-store-12",          # required: the app, store or assistant; scopes the ids below
      "kind": "in_store",                # "app" (default), "in_store" or "voice_assistant": the channel
      "message_id": "tx-000193",         # required: unique per source; retries reuse it
      "user": {"id": "u-42",             # required: the person, as the source knows them
               "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
      "text": "Customer asks about a refund",   # required unless attachments are given
      "attachments": [{"content_type": "image/jpeg", "url": "https://...", "size": 48213, "filename": "r.jpg"}],
      "language": "en", "sent_at": "2026-11-23T10:00:00Z", "metadata": {"till": 4}
    }

The sender is trusted to say who the person is (it signs the request), so a
given e-mail or phone links this person to the customer already known by it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.channels.base import Reply, Webhook, WebhookRequest, receipt
from chalicelib.channels.fields import Email, Id, Language, MessageText, Metadata, Name, Timestamp, load_json_object
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, Identity, InboundMessage, StoredMessage
from chalicelib.errors import PayloadTooLarge, Unauthenticated
from chalicelib.settings import API_CHANNEL_SECRET, get_secret, get_settings

TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"
TOLERANCE_SECONDS = 300


class ApiUser(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    id: Id
    name: Name | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(min_length=3, max_length=32)] | None = None


class ApiAttachment(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    content_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=100)]
    url: Annotated[str, StringConstraints(pattern=r"^https://", max_length=2000)]
    size: Annotated[int, Field(ge=0)] | None = None
    filename: Annotated[str, StringConstraints(max_length=255)] | None = None


class ApiMessage(BaseModel):
    """The API channel's body."""

    model_config = ConfigDict(strict=True, extra="forbid")

    source: Id
    kind: Literal["app", "in_store", "voice_assistant"] = "app"
    message_id: Id
    user: ApiUser
    text: MessageText | None = None
    attachments: Annotated[list[ApiAttachment], Field(max_length=10)] = Field(default_factory=list)
    language: Language | None = None
    sent_at: Timestamp | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _says_something(self) -> ApiMessage:
        if self.text is None and not self.attachments:
            raise ValueError("a message needs text or attachments")
        return self


def verify(request: WebhookRequest, secret: str, now: float) -> None:
    """Raise ``Unauthenticated`` unless the timestamped signature is right and recent."""
    stamp = request.header(TIMESTAMP_HEADER)
    signature = request.header(SIGNATURE_HEADER)
    if not stamp or not signature:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are both required")
    if not stamp.isdigit():
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} seconds from now (replay?)")
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise Unauthenticated(f"{SIGNATURE_HEADER} does not match the timestamp and body")


class ApiChannelAdapter:
    """``POST /webhooks/api``."""

    name = "api"
    path = "/webhooks/api"
    methods = ("POST",)
    content_types = ("application/json",)

    def handle(self, request: WebhookRequest) -> Webhook:
        limit = get_settings().max_body_bytes
        if len(request.body) > limit:
            raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {limit}")
        verify(request, get_secret(API_CHANNEL_SECRET), time.time())
        payload = load_json_object(request.body, ApiMessage)
        claimed: list[Identity] = []
        if payload.user.email:
            claimed.append(identity.email(payload.user.email))
        if payload.user.phone:
            claimed.append(identity.phone(payload.user.phone))
        message = InboundMessage(
            channel=payload.kind,
            provider="api",
            provider_message_id=f"{payload.source}/{payload.message_id}",
            identity=Identity("api", f"{payload.source}/{payload.user.id}"),
            also_known_as=tuple(claimed),
            text=payload.text or "",
            attachments=tuple(Attachment(a.content_type, a.url, a.size, a.filename) for a in payload.attachments),
            sent_at=payload.sent_at,
            name=payload.user.name,
            language=payload.language,
            metadata={"source": payload.source, **payload.metadata},
        )
        return Webhook(messages=(message,))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return receipt(stored)


ADAPTER = ApiChannelAdapter()
