"""Pure matching: which agent gets a contact, which waiting contact a freed agent takes. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.routing.model import Agent, Contact, ContactState, Presence


def can_take(agent: Agent, contact: Contact) -> bool:
    """Available, serves the queue, has the skills at the minimum proficiency, room on the channel, never refused it."""
    return (
        agent.presence is Presence.AVAILABLE
        and contact.queue in agent.queues
        and agent.spare(contact.channel) > 0
        and agent.agent_id not in contact.declined_by
        and all(agent.skills.get(skill, 0) >= level for skill, level in contact.required_skills.items())
    )


def choose_agent(contact: Contact, agents: Iterable[Agent]) -> Agent | None:
    """The best agent for a waiting contact: least loaded on its channel, then longest idle."""
    eligible = [a for a in agents if can_take(a, contact)]
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda a: (
            a.load.get(contact.channel, 0) / max(1, a.capacity.get(contact.channel, 1)),
            a.total_load,
            a.idle_since,
            a.agent_id,
        ),
    )


def choose_contact(agent: Agent, contacts: Iterable[Contact]) -> Contact | None:
    """The waiting contact a freed agent takes: highest priority, then the longest waiting."""
    eligible = [c for c in contacts if c.state is ContactState.QUEUED and can_take(agent, c)]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (-c.priority, c.enqueued_at, c.contact_id))
