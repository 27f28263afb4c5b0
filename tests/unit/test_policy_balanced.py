"""The default routing policy (``matching.Balanced``) through the router on in-memory adapters: scarce skills
kept free, and priorities that age so no class starves."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.routing import matching, memory
from chalicelib.routing.config import RoutingConfig, parse_config
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.model import Agent, Contact, Presence

T0 = "2026-11-24T10:00:00.000000Z"

RULES = """
capacity: {per_agent: 20, default_cost: 20, costs: {voice: 20}}
sla: {default: 5m, channels: {webchat: 60s, voice: 20s}}
queues: {default: {}}
rules:
  - {name: refunds, when: {text_matches: refund}, queue: default, skills: {billing: 3}}
  - {name: spanish, when: {language: es}, queue: default, skills: {spanish: 2}}
  - {name: calls, when: {channel: voice}, queue: default, priority: 5}
  - {name: everything else, queue: default}
"""


def config(text: str = RULES) -> RoutingConfig:
    return parse_config(text, "policy_test.yaml")


def new_world(text: str = RULES) -> memory.MemoryWorld:
    return memory.world(config(text), T0)


def add_agent(world: memory.MemoryWorld, agent_id: str, idle_for: float, **skills: int) -> None:
    world.store.add_agent(
        Agent(
            agent_id=agent_id,
            name=agent_id.title(),
            presence=Presence.AVAILABLE,
            skills=skills,
            capacity=20,  # one contact at a time
            idle_since=clock.plus_seconds(T0, -idle_for),
        )
    )


def write(world: memory.MemoryWorld, contact_id: str, text: str = "hello", channel: str = "webchat", **kw: str) -> None:
    now = world.clock.now()
    event = ConversationMessage(contact_id, f"cust_{contact_id}", channel, f"m_{contact_id}", now, text, **kw)
    world.router.handle(event, now)
    world.run_events()


def offered_to(world: memory.MemoryWorld, agent_id: str) -> list[str]:
    return [p["contact_id"] for a, p in world.notifier.pushed if a == agent_id and p["type"] == "offer"]


def free(world: memory.MemoryWorld, agent_id: str, contact_id: str, at_seconds: float) -> None:
    """The agent takes ``contact_id`` and closes it at ``at_seconds`` after T0; the router gives them more."""
    world.router.accept(agent_id, contact_id)
    world.clock.set(clock.plus_seconds(T0, at_seconds))
    world.router.close(agent_id, contact_id)
    world.run_events()


def test_the_default_policy_is_balanced() -> None:
    assert new_world().router.policy.name == "balanced"


def test_a_plain_chat_goes_to_the_agent_without_scarce_skills_even_if_a_billing_agent_waited_longer() -> None:
    world = new_world()
    add_agent(world, "bea", idle_for=600, billing=4)  # idle longest, but the only one who can take refunds
    add_agent(world, "gus", idle_for=60)
    write(world, "plain")
    assert offered_to(world, "gus") == ["plain"]
    write(world, "refund", "I want a refund")
    assert offered_to(world, "bea") == ["refund"], "the billing agent was kept free for the refund"


def test_a_refund_goes_to_the_billing_agent_who_speaks_no_spanish() -> None:
    world = new_world()
    add_agent(world, "both", idle_for=600, billing=5, spanish=3)
    add_agent(world, "bill", idle_for=60, billing=3)
    write(world, "refund", "refund please")
    assert offered_to(world, "bill") == ["refund"]
    write(world, "hola", "hola", language="es")
    assert offered_to(world, "both") == ["hola"]


def test_a_freed_billing_agent_takes_the_refund_before_a_plain_chat_that_waited_longer() -> None:
    world = new_world()
    add_agent(world, "bea", idle_for=0, billing=4)
    write(world, "first", "refund please")  # keeps bea busy
    write(world, "plain")  # anyone could take this one
    world.clock.set(clock.plus_seconds(T0, 100))
    write(world, "refund", "refund please")  # only bea can; plain has waited 100 s longer
    free(world, "bea", "first", at_seconds=101)
    assert offered_to(world, "bea") == ["first", "refund"]


def test_a_plain_chat_that_waited_much_longer_is_not_passed_over_for_ever() -> None:
    world = new_world()
    add_agent(world, "bea", idle_for=0, billing=4)
    write(world, "first", "refund please")
    write(world, "plain")
    # A refund's head start is 2.5 targets (150 s for a chat): plain has waited 160 s longer.
    world.clock.set(clock.plus_seconds(T0, 160))
    write(world, "refund", "refund please")
    free(world, "bea", "first", at_seconds=161)
    assert offered_to(world, "bea") == ["first", "plain"]


def test_a_long_waiting_low_priority_contact_overtakes_fresh_high_priority_calls() -> None:
    # Calls are priority 5, refund calls 0: strict priority would leave the refund call waiting while calls come.
    world = new_world()
    add_agent(world, "bea", idle_for=0, billing=4)
    write(world, "busy", channel="voice")
    write(world, "refund-call", "refund please", channel="voice")
    world.clock.set(clock.plus_seconds(T0, 30))  # waited 30 s: past its 20 s target, +6 levels
    write(world, "fresh-call", channel="voice")
    free(world, "bea", "busy", at_seconds=31)
    assert offered_to(world, "bea") == ["busy", "refund-call"]


def test_within_its_target_priority_still_decides() -> None:
    world = new_world()
    add_agent(world, "bea", idle_for=0, billing=4)
    write(world, "busy", channel="voice")
    write(world, "chat")  # priority 0, 60 s target
    world.clock.set(clock.plus_seconds(T0, 10))
    write(world, "call", channel="voice")  # priority 5
    free(world, "bea", "busy", at_seconds=11)
    assert offered_to(world, "bea") == ["busy", "call"]


def test_classic_keeps_strict_priority_and_the_most_proficient_agent() -> None:
    world = new_world()
    world.router.policy = matching.Classic()
    add_agent(world, "bea", idle_for=0, billing=4)
    write(world, "busy", channel="voice")
    write(world, "refund-call", "refund please", channel="voice")
    world.clock.set(clock.plus_seconds(T0, 30))
    write(world, "fresh-call", channel="voice")
    free(world, "bea", "busy", at_seconds=31)
    assert offered_to(world, "bea") == ["busy", "fresh-call"]


def test_the_decision_record_shows_the_effective_priority_and_flexibility() -> None:
    needs = ({}, {"billing": 3}, {"spanish": 2})
    policy = matching.Balanced().bound({}, needs)
    both = Agent("both", "Both", Presence.AVAILABLE, {"billing": 5, "spanish": 3}, capacity=20)
    gus = Agent("gus", "Gus", Presence.AVAILABLE, {}, capacity=20)
    plain = Contact("c1", "u1", "webchat", T0, sla_deadline=clock.plus_seconds(T0, 60))
    ranking = matching.rank_agents(plain, [both, gus], lambda channel: 20, None, policy, T0)
    assert [agent_id for agent_id, _ in ranking.ranked] == ["gus", "both"]
    assert ranking.ranked[1][1][1] == 2, "both could serve two other skill sets"
    later = clock.plus_seconds(T0, 30)
    assert policy.effective_priority(plain, later) == 2.0, "30 s of a 60 s target: two quarter-levels"
