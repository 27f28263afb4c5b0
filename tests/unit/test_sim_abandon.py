"""Router.abandon: a customer who leaves before an agent accepts, on the in-memory adapters."""

from __future__ import annotations

from chalicelib.routing import memory
from chalicelib.routing.config import default_config
from chalicelib.routing.events import AgentFreed, ConversationMessage
from chalicelib.routing.model import Agent, ContactState, Presence

START = "2026-04-07T10:00:00.000000Z"


def _world() -> memory.MemoryWorld:
    world = memory.world(default_config(), START)
    world.store.add_agent(Agent("ada", "Ada", Presence.AVAILABLE, {}, capacity=20, queues=("default",)))
    return world


def _chat(world: memory.MemoryWorld, conversation: str, at: str = START) -> None:
    world.router.handle(
        ConversationMessage(conversation, f"cust-{conversation}", "webchat", f"m-{conversation}", at, "hello"), at
    )


def test_an_offered_contact_that_abandons_is_withdrawn_and_the_agent_freed() -> None:
    world = _world()
    _chat(world, "c1")
    assert world.store.contacts["c1"].state is ContactState.OFFERED
    world.notifier.pushed.clear()

    later = "2026-04-07T10:00:05.000000Z"
    world.clock.set(later)
    abandoned = world.router.abandon("c1", later)

    assert abandoned is not None
    stored = world.store.contacts["c1"]
    assert (stored.state, stored.wrap_up, stored.abandoned_at, stored.closed_at) == (
        ContactState.CLOSED,
        "abandoned",
        later,
        later,
    )
    assert stored.offered_to is None and stored.cost == 0
    assert world.store.agents["ada"].used == 0
    assert ("ada", {"type": "offer_withdrawn", "offer_id": "off_0000000001", "reason": "abandoned"}) in (
        world.notifier.pushed
    )
    assert any(isinstance(e, AgentFreed) and e.agent_id == "ada" for e in world.bus.events)


def test_a_queued_contact_that_abandons_leaves_the_queue() -> None:
    world = _world()
    _chat(world, "c1")
    _chat(world, "c2")  # Ada has room for one chat only: c2 waits
    assert world.store.contacts["c2"].state is ContactState.QUEUED

    world.router.abandon("c2", "2026-04-07T10:01:00.000000Z")

    assert world.store.waiting_count("default") == 0
    assert world.store.contacts["c2"].state is ContactState.CLOSED
    assert world.store.agents["ada"].used == 20  # still has c1


def test_an_accepted_contact_cannot_abandon() -> None:
    world = _world()
    _chat(world, "c1")
    world.router.accept("ada", "c1")

    assert world.router.abandon("c1", "2026-04-07T10:01:00.000000Z") is None
    assert world.store.contacts["c1"].state is ContactState.ASSIGNED
