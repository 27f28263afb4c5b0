"""What waits in a queue is counted, not read: the queue-position message and the supervisor view at 10,000 waiting.

Counts the DynamoDB items read (what a Query or Scan evaluates, what a GetItem or BatchGetItem returns) while
a customer waiting among 10,000 is told their place, and while a supervisor's tab refreshes.

The 10,000 are written straight into moto with the store's own item shapes and waiting counts (the counts
its transactions would have added). moto copies a whole table for every action of a transaction, so only the
items the read under test could touch are written for them: their ``WAIT#`` index copies for the place in
the queue, their ``AGE#`` index entries for the supervisor. The main ``CONTACT`` items live in other
partitions that no bounded read touches, and no test allows a Scan.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.routing.config import current_config
from chalicelib.routing.model import Agent, Contact, Presence
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store import conversations as conversation_store
from chalicelib.store import routing as routing_store
from chalicelib.store.dynamo import from_item, to_values
from chalicelib.store.resources import ROUTING_INDEX
from chalicelib.store.routing import waiting_sort_key
from tests.support import (
    REGION,
    agent_says,
    as_admin,
    as_agent,
    connect_agent,
    create_agent,
    drain,
    post_webchat,
    webchat_payload,
    ws_event,
)

WAITING = 10_000
# Contacts counted one by one near the customer's place, either side, before the rest is estimated.
NEAR = routing_store.POSITION_EXACT_WITHIN
# The contact, the queue's statistics, its counts (one item per shard), the NEAR contacts either side of the
# customer (and the customer), the two ends of the customer's priority band.
POSITION_BUDGET = 2 + routing_store.COUNT_SHARDS + 2 * (NEAR + 1) + 2
# Per queue: its statistics and count shards, and the longest waiting contact; one page of agents and one more.
PER_QUEUE = 1 + routing_store.COUNT_SHARDS + 1
AGENTS_PAGE = routing_store.SUPERVISOR_AGENTS_PAGE + 1


def _count_items_read() -> Counter[str]:
    counts: Counter[str] = Counter()

    def count(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "GetItem":
            counts["items"] += 1 if "Item" in parsed else 0
        elif name in ("Query", "Scan"):
            counts["items"] += int(parsed.get("ScannedCount", len(parsed.get("Items", []))))
            counts[name] += 1
        elif name in ("BatchGetItem", "TransactGetItems"):
            responses = parsed.get("Responses", {})
            counts["items"] += (
                sum(len(v) for v in responses.values()) if isinstance(responses, dict) else len(responses)
            )

    aws.client("dynamodb").meta.events.register("after-call.dynamodb", count)
    return counts


def _write_in_bulk(items: list[dict[str, Any]]) -> None:
    """Items put straight into moto's table (no request per item): setting the scene, not under test."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["switchboard-routing"]
    for item in items:
        table.put_item(item)


def _queue_in_bulk(contacts: list[Contact], only: tuple[str, ...] = ("CONTACT", "WAIT#", "AGE#")) -> None:
    """Waiting contacts' items as their transactions write them (those whose sort key starts with one of
    ``only``), and the waiting counts those transactions would have added."""
    items = [
        action["Put"]["Item"]
        for c in contacts
        for action in routing_store.contact_actions((None, c))
        if "Put" in action and action["Put"]["Item"]["sk"]["S"].startswith(only)
    ]
    _write_in_bulk(items)
    client = aws.client("dynamodb")
    for action in routing_store.waiting_count_actions([(None, c) for c in contacts]):
        client.update_item(**action["Update"])


def _band(count: int, now: str, prefix: str = "w", priority: int = 0, queue: str = "default") -> list[Contact]:
    """``count`` contacts queued one a second up to ``now``, each due 5,000 s after it was queued."""
    contacts = []
    for n in range(count):
        enqueued = clock.plus_seconds(now, -(count - n))
        contacts.append(
            Contact(
                f"conv_{prefix}{n:05d}",
                f"cus_{prefix}{n:05d}",
                "webchat",
                enqueued,
                queues=(queue,),
                priority=priority,
                sla_deadline=clock.plus_seconds(enqueued, 5000),
            )
        )
    return contacts


