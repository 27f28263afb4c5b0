"""A router world per store: ``memory`` (in-process dictionaries) and ``dynamodb`` (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.routing import engine, memory
from chalicelib.routing.config import RoutingConfig, parse_config
from chalicelib.routing.model import Agent, Presence
from chalicelib.routing.router import Router
from chalicelib.store import routing as routing_store
from chalicelib.store.router_store import DynamoRoutingStore
from tests.support import fixture

T0 = "2026-11-24T10:00:00.000000Z"  # a Tuesday, 10:00 in London


def config() -> RoutingConfig:
    return parse_config(fixture("routing/engine_test.yaml").decode(), "engine_test.yaml")


class World:
    """The router and what the test sees of the world around it."""

    def __init__(self, kind: str, base: memory.MemoryWorld, router: Router) -> None:
        self.kind = kind
        self.base = base
        self.router = router
        self.bus = base.bus
        self.clock = base.clock

    def add_agent(self, agent_id: str, skills: dict[str, int] | None = None, **spec: Any) -> Agent:
        agent = Agent(
            agent_id=agent_id,
            name=agent_id.title(),
            presence=spec.pop("presence", Presence.AVAILABLE),
            skills=skills or {},
            idle_since=spec.pop("idle_since", self.clock.now()),
            **spec,
        )
        if self.kind == "memory":
            self.base.store.add_agent(agent)
        else:
            routing_store.create_agent(agent)
        return agent

    def at(self, seconds: float) -> str:
        """Move the clock to ``seconds`` after T0, firing every timer due on the way."""
        moment = clock.plus_seconds(T0, seconds)
        self.run()
        self.base.fire_timers_until(moment)
        self.run()
        return moment

    def run(self) -> int:
        """Deliver the published events (as the routing queue would), until none is left."""
        handled = 0
        while self.bus.events:
            for event in self.bus.take_events():
                self.router.handle(event, self.clock.now())
                handled += 1
        return handled

    def offers_to(self, agent_id: str) -> list[str]:
        """The contact ids offered to the agent so far, in order."""
        return [p["contact_id"] for a, p in self.base.notifier.pushed if a == agent_id and p["type"] == "offer"]


@pytest.fixture(params=["memory", "dynamodb"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    base = memory.world(config(), T0)
    if request.param == "memory":
        yield World("memory", base, base.router)
        return
    request.getfixturevalue("aws")
    router = Router(
        store=DynamoRoutingStore(),
        bus=base.bus,
        notifier=base.notifier,
        messages=engine.OutboxMessages(),
        metrics=base.metrics,
        clock=base.clock,
        new_id=memory.sequential_ids(),
        config=config,
    )
    base.router = router
    yield World("dynamodb", base, router)
