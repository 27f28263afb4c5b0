"""State transitions of agents and contacts."""

from __future__ import annotations

from chalicelib.routing.model import Agent, Contact, ContactState, Presence

NOW = "2026-11-23T10:00:00.000000Z"


def _agent(**overrides) -> Agent:
    values = {"agent_id": "ada", "name": "Ada", "presence": Presence.AVAILABLE, "skills": {}, "capacity": 60}
    return Agent(**{**values, **overrides})


def test_reserving_a_call_fills_capacity_and_takes_the_agent_out_of_the_pool():
    agent = _agent()
    assert agent.takes_work
    reserved = agent.reserved("voice", 60)
    assert reserved.load == {"voice": 1} and reserved.used == 60
    assert reserved.version == agent.version + 1
    assert not reserved.takes_work


def test_releasing_gives_back_what_was_reserved_and_marks_idle():
    released = _agent(load={"webchat": 1}, used=20, idle_since="earlier").released("webchat", 20, NOW)
    assert released.load == {"webchat": 0} and released.used == 0
    assert released.idle_since == NOW
    assert _agent().released("webchat", 20, NOW).used == 0, "never below zero"


def test_presence_change_bumps_version_and_away_takes_no_work():
    away = _agent().with_presence(Presence.AWAY, NOW)
    assert not away.takes_work
    assert away.version == 1


def test_offers_left_to_expire_in_a_row_set_the_agent_away_and_an_answer_resets():
    agent = _agent()
    for _ in range(2):
        agent = agent.let_offer_expire(3, NOW)
    assert agent.presence is Presence.AVAILABLE and agent.consecutive_expired == 2
    assert agent.answered().consecutive_expired == 0
    assert agent.let_offer_expire(3, NOW).presence is Presence.AWAY
    back = agent.let_offer_expire(3, NOW).with_presence(Presence.AVAILABLE, NOW)
    assert back.consecutive_expired == 0


def test_contact_lifecycle():
    contact = Contact("c1", "cus_1", "webchat", NOW)
    offered = contact.offered("ada", "off_1", NOW, "2026-11-23T10:00:30.000000Z", 20)
    assert (offered.state, offered.offered_to, offered.offer_count, offered.cost) == (
        ContactState.OFFERED,
        "ada",
        1,
        20,
    )
    requeued = offered.requeued("ada")
    assert requeued.state is ContactState.QUEUED
    assert requeued.declined_by == ("ada",)
    assert requeued.offered_to is None and requeued.cost == 0
    again = requeued.offered("bob", "off_2", "2026-11-23T10:01:00.000000Z", "2026-11-23T10:01:30.000000Z", 20)
    assert again.offered_at == NOW, "the first offer time is kept: wait-until-offered measures the first"
    assigned = again.assigned("2026-11-23T10:01:05.000000Z")
    assert (assigned.state, assigned.assigned_to) == (ContactState.ASSIGNED, "bob")
    assert assigned.closed("2026-11-23T10:09:00.000000Z").state is ContactState.CLOSED
    assert assigned.version == 4
