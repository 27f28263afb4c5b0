"""Section 2, routing reads per decision: what the router reads to make one decision, as the tables grow.

With N agents and N waiting contacts in the routing table, three decisions are metered on the app's
DynamoDB client (requests, items read and read units):

- offer a new contact (``engine.offer_contact``) while agents have room: the first page of the pool will do;
- offer a new contact while nobody in its queue's pool has room for it: the router reads its bounded pages and
  gives up;
- give a freed agent work (``engine.on_agent_freed``) with N contacts waiting.

The table holds N agents with room in ``default``, the N contacts waiting there, and N agents in ``billing``
with no room for a web chat. It is bulk-loaded with the items the store itself writes (``bulk_load``), because
creating 10,000 agents through one transaction each in moto takes many minutes and measures moto, not the
router; transactions run with the local stack's item-by-item rollback instead of moto's table copies.
"""

from __future__ import annotations

import time
from typing import Any

QUEUE = "default"
FULL_QUEUE = "billing"  # a queue of the shipped config with no opening hours, like default
SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100)
FULL_PAGES_FROM = 100
READ_OPERATIONS = ("dynamodb.GetItem", "dynamodb.Query", "dynamodb.BatchGetItem", "dynamodb.Scan")


def _stamp(base: float, offset_seconds: float) -> str:
    from datetime import UTC, datetime

    from chalicelib import clock

    return clock.to_iso(datetime.fromtimestamp(base + offset_seconds, UTC))


def _agents(n: int, queue: str, room: bool, base: float) -> list[Any]:
    from chalicelib.routing.model import Agent, Presence

    # Two chats each (40 of 60 units); with room they may take a third, without it webchat is capped at two
    # (still in the pool index, as they have capacity units left, but no use to a web chat).
    return [
        Agent(
            agent_id=f"{queue}{i:05d}",
            name=f"Agent {i}",
            presence=Presence.AVAILABLE,
            skills={"billing": 1 + i % 5} if room and i % 2 else {},
            queues=(queue,),
            max_per_channel={} if room else {"webchat": 2},
            load={"webchat": 2},
            used=40,
            idle_since=_stamp(base, -3600 + i),
        )
        for i in range(n)
    ]


def _contacts(n: int, base: float) -> list[Any]:
    from chalicelib.routing.model import Contact

    return [
        Contact(
            contact_id=f"waiting{i:05d}",
            customer_id=f"cust{i:05d}",
            channel="webchat",
            enqueued_at=_stamp(base, -1800 + i * 0.01),
            queues=(QUEUE,),
            sla_deadline=_stamp(base, -1740 + i * 0.01),
            rule="everything else",
        )
        for i in range(n)
    ]


def bulk_load(agents: list[Any], contacts: list[Any]) -> float:
    """Store ``agents`` and ``contacts`` as the store writes them; returns the seconds it took.

    The items are the store's own (``agent_actions``, ``contact_actions``; the counters' ADD updates summed per
    shard as ``presence_count_actions`` and ``waiting_count_actions`` write them), put straight into moto's
    backend: through BatchWriteItem, 90,000 items take minutes of request (de)serialisation, none of it the
    router's.
    """
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.store import routing as store

    started = time.perf_counter()
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    actions = [a for agent in agents for a in store.agent_actions((None, agent)) if "Put" in a]
    actions += [a for contact in contacts for a in store.contact_actions((None, contact)) if "Put" in a]
    for action in actions:
        backend.put_item(action["Put"]["TableName"], action["Put"]["Item"])
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")  # the bench's own client: not metered
    for action in store.presence_count_actions([(None, agent) for agent in agents]) + store.waiting_count_actions(
        [(None, contact) for contact in contacts]
    ):
        dynamodb.update_item(**action["Update"])
    return time.perf_counter() - started


def _measure(meter: Any, decide: Any) -> dict[str, Any]:
    from chalicelib.store import aws

    meter.hook(aws.created_clients())
    with meter.measure() as tally:
        outcome = decide()
    reads = sum(n for op, n in tally.requests.items() if op in READ_OPERATIONS)
    return {
        "read_requests": reads,
        "dynamodb_requests": sum(n for op, n in tally.requests.items() if op.startswith("dynamodb.")),
        "items_read": tally.items_read,
        "rru": round(tally.rru, 2),
        "by_operation": dict(sorted(tally.requests.items())),
        "outcome": outcome,
    }


def run_one(n: int) -> list[dict[str, Any]]:
    """The three decisions on one table: N agents with room in ``default``, N waiting contacts there, and N
    agents in ``billing`` with no room for a web chat."""
    from bench.harness import app_on_moto, transactions_without_table_copies
    from bench.meter import Meter
    from chalicelib import clock
    from chalicelib.routing import engine
    from chalicelib.routing.model import Contact
    from chalicelib.store import routing as store

    base = time.time()
    with app_on_moto(), transactions_without_table_copies():
        agents = _agents(n, QUEUE, True, base) + _agents(n, FULL_QUEUE, False, base)
        load_seconds = round(bulk_load(agents, _contacts(n, base)), 1)
        meter = Meter()

        def new_contact(name: str, queue: str) -> str:
            now = clock.now_iso()
            contact = Contact(
                contact_id=name,
                customer_id=f"cust-{name}",
                channel="webchat",
                enqueued_at=now,
                queues=(queue,),
                sla_deadline=clock.plus_seconds(now, 60),
                rule="everything else",
            )
            store.create_contact(None, contact)
            return name

        def offer(contact_id: str) -> str:
            return "offered" if engine.offer_contact(contact_id, clock.now_iso()) else "stays queued"

        def free(agent_id: str) -> str:
            return f"{len(engine.on_agent_freed(agent_id, clock.now_iso()).offers)} offer(s)"

        # Warm, as a Lambda that has already routed: one offer made unmetered (the client made, the routing
        # config read, the timer queue's URL cached).
        offer(new_contact("warm-up", QUEUE))
        arrived, unlucky = new_contact("new-contact", QUEUE), new_contact("no-room", FULL_QUEUE)  # not metered
        decisions = [
            ("offer a new contact", lambda: offer(arrived)),
            ("give a freed agent work", lambda: free(f"{QUEUE}00008")),  # no skills; room for one more chat
            ("offer a new contact (nobody has room)", lambda: offer(unlucky)),
        ]
        rows = []
        for decision, decide in decisions:
            rows.append({"decision": decision, "n": n, "load_seconds": load_seconds, **_measure(meter, decide)})
        return rows


def run(quick: bool = False) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n in QUICK_SIZES if quick else SIZES:
        rows += run_one(n)
    # Below one page (25) a query returns fewer items and a second page may not exist: flat means no growth
    # from the first size that fills the pages (100) on.
    by_decision: dict[str, dict[int, tuple[int, int]]] = {}
    for row in rows:
        by_decision.setdefault(row["decision"], {})[row["n"]] = (row["read_requests"], row["items_read"])
    return {
        "sizes": list(QUICK_SIZES if quick else SIZES),
        "rows": rows,
        "flat": {
            decision: len({reads for n, reads in by_n.items() if n >= FULL_PAGES_FROM}) == 1
            for decision, by_n in by_decision.items()
        },
        "max_read_requests": {decision: max(r for r, _ in by_n.values()) for decision, by_n in by_decision.items()},
        "max_items_read": {decision: max(i for _, i in by_n.values()) for decision, by_n in by_decision.items()},
    }
