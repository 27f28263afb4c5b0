"""Pure matching: which agent gets a contact, which waiting contact a freed agent takes. No I/O here.

Eligible: Available and connected (not waiting to reconnect), serves one of the contact's queues that is open
now, has every required skill at the minimum proficiency, has room for the channel's cost, and has
not already declined or let this contact's offer expire; a contact transferred to
one agent waits for that agent only.
Agent for a contact: the preferred agent (who served this customer last,
within the configured window), then higher proficiency, then the least
loaded, then the longest idle.
Contact for a freed agent: highest priority, then the earliest SLA deadline
(then their own returning customers, then the longest waiting).

How eligible candidates are ordered is a ``Policy``; every choice comes with its ``Ranking``: who was
considered with which ordering key, and who was skipped and why (the decision record of an offer).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from chalicelib.routing.model import Agent, Contact, ContactState, Presence

CostOf = Callable[[str], int]  # a channel's cost in capacity units, from the routing config


def cost_for(agent: Agent, channel: str, cost_of: CostOf) -> int:
    """What a contact of ``channel`` costs this agent (their own cost if they have one)."""
    return agent.channel_costs.get(channel, cost_of(channel))


def meets(agent: Agent, required_skills: Mapping[str, int]) -> bool:
    """Whether the agent has every one of these skills at its minimum proficiency."""
    return all(agent.skills.get(skill, 0) >= level for skill, level in required_skills.items())


def requirement_key(skills: Mapping[str, int]) -> str:
    """Required skills as one name: ``billing=3+english=2``, ``-`` for none (names hold no = or +)."""
    return "+".join(f"{skill}={level}" for skill, level in sorted(skills.items())) or "-"


def waiting_sort_key(contact: Contact) -> str:
    """Where a contact sorts among those waiting: highest priority first, then the earliest SLA deadline, then
    the longest waiting (the order of the waiting indexes a freed agent reads a page of)."""
    return f"{9 - contact.priority}#{contact.sla_deadline}#{contact.enqueued_at}#{contact.contact_id}"


def key_skill(required_skills: Mapping[str, int]) -> tuple[str, int] | None:
    """The skill whose pool of agents is searched for a contact: the highest minimum, then by name.

    Every eligible agent is in that pool, whichever skill it is; the most demanding one keeps it small.
    """
    if not required_skills:
        return None
    skill = min(required_skills, key=lambda name: (-required_skills[name], name))
    return skill, required_skills[skill]


def why_not(agent: Agent, contact: Contact, cost_of: CostOf, open_queues: Collection[str] | None = None) -> str | None:
    """Why ``agent`` may not be offered ``contact`` now (None: they may); ``open_queues``: the queues open now
    (None: all are)."""
    shared = set(contact.queues).intersection(agent.queues)
    if open_queues is not None:
        shared.intersection_update(open_queues)  # a closed queue's contacts wait for it to open
    if agent.presence is not Presence.AVAILABLE:
        return f"presence {agent.presence.value}"
    if agent.disconnected_at is not None:
        return "reconnecting"  # they could not see the offer
    if not shared:
        return "no open queue in common"
    if agent.agent_id in contact.declined_by:
        return "declined it before"
    if contact.reserved_for not in (None, agent.agent_id):
        return f"reserved for {contact.reserved_for}"
    missing = [s for s, level in sorted(contact.required_skills.items()) if agent.skills.get(s, 0) < level]
    if missing:
        return "skill " + ", ".join(f"{s} {agent.skills.get(s, 0)}<{contact.required_skills[s]}" for s in missing)
    if not agent.has_room(contact.channel, cost_for(agent, contact.channel, cost_of)):
        return "capacity"
    return None


def can_take(agent: Agent, contact: Contact, cost_of: CostOf, open_queues: Collection[str] | None = None) -> bool:
    """Whether ``agent`` may be offered ``contact`` now; ``open_queues``: the queues open now (None: all are)."""
    return why_not(agent, contact, cost_of, open_queues) is None


def proficiency(agent: Agent, contact: Contact) -> int:
    """How well the agent covers the contact's required skills (sum of their levels in them)."""
    return sum(agent.skills.get(skill, 0) for skill in contact.required_skills)


class Policy(Protocol):
    """How eligible candidates are ordered: the smallest key wins."""

    @property
    def name(self) -> str: ...

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]: ...

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]: ...


