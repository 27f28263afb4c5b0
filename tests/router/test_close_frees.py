"""A close frees the agent's capacity; their next contact comes through the routing queue only when one waits.

The close looks (with the reads the ``AgentFreed`` handler would make) whether a waiting contact fits the freed
agent; only then does it publish ``AgentFreed``, whose handler offers it (and is redelivered if it dies).
Nothing waiting: no event, no queue hop, and a contact arriving later finds the agent free in the pool.
"""

from __future__ import annotations

from chalicelib.routing.events import AgentFreed
from chalicelib.routing.model import Contact, ContactState
from tests.router.conftest import World
from tests.router.test_scenarios import state, write


def _freed(world: World) -> list[AgentFreed]:
    return [e for e in world.bus.events if isinstance(e, AgentFreed)]


def _one_chat_agent_working_on(world: World, contact: str) -> None:
    world.add_agent("ann", {}, capacity=20)  # one chat at a time
    write(world, contact)
    world.router.accept("ann", contact)


def test_a_close_with_nothing_waiting_publishes_no_agent_freed_and_the_next_contact_is_offered_at_once(
    world: World,
) -> None:
    _one_chat_agent_working_on(world, "c1")
    world.router.close("ann", "c1", "resolved")
    assert _freed(world) == [], "nothing waits: no routing event to hand the agent work"
    assert world.run() == 0
    agent = world.router.store.get_agent("ann")
    assert agent is not None and agent.used == 0
    write(world, "c2")
    assert world.offers_to("ann") == ["c1", "c2"] and state(world, "c2") is ContactState.OFFERED


def test_a_close_with_a_contact_waiting_for_the_agent_hands_it_to_them_through_the_queue(world: World) -> None:
    _one_chat_agent_working_on(world, "c1")
    write(world, "c2")
    assert state(world, "c2") is ContactState.QUEUED
    world.router.close("ann", "c1", "resolved")
    [freed] = _freed(world)
    assert freed.agent_id == "ann" and freed.agent is not None and freed.agent["used"] == 0
    assert world.offers_to("ann") == ["c1"], "offered by the event's handler, not by the close"
    world.run()
    assert world.offers_to("ann") == ["c1", "c2"] and state(world, "c2") is ContactState.OFFERED


def test_a_waiting_contact_the_agent_cannot_take_publishes_no_agent_freed(world: World) -> None:
    _one_chat_agent_working_on(world, "c1")
    write(world, "refund", "refund please")  # billing queue, billing skills: not ann's
    world.router.close("ann", "c1", "resolved")
    assert _freed(world) == []
    world.run()
    assert state(world, "refund") is ContactState.QUEUED and world.offers_to("ann") == ["c1"]


def test_a_contact_queued_just_after_the_closes_look_is_offered_by_the_next_sweep(world: World) -> None:
    """The race the look leaves open (as the handler's index read does): the contact was planned while the agent
    was full, and stored queued after the close looked. The minute sweep offers it."""
    _one_chat_agent_working_on(world, "c1")
    world.router.close("ann", "c1", "resolved")
    assert _freed(world) == []
    world.router.store.create_contact(None, Contact("late", "cus_late", "webchat", world.clock.now()))
    world.router.sweep(world.clock.now())
    assert world.offers_to("ann") == ["c1", "late"] and state(world, "late") is ContactState.OFFERED
