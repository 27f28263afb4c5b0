"""Routing events: small facts the router consumes from the FIFO queue.

Each event knows its message group (work on one conversation or one agent is
ordered) and a deduplication id that is the same when a producer retries, so
SQS drops the repeat and the router never sees it twice within five minutes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class RoutingEvent:
    kind: ClassVar[str] = ""

    @property
    def group_id(self) -> str:
        raise NotImplementedError

    @property
    def dedupe_id(self) -> str:
        raise NotImplementedError

    def to_body(self) -> str:
        return json.dumps({"type": self.kind, **asdict(self)}, sort_keys=True)


@dataclass(frozen=True)
class ConversationMessage(RoutingEvent):
    """A customer wrote in this conversation: queue it for an agent, or tell its agent."""

    kind: ClassVar[str] = "ConversationMessage"
    conversation_id: str
    customer_id: str
    channel: str
    message_id: str
    received_at: str
    # What the routing rules look at; the queue is encrypted at rest, and nothing of it is logged.
    text: str = ""
    language: str | None = None
    subject: str | None = None  # an e-mail's; the rules read it with the text (``ContactFacts.of``)
    choice: str | None = None  # the id of the button tapped (WhatsApp's reply buttons): self-service reads it
    attachments: int = 0  # how many files came with it: the agent's console reads them (signed links) from the API
    auto_submitted: str | None = None  # sent by a machine on its own (``channels.auto_reply``): why; never routed

    @property
    def group_id(self) -> str:
        return self.conversation_id

    @property
    def dedupe_id(self) -> str:
        return self.message_id


@dataclass(frozen=True)
class ContactRequeued(RoutingEvent):
    """An offer was declined or expired: offer the contact to the next agent."""

    kind: ClassVar[str] = "ContactRequeued"
    contact_id: str
    offer_id: str

    @property
    def group_id(self) -> str:
        return self.contact_id

    @property
    def dedupe_id(self) -> str:
        return "requeued-" + self.offer_id


@dataclass(frozen=True)
class AgentFreed(RoutingEvent):
    """An agent has room again (closed, declined, became Available): give them the best waiting contact."""

    kind: ClassVar[str] = "AgentFreed"
    agent_id: str
    cause: str
    # The agent as the publisher saved them (``Agent.as_dict``), when it did: the first plan takes this copy
    # instead of reading them. A copy gone stale costs the offer's conditioned save a conflict and a fresh read;
    # whatever gives them room later publishes its own AgentFreed, after this one in their message group.
    agent: dict[str, Any] | None = None

    @property
    def group_id(self) -> str:
        return "agent-" + self.agent_id

    @property
    def dedupe_id(self) -> str:
        return hashlib.sha256(f"{self.agent_id}|{self.cause}".encode()).hexdigest()


@dataclass(frozen=True)
class OfferTimeout(RoutingEvent):
    """A timer: the offer must have been answered by ``due_at``."""

    kind: ClassVar[str] = "OfferTimeout"
    contact_id: str
    offer_id: str
    due_at: str


@dataclass(frozen=True)
class EscalationDue(RoutingEvent):
    """A timer: escalation step ``step`` of the contact's rule is due at ``due_at``."""

    kind: ClassVar[str] = "EscalationDue"
    contact_id: str
    step: int
    due_at: str


@dataclass(frozen=True)
class ReconnectGraceExpired(RoutingEvent):
    """A timer: the agent's last connection closed at ``disconnected_at``; unless they reconnected by
    ``due_at``, they go Offline and their open offers move on."""

    kind: ClassVar[str] = "ReconnectGraceExpired"
    agent_id: str
    disconnected_at: str
    due_at: str


@dataclass(frozen=True)
class CallerLeft(RoutingEvent):
    """The caller of a voice contact hung up (Twilio's call status ``completed``, ``canceled``... for the customer's
    leg, or ``QueueResult=hangup``): if the contact still waits, it is abandoned. In the conversation's message
    group, so it is handled after the call's own ``ConversationMessage``."""

    kind: ClassVar[str] = "CallerLeft"
    conversation_id: str
    call_sid: str
    # The caller was never put through to an agent (no bridge yet): an accepted contact is abandoned too, the
    # accept taken back, rather than left for a wrap-up of a call nobody had.
    before_agent: bool = False

    @property
    def group_id(self) -> str:
        return self.conversation_id

    @property
    def dedupe_id(self) -> str:
        return "caller-left-" + self.call_sid


