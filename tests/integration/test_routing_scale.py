"""Work per routing decision does not grow with the number of agents: the router never scans them.

Counts DynamoDB items read (every item a GetItem, Query or BatchGetItem returns) while one contact is
routed, and while one freed agent picks a contact, with 10 agents and with 2,000 agents.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.routing.events import from_body
from chalicelib.routing.model import Agent, Contact, Presence
from chalicelib.store import aws
from chalicelib.store import routing as routing_store
from tests.support import post_webchat, receive_routing_messages, webchat_payload

# One page of the available-agents index (25) plus a handful of single reads.
ITEMS_PER_DECISION = 32


def _add_agents(count: int) -> None:
    """Agents written in bulk (as a migration would), each with its available-agents index entry."""
    now = clock.now_iso()
    items = []
    for n in range(count):
        agent = Agent(f"agent-{n:05d}", f"Agent {n}", Presence.AVAILABLE, {"billing": 1 + n % 5}, idle_since=now)
        before_and_after = routing_store.agent_actions((None, agent))
        items += [action["Put"]["Item"] for action in before_and_after]
    client = aws.client("dynamodb")
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={"switchboard-routing": batch})


def _count_items_read() -> Counter[str]:
    counts: Counter[str] = Counter()

    def count(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "GetItem":
            counts["items"] += 1 if "Item" in parsed else 0
        elif name in ("Query", "Scan"):
            counts["items"] += len(parsed.get("Items", []))
            counts[name] += 1
        elif name == "BatchGetItem":
            counts["items"] += sum(len(v) for v in parsed.get("Responses", {}).values())

    aws.client("dynamodb").meta.events.register("after-call.dynamodb", count)
    return counts


@pytest.mark.parametrize("agents", [10, 2000])
def test_routing_a_contact_reads_a_bounded_number_of_items(client, agents):
    _add_agents(agents)
    stored = post_webchat(client, webchat_payload()).json_body
    [message] = receive_routing_messages()
    event = from_body(message["Body"])

    counts = _count_items_read()
    outcome = engine.handle(event)

    assert len(outcome.offers) == 1 and outcome.offers[0].contact.contact_id == stored["conversation_id"]
    assert counts["Scan"] == 0
    assert counts["items"] <= ITEMS_PER_DECISION, counts


@pytest.mark.parametrize("agents", [10, 2000])
def test_a_freed_agent_picking_a_contact_reads_a_bounded_number_of_items(client, agents):
    now = clock.now_iso()
    for n in range(40):  # more waiting contacts than one page of the index, queued before the agents arrive
        waiting = Contact(
            f"conv_{n:04d}",
            f"cus_{n}",
            "webchat",
            clock.plus_seconds(now, n),
            sla_deadline=clock.plus_seconds(now, 60 + n),
        )
        routing_store.create_contact(None, waiting)
    _add_agents(agents)

    counts = _count_items_read()
    outcome = engine.on_agent_freed("agent-00003", clock.now_iso())

    assert outcome.offers and outcome.offers[0].contact.contact_id == "conv_0000"
    assert counts["Scan"] == 0
    per_offer = counts["items"] / len(outcome.offers)
    assert per_offer <= ITEMS_PER_DECISION, counts
