"""What the router needs from the world, named in the domain's words: the ports of ``routing.router``.

The router is pure decision-making over these. Lambda wires in the DynamoDB, SQS and API Gateway adapters
(``routing.engine``); the simulator and the fast engine tests wire in the in-memory ones (``routing.memory``).
The same router code runs in all three places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.routing.config import RoutingConfig
from chalicelib.routing.config.values import SelfService
from chalicelib.routing.events import ConversationMessage, RoutingEvent
from chalicelib.routing.matching import named_key
from chalicelib.routing.model import Agent, Contact

Change = tuple[Any, Any]  # (as read, or None when new; as it should become)
Cursor = Any  # where a page of agents ended; opaque to the router


@dataclass(frozen=True)
class Assigned:
    """Saved with an accept: the conversation now has this agent. Written after the save's all-or-nothing write,
    idempotently: the router saves it again (alone) when an accept is retried and finds the contact assigned."""

    contact: Contact


@dataclass(frozen=True)
class Closed:
    """Saved with a close: the conversation is closed, the customer remembers who served them and no longer
    points at it as their open conversation. Written after the save's all-or-nothing write, idempotently: the
    router saves it again (alone) when a close is retried and finds the contact closed."""

    contact: Contact
    customer_id: str


@dataclass(frozen=True)
class CustomerMessage:
    """Saved with the contact marked as told: the system message, recorded pending-send."""

    message: dict[str, Any]


@dataclass(frozen=True)
class OfferDecision:
    """Saved with an offer: why this agent got this contact. ``chosen_for`` "contact": the agents considered
    for the contact; "agent": the waiting contacts a freed agent considered. ``ranked``: the first eligible
    candidates with their ordering keys, best first; ``skipped``: the first others with the reason; the totals
    count them all. Kept as the matcher gave them (cheap in a simulation); ``as_item`` names the keys."""

    contact_id: str
    offer_id: str
    agent_id: str
    made_at: str
    chosen_for: str
    policy: str
    key_names: tuple[str, ...]
    ranked: tuple[tuple[str, tuple[Any, ...]], ...]
    skipped: tuple[tuple[str, str], ...]
    ranked_total: int
    skipped_total: int

    def as_item(self) -> dict[str, Any]:
        """The decision as stored and shown: each ranked candidate with its rank and its key by name
        (``matching.named_key``), each skipped one with the reason."""
        return {
            "contact_id": self.contact_id,
            "offer_id": self.offer_id,
            "agent_id": self.agent_id,
            "made_at": self.made_at,
            "chosen_for": self.chosen_for,
            "policy": self.policy,
            "ranked": [
                {
                    "id": candidate,
                    "rank": place,
                    "key": {k: _plain(v) for k, v in named_key(self.key_names, key).items()},
                }
                for place, (candidate, key) in enumerate(self.ranked, start=1)
            ],
            "skipped": [{"id": candidate, "reason": reason} for candidate, reason in self.skipped],
            "ranked_total": self.ranked_total,
            "skipped_total": self.skipped_total,
        }


def _plain(value: Any) -> Any:
    """A key's value as a record can hold it (bool, int, str, a rounded float; anything else as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 6)
    return str(value)


