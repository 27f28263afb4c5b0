"""The one inbound-message model every channel parses to, and what storing it produced."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Identity:
    """Who the sender is on one channel: a provider-scoped id (a web-chat visitor of one site, a phone...)."""

    channel: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.channel}#{self.value}"


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message as any channel delivers it, after verification and parsing."""

    channel: str
    provider_message_id: str
    identity: Identity
    text: str
    sent_at: str | None = None
    name: str | None = None
    email: str | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Unique per provider delivery (providers retry; we store once). Parsers scope the provider id."""
        return f"{self.channel}#{self.provider_message_id}"

    @property
    def message_id(self) -> str:
        """Our id for the stored message, derived from the provider's so retries map to the same id."""
        return "msg_" + hashlib.sha256(self.dedupe_key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StoredMessage:
    """The outcome of ingesting one inbound message."""

    message_id: str
    customer_id: str
    conversation_id: str
    received_at: str
    duplicate: bool
    new_conversation: bool
