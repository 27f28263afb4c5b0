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
      "metadata": {"page": "/orders"}   # optional: up to 20 string/number/boolean values
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from chalicelib.channels.signing import verify_sha256
from chalicelib.conversations.models import Identity, InboundMessage
from chalicelib.errors import InvalidJson, InvalidPayload, PayloadTooLarge

CHANNEL = "webchat"
SIGNATURE_HEADER = "X-Switchboard-Signature"

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WebchatPayload(BaseModel):
    """The web-chat webhook body; strict, so a number where text belongs is an error, not a coercion."""

    model_config = ConfigDict(strict=True, extra="forbid")

    site: Id
    visitor_id: Id
    message_id: Id
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    sent_at: str | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    language: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = None
    metadata: Annotated[dict[str, Any], Field(max_length=20)] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("is not an e-mail address")
        return value

    @field_validator("metadata")
    @classmethod
    def _flat_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if not isinstance(item, str | bool | int | float) or (isinstance(item, str) and len(item) > 500):
                raise ValueError(f"value of {key!r} must be a string (up to 500 characters), number or boolean")
        return value

    @field_validator("sent_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an ISO-8601 time such as 2026-11-23T10:00:00Z") from None
        return value


def parse(raw_body: bytes, headers: Mapping[str, str], secret: str, max_body_bytes: int) -> InboundMessage:
    """Verify and parse one web-chat webhook; raises a ``SwitchboardError`` naming what is wrong."""
    if len(raw_body) > max_body_bytes:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {max_body_bytes}")
    verify_sha256(secret, raw_body, SIGNATURE_HEADER, headers.get(SIGNATURE_HEADER))
    try:
        document = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object")
    try:
        payload = WebchatPayload.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None
    return InboundMessage(
        channel=CHANNEL,
        provider_message_id=f"{payload.site}/{payload.message_id}",
        identity=Identity(CHANNEL, f"{payload.site}/{payload.visitor_id}"),
        text=payload.text,
        sent_at=payload.sent_at,
        name=payload.name,
        email=payload.email.casefold() if payload.email else None,
        language=payload.language,
        metadata=dict(payload.metadata),
    )
