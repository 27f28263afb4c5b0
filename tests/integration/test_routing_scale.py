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


# --- a scarce skill: 1 in 50 agents (or one in all) can take the contact ----------------------------------


def _add_billing_queue_agents(count: int, qualified: set[int] | dict[int, int]) -> None:
    """``count`` Available agents of the billing queue; only those numbered in ``qualified`` know billing
    (at level 4, or at the level ``qualified`` maps them to)."""
    now = clock.now_iso()
    levels = qualified if isinstance(qualified, dict) else dict.fromkeys(qualified, 4)
    items = []
    for n in range(count):
        skills = {"english": 3, "billing": levels[n]} if n in levels else {"english": 3}
        agent = Agent(f"agent-{n:05d}", f"Agent {n}", Presence.AVAILABLE, skills, queues=("billing",), idle_since=now)
        items += [action["Put"]["Item"] for action in routing_store.agent_actions((None, agent))]
    client = aws.client("dynamodb")
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={"switchboard-routing": batch})


@pytest.mark.parametrize(
    ("agents", "qualified"),
    [
        (100, {49, 99}),  # 1 in 50
        (1000, set(range(49, 1000, 50))),  # 1 in 50
        (1000, {777}),  # one qualified agent in a thousand
    ],
    ids=["100-agents-1-in-50", "1000-agents-1-in-50", "1000-agents-one-qualified"],
)
def test_a_scarce_skill_is_offered_to_a_qualified_agent_with_bounded_reads(client, agents, qualified):
    _add_billing_queue_agents(agents, qualified)
    # routing.yaml: "billing questions" queues a refund in billing, needing billing >= 3.
    stored = post_webchat(client, webchat_payload(text="I want a refund for my order")).json_body
    [message] = receive_routing_messages()
    event = from_body(message["Body"])

    counts = _count_items_read()
    outcome = engine.handle(event)

    [offer] = outcome.offers
    assert offer.contact.contact_id == stored["conversation_id"] and offer.contact.required_skills == {"billing": 3}
    assert int(offer.agent.agent_id.removeprefix("agent-")) in qualified
    assert counts["Scan"] == 0
    assert counts["items"] <= ITEMS_PER_DECISION, counts


def test_of_many_qualified_agents_the_most_proficient_gets_the_contact(client):
    # 60 agents at billing 3 come first by id and are as idle; the only billing 5 agent is the last of 1,000.
    _add_billing_queue_agents(1000, {**dict.fromkeys(range(60), 3), 999: 5})
    post_webchat(client, webchat_payload(text="Where is my refund?"))
    [message] = receive_routing_messages()

    counts = _count_items_read()
    [offer] = engine.handle(from_body(message["Body"])).offers

    assert offer.agent.agent_id == "agent-00999"
    assert counts["items"] <= ITEMS_PER_DECISION, counts


def test_the_sweeper_offers_a_scarce_skill_contact_once_a_qualified_agent_is_free(client):
    _add_billing_queue_agents(1000, set())
    post_webchat(client, webchat_payload(text="Where is my refund?"))
    [message] = receive_routing_messages()
    assert engine.handle(from_body(message["Body"])).offers == (), "nobody in billing knows billing yet"
    _add_billing_queue_agents(1, {0})  # agent-00000 learns billing (as an admin's PATCH would store it)

    counts = _count_items_read()
    swept = engine.sweep()

    assert [o.agent.agent_id for o in swept.offers] == ["agent-00000"]
    assert counts["items"] <= ITEMS_PER_DECISION + 10, counts  # the sweep's own pages of waiting contacts


def test_a_freed_agent_is_not_starved_by_a_page_of_contacts_needing_a_skill_they_lack(client):
    now = clock.now_iso()
    for n in range(60):  # more than a page, all more urgent, all needing billing
        needs_billing = Contact(
            f"conv_b{n:04d}",
            f"cus_b{n}",
            "webchat",
            clock.plus_seconds(now, n),
            queues=("billing",),
            required_skills={"billing": 3},
            sla_deadline=clock.plus_seconds(now, 60 + n),
        )
        routing_store.create_contact(None, needs_billing)
    anyone = Contact(
        "conv_plain", "cus_plain", "webchat", clock.plus_seconds(now, 100), queues=("billing",),
        sla_deadline=clock.plus_seconds(now, 600),
    )  # fmt: skip
    routing_store.create_contact(None, anyone)
    _add_billing_queue_agents(1000, set())  # nobody knows billing

    counts = _count_items_read()
    outcome = engine.on_agent_freed("agent-00003", clock.now_iso())

    assert [o.contact.contact_id for o in outcome.offers] == ["conv_plain"]
    assert counts["Scan"] == 0
    assert counts["items"] <= ITEMS_PER_DECISION, counts
