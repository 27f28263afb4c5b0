"""The pure matcher: eligibility and preference, in both directions."""

from __future__ import annotations

from chalicelib.routing.matching import can_take, choose_agent, choose_contact
from chalicelib.routing.model import Agent, Contact, ContactState, Presence


def agent(agent_id: str = "ada", **overrides) -> Agent:
    values = {
        "agent_id": agent_id,
        "name": agent_id,
        "presence": Presence.AVAILABLE,
        "skills": {"billing": 3},
        "capacity": {"webchat": 2},
        "load": {"webchat": 0},
        "idle_since": "2026-11-23T09:00:00.000000Z",
    }
    return Agent(**{**values, **overrides})


def contact(contact_id: str = "c1", **overrides) -> Contact:
    values = {
        "contact_id": contact_id,
        "customer_id": "cus_1",
        "channel": "webchat",
        "enqueued_at": "2026-11-23T10:00:00.000000Z",
    }
    return Contact(**{**values, **overrides})


def test_available_agent_with_room_can_take_a_contact():
    assert can_take(agent(), contact())


def test_away_offline_full_or_channel_less_agents_cannot():
    assert not can_take(agent(presence=Presence.AWAY), contact())
    assert not can_take(agent(presence=Presence.OFFLINE), contact())
    assert not can_take(agent(load={"webchat": 2}), contact())
    assert not can_take(agent(capacity={"email": 5}), contact())


def test_agent_who_declined_never_gets_it_again():
    assert not can_take(agent(), contact(declined_by=("ada",)))


def test_required_skill_at_minimum_proficiency():
    assert can_take(agent(), contact(required_skills={"billing": 3}))
    assert not can_take(agent(), contact(required_skills={"billing": 4}))
    assert not can_take(agent(), contact(required_skills={"spanish": 1}))


def test_other_queue_is_not_served():
    assert not can_take(agent(), contact(queue="vip"))


def test_least_loaded_then_longest_idle_agent_is_chosen():
    busy = agent("busy", load={"webchat": 1})
    idle_long = agent("idle_long", idle_since="2026-11-23T08:00:00.000000Z")
    idle_short = agent("idle_short", idle_since="2026-11-23T09:30:00.000000Z")
    assert choose_agent(contact(), [busy, idle_short, idle_long]) == idle_long
    assert choose_agent(contact(), [busy]) == busy
    assert choose_agent(contact(), [agent(presence=Presence.AWAY)]) is None


def test_load_is_relative_to_capacity():
    roomy = agent("roomy", capacity={"webchat": 4}, load={"webchat": 1})
    tight = agent("tight", capacity={"webchat": 2}, load={"webchat": 1})
    assert choose_agent(contact(), [tight, roomy]) == roomy


def test_freed_agent_takes_highest_priority_then_oldest():
    old = contact("old", enqueued_at="2026-11-23T09:00:00.000000Z")
    new = contact("new", enqueued_at="2026-11-23T10:00:00.000000Z")
    urgent = contact("urgent", enqueued_at="2026-11-23T11:00:00.000000Z", priority=5)
    assert choose_contact(agent(), [new, old]) == old
    assert choose_contact(agent(), [new, old, urgent]) == urgent


def test_freed_agent_skips_what_it_cannot_take():
    declined = contact("declined", declined_by=("ada",), enqueued_at="2026-11-23T08:00:00.000000Z")
    offered = contact("offered", state=ContactState.OFFERED, enqueued_at="2026-11-23T08:30:00.000000Z")
    fits = contact("fits")
    assert choose_contact(agent(), [declined, offered, fits]) == fits
    assert choose_contact(agent(), [declined, offered]) is None
