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


def test_the_pooled_baseline_gives_every_agent_every_skill_and_queue_on_the_same_arrivals() -> None:
    from chalicelib.sim.scenario import load_scenario, scenario_path
    from chalicelib.sim.simulator import simulate

    scenario, folder = load_scenario(scenario_path("multi-skill-085"))
    scenario = scenario.model_copy(update={"contacts": 600})
    pooled = simulate(scenario, folder, policy="pooled")
    skilled = simulate(scenario, folder, policy="switchboard")

    assert pooled.policy == "pooled"
    assert {a.agent_id for a in pooled.agents.values()} == {a.agent_id for a in skilled.agents.values()}
    for agent in pooled.agents.values():  # generalists too: the cross-trained pool Erlang C assumes
        assert agent.skills == {"billing": 4, "spanish": 3}
        assert set(agent.queues) == {"default", "billing", "support"}
    assert any(a.skills == {} for a in skilled.agents.values()), "the skilled run keeps its generalists"
    # The same customers arrive at the same moments whoever serves them.
    assert [r.arrival.at for r in pooled.records] == [r.arrival.at for r in skilled.records]
    assert {r.agent for r in pooled.records if r.queue == "billing"} & {
        a for a, g in pooled.group_of.items() if g == "generalist"
    }, "refunds reach generalists only when everyone is cross-trained"
