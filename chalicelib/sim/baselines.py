"""The baselines routing is measured against, as ``matching.Policy`` implementations for ``Router.policy``.

Both ignore proficiency and returning customers: they are what a plain ACD does. Waiting contacts are taken
first come first served within priority (higher first), the classic ACD queue discipline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.routing.model import Agent, Contact


def _first_come_first_served(contact: Contact) -> tuple[Any, ...]:
    return (-contact.priority, contact.enqueued_at, contact.contact_id)


@dataclass(frozen=True)
class LongestIdle:
    """The agent idle the longest gets the contact (least loaded first for agents holding several)."""

    name: str = "longest-idle"

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]:
        return (agent.load_permille, agent.idle_since, agent.agent_id)

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]:
        return _first_come_first_served(contact)


@dataclass
class RoundRobin:
    """Agents take turns: the one offered a contact longest ago (never first) is next, whatever their idle time.

    The turn is remembered here, per simulated world (an ACD's rotation pointer); it moves when an agent is
    ranked first, which is when the router offers to them.
    """

    name: str = "round-robin"
    _turns: dict[str, int] = field(default_factory=dict)
    _clock: int = 0

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]:
        return (self._turns.get(agent.agent_id, -1), agent.agent_id)

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]:
        return _first_come_first_served(contact)

    def took_turn(self, agent_id: str) -> None:
        """``agent_id`` was offered a contact: they go to the back of the rotation."""
        self._clock += 1
        self._turns[agent_id] = self._clock


POLICIES = ("switchboard", "classic", "longest-idle", "round-robin")
