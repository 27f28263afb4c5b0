"""The one inbound-message model every channel parses to, and what storing it produced."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# Identity kinds. A phone number is one identity whether it writes by SMS, WhatsApp or calls.
PHONE = "phone"
EMAIL = "email"


@dataclass(frozen=True)
class Identity:
    """Who the sender is: a normalised phone (E.164), a case-folded e-mail, or a provider-scoped id.

    ``kind`` is ``phone``, ``email``, or the provider's own namespace (``webchat``, ``messenger``,
    ``instagram``, ``telegram``, ``api``). Build phones and e-mails with ``conversations.identity``.
    """

    kind: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind}#{self.value}"


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message; the provider keeps the bytes, we keep where they are."""

    content_type: str
    url: str | None = None
    size: int | None = None
    filename: str | None = None


@dataclass(frozen=True)
class EmailThread:
    """RFC 5322 threading headers of an e-mail, angle brackets kept (``<id@host>``)."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    @property
    def earlier(self) -> tuple[str, ...]:
        """Message-IDs this e-mail answers, nearest first."""
        ids = [self.in_reply_to, *reversed(self.references)]
        return tuple(dict.fromkeys(i for i in ids if i))


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message as any channel delivers it, after verification and parsing.

    ``channel`` is where the customer wrote (``webchat``, ``sms``, ``whatsapp``, ``voice``,
    ``messenger``, ``instagram``, ``telegram``, ``email``, ``api``); ``provider`` scopes
    ``provider_message_id`` (``twilio``, ``meta``, ``ses``...).
    """

    channel: str
    provider: str
    provider_message_id: str
    identity: Identity
    text: str = ""
    also_known_as: tuple[Identity, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    sent_at: str | None = None
    name: str | None = None
    language: str | None = None
    subject: str | None = None
    thread: EmailThread | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Further ids the same delivery is known by (an e-mail's Message-Id, SES's messageId): any match is a repeat.
    extra_dedupe_keys: tuple[str, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """Unique per provider delivery (providers retry; we store once)."""
        return f"{self.provider}#{self.provider_message_id}"

    @property
    def dedupe_keys(self) -> tuple[str, ...]:
        return (self.dedupe_key, *self.extra_dedupe_keys)

    @property
    def claim_key(self) -> str:
        """The one dedupe key a stored delivery is recorded under: the widest, which channels put last.

        Every delivery that shares any of ``dedupe_keys`` with another shares this one too: an e-mail's
        ``email-message-id#`` key comes from the mail itself, so every provider and every retry that carries the
        mail carries it (SES's ``ses-mail#`` likewise covers each SNS notification of one mail).
        """
        return self.dedupe_keys[-1]

    @property
    def identities(self) -> tuple[Identity, ...]:
        return (self.identity, *(i for i in self.also_known_as if i != self.identity))

    @property
    def message_id(self) -> str:
        """Our id for the stored message, derived from the provider's so retries map to the same id."""
        return "msg_" + hashlib.sha256(self.dedupe_key.encode()).hexdigest()[:32]

    @property
    def email(self) -> str | None:
        return next((i.value for i in self.identities if i.kind == EMAIL), None)

    @property
    def phone(self) -> str | None:
        return next((i.value for i in self.identities if i.kind == PHONE), None)


@dataclass(frozen=True)
class StoredMessage:
    """The outcome of ingesting one inbound message."""

    message_id: str
    customer_id: str
    conversation_id: str
    received_at: str
    duplicate: bool
    new_conversation: bool
