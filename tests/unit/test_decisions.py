"""Every decision explained, and every contact's lifecycle kept: the router over the in-memory adapters.

The same scenarios run against moto in tests/integration/test_decisions_dynamo.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import clock
from chalicelib.routing import matching, memory, records
from chalicelib.routing.config import parse_config
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from tests.support import fixture

T0 = "2026-11-24T10:00:00.000000Z"  # a Tuesday, 10:00 in London: every queue of the test config is open


def at(seconds: float) -> str:
    return clock.plus_seconds(T0, seconds)


@pytest.fixture
def world() -> memory.MemoryWorld:
    return memory.world(parse_config(fixture("routing/engine_test.yaml").decode()), T0)


def add_agent(world: memory.MemoryWorld, agent_id: str, **spec: Any) -> None:
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "name": agent_id.title(),
        "presence": Presence.AVAILABLE,
        "skills": {},
        "queues": ("default", "billing", "support"),
        "idle_since": at(-600),
    }
    world.store.add_agent(Agent(**{**values, **spec}))


def write(world: memory.MemoryWorld, conversation_id: str, text: str, when: str = T0) -> None:
    world.clock.set(when)
    event = ConversationMessage(
        conversation_id, f"cus_{conversation_id}", "webchat", f"m_{conversation_id}", when, text
    )
    world.router.handle(event, when)
    world.run_events()


def test_an_offer_records_every_candidate_its_ordering_key_and_why_others_were_skipped(world):
    add_agent(world, "ann", skills={"billing": 4, "english": 3})
    add_agent(world, "bob", skills={"billing": 5, "english": 1})  # lacks english at 2
    add_agent(world, "cat", skills={"billing": 3, "english": 2}, used=50)  # no room for a chat (20 of 60)
    add_agent(world, "dan", skills={"billing": 3, "english": 2})

    write(world, "c1", "I want a refund")

    [decision] = world.store.decisions_of("c1")
    assert decision["agent_id"] == "ann"
    assert decision["chosen_for"] == "contact"
    assert decision["policy"] == "classic"
    assert [(r["id"], r["rank"]) for r in decision["ranked"]] == [("ann", 1), ("dan", 2)]
    assert decision["ranked"][0]["key"] == {
        "preferred": False,
        "proficiency": 7,
        "load_permille": 0,
        "idle_since": at(-600),
        "agent_id": "ann",
    }
    assert decision["skipped"] == [
        {"id": "bob", "reason": "skill english 1<2"},
        {"id": "cat", "reason": "capacity"},
    ]
    assert (decision["ranked_total"], decision["skipped_total"]) == (2, 2)
    assert decision["offer_id"] == world.store.get_contact("c1").offer_id


def test_the_next_offer_after_a_decline_says_who_declined(world):
    add_agent(world, "ann", skills={"billing": 4, "english": 3})
    add_agent(world, "dan", skills={"billing": 3, "english": 2})
    write(world, "c1", "refund")
    first = world.store.get_contact("c1")

    world.router.decline("ann", "c1", first.offer_id)
    world.run_events()

    decisions = world.store.decisions_of("c1")
    assert [d["agent_id"] for d in decisions] == ["ann", "dan"]
    assert {"id": "ann", "reason": "declined it before"} in decisions[1]["skipped"]


def test_a_freed_agent_s_choice_of_contact_is_recorded_with_the_contacts_it_considered(world):
    write(world, "c1", "hello")  # default queue, no skills
    write(world, "c2", "refund", when=at(5))  # billing: needs billing 3 and english 2
    write(world, "c3", "hola", when=at(10))
    add_agent(world, "eve", skills={"billing": 3, "english": 2}, presence=Presence.AWAY)

    world.clock.set(at(20))
    world.router.set_presence("eve", Presence.AVAILABLE)
    world.run_events()

    decisions = world.store.decisions_of("c1")
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision["chosen_for"] == "agent"
    assert decision["agent_id"] == "eve"
    ranked = [r["id"] for r in decision["ranked"]]
    assert ranked[0] == "c1"
    assert "c2" in ranked  # she could have taken the refund too
    assert set(decision["ranked"][0]["key"]) == {"priority", "sla_deadline", "returning", "enqueued_at", "contact_id"}


def test_a_decision_lists_at_most_25_ranked_and_25_skipped_but_counts_them_all():
    contact = Contact("c1", "cus_1", "webchat", T0, required_skills={"billing": 3})
    agents = [
        Agent(f"a{n:02d}", "A", Presence.AVAILABLE, {"billing": 3 if n % 2 else 1}, idle_since=T0) for n in range(70)
    ]
    ranking = matching.rank_agents(contact, agents, lambda channel: 20)

    decision = records.offer_decision(
        ranking, chosen_for="contact", contact_id="c1", offer_id="off_1", made_at=T0, key_names=("a", "b")
    ).as_item()

    assert (len(decision["ranked"]), len(decision["skipped"])) == (records.MAX_LISTED, records.MAX_LISTED)
    assert (decision["ranked_total"], decision["skipped_total"]) == (35, 35)
    assert decision["ranked"][0] == {
        "id": "a01",
        "rank": 1,
        "key": {"a": True, "b": -3, "key2": 0, "key3": T0, "key4": "a01"},
    }
    assert decision["agent_id"] == "a01"


def test_a_contact_record_keeps_its_lifecycle_offer_outcomes_and_sla(world):
    add_agent(world, "ann", skills={"billing": 4, "english": 3})
    add_agent(world, "dan", skills={"billing": 3, "english": 2})
    write(world, "c1", "refund")
    world.clock.set(at(3))
    world.router.decline("ann", "c1", world.store.get_contact("c1").offer_id)
    world.run_events()
    world.clock.set(at(8))
    world.router.accept("dan", "c1")
    world.clock.set(at(200))
    world.router.close("dan", "c1", "resolved")

    [record] = world.store.records_of("c1")
    summary = records.summary(record)
    assert [e["kind"] for e in summary["lifecycle"]] == [
        "arrived",
        "queued",
        "offered",
        "declined",
        "offered",
        "accepted",
        "closed",
    ]
    assert [(o["agent_id"], o["outcome"]) for o in summary["offers"]] == [("ann", "declined"), ("dan", "accepted")]
    assert summary["queue"] == "billing"
    assert summary["accepted_by"] == "dan"
    assert summary["wait_seconds"] == 8
    assert summary["handle_seconds"] == 192
    assert summary["sla_met"] is True
    assert summary["wrap_up"] == "resolved"
    assert summary["abandoned"] is False


def test_an_offer_left_to_expire_and_a_late_accept_miss_the_sla(world):
    add_agent(world, "ann", skills={"billing": 4, "english": 3})
    write(world, "c1", "refund")
    world.fire_timers_until(at(31))  # the 30 s offer timeout; nobody else can take it
    add_agent(world, "dan", skills={"billing": 3, "english": 2})
    world.clock.set(at(700))  # past the 10 min SLA
    world.router.sweep(at(700))
    world.router.accept("dan", "c1")

    summary = records.summary(world.store.records_of("c1")[0])
    assert [(o["agent_id"], o["outcome"]) for o in summary["offers"]] == [("ann", "expired"), ("dan", "accepted")]
    assert summary["sla_met"] is False


def test_a_withdrawn_offer_and_an_abandoned_close_are_recorded(world):
    add_agent(world, "ann", skills={})
    add_agent(world, "dan", skills={})
    write(world, "c1", "hello")
    offer = world.store.get_contact("c1")
    world.router.withdraw_offer(offer.offered_to, "c1", offer.offer_id)
    world.run_events()
    taker = world.store.get_contact("c1").offered_to
    world.router.accept(taker, "c1")
    world.clock.set(at(40))
    world.router.close(taker, "c1", "abandoned")

    summary = records.summary(world.store.records_of("c1")[0])
    assert summary["offers"][0]["outcome"] == "withdrawn"
    assert summary["abandoned"] is True
    assert summary["lifecycle"][-1]["kind"] == "abandoned"


def test_a_period_of_records_is_read_back_by_arrival(world):
    add_agent(world, "ann", skills={})
    write(world, "c1", "hello", when=at(0))
    write(world, "c2", "hello", when=at(3600))
    write(world, "c3", "hello", when=at(86400))  # the next day

    assert [r["contact_id"] for r in world.store.records_between(at(0), at(3601))] == ["c1", "c2"]
    assert [r["contact_id"] for r in world.store.records_between(at(1), at(90000))] == ["c2", "c3"]


def test_a_reopened_conversation_is_a_new_contact_record(world):
    add_agent(world, "ann", skills={})
    write(world, "c1", "hello")
    world.router.accept("ann", "c1")
    world.clock.set(at(60))
    world.router.close("ann", "c1", "resolved")
    write(world, "c1", "me again", when=at(120))

    found = world.store.records_of("c1")
    assert [r["arrived_at"] for r in found] == [T0, at(120)]
    assert world.store.get_contact("c1").state is ContactState.OFFERED


def test_ordering_keys_are_named_readably_and_unnamed_ones_by_position():
    assert matching.named_key(("!preferred", "-proficiency", "load"), (True, -7, 333)) == {
        "preferred": False,
        "proficiency": 7,
        "load": 333,
    }
    assert matching.named_key((), (1, "x")) == {"key0": 1, "key1": "x"}