@dataclass(frozen=True)
class Classic:
    """Preferred agent, then proficiency, then the least loaded, then the longest idle; contacts by priority,
    then the earliest SLA deadline."""

    name: str = "classic"
    # What each place of the keys means (``named_key``): "!x" holds not-x, "-x" holds minus x.
    agent_key_names: tuple[str, ...] = ("!preferred", "-proficiency", "load_permille", "idle_since", "agent_id")
    contact_key_names: tuple[str, ...] = ("-priority", "sla_deadline", "!returning", "enqueued_at", "contact_id")

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]:
        return (
            agent.agent_id != contact.preferred_agent,
            -proficiency(agent, contact),
            agent.load_permille,
            agent.idle_since,
            agent.agent_id,
        )

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]:
        return (
            -contact.priority,
            contact.sla_deadline,
            contact.preferred_agent != agent.agent_id,
            contact.enqueued_at,
            contact.contact_id,
        )


DEFAULT_POLICY: Policy = Classic()


def key_names(policy: Policy, direction: str) -> tuple[str, ...]:
    """The names a policy gives the places of its ``agent`` or ``contact`` keys (optional: ``agent_key_names``,
    ``contact_key_names``); none named: ``named_key`` calls them by position."""
    return tuple(getattr(policy, f"{direction}_key_names", ()))


def named_key(names: Sequence[str], key: Sequence[Any]) -> dict[str, Any]:
    """An ordering key as a reader wants it: each place by name, ``!x`` and ``-x`` turned back into x (so
    ``(True, -7)`` named ``("!preferred", "-proficiency")`` reads ``{"preferred": False, "proficiency": 7}``).
    Places without a name are ``key<n>``."""
    named: dict[str, Any] = {}
    for place, value in enumerate(key):
        name = names[place] if place < len(names) else f"key{place}"
        if name.startswith("!") and isinstance(value, bool):
            name, value = name[1:], not value
        elif name.startswith("-") and isinstance(value, int | float) and not isinstance(value, bool):
            name, value = name[1:], -value
        named[name.lstrip("!-")] = value
    return named


T = TypeVar("T")


@dataclass(frozen=True)
class Ranking(Generic[T]):
    """One choice and why: the eligible candidates in order with their keys, and who was skipped and why."""

    chosen: T | None
    policy: str
    ranked: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def rank_agents(
    contact: Contact,
    agents: Iterable[Agent],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Ranking[Agent]:
    """The agents for ``contact`` in the policy's order (the first is chosen), and those who may not take it."""
    eligible: dict[str, tuple[tuple[Any, ...], Agent]] = {}
    skipped: dict[str, str] = {}
    for agent in agents:
        reason = why_not(agent, contact, cost_of, open_queues)
        if reason is None:
            eligible[agent.agent_id] = (policy.agent_key(contact, agent, now), agent)
        else:
            skipped[agent.agent_id] = reason
    ordered = sorted(eligible.values(), key=lambda pair: pair[0])
    return Ranking(
        chosen=ordered[0][1] if ordered else None,
        policy=policy.name,
        ranked=tuple((a.agent_id, k) for k, a in ordered),
        skipped=tuple(sorted(skipped.items())),
    )


def rank_contacts(
    agent: Agent,
    contacts: Iterable[Contact],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Ranking[Contact]:
    """The waiting contacts for a freed ``agent`` in the policy's order (the first is chosen), and those they
    may not take."""
    eligible: dict[str, tuple[tuple[Any, ...], Contact]] = {}
    skipped: dict[str, str] = {}
    for contact in contacts:
        reason = "not queued" if contact.state is not ContactState.QUEUED else None
        reason = reason or why_not(agent, contact, cost_of, open_queues)
        if reason is None:
            eligible[contact.contact_id] = (policy.contact_key(agent, contact, now), contact)
        else:
            skipped[contact.contact_id] = reason
    ordered = sorted(eligible.values(), key=lambda pair: pair[0])
    return Ranking(
        chosen=ordered[0][1] if ordered else None,
        policy=policy.name,
        ranked=tuple((c.contact_id, k) for k, c in ordered),
        skipped=tuple(sorted(skipped.items())),
    )


def choose_agent(
    contact: Contact,
    agents: Iterable[Agent],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Agent | None:
    return rank_agents(contact, agents, cost_of, open_queues, policy, now).chosen


def choose_contact(
    agent: Agent,
    contacts: Iterable[Contact],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Contact | None:
    return rank_contacts(agent, contacts, cost_of, open_queues, policy, now).chosen