def _told_position(customer_id: str) -> int:
    [ack] = [m for m in conversation_store.timeline(customer_id) if m.get("kind") == "queue_position"]
    found = re.search(r"number (\d+)", ack["text"])
    assert found, ack["text"]
    return int(found.group(1))


def _indexed(partition: str) -> list[dict[str, Any]]:
    """Every item of one index partition, read the slow way: the truth the counts must match."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": "switchboard-routing",
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": to_values({":pk": partition}),
    }
    found: list[dict[str, Any]] = []
    while True:
        page = client.query(**kwargs)
        found += [from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_customer_waiting_among_10000_is_told_their_place_from_a_bounded_read(client):
    now = clock.now_iso()
    waiting = _band(WAITING, now)
    customer = waiting[WAITING // 2]
    # Only what the place is read from: the contacts' own items, which carry their first queue's waiting key.
    _queue_in_bulk([c for c in waiting if c is not customer], only=("CONTACT", "WAIT#"))
    _queue_in_bulk([customer])

    counts = _count_items_read()
    assert engine.acknowledge(customer.contact_id, now)

    assert counts["Scan"] == 0
    assert counts["items"] <= POSITION_BUDGET, counts
    truth = 1 + sum(1 for c in waiting if waiting_sort_key(c) < waiting_sort_key(customer))
    assert truth == WAITING // 2 + 1
    told = _told_position(customer.customer_id)
    assert abs(told - truth) <= truth * 0.02, (told, truth)


def test_the_place_is_exact_near_either_end_and_counts_every_higher_priority_contact_first(client):
    now = clock.now_iso()
    band = _band(3 * NEAR, now)
    urgent = _band(5, now, prefix="u", priority=4)
    _queue_in_bulk(band + urgent)

    def ahead(contact: Contact) -> int:
        return routing_store.position_in_queue(contact, "default")

    assert ahead(urgent[0]) == 0
    assert ahead(urgent[4]) == 4
    assert ahead(band[0]) == 5, "every higher-priority contact is ahead"
    assert ahead(band[NEAR - 2]) == 5 + NEAR - 2, "counted one by one near the front"
    assert ahead(band[-1]) == 5 + 3 * NEAR - 1, "the band's count less those counted behind, near the end"
    middle = 5 + 3 * NEAR // 2
    estimate = ahead(band[3 * NEAR // 2])
    assert abs(estimate - middle) <= 5, "an estimate in between, rounded"
    assert (estimate + 1) % 10 == 0, "shown as a round number: it is an estimate"


def test_the_supervisor_tab_refreshes_from_a_bounded_read_at_10000_waiting(client):
    now = clock.now_iso()
    _queue_in_bulk(_band(WAITING, now), only=("AGE#",))
    agents = [
        Agent(f"agent-{n:04d}", f"Agent {n}", Presence.AVAILABLE if n % 3 else Presence.AWAY, {}, idle_since=now)
        for n in range(routing_store.SUPERVISOR_AGENTS_PAGE + 20)
    ]
    _write_in_bulk(
        [a["Put"]["Item"] for agent in agents for a in routing_store.agent_actions((None, agent)) if "Put" in a]
    )
    for action in routing_store.presence_count_actions([(None, agent) for agent in agents]):
        aws.client("dynamodb").update_item(**action["Update"])

    counts = _count_items_read()
    view = client.http.get("/supervisor", headers=as_admin())

    assert view.status_code == 200, view.body
    assert counts["Scan"] == 0
    assert counts["items"] <= len(current_config().queues) * PER_QUEUE + AGENTS_PAGE, counts
    default = next(q for q in view.json_body["queues"] if q["queue"] == "default")
    assert default["waiting"] == WAITING
    assert default["oldest_wait_seconds"] >= WAITING
    available = sum(1 for a in agents if a.presence is Presence.AVAILABLE)
    assert default["agents"] == {"Available": available, "Away": len(agents) - available, "Offline": 0}
    first = view.json_body["agents"]
    assert [a["agent_id"] for a in first] == [a.agent_id for a in agents[: routing_store.SUPERVISOR_AGENTS_PAGE]]
    assert first[1]["presence"] == "Available" and first[0]["presence"] == "Away"
    rest = client.http.get(f"/supervisor?agents_after={view.json_body['agents_next']}", headers=as_admin()).json_body
    assert [a["agent_id"] for a in rest["agents"]] == [a.agent_id for a in agents[-20:]]
    assert rest["agents_next"] is None


def _counts_match_the_index(*queues: str) -> None:
    for queue in queues:
        truth = Counter(int(i["priority"]) for i in _indexed(f"WAITING#{queue}"))
        counted = {p: n for p, n in routing_store.waiting_counts(queue).items() if n}
        assert counted == dict(truth), (queue, counted, truth)
        oldest = min((i["enqueued_at"] for i in _indexed(f"WAITING#{queue}")), default=None)
        assert routing_store.oldest_waiting(queue) == oldest, queue


def test_counts_follow_a_contact_through_every_move_in_and_out_of_waiting(routed):
    from tests.integration.test_routing_engine import T0, at, write

    queues = ["billing", "support", "default"]
    create_agent(routed, "ada", presence="Away", queues=queues, skills={"billing": 3})
    ada = connect_agent(routed, "ada")
    first = write("my invoice is wrong", visitor="c1", when=T0)  # billing, then escalated
    # default; written just before Ada frees up: the default (balanced) policy ages priority by the fraction of
    # the SLA waited, and a chat waiting 10 minutes (ten times its 60 s target) would go before ``first``.
    write("hello", visitor="c2", when=at(590))
    write("refund please", visitor="c3", when=at(2))  # billing
    _counts_match_the_index(*queues)
    assert routing_store.waiting_counts("billing") == {0: 2}

    # Escalation: skills relaxed, wait in support too, overflow to default, priority raised.
    for step in range(4):
        contact = routing_store.get_contact(first)
        assert contact is not None
        due = engine.step_due(contact, step)
        assert engine.escalate(first, step, due)
        _counts_match_the_index(*queues)
    assert routing_store.waiting_counts("default") == {0: 1, 3: 1}

    # Offered (out of waiting), declined (back), offered to another agent, accepted, transferred (back).
    routed.http.put("/agents/ada/presence", headers=as_admin(), body=json.dumps({"presence": "Available"}))
    [offer] = engine.on_agent_freed("ada", at(600)).offers
    assert offer.contact.contact_id == first
    _counts_match_the_index(*queues)
    agent_says(routed, ada, action="decline", contact_id=first)
    assert routing_store.waiting_counts("default") == {0: 1, 3: 1}
    _counts_match_the_index(*queues)
    create_agent(routed, "bob", queues=queues, skills={"billing": 3})
    bob = connect_agent(routed, "bob")
    assert engine.offer_contact(first, at(601)) is not None
    agent_says(routed, bob, action="accept", contact_id=first)
    assert routing_store.waiting_counts("default") == {0: 1, 3: 0}
    moved = routed.http.post(f"/conversations/{first}/transfer", headers=as_agent("bob"), body='{"queue": "support"}')
    assert moved.status_code == 200, moved.body
    _counts_match_the_index(*queues)
    assert routing_store.waiting_counts("support") == {0: 0, 3: 1}


def test_recount_sets_the_counts_of_contacts_queued_before_they_were_counted(client):
    now = clock.now_iso()
    band = _band(12, now) + _band(3, now, prefix="u", priority=6)
    _write_in_bulk(
        [a["Put"]["Item"] for c in band for a in routing_store.contact_actions((None, c)) if "Put" in a]
    )  # as an older version wrote them: no counts
    assert routing_store.waiting_counts("default") == {}

    assert routing_store.recount_waiting("default") == {0: 12, 6: 3}
    assert routing_store.waiting_counts("default") == {0: 12, 6: 3}
    _counts_match_the_index("default")
    assert routing_store.recount_waiting("default") == {0: 12, 6: 3}, "running it again changes nothing"
    assert routing_store.waiting_counts("default") == {0: 12, 6: 3}


def test_a_bad_agents_cursor_is_refused_with_a_clear_error(client):
    refused = client.http.get("/supervisor?agents_after=" + "x" * 65, headers=as_admin())
    assert refused.status_code == 422
    assert refused.json_body["error"] == "invalid_payload" and "agents_after" in refused.json_body["message"]


def test_agents_stored_before_the_index_are_listed_after_index_agents(client):
    create_agent(client, "ada")
    bob = Agent("bob", "Bob", Presence.AWAY, {})  # Away: only his own item, no pool copies
    [stored] = [a["Put"]["Item"] for a in routing_store.agent_actions((None, bob))]
    older = {k: v for k, v in stored.items() if k not in ("gsi1pk", "gsi1sk")}  # as an older version wrote it
    _write_in_bulk([older])
    assert [a["agent_id"] for a in client.http.get("/supervisor", headers=as_admin()).json_body["agents"]] == ["ada"]

    assert routing_store.presence_counts("default") == {"Available": 1, "Away": 0, "Offline": 0}
    assert routing_store.index_agents() == 1
    assert routing_store.index_agents() == 0, "once is enough"
    assert routing_store.presence_counts("default") == {"Available": 1, "Away": 1, "Offline": 0}
    listed = client.http.get("/supervisor", headers=as_admin()).json_body["agents"]
    assert [(a["agent_id"], a["presence"]) for a in listed] == [("ada", "Available"), ("bob", "Away")]
    assert [a["agent_id"] for a in client.http.get("/agents", headers=as_admin()).json_body["agents"]] == ["ada", "bob"]


def _presence_counts_match_the_agents(*queues: str) -> None:
    agents = routing_store.list_agents()
    for queue in queues:
        truth = Counter(a.presence.value for a in agents if queue in a.queues)
        counted = routing_store.presence_counts(queue)
        assert counted == {p.value: truth[p.value] for p in Presence}, (queue, counted, truth)


def test_presence_counts_per_queue_follow_every_change_of_presence_and_queues(client):
    queues = ("default", "billing")
    create_agent(client, "ada", capacity=2)
    create_agent(client, "bob", presence="Away", queues=["default", "billing"])
    create_agent(client, "cy", presence="Offline")
    _presence_counts_match_the_agents(*queues)
    assert routing_store.presence_counts("default") == {"Available": 1, "Away": 1, "Offline": 1}

    for agent_id, presence in (("bob", "Available"), ("ada", "Away"), ("cy", "Available")):
        body = json.dumps({"presence": presence})
        assert client.http.put(f"/agents/{agent_id}/presence", headers=as_admin(), body=body).status_code == 200
        _presence_counts_match_the_agents(*queues)
    body = json.dumps({"queues": ["billing"]})
    assert client.http.patch("/agents/cy", headers=as_admin(), body=body).status_code == 200
    _presence_counts_match_the_agents(*queues)
    assert routing_store.presence_counts("billing") == {"Available": 2, "Away": 0, "Offline": 0}

    connection = connect_agent(client, "bob")  # an offer reserves capacity: no change of presence, nothing counted
    post_webchat(client, webchat_payload())
    drain(client)
    _presence_counts_match_the_agents(*queues)
    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", connection))  # his last connection
    _presence_counts_match_the_agents(*queues)
    assert routing_store.presence_counts("billing") == {"Available": 2, "Away": 0, "Offline": 0}, "grace period"
    disconnected_at = routing_store.get_agent("bob").disconnected_at
    assert disconnected_at is not None
    engine.sweep(clock.plus_seconds(disconnected_at, get_settings().reconnect_grace_seconds + 1))  # it ends: Offline
    _presence_counts_match_the_agents(*queues)
    assert routing_store.presence_counts("billing") == {"Available": 1, "Away": 0, "Offline": 1}
