"""The pure matcher: eligibility and preference, in both directions."""

from __future__ import annotations

from chalicelib.routing.matching import can_take, choose_agent, choose_contact, cost_for, key_skill
from chalicelib.routing.model import Agent, Contact, ContactState, Presence

COSTS = {"voice": 60, "webchat": 20, "email": 12}


def cost_of(channel: str) -> int:
    return COSTS.get(channel, 20)


def agent(agent_id: str = "ada", **overrides) -> Agent:
    values = {
        "agent_id": agent_id,
        "name": agent_id,
        "presence": Presence.AVAILABLE,
        "skills": {"billing": 3},
        "idle_since": "2026-11-23T09:00:00.000000Z",
    }
    return Agent(**{**values, **overrides})


def contact(contact_id: str = "c1", **overrides) -> Contact:
    values = {
        "contact_id": contact_id,
        "customer_id": "cus_1",
        "channel": "webchat",
        "enqueued_at": "2026-11-23T10:00:00.000000Z",
        "sla_deadline": "2026-11-23T10:01:00.000000Z",
    }
    return Contact(**{**values, **overrides})


def test_available_agent_with_room_can_take_a_contact():
    assert can_take(agent(), contact(), cost_of)


def test_away_offline_full_or_capped_agents_cannot():
    assert not can_take(agent(presence=Presence.AWAY), contact(), cost_of)
    assert not can_take(agent(presence=Presence.OFFLINE), contact(), cost_of)
    assert not can_take(agent(used=50), contact(), cost_of), "50 of 60 units used: no room for a 20-unit chat"
    assert not can_take(agent(max_per_channel={"webchat": 1}, load={"webchat": 1}), contact(), cost_of)


def test_capacity_model_one_call_or_three_chats_or_five_emails():
    fresh = agent()
    assert fresh.has_room("voice", 60) and not fresh.reserved("webchat", 20).has_room("voice", 60)
    chats = fresh
    for _ in range(3):
        assert chats.has_room("webchat", 20)
        chats = chats.reserved("webchat", 20)
    assert not chats.has_room("webchat", 20)
    emails = fresh
    for _ in range(5):
        emails = emails.reserved("email", 12)
    assert not emails.has_room("email", 12) and emails.used == 60


def test_an_agent_may_have_costs_of_their_own():
    fast_typist = agent(channel_costs={"webchat": 10})
    assert cost_for(fast_typist, "webchat", cost_of) == 10
    assert cost_for(fast_typist, "email", cost_of) == 12


def test_agent_who_declined_never_gets_it_again():
    assert not can_take(agent(), contact(declined_by=("ada",)), cost_of)


def test_required_skill_at_minimum_proficiency():
    assert can_take(agent(), contact(required_skills={"billing": 3}), cost_of)
    assert not can_take(agent(), contact(required_skills={"billing": 4}), cost_of)
    assert not can_take(agent(), contact(required_skills={"spanish": 1}), cost_of)


def test_queues_must_overlap():
    assert not can_take(agent(), contact(queues=("vip",)), cost_of)
    assert can_take(agent(queues=("vip", "default")), contact(queues=("vip",)), cost_of)
    assert can_take(agent(queues=("billing",)), contact(queues=("vip", "billing")), cost_of)


def test_preferred_agent_beats_proficiency_and_load():
    preferred = agent("pref", used=20, skills={"billing": 3})
    expert = agent("expert", skills={"billing": 5})
    wanted = contact(required_skills={"billing": 3}, preferred_agent="pref")
    assert choose_agent(wanted, [expert, preferred], cost_of) == preferred
    assert choose_agent(contact(required_skills={"billing": 3}), [expert, preferred], cost_of) == expert


def test_then_proficiency_then_least_loaded_then_longest_idle():
    busy = agent("busy", used=20)
    idle_long = agent("idle_long", idle_since="2026-11-23T08:00:00.000000Z")
    idle_short = agent("idle_short", idle_since="2026-11-23T09:30:00.000000Z")
    assert choose_agent(contact(), [busy, idle_short, idle_long], cost_of) == idle_long
    assert choose_agent(contact(), [busy], cost_of) == busy
    assert choose_agent(contact(), [agent(presence=Presence.AWAY)], cost_of) is None
    skilled_busy = agent("skilled", used=20, skills={"billing": 5})
    assert choose_agent(contact(required_skills={"billing": 2}), [idle_long, skilled_busy], cost_of) == skilled_busy


def test_load_is_relative_to_capacity():
    roomy = agent("roomy", capacity=120, used=30)
    tight = agent("tight", capacity=60, used=20)
    assert choose_agent(contact(), [tight, roomy], cost_of) == roomy


def test_freed_agent_takes_highest_priority_then_earliest_deadline():
    email_due_later = contact("email", channel="email", sla_deadline="2026-11-23T11:00:00.000000Z")
    chat_due_soon = contact("chat", sla_deadline="2026-11-23T10:01:00.000000Z")
    urgent = contact("urgent", priority=5, sla_deadline="2026-11-23T12:00:00.000000Z")
    assert choose_contact(agent(), [email_due_later, chat_due_soon], cost_of) == chat_due_soon
    assert choose_contact(agent(), [email_due_later, chat_due_soon, urgent], cost_of) == urgent


def test_freed_agent_prefers_their_returning_customer_on_a_tie():
    other = contact("other", enqueued_at="2026-11-23T09:00:00.000000Z")
    mine = contact("mine", preferred_agent="ada")
    assert choose_contact(agent(), [other, mine], cost_of) == mine


def test_freed_agent_skips_what_it_cannot_take():
    declined = contact("declined", declined_by=("ada",), sla_deadline="2026-11-23T10:00:10.000000Z")
    offered = contact("offered", state=ContactState.OFFERED, sla_deadline="2026-11-23T10:00:20.000000Z")
    fits = contact("fits")
    assert choose_contact(agent(), [declined, offered, fits], cost_of) == fits
    assert choose_contact(agent(), [declined, offered], cost_of) is None


def test_only_queues_open_now_count_as_shared():
    both = contact(queues=("billing", "support"))
    assert can_take(agent(queues=("support",)), both, cost_of)
    assert not can_take(agent(queues=("support",)), both, cost_of, open_queues={"billing"})
    assert can_take(agent(queues=("billing",)), both, cost_of, open_queues={"billing"})
    assert choose_contact(agent(queues=("support",)), [both], cost_of, open_queues=frozenset()) is None


def test_the_pool_searched_for_a_contact_is_its_most_demanding_skill():
    assert key_skill({}) is None
    assert key_skill({"billing": 3, "english": 2}) == ("billing", 3)
    assert key_skill({"english": 3, "billing": 3}) == ("billing", 3), "a tie goes by name: the same pool every time"
