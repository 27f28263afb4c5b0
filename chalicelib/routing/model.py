"""The routing state of agents and contacts, and the transitions between states, as plain values.

A *contact* is one conversation's request for an agent. It is ``queued``
until it is ``offered`` to one agent, ``assigned`` when that agent accepts,
and ``closed`` when the agent wraps it up. Declined or expired offers put it
back in the queue, never again to the same agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

DEFAULT_QUEUE = "default"


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
    """An agent as routing sees them: skills (name -> proficiency 1..5), presence and load per channel."""

    agent_id: str
    name: str
    presence: Presence
    skills: dict[str, int]
    capacity: dict[str, int]
    load: dict[str, int] = field(default_factory=dict)
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    idle_since: str = ""
    version: int = 0

    def spare(self, channel: str) -> int:
        """How many more contacts of ``channel`` this agent can hold now."""
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)

    @property
    def total_load(self) -> int:
        return sum(self.load.values())

    @property
    def takes_work(self) -> bool:
        """Available and with room on at least one channel: listed in the available-agents index."""
        return self.presence is Presence.AVAILABLE and any(self.spare(c) > 0 for c in self.capacity)

    def reserved(self, channel: str) -> Agent:
        return replace(self, load={**self.load, channel: self.load.get(channel, 0) + 1}, version=self.version + 1)

    def released(self, channel: str, now: str) -> Agent:
        load = {**self.load, channel: max(0, self.load.get(channel, 0) - 1)}
        idle_since = now if sum(load.values()) == 0 else self.idle_since
        return replace(self, load=load, idle_since=idle_since, version=self.version + 1)

    def with_presence(self, presence: Presence, now: str) -> Agent:
        idle_since = now if presence is not self.presence else self.idle_since
        return replace(self, presence=presence, idle_since=idle_since, version=self.version + 1)


@dataclass(frozen=True)
class Contact:
    """One conversation's request for an agent (contact id = conversation id)."""

    contact_id: str
    customer_id: str
    channel: str
    enqueued_at: str
    state: ContactState = ContactState.QUEUED
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    required_skills: dict[str, int] = field(default_factory=dict)
    customer_name: str | None = None
    declined_by: tuple[str, ...] = ()
    offer_id: str | None = None
    offered_to: str | None = None
    offered_at: str | None = None
    offer_expires_at: str | None = None
    offer_count: int = 0
    assigned_to: str | None = None
    accepted_at: str | None = None
    closed_at: str | None = None
    version: int = 0

    def offered(self, agent_id: str, offer_id: str, now: str, expires_at: str) -> Contact:
        return replace(
            self,
            state=ContactState.OFFERED,
            offer_id=offer_id,
            offered_to=agent_id,
            offered_at=self.offered_at or now,
            offer_expires_at=expires_at,
            offer_count=self.offer_count + 1,
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

    def closed(self, now: str) -> Contact:
        return replace(self, state=ContactState.CLOSED, closed_at=now, version=self.version + 1)


@dataclass(frozen=True)
class Offer:
    """A contact offered to one agent until ``expires_at``."""

    offer_id: str
    contact: Contact
    agent: Agent
    expires_at: str
