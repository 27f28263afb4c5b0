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
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

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


def can_take(agent: Agent, contact: Contact, cost_of: CostOf, open_queues: Collection[str] | None = None) -> bool:
    """Whether ``agent`` may be offered ``contact`` now; ``open_queues``: the queues open now (None: all are)."""
    shared = set(contact.queues).intersection(agent.queues)
    if open_queues is not None:
        shared.intersection_update(open_queues)  # a closed queue's contacts wait for it to open
    return (
        agent.presence is Presence.AVAILABLE
        and agent.disconnected_at is None  # reconnecting: they could not see the offer
        and bool(shared)
        and agent.agent_id not in contact.declined_by
        and contact.reserved_for in (None, agent.agent_id)
        and meets(agent, contact.required_skills)
        and agent.has_room(contact.channel, cost_for(agent, contact.channel, cost_of))
    )


def proficiency(agent: Agent, contact: Contact) -> int:
    """How well the agent covers the contact's required skills (sum of their levels in them)."""
    return sum(agent.skills.get(skill, 0) for skill in contact.required_skills)


def choose_agent(
    contact: Contact, agents: Iterable[Agent], cost_of: CostOf, open_queues: Collection[str] | None = None
) -> Agent | None:
    eligible = {a.agent_id: a for a in agents if can_take(a, contact, cost_of, open_queues)}
    if not eligible:
        return None
    return min(
        eligible.values(),
        key=lambda a: (
            a.agent_id != contact.preferred_agent,
            -proficiency(a, contact),
            a.load_permille,
            a.idle_since,
            a.agent_id,
        ),
    )


def choose_contact(
    agent: Agent, contacts: Iterable[Contact], cost_of: CostOf, open_queues: Collection[str] | None = None
) -> Contact | None:
    eligible = {
        c.contact_id: c for c in contacts if c.state is ContactState.QUEUED and can_take(agent, c, cost_of, open_queues)
    }
    if not eligible:
        return None
    return min(
        eligible.values(),
        key=lambda c: (-c.priority, c.sla_deadline, c.preferred_agent != agent.agent_id, c.enqueued_at, c.contact_id),
    )
