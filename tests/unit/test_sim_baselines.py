"""The baselines of the routing lab, as Router.policy on the in-memory world: who gets the next contact."""

from __future__ import annotations

from chalicelib.routing import memory
from chalicelib.routing.config import default_config
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.model import Agent, Contact, Presence
from chalicelib.sim.baselines import LongestIdle, RoundRobin
from chalicelib.sim.simulator import policy_named

START = "2026-04-07T10:00:00.000000Z"


def _world(policy: object) -> memory.MemoryWorld:
    world = memory.world(default_config(), START)
    world.router.policy = policy  # type: ignore[assignment]
    # Bea is the more proficient (classic routing prefers her) and holds six chats; Ada has been idle the longest.
    world.store.add_agent(
        Agent("ada", "Ada", Presence.AVAILABLE, {"billing": 3}, queues=("billing",), idle_since="2026-04-07T08:00:00Z")
    )
    world.store.add_agent(
        Agent(
            "bea",
            "Bea",
            Presence.AVAILABLE,
            {"billing": 5},
            capacity=120,
            queues=("billing",),
            idle_since="2026-04-07T09:00:00Z",
        )
    )
    return world


def _refund(world: memory.MemoryWorld, n: int) -> str | None:
    at = f"2026-04-07T10:00:{n:02d}.000000Z"
    world.router.handle(ConversationMessage(f"c{n}", f"u{n}", "webchat", f"m{n}", at, "refund please"), at)
    return world.store.contacts[f"c{n}"].offered_to


def test_longest_idle_ignores_proficiency() -> None:
    assert _refund(_world(policy_named("classic")), 1) == "bea"
    world = _world(LongestIdle())
    # The least loaded first (Bea's third of a load is less than Ada's), then the longest idle.
    assert [_refund(world, n) for n in range(1, 5)] == ["ada", "bea", "bea", "ada"]


def test_round_robin_rotates_whatever_the_load_and_idle_time() -> None:
    policy = RoundRobin()
    world = _world(policy)
    world.notifier.on_push = lambda agent_id, payload: payload["type"] == "offer" and policy.took_turn(agent_id)

    offered = [_refund(world, n) for n in range(1, 5)]

    assert offered == ["ada", "bea", "ada", "bea"]


def test_baselines_take_waiting_contacts_first_come_first_served_within_priority() -> None:
    agent = Agent("ada", "Ada", Presence.AVAILABLE, {})
    early = Contact("c1", "u1", "webchat", "2026-04-07T10:00:00Z", priority=0, sla_deadline="2026-04-07T10:05:00Z")
    late_urgent = Contact(
        "c2", "u2", "webchat", "2026-04-07T10:01:00Z", priority=0, sla_deadline="2026-04-07T10:01:30Z"
    )
    vip = Contact("c3", "u3", "webchat", "2026-04-07T10:02:00Z", priority=7, sla_deadline="2026-04-07T10:09:00Z")
    for policy in (LongestIdle(), RoundRobin()):
        ordered = sorted([early, late_urgent, vip], key=lambda c: policy.contact_key(agent, c, START))
        assert [c.contact_id for c in ordered] == ["c3", "c1", "c2"]  # deadlines do not matter to a plain ACD
