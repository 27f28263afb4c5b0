"""Routing scenarios that must come out the same on the in-memory and the DynamoDB store."""

from __future__ import annotations

import pytest

from chalicelib.routing.events import AgentFreed, ConversationMessage
from chalicelib.routing.model import Contact, ContactState, Presence
from chalicelib.store.retry import TransactionConflict
from tests.router.conftest import T0, World


def write(world: World, conversation: str, text: str = "hello", customer: str | None = None, **facts: str) -> None:
    """A customer writes: the routing event the ingest handler would publish."""
    now = world.clock.now()
    event = ConversationMessage(
        conversation,
        customer or f"cus_{conversation}",
        facts.pop("channel", "webchat"),
        f"m_{conversation}_{now}",
        now,
        text,
        facts.pop("language", None),
    )
    world.router.handle(event, now)
    world.run()


def state(world: World, contact_id: str) -> ContactState:
    contact = world.router.store.get_contact(contact_id)
    assert contact is not None
    return contact.state


def test_the_most_proficient_available_agent_gets_the_contact(world: World) -> None:
    world.add_agent("ann", {"billing": 3, "english": 2}, queues=("billing",))
    world.add_agent("bob", {"billing": 5, "english": 2}, queues=("billing",))
    world.add_agent("cat", {"billing": 5, "english": 5}, queues=("billing",), presence=Presence.AWAY)
    write(world, "c1", "I want a refund")
    assert world.offers_to("bob") == ["c1"]
    assert world.offers_to("ann") == [] and world.offers_to("cat") == []


def test_a_full_agent_gets_the_highest_priority_waiting_contact_when_freed(world: World) -> None:
    world.add_agent("ann", {"billing": 3, "english": 2}, capacity=20)
    write(world, "c1")
    world.router.accept("ann", "c1")
    write(world, "plain")
    world.at(5)
    write(
        world, "refund", "refund please"
    )  # billing questions: priority 0 too, but an earlier SLA deadline (10m vs 60s)
    world.router.close("ann", "c1", "resolved")
    world.run()
    assert world.offers_to("ann") == ["c1", "plain"], (
        "the plain chat's 60 s deadline is earlier than the refund's 10 min"
    )
    assert state(world, "refund") is ContactState.QUEUED


def test_a_declined_contact_goes_to_the_next_agent_and_never_back(world: World) -> None:
    world.add_agent("ann", {}, idle_since="2026-11-24T09:00:00.000000Z")
    world.add_agent("bob", {}, idle_since="2026-11-24T09:30:00.000000Z")
    write(world, "c1")
    assert world.offers_to("ann") == ["c1"], "the longest idle of two equal agents first"
    world.router.decline("ann", "c1")
    world.run()
    assert world.offers_to("bob") == ["c1"]
    world.router.decline("bob", "c1")
    world.run()
    assert world.offers_to("ann") == ["c1"], "never offered back to who declined"
    assert state(world, "c1") is ContactState.QUEUED


def test_unanswered_offers_expire_to_the_next_agent_and_the_absent_agent_goes_away(world: World) -> None:
    world.add_agent("ann", {}, idle_since="2026-11-24T09:00:00.000000Z")
    world.add_agent("bob", {}, idle_since="2026-11-24T09:30:00.000000Z")
    write(world, "c1")
    write(world, "c2")
    assert world.offers_to("ann") == ["c1"] and world.offers_to("bob") == ["c2"]
    world.at(31)  # the webchat offer timeout is 30 s
    ann = world.router.store.get_agent("ann")
    assert world.offers_to("bob") == ["c2", "c1"] and world.offers_to("ann") == ["c1", "c2"], "each to the other"
    assert ann is not None and ann.consecutive_expired >= 1
    world.at(62)
    ann, bob = world.router.store.get_agent("ann"), world.router.store.get_agent("bob")
    assert ann is not None and bob is not None
    assert ann.presence is Presence.AWAY and bob.presence is Presence.AWAY, "two offers in a row unanswered: Away"
    assert {state(world, "c1"), state(world, "c2")} == {ContactState.QUEUED}


