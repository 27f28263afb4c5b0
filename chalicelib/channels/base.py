"""What every channel adapter is: verify a webhook on its raw bytes, parse it, say what to answer.

An adapter is one module per provider. It knows its provider's formats and
nothing of DynamoDB or routing: it turns a ``WebhookRequest`` into a
``Webhook`` (the messages and status updates it carries, or a handshake
answer), and, once those are stored, builds the ``Reply`` the provider
expects. Adding a channel is that module plus one line in ``registry.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.conversations.models import InboundMessage, StoredMessage


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request as it arrived: nothing parsed yet."""

    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive lookups
    query: Mapping[str, str]
    body: bytes
    # The URL the provider called, as the provider saw it: PUBLIC_BASE_URL + path (+ "?" + query string).
    # Twilio signs it; behind API Gateway the Lambda cannot always reconstruct it.
    public_url: str
    # Other forms that URL may have had, when the event carries its query only parsed (``webhook_url``).
    public_url_forms: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        if value is None:  # plain dicts in unit tests
            lowered = name.lower()
            value = next((v for k, v in self.headers.items() if k.lower() == lowered), None)
        return value


@dataclass(frozen=True)
class Reply:
    """What the provider gets back."""

    status: int = 200
    body: str | dict[str, Any] = ""
    content_type: str = "application/json"


@dataclass(frozen=True)
class StatusUpdate:
    """A provider telling us what became of a message we sent (or of a call)."""

    provider: str  # "twilio", "whatsapp", ...
    provider_message_id: str  # MessageSid, wamid, CallSid
    status: str  # normalised: queued, sent, delivered, read, failed (calls: ringing, in-progress, completed, ...)
    at: str | None = None
    error: str | None = None
    kind: str = "message"  # "message" or "call"


@dataclass(frozen=True)
class OneTimeToken:
    """A provider's single-use webhook token (Mailgun's), which the platform claims before storing anything.

    ``fingerprint`` (a digest of the request body) binds the claim to the request that made it: the same request,
    retried after a crash between claim and store, may complete; any other request under the token may not.
    """

    namespace: str
    token: str
    expires_epoch: int  # when the signature could no longer verify anyway: the claim is forgotten then
    fingerprint: str


@dataclass(frozen=True)
class Webhook:
    """A verified, parsed delivery: what to store, and anything the adapter must answer at once."""

    messages: Sequence[InboundMessage] = ()
    statuses: Sequence[StatusUpdate] = ()
    # Answer without storing anything (a verification handshake, an event we ignore): used when set.
    immediate: Reply | None = None
    # Provider-specific facts the adapter wants back in ``respond`` (e.g. the call it must hold).
    context: dict[str, Any] = field(default_factory=dict)


class ChannelAdapter(Protocol):
    """One provider endpoint."""

    # Plain class attributes satisfy these read-only members.
    @property
    def name(self) -> str:
        """Unique; also the Chalice view's name: ``twilio_messaging``."""
        ...

    @property
    def path(self) -> str:
        """``/webhooks/twilio/messaging``."""
        ...

    @property
    def methods(self) -> Sequence[str]:
        """``("POST",)`` or ``("GET", "POST")``."""
        ...

    @property
    def content_types(self) -> Sequence[str]:
        """Accepted request content types."""
        ...

    def handle(self, request: WebhookRequest) -> Webhook:
        """Verify (raise ``Unauthenticated``/``Forbidden``) then parse (raise ``InvalidPayload``...)."""
        ...

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        """The answer once everything in ``webhook`` is stored."""
        ...


def receipt(stored: Sequence[StoredMessage]) -> Reply:
    """The JSON answer of our own channels: what became of the one message they sent."""
    [result] = stored
    return Reply(
        200,
        {
            "status": "duplicate" if result.duplicate else "accepted",
            "message_id": result.message_id,
            "conversation_id": result.conversation_id,
            "customer_id": result.customer_id,
        },
    )
