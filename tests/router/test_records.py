"""Decision records and contact records, the same on the in-memory and the DynamoDB store: why each offer went
where it went, and each contact's lifecycle (saved with the changes they describe, read back by period)."""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.routing import matching, records
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.model import ContactState, Presence
from tests.router.conftest import T0, World

QUEUES = ("default", "billing", "support")


def at(seconds: float) -> str:
    return clock.plus_seconds(T0, seconds)


def agent(world: World, agent_id: str, skills: dict[str, int] | None = None, **spec: Any) -> None:
    world.add_agent(agent_id, skills or {}, queues=spec.pop("queues", QUEUES), idle_since=at(-600), **spec)


def write(world: World, conversation_id: str, text: str, when: str = T0) -> None:
    world.clock.set(when)
    customer = f"cus_{conversation_id}"
    world.router.handle(ConversationMessage(conversation_id, customer, "webchat", f"m_{when}", when, text), when)
    world.run()


def offer_id(world: World, contact_id: str) -> str:
    contact = world.router.store.get_contact(contact_id)
    assert contact is not None and contact.offer_id
    return contact.offer_id


def decisions(world: World, contact_id: str) -> list[dict[str, Any]]:
    return world.router.store.decisions_of(contact_id)


def summary(world: World, contact_id: str) -> dict[str, Any]:
    [record] = world.router.store.records_of(contact_id)
    return records.summary(record)


def test_an_offer_records_every_candidate_its_ordering_key_and_why_others_were_skipped(world: World) -> None:
    world.router.policy = matching.Classic()  # these records are written against the classic order's keys
    agent(world, "ann", {"billing": 4, "english": 3})
    agent(world, "bob", {"billing": 5, "english": 1})  # lacks english at 2
    agent(world, "cat", {"billing": 3, "english": 2}, used=50)  # no room for a chat (20 of 60)
    agent(world, "dan", {"billing": 3, "english": 2})

    write(world, "c1", "I want a refund")

    [decision] = decisions(world, "c1")
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
    assert decision["offer_id"] == offer_id(world, "c1")


def test_the_next_offer_after_a_decline_says_who_declined(world: World) -> None:
    agent(world, "ann", {"billing": 4, "english": 3})
    agent(world, "dan", {"billing": 3, "english": 2})
    write(world, "c1", "refund")

    world.router.decline("ann", "c1", offer_id(world, "c1"))
    world.run()

    found = decisions(world, "c1")
    assert [d["agent_id"] for d in found] == ["ann", "dan"]
    assert {"id": "ann", "reason": "declined it before"} in found[1]["skipped"]


def test_a_freed_agent_s_choice_of_contact_is_recorded_with_the_contacts_it_considered(world: World) -> None:
    world.router.policy = matching.Classic()  # these records are written against the classic order's keys
    write(world, "c1", "hello")  # default queue, no skills, 60 s SLA
    write(world, "c2", "refund", when=at(5))  # billing: needs billing 3 and english 2, 10 min SLA
    write(world, "c3", "hola", when=at(10))
    agent(world, "eve", {"billing": 3, "english": 2}, presence=Presence.AWAY)

    world.clock.set(at(20))
    world.router.set_presence("eve", Presence.AVAILABLE)
    world.run()

    [decision] = decisions(world, "c1")
    assert decision["chosen_for"] == "agent"
    assert decision["agent_id"] == "eve"
    assert [r["id"] for r in decision["ranked"]] == ["c1", "c3", "c2"], "by SLA deadline"
    assert set(decision["ranked"][0]["key"]) == {"priority", "sla_deadline", "returning", "enqueued_at", "contact_id"}
    assert decision["ranked"][0]["key"]["returning"] is False


def test_a_contact_record_keeps_its_lifecycle_offer_outcomes_and_sla(world: World) -> None:
    agent(world, "ann", {"billing": 4, "english": 3})
    agent(world, "dan", {"billing": 3, "english": 2})
    write(world, "c1", "refund")
    world.clock.set(at(3))
    world.router.decline("ann", "c1", offer_id(world, "c1"))
    world.run()
    world.clock.set(at(8))
    world.router.accept("dan", "c1")
    world.clock.set(at(200))
    world.router.close("dan", "c1", "resolved")

    found = summary(world, "c1")
    assert [e["kind"] for e in found["lifecycle"]] == [
        "arrived",
        "queued",
        "offered",
        "declined",
        "offered",
        "accepted",
        "closed",
    ]
    assert [(o["agent_id"], o["outcome"]) for o in found["offers"]] == [("ann", "declined"), ("dan", "accepted")]
    assert (found["queue"], found["rule"], found["required_skills"]) == (
        "billing",
        "billing questions",
        {"billing": 3, "english": 2},
    )
    assert (found["accepted_by"], found["wait_seconds"], found["handle_seconds"]) == ("dan", 8, 192)
    assert found["message_id"] == f"m_{T0}", "which message opened it (its text stays in the timeline)"
    assert found["facts"] == {"language": None, "customer_tier": None, "customer_tags": []}
    assert (found["sla_met"], found["wrap_up"], found["abandoned"], found["state"]) == (
        True,
        "resolved",
        False,
        "closed",
    )


