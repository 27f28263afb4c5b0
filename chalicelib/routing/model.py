"""The routing state of agents and contacts, and the transitions between states, as plain values.

A *contact* is one conversation's request for an agent. It is ``queued``
(waiting in one or more queues) until it is ``offered`` to one agent,
``assigned`` when that agent accepts, and ``closed`` when the agent wraps it
up. Declined or expired offers put it back in the queue, never again to the
same agent.

Capacity is counted in units: each agent has a capacity (60 by default) and
each channel a cost (a call 60, a chat 20, an e-mail 12: one call, or three
chats, or five e-mails). An offer reserves the channel's cost; the contact
remembers what it reserved, so closing it gives back exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_QUEUE = "default"


def replace(value: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for these plain frozen dataclasses (no ``__post_init__``, no ``InitVar``), without
    running ``__init__`` again: each transition copies a record of some thirty fields, and the simulator makes
    millions of them."""
    unknown = changes.keys() - value.__dataclass_fields__.keys()
    if unknown:
        raise TypeError(f"{type(value).__name__} has no field {', '.join(sorted(unknown))}")
    copied = object.__new__(type(value))
    copied.__dict__.update(value.__dict__, **changes)
    return copied


class Presence(StrEnum):
    AVAILABLE = "Available"
    AWAY = "Away"
    OFFLINE = "Offline"


class ContactState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    CLOSED = "closed"


@dataclass(frozen=True)
class Agent:
    """An agent as routing sees them: skills (name -> proficiency 1..5), queues, presence and load."""

    agent_id: str
    name: str
    presence: Presence
    skills: dict[str, int]
    capacity: int = 60
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    channel_costs: dict[str, int] = field(default_factory=dict)  # this agent's own costs, if any
    max_per_channel: dict[str, int] = field(default_factory=dict)  # optional caps on concurrent contacts
    load: dict[str, int] = field(default_factory=dict)  # contacts held per channel
    used: int = 0  # capacity units reserved
    idle_since: str = ""
    consecutive_expired: int = 0
    # When the last of them expired. An accept does not write the agent: an offer accepted after this moment
    # starts the count again, found when it matters (the next expiry, or a close: ``answered_since``).
    last_expired_at: str = ""
    # Set while the agent's last WebSocket is closed and the reconnect grace period runs: they keep their
    # presence, offers and work, but get no new offer they could not see.
    disconnected_at: str | None = None
    version: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The agent as plain values (``from_dict`` reads it back)."""
        return {**asdict(self), "presence": self.presence.value, "queues": list(self.queues)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Agent:
        """An agent from ``as_dict``'s values; ``ValueError``/``TypeError`` when they are not one."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known["presence"] = Presence(values["presence"])
        known["queues"] = tuple(values.get("queues", ()))
        return cls(**known)

    def has_room(self, channel: str, cost: int) -> bool:
        """Whether a contact of ``channel`` costing ``cost`` units still fits."""
        cap = self.max_per_channel.get(channel)
        if cap is not None and self.load.get(channel, 0) >= cap:
            return False
        return self.used + cost <= self.capacity

    @property
    def takes_work(self) -> bool:
        """Available, connected, with units to spare: listed in the available-agents index of each of their queues."""
        return self.presence is Presence.AVAILABLE and self.used < self.capacity and self.disconnected_at is None

    @property
    def load_permille(self) -> int:
        return 1000 * self.used // max(1, self.capacity)

    def reserved(self, channel: str, cost: int) -> Agent:
        return replace(
            self,
            load={**self.load, channel: self.load.get(channel, 0) + 1},
            used=self.used + cost,
            version=self.version + 1,
        )

    def released(self, channel: str, cost: int, now: str) -> Agent:
        load = {**self.load, channel: max(0, self.load.get(channel, 0) - 1)}
        used = max(0, self.used - cost)
        idle_since = now if used == 0 else self.idle_since
        return replace(self, load=load, used=used, idle_since=idle_since, version=self.version + 1)

    def with_presence(self, presence: Presence, now: str) -> Agent:
        idle_since = now if presence is not self.presence else self.idle_since
        expired = 0 if presence is Presence.AVAILABLE else self.consecutive_expired
        return replace(
            self, presence=presence, idle_since=idle_since, consecutive_expired=expired, version=self.version + 1
        )

    def let_offer_expire(self, limit: int, now: str) -> Agent:
        """One more offer ignored; after ``limit`` in a row the agent is set Away (they are not there)."""
        expired = self.consecutive_expired + 1
        presence = Presence.AWAY if expired >= limit else self.presence
        return replace(
            self, consecutive_expired=expired, presence=presence, last_expired_at=now, version=self.version + 1
        )

    def answered(self) -> Agent:
        return replace(self, consecutive_expired=0, version=self.version + 1)

    def answered_since(self, accepted_at: str | None) -> Agent:
        """The count of offers expired in a row, started again if an offer accepted at ``accepted_at`` came
        after the last of them (unchanged otherwise: the same agent, not a new version)."""
        if self.consecutive_expired and accepted_at and accepted_at > self.last_expired_at:
            return self.answered()
        return self

    def disconnected(self, now: str) -> Agent:
        """Their last connection closed at ``now``: the reconnect grace period starts."""
        return replace(self, disconnected_at=now, version=self.version + 1)

    def reconnected(self) -> Agent:
        return replace(self, disconnected_at=None, version=self.version + 1)

    def gone_offline(self, now: str) -> Agent:
        """The grace period passed without a connection."""
        return replace(self.with_presence(Presence.OFFLINE, now), disconnected_at=None)