@dataclass(frozen=True)
class AgentUnreachable(RoutingEvent):
    """The call to the agent who accepted a voice contact was not answered (no-answer, busy, failed, canceled):
    the contact moves on as an expired offer does."""

    kind: ClassVar[str] = "AgentUnreachable"
    conversation_id: str
    agent_id: str
    call_sid: str

    @property
    def group_id(self) -> str:
        return self.conversation_id

    @property
    def dedupe_id(self) -> str:
        return "agent-unreachable-" + self.call_sid


@dataclass(frozen=True)
class AgentLegDue(RoutingEvent):
    """A timer: the agent who accepted a voice contact at ``accepted_at`` must have joined its conference by
    ``due_at`` (the offer timeout and a margin); if not (their leg's status callback lost, a softphone that never
    dialled in), the contact moves on as for an unanswered leg (``voice.lifecycle.on_timer``)."""

    kind: ClassVar[str] = "AgentLegDue"
    conversation_id: str
    agent_id: str
    accepted_at: str
    due_at: str


@dataclass(frozen=True)
class CallbackDue(RoutingEvent):
    """A timer: attempt ``attempt`` of calling back the customer of a voice contact is due at ``due_at`` (the one
    before was not answered). Handled by ``voice.callback``, not the router: it places a call, routes nothing."""

    kind: ClassVar[str] = "CallbackDue"
    conversation_id: str
    attempt: int
    due_at: str


@dataclass(frozen=True)
class SelfServiceCloseDue(RoutingEvent):
    """A timer: the self-service bot answered the conversation's message ``question_id``; unless the customer
    replied by ``due_at`` (routing.yaml's ``self_service.close_after`` later), the conversation closes unconfirmed.
    Handled by ``selfservice.on_close_due``, not the router."""

    kind: ClassVar[str] = "SelfServiceCloseDue"
    conversation_id: str
    question_id: str
    due_at: str


@dataclass(frozen=True)
class AgentLeftCall(RoutingEvent):
    """The agent's leg left a bridged call the caller is still on (dropped, or the agent's phone hung up): the caller
    waits on hold in the conference, and the contact goes back to the head of its queue."""

    kind: ClassVar[str] = "AgentLeftCall"
    conversation_id: str
    agent_id: str
    call_sid: str

    @property
    def group_id(self) -> str:
        return self.conversation_id

    @property
    def dedupe_id(self) -> str:
        return "agent-left-" + self.call_sid


_KINDS: dict[str, type[RoutingEvent]] = {
    cls.kind: cls
    for cls in (
        ConversationMessage,
        ContactRequeued,
        AgentFreed,
        OfferTimeout,
        EscalationDue,
        ReconnectGraceExpired,
        CallerLeft,
        AgentUnreachable,
        AgentLegDue,
        CallbackDue,
        SelfServiceCloseDue,
        AgentLeftCall,
    )
}


class UnknownEvent(ValueError):
    """A queue message that is not a routing event; retrying will not help."""


def from_body(body: str) -> RoutingEvent:
    """Parse a queue message body back into its event."""
    try:
        document: dict[str, Any] = json.loads(body)
        cls = _KINDS[document.pop("type")]
        return cls(**document)
    except (ValueError, KeyError, TypeError) as exc:
        raise UnknownEvent(f"not a routing event: {exc}") from None


def message_payload(event: ConversationMessage) -> dict[str, Any]:
    """What an agent's console is pushed when their customer writes: by the router for an assigned contact, and by
    the webhook itself when it finds the contact assigned (``inbox.receive``)."""
    return (
        {
            "type": "message",
            "contact_id": event.conversation_id,  # a contact's id is its conversation's
            "message_id": event.message_id,
            "channel": event.channel,
            "text": event.text,
            "received_at": event.received_at,
        }
        | ({"attachments": event.attachments} if event.attachments else {})
        | ({"metadata": {"auto_submitted": event.auto_submitted}} if event.auto_submitted else {})
    )