@dataclass(frozen=True)
class Lifecycle:
    """Saved with a change of a contact: what happened to it, appended to its contact record (one per arrival,
    ``contact.arrived_at``), and the record's summary fields it sets (accepted_at, sla_met, wrap_up...)."""

    contact: Contact
    events: tuple[dict[str, Any], ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    # Set: written after the save's all-or-nothing write, at most once per record under this name (a retried
    # accept or close that finds its change made saves it again, alone: written only if that attempt died
    # before it). None: written in the save.
    once: str | None = None


Effect = Assigned | Closed | CustomerMessage | OfferDecision | Lifecycle


class RoutingStore(Protocol):
    """Agents, contacts and what routing reads of customers and queues. Every save is all-or-nothing and
    conditioned on the versions read: a lost race raises ``TransactionConflict``. ``Assigned``, ``Closed`` and a
    ``Lifecycle`` with ``once`` are written once that went through, and may be saved again alone (no contacts,
    no agents)."""

    def get_contact(self, contact_id: str) -> Contact | None: ...

    def get_agent(self, agent_id: str) -> Agent | None: ...

    def get_customer(self, customer_id: str) -> dict[str, Any] | None: ...

    def customer_of_conversation(self, contact: Contact) -> str: ...

    def pool(
        self, queue: str, skill: str | None = None, min_level: int = 0, after: Cursor | None = None
    ) -> tuple[list[Agent], Cursor | None]: ...

    def contacts_needing(self, queue: str, skills: Mapping[str, int]) -> list[Contact]: ...

    def waiting_contacts(self, queue: str, limit: int) -> list[Contact]: ...

    def work_of(self, agent_id: str) -> list[Contact]: ...

    def expired_offers(self, now: str) -> list[Contact]: ...

    def disconnected_before(self, moment: str) -> list[tuple[str, str]]: ...

    def connections_of(self, agent_id: str) -> list[str]: ...

    def place_in_queue(self, contact: Contact, queue: str) -> tuple[int, dict[str, Any]]:
        """How many wait ahead of ``contact`` in ``queue`` (0: next), and the queue's statistics."""
        ...

    def queue_stats(self, queue: str) -> dict[str, Any]: ...

    def create_contact(
        self,
        before: Contact | None,
        contact: Contact,
        effects: Sequence[Effect] = (),
        agents: Sequence[Change] = (),
    ) -> None:
        """Store a new (or reopened) contact, queued or already offered: with an offer, ``agents`` holds the
        agent's reservation, saved in the same all-or-nothing write."""
        ...

    def save(
        self, contacts: Sequence[Change] = (), agents: Sequence[Change] = (), effects: Sequence[Effect] = ()
    ) -> None: ...

    def record_started(self, queue: str, sla_met: bool | None) -> None:
        """One more contact of ``queue`` at work, and its SLA outcome (``None``: judged later, at the join)."""
        ...

    def record_handled(self, queue: str, handle_seconds: float) -> None: ...

    def record_abandoned(self, queue: str, waited_seconds: float = 0.0) -> None:
        """One more contact of ``queue`` abandoned after ``waited_seconds`` (the supervisor view's count, rate and
        average time to abandon)."""
        ...

    def forget_open_conversation(self, customer_id: str, contact_id: str) -> None: ...

    def record_unstarted(self, queue: str, sla_met: bool | None) -> None:
        """Take back ``record_started`` of an accept that never reached the customer (a call's agent never
        joined): one fewer at work, and the SLA outcome counted with it (``None``: none was)."""
        ...

    def forget_assignment(self, contact_id: str, agent_id: str) -> None:
        """The conversation no longer names ``agent_id`` as its agent (an accept taken back); idempotent."""
        ...


class Bus(Protocol):
    """Routing events for later: now (``publish``) or at a moment (``schedule``, a timer)."""

    def publish(self, *events: RoutingEvent) -> None: ...

    def schedule(self, event: RoutingEvent, due_at: str, now: str) -> None: ...


class Notifier(Protocol):
    """Pushes to an agent's open consoles; returns how many received it."""

    def to_agent(self, agent_id: str, payload: dict[str, Any]) -> int: ...


class CustomerMessages(Protocol):
    """Messages Switchboard itself sends a customer (their place in the queue, out-of-hours replies)."""

    def reaches(self, channel: str) -> bool: ...

    def prepare(
        self, conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str
    ) -> dict[str, Any]: ...

    def dispatch(self, message: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class SelfServiceVerdict:
    """What self-service did with a message that would open a contact: ``held`` says why the contact is not routed
    (the bot answered, or the customer said it solved it); otherwise it is routed, and ``asked`` is what the
    customer asked the bot first (handed over: the rules read it with the message)."""

    held: str | None = None
    asked: str = ""


class SelfServiceDesk(Protocol):
    """The bot that may answer a first message before a person is asked (``chalicelib.selfservice``)."""

    def take(self, event: ConversationMessage, chosen: SelfService, now: str) -> SelfServiceVerdict: ...

    def seen_again(self, event: ConversationMessage, customer: dict[str, Any], now: str) -> None:
        """The customer (as read for the rules) wrote a message that opens a contact: counted as a recontact if
        it follows a bot answer they did not hand over; no request otherwise."""
        ...


class Metrics(Protocol):
    """What routing measures as it goes."""

    def wait_until_offer(self, seconds: float, queue: str, channel: str) -> None: ...

    def wait_until_accept(self, seconds: float, queue: str, channel: str) -> None: ...

    def sla(self, met: bool, queue: str, channel: str) -> None: ...

    def abandoned(self, seconds: float, queue: str, channel: str) -> None:
        """A customer gave up after waiting ``seconds`` (time to abandon)."""
        ...


class Clock(Protocol):
    def now(self) -> str: ...


@dataclass(frozen=True)
class Settings:
    """The process settings the router reads (env or SSM in Lambda; fixed in a simulation)."""

    reconnect_grace_seconds: float = 120.0
    # Channels whose customer waits until the agent joins, not until the accept (a call: the agent's leg bridged).
    # Their accept counts the contact at work; the join (``voice.connect``) judges the SLA.
    sla_at_join: frozenset[str] = frozenset()


ConfigSource = Callable[[], RoutingConfig]
IdSource = Callable[[], str]