@pytest.mark.parametrize("answered", ["accepted", "accepted and closed", "before the first expired"])
def test_offers_expire_in_a_row_only_until_the_agent_accepts_one(world: World, answered: str) -> None:
    """Two offers unanswered in a row set an agent Away (the fixture's limit); an accept in between starts
    the count again, whether the accepted contact is still open or already closed at the next expiry."""
    world.add_agent("ann", {}, idle_since="2026-11-24T09:00:00.000000Z")
    if answered == "before the first expired":
        write(world, "kept")
        world.router.accept("ann", "kept")
    write(world, "c1")
    world.at(31)  # c1's offer expires: one in a row
    ann = world.router.store.get_agent("ann")
    assert ann is not None and ann.presence is Presence.AVAILABLE and ann.consecutive_expired == 1
    if answered != "before the first expired":
        world.at(35)
        write(world, "kept")
        world.router.accept("ann", "kept")
        if answered == "accepted and closed":
            world.at(38)
            world.router.close("ann", "kept", "resolved")
            world.run()
    world.at(40)
    write(world, "c3")
    assert world.offers_to("ann")[-1] == "c3"
    world.at(71)  # c3's offer expires too
    ann = world.router.store.get_agent("ann")
    assert ann is not None
    if answered == "before the first expired":
        assert ann.presence is Presence.AWAY, "two offers in a row unanswered since her last accept"
    else:
        assert ann.presence is Presence.AVAILABLE, "she accepted one in between: only one in a row"


@pytest.mark.parametrize("meanwhile", [None, "went away"])
def test_a_close_frees_the_agent_with_their_copy_and_a_stale_copy_never_wins(world: World, meanwhile: str) -> None:
    """The close's AgentFreed carries the agent as the close saved them, so their next offer is planned without
    reading them; if they changed before it is handled, the offer's save conflicts and they are read afresh."""
    world.add_agent("ann", {}, capacity=20)  # one chat at a time
    write(world, "c1")
    world.router.accept("ann", "c1")
    write(world, "c2")
    assert world.offers_to("ann") == ["c1"] and state(world, "c2") is ContactState.QUEUED
    world.router.close("ann", "c1", "resolved")
    [freed] = [e for e in world.bus.events if isinstance(e, AgentFreed)]
    assert freed.agent is not None and freed.agent["used"] == 0 and freed.agent["presence"] == "Available"
    if meanwhile == "went away":
        world.router.set_presence("ann", Presence.AWAY)
    world.run()
    if meanwhile is None:
        assert world.offers_to("ann") == ["c1", "c2"] and state(world, "c2") is ContactState.OFFERED
    else:
        assert world.offers_to("ann") == ["c1"] and state(world, "c2") is ContactState.QUEUED


def test_an_escalation_step_relaxes_the_skill_so_a_less_skilled_agent_gets_it(world: World) -> None:
    world.add_agent("junior", {"billing": 2, "english": 2}, queues=("billing",))
    write(world, "c1", "where is my invoice")
    assert world.offers_to("junior") == []
    world.at(61)  # step 1: billing 2 is enough
    assert world.offers_to("junior") == ["c1"]


def test_the_preferred_agent_gets_a_returning_customer(world: World) -> None:
    world.add_agent("ann", {}, idle_since="2026-11-24T09:00:00.000000Z")
    world.add_agent("bob", {}, idle_since="2026-11-24T09:30:00.000000Z")
    write(world, "first", customer="cus_kim")
    world.router.accept("ann", "first")
    world.at(60)
    world.router.close("ann", "first", "resolved")
    world.run()
    world.at(120)
    write(world, "second", customer="cus_kim")
    assert world.offers_to("ann") == ["first", "second"], "ann served kim within the hour"
    assert world.offers_to("bob") == []


def test_two_routers_planning_the_same_contact_cannot_both_commit(world: World) -> None:
    world.add_agent("ann", {})
    world.add_agent("bob", {})
    world.router.store.create_contact(None, Contact("c1", "cus_1", "webchat", T0))
    first = world.router.plan_offer("c1", T0)
    second = world.router.plan_offer("c1", T0)
    assert first is not None and second is not None
    world.router.commit_offer(first)
    with pytest.raises(TransactionConflict):
        world.router.commit_offer(second)
    contact = world.router.store.get_contact("c1")
    assert contact is not None and contact.offer_id == first.offer_id


def test_a_closed_queue_holds_its_contacts_until_the_sweep_after_it_opens(world: World) -> None:
    world.add_agent("sol", {"spanish": 3}, queues=("support",))
    world.clock.set("2026-11-24T19:00:00.000000Z")  # support is open 08:00-18:00 London
    write(world, "c1", "hola", language="es")
    assert world.offers_to("sol") == [] and state(world, "c1") is ContactState.QUEUED
    world.clock.set("2026-11-25T08:00:30.000000Z")
    world.router.sweep(world.clock.now())
    assert world.offers_to("sol") == ["c1"]


def test_an_agent_made_available_takes_what_waits(world: World) -> None:
    world.add_agent("ann", {}, presence=Presence.OFFLINE)
    write(world, "c1")
    assert world.offers_to("ann") == []
    agent, changed = world.router.set_presence("ann", Presence.AVAILABLE)
    assert changed and agent.presence is Presence.AVAILABLE
    assert any(isinstance(e, AgentFreed) for e in world.bus.events)
    world.run()
    assert world.offers_to("ann") == ["c1"]