@dataclass(frozen=True)
class Contact:
    """One conversation's request for an agent (contact id = conversation id)."""

    contact_id: str
    customer_id: str
    channel: str
    enqueued_at: str
    state: ContactState = ContactState.QUEUED
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    priority: int = 0
    required_skills: dict[str, int] = field(default_factory=dict)
    sla_deadline: str = ""
    rule: str = ""
    escalation: tuple[dict[str, Any], ...] = ()  # the rule's steps, as configured when the contact was queued
    next_step: int = 0  # index of the next escalation step to fire
    preferred_agent: str | None = None
    reserved_for: str | None = None  # transferred to this agent: only they may take it
    customer_name: str | None = None
    declined_by: tuple[str, ...] = ()
    cost: int = 0  # capacity units reserved while offered or assigned
    offer_id: str | None = None
    offered_to: str | None = None
    offered_at: str | None = None
    offer_expires_at: str | None = None
    offer_count: int = 0
    assigned_to: str | None = None
    accepted_at: str | None = None
    closed_at: str | None = None
    wrap_up: str | None = None
    acknowledged_at: str | None = None
    version: int = 0
    abandoned_at: str | None = None  # the customer left (hung up, closed the chat) before an agent accepted
    # When the customer's message that opened this contact came (a transfer keeps it): its contact record's key.
    arrived_at: str = ""
    first_response_at: str | None = None  # the first agent reply (``responded``)

    def offered(self, agent_id: str, offer_id: str, now: str, expires_at: str, cost: int) -> Contact:
        return replace(
            self,
            state=ContactState.OFFERED,
            offer_id=offer_id,
            offered_to=agent_id,
            offered_at=self.offered_at or now,
            offer_expires_at=expires_at,
            offer_count=self.offer_count + 1,
            cost=cost,
            version=self.version + 1,
        )

    def requeued(self, refused_by: str) -> Contact:
        """Back to the queue after ``refused_by`` declined or let the offer expire."""
        return replace(
            self,
            state=ContactState.QUEUED,
            declined_by=(*self.declined_by, refused_by),
            offer_id=None,
            offered_to=None,
            offer_expires_at=None,
            cost=0,
            version=self.version + 1,
        )

    def unreachable(self, agent_id: str) -> Contact:
        """Back to the queue from ``agent_id``, who accepted but could not be reached (their call leg rang out)."""
        return replace(self.requeued(agent_id), assigned_to=None, accepted_at=None)

    def returned(self) -> Contact:
        """Back to waiting from the agent whose call leg left mid-call: its place kept (``enqueued_at``, deadline),
        anyone may take it, that agent too."""
        return replace(
            self,
            state=ContactState.QUEUED,
            offer_id=None,
            offered_to=None,
            offer_expires_at=None,
            assigned_to=None,
            accepted_at=None,
            cost=0,
            version=self.version + 1,
        )

    def assigned(self, now: str) -> Contact:
        return replace(
            self,
            state=ContactState.ASSIGNED,
            assigned_to=self.offered_to,
            accepted_at=now,
            offer_expires_at=None,
            version=self.version + 1,
        )

    def closed(self, now: str, wrap_up: str | None = None) -> Contact:
        return replace(self, state=ContactState.CLOSED, closed_at=now, wrap_up=wrap_up, version=self.version + 1)

    def abandoned(self, now: str) -> Contact:
        """The customer left while it waited or was offered: closed unanswered, any open offer withdrawn.

        The agent it was offered to stays among ``declined_by``: their late accept is a conflict ("not offered to
        you any more"), not a stranger's forbidden request."""
        return replace(
            self,
            state=ContactState.CLOSED,
            closed_at=now,
            abandoned_at=now,
            wrap_up="abandoned",
            declined_by=(*self.declined_by, self.offered_to) if self.offered_to else self.declined_by,
            offer_id=None,
            offered_to=None,
            offer_expires_at=None,
            cost=0,
            version=self.version + 1,
        )

    def transferred(self, *, queues: tuple[str, ...], to_agent: str | None, now: str) -> Contact:
        """Back to waiting, in other queues or for one agent; whoever it was with may get it again."""
        return replace(
            self,
            state=ContactState.QUEUED,
            queues=queues,
            reserved_for=to_agent,
            declined_by=(),
            offer_id=None,
            offered_to=None,
            offer_expires_at=None,
            assigned_to=None,
            accepted_at=None,
            cost=0,
            enqueued_at=now,
            version=self.version + 1,
        )

    def escalated(
        self,
        *,
        queues: tuple[str, ...],
        required_skills: dict[str, int],
        priority: int,
    ) -> Contact:
        return replace(
            self,
            queues=queues,
            required_skills=required_skills,
            priority=priority,
            next_step=self.next_step + 1,
            version=self.version + 1,
        )

    def overflowed(self, queues: tuple[str, ...]) -> Contact:
        """Moved to other queues because its own closed (their out-of-hours overflow)."""
        return replace(self, queues=queues, version=self.version + 1)

    def acknowledged(self, now: str) -> Contact:
        return replace(self, acknowledged_at=now, version=self.version + 1)

    def responded(self, now: str) -> Contact:
        """The assigned agent replied for the first time."""
        return replace(self, first_response_at=now, version=self.version + 1)

    @property
    def record_key(self) -> str:
        """Which contact record (one per arrival of this conversation) its lifecycle goes to."""
        return self.arrived_at or self.enqueued_at


@dataclass(frozen=True)
class Offer:
    """A contact offered to one agent until ``expires_at``: both as read, and as the offer makes them."""

    offer_id: str
    contact: Contact
    agent: Agent
    expires_at: str
    contact_before: Contact
    agent_before: Agent
    # Why: the matching's ranking of candidates this offer came from (``matching.Ranking``), and for whom
    # ("contact": agents ranked for it; "agent": a freed agent's waiting contacts). Saved with the offer.
    ranking: Any = None
    chosen_for: str = "contact"
    made_at: str = ""  # when it was planned (the router's now)
