"""State transitions of agents and contacts."""

from __future__ import annotations

from chalicelib.routing.model import Agent, Contact, ContactState, Presence

NOW = "2026-11-23T10:00:00.000000Z"


def _agent(**overrides) -> Agent:
    values = {
        "agent_id": "ada",
        "name": "Ada",
        "presence": Presence.AVAILABLE,
        "skills": {},
        "capacity": {"webchat": 1},
    }
    return Agent(**{**values, **overrides})


def test_reserving_fills_capacity_and_takes_the_agent_out_of_the_available_pool():
    agent = _agent()
    assert agent.takes_work
    reserved = agent.reserved("webchat")
    assert reserved.load == {"webchat": 1}
    assert reserved.version == agent.version + 1
    assert not reserved.takes_work


def test_releasing_never_goes_below_zero_and_marks_idle():
    released = _agent(load={"webchat": 1}, idle_since="earlier").released("webchat", NOW)
    assert released.load == {"webchat": 0}
    assert released.idle_since == NOW
    assert _agent().released("webchat", NOW).load == {"webchat": 0}


def test_presence_change_bumps_version_and_away_takes_no_work():
    away = _agent().with_presence(Presence.AWAY, NOW)
    assert not away.takes_work
    assert away.version == 1


def test_contact_lifecycle():
    contact = Contact("c1", "cus_1", "webchat", NOW)
    offered = contact.offered("ada", "off_1", NOW, "2026-11-23T10:00:30.000000Z")
    assert (offered.state, offered.offered_to, offered.offer_count) == (ContactState.OFFERED, "ada", 1)
    requeued = offered.requeued("ada")
    assert requeued.state is ContactState.QUEUED
    assert requeued.declined_by == ("ada",)
    assert requeued.offered_to is None
    again = requeued.offered("bob", "off_2", "2026-11-23T10:01:00.000000Z", "2026-11-23T10:01:30.000000Z")
    assert again.offered_at == NOW, "the first offer time is kept: wait-until-offered measures the first"
    assigned = again.assigned("2026-11-23T10:01:05.000000Z")
    assert (assigned.state, assigned.assigned_to) == (ContactState.ASSIGNED, "bob")
    assert assigned.closed("2026-11-23T10:09:00.000000Z").state is ContactState.CLOSED
    assert assigned.version == 4