def test_an_accept_and_a_close_retried_record_once_what_they_write_after_their_save(world: World) -> None:
    """Accept and close write their record events after the contact's save; a retry that finds the change made
    writes them again in case the first attempt died in between, and only then."""
    agent(world, "dan", {"billing": 3, "english": 2})
    write(world, "c1", "refund")
    world.clock.set(at(5))
    world.router.accept("dan", "c1")
    world.clock.set(at(9))
    world.router.accept("dan", "c1")  # the console's retry (or a double click)
    world.clock.set(at(100))
    world.router.close("dan", "c1", "resolved")
    world.clock.set(at(101))
    world.router.close("dan", "c1", "resolved")

    found = summary(world, "c1")
    assert [e["kind"] for e in found["lifecycle"]] == ["arrived", "queued", "offered", "accepted", "closed"]
    assert (found["wait_seconds"], found["handle_seconds"]) == (5, 95), "the first attempt's moments"


def test_a_close_retried_late_leaves_the_customer_with_the_agent_who_served_them_since(world: World) -> None:
    agent(world, "dan", {"billing": 3, "english": 2})
    agent(world, "eve", {"billing": 3, "english": 2})
    for conversation, when in (("c1", T0), ("c2", at(200))):
        world.clock.set(when)
        message = ConversationMessage(conversation, "cus_same", "webchat", f"m_{when}", when, "refund")
        world.router.handle(message, when)
        world.run()
        contact = world.router.store.get_contact(conversation)
        assert contact is not None and contact.offered_to
        world.router.accept(contact.offered_to, conversation)
        world.clock.set(clock.plus_seconds(when, 100))
        world.router.close(contact.offered_to, conversation, "resolved")
    later = world.router.store.get_contact("c2")
    assert later is not None and later.assigned_to
    first = world.router.store.get_contact("c1")
    assert first is not None and first.assigned_to

    world.clock.set(at(400))
    world.router.close(first.assigned_to, "c1", "resolved")  # a stale console's retry

    profile = world.router.store.get_customer("cus_same")
    assert profile is not None
    assert (profile["last_agent_id"], profile["last_served_at"]) == (later.assigned_to, later.closed_at)


def test_an_expired_offer_escalations_and_a_late_accept_missing_the_sla_are_recorded(world: World) -> None:
    agent(world, "ann", {"billing": 4, "english": 3})
    write(world, "c1", "refund")
    world.at(31)  # the 30 s offer timeout; nobody else can take it
    agent(world, "dan", {"billing": 3, "english": 2})
    world.clock.set(at(700))  # past the 10 min SLA
    world.router.sweep(at(700))
    world.run()
    world.router.accept("dan", "c1")

    found = summary(world, "c1")
    assert [(o["agent_id"], o["outcome"]) for o in found["offers"]] == [("ann", "expired"), ("dan", "accepted")]
    assert [e["step"] for e in found["lifecycle"] if e["kind"] == "escalated"] == [0, 1, 2, 3]
    assert found["sla_met"] is False


def test_a_withdrawn_offer_and_an_abandoned_close_are_recorded(world: World) -> None:
    agent(world, "ann")
    agent(world, "dan")
    write(world, "c1", "hello")
    first = world.router.store.get_contact("c1")
    assert first is not None and first.offered_to and first.offer_id
    world.router.withdraw_offer(first.offered_to, "c1", first.offer_id)
    world.run()
    taker = world.router.store.get_contact("c1").offered_to
    world.router.accept(taker, "c1")
    world.clock.set(at(40))
    world.router.close(taker, "c1", "abandoned")

    found = summary(world, "c1")
    assert [o["outcome"] for o in found["offers"]] == ["withdrawn", "accepted"]
    assert found["abandoned"] is True
    assert found["lifecycle"][-1]["kind"] == "abandoned"


def test_a_period_of_records_is_read_back_by_arrival(world: World) -> None:
    agent(world, "ann")
    write(world, "c1", "hello", when=at(0))
    write(world, "c2", "hello", when=at(3600))
    write(world, "c3", "hello", when=at(86400))  # the next day

    store = world.router.store
    assert [r["contact_id"] for r in store.records_between(at(0), at(3601))] == ["c1", "c2"]
    assert [r["contact_id"] for r in store.records_between(at(1), at(90000))] == ["c2", "c3"]


def test_a_reopened_conversation_is_a_new_contact_record(world: World) -> None:
    agent(world, "ann")
    write(world, "c1", "hello")
    world.router.accept("ann", "c1")
    world.clock.set(at(60))
    world.router.close("ann", "c1", "resolved")
    world.run()
    write(world, "c1", "me again", when=at(120))

    found = world.router.store.records_of("c1")
    assert [r["arrived_at"] for r in found] == [T0, at(120)]
    assert [r["state"] for r in found] == ["closed", "offered"]
    assert world.router.store.get_contact("c1").state is ContactState.OFFERED
