"""What a call's lifecycle does to the router, on both stores: a caller who hangs up, an agent leg that rings out."""

from __future__ import annotations

from chalicelib.routing.events import AgentLeftCall, AgentUnreachable, CallerLeft, ConversationMessage
from chalicelib.routing.model import ContactState, Presence
from tests.router.conftest import T0, World
from tests.router.test_records import agent, at


def call(world: World, conversation_id: str, when: str = T0) -> None:
    world.clock.set(when)
    event = ConversationMessage(conversation_id, f"cus_{conversation_id}", "voice", f"m_{when}", when, "Incoming call")
    world.router.handle(event, when)
    world.run()


def test_a_caller_who_leaves_while_offered_is_abandoned_counted_once_and_frees_the_agent(world: World) -> None:
    agent(world, "ann")
    call(world, "c1")
    offered = world.router.store.get_contact("c1")
    assert offered is not None and offered.state is ContactState.OFFERED
    home = offered.queues[0]

    world.clock.set(at(30))
    for _ in range(2):  # Twilio's two signals, or a retry: the second changes nothing
        world.router.handle(CallerLeft("c1", "CA1"), world.clock.now())
        world.run()

    closed = world.router.store.get_contact("c1")
    assert closed is not None and (closed.state, closed.wrap_up) == (ContactState.CLOSED, "abandoned")
    assert world.router.store.queue_stats(home)["abandoned"] == 1
    assert [r for r in world.base.metrics.rows if r[0] == "Abandoned"] == [("Abandoned", 1.0, home, "voice")]
    assert [r[1] for r in world.base.metrics.rows if r[0] == "TimeToAbandon"] == [30.0]
    ann = world.router.store.get_agent("ann")
    assert ann is not None and ann.used == 0


def test_an_agent_leg_that_rings_out_moves_the_call_to_the_next_agent_keeping_its_place(world: World) -> None:
    agent(world, "ann")
    call(world, "c1")
    world.router.accept("ann", "c1")
    agent(world, "bob")
    world.run()
    before = world.router.store.get_contact("c1")
    assert before is not None and before.assigned_to == "ann"

    world.clock.set(at(25))
    for _ in range(2):
        world.router.handle(AgentUnreachable("c1", "ann", "CA2"), world.clock.now())
        world.run()

    after = world.router.store.get_contact("c1")
    assert after is not None and after.state is ContactState.OFFERED and after.offered_to == "bob"
    assert (after.enqueued_at, after.sla_deadline) == (before.enqueued_at, before.sla_deadline)
    ann = world.router.store.get_agent("ann")
    assert ann is not None and ann.used == 0 and ann.consecutive_expired == 1 and ann.presence is Presence.AVAILABLE
    assert world.offers_to("bob") == ["c1"]


def test_a_caller_who_leaves_an_assigned_call_leaves_the_contact_for_wrap_up(world: World) -> None:
    agent(world, "ann")
    call(world, "c1")
    world.router.accept("ann", "c1")
    world.router.handle(CallerLeft("c1", "CA1"), world.clock.now())
    contact = world.router.store.get_contact("c1")
    assert contact is not None and contact.state is ContactState.ASSIGNED
    assert ("ann", {"type": "call_ended", "conversation_id": "c1"}) in world.base.notifier.pushed


def test_a_caller_who_leaves_before_the_accepting_agent_reached_them_is_abandoned_and_the_accept_undone(
    world: World,
) -> None:
    agent(world, "ann")
    call(world, "c1")
    world.router.accept("ann", "c1")
    home = world.router.store.get_contact("c1").queues[0]
    assert world.router.store.queue_stats(home)["working"] == 1

    world.clock.set(at(40))
    for _ in range(2):
        world.router.handle(CallerLeft("c1", "CA1", before_agent=True), world.clock.now())
        world.run()

    contact = world.router.store.get_contact("c1")
    assert contact is not None and (contact.state, contact.wrap_up) == (ContactState.CLOSED, "abandoned")
    stats = world.router.store.queue_stats(home)
    assert (stats["abandoned"], stats["working"], stats.get("sla_met", 0)) == (1, 0, 0)
    ann = world.router.store.get_agent("ann")
    assert ann is not None and ann.used == 0
    assert ("ann", {"type": "closed", "contact_id": "c1", "reason": "abandoned"}) in world.base.notifier.pushed
    assert [r[1] for r in world.base.metrics.rows if r[0] == "TimeToAbandon"] == [40.0]


def test_an_unreachable_agents_accept_is_taken_back_from_the_queues_counts(world: World) -> None:
    agent(world, "ann")
    call(world, "c1")
    world.router.accept("ann", "c1")
    home = world.router.store.get_contact("c1").queues[0]
    world.router.handle(AgentUnreachable("c1", "ann", "CA2"), world.clock.now())
    world.router.handle(AgentUnreachable("c1", "ann", "CA2"), world.clock.now())
    stats = world.router.store.queue_stats(home)
    assert (stats["working"], stats.get("sla_met", 0), stats.get("sla_breached", 0)) == (0, 0, 0)


def test_the_queue_keeps_the_total_time_to_abandon(world: World) -> None:
    call(world, "c1")
    call(world, "c2", at(10))
    world.clock.set(at(30))
    world.router.handle(CallerLeft("c1", "CA1"), world.clock.now())
    world.router.handle(CallerLeft("c2", "CA2"), world.clock.now())
    home = world.router.store.get_contact("c1").queues[0]
    stats = world.router.store.queue_stats(home)
    assert (stats["abandoned"], stats["abandon_seconds"]) == (2, 50)


def test_an_agent_who_left_a_call_puts_it_back_at_the_head_of_its_queue_once(world: World) -> None:
    agent(world, "ann")
    call(world, "c1")
    world.router.accept("ann", "c1")
    world.run()
    call(world, "c2", at(10))  # a later caller waits: ann is busy
    before = world.router.store.get_contact("c1")
    assert before is not None

    world.clock.set(at(60))
    for _ in range(2):  # a repeat changes nothing
        world.router.handle(AgentLeftCall("c1", "ann", "CA2"), world.clock.now())
        world.run()

    after = world.router.store.get_contact("c1")
    assert after is not None and after.state is ContactState.OFFERED and after.offered_to == "ann"
    assert (after.enqueued_at, after.sla_deadline) == (before.enqueued_at, before.sla_deadline)
    later = world.router.store.get_contact("c2")
    assert later is not None and later.state is ContactState.QUEUED, "c1 is ahead of the later caller"
    assert (
        "ann",
        {"type": "call_requeued", "conversation_id": "c1", "reason": "agent_left"},
    ) in world.base.notifier.pushed
    ann = world.router.store.get_agent("ann")
    assert ann is not None and ann.consecutive_expired == 0, "not an expired offer"
