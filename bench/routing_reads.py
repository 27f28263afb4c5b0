"""Section 2, routing reads per decision: what the router reads to make one decision, as the tables grow.

With N agents and N waiting contacts in the routing table, three decisions are metered on the app's
DynamoDB client (requests, items read and read units):

- offer a new contact (``engine.offer_contact``) while agents have room: the first page of the pool will do;
- offer a new contact while nobody in the pool has room for it: the router reads its bounded pages, gives up;
- give a freed agent work (``engine.on_agent_freed``) with N contacts waiting.

The table is bulk-loaded with the items the store itself writes (``store.routing.agent_actions`` and
``contact_actions``, written with BatchWriteItem, their counter updates summed per shard), because creating
10,000 agents through one transaction each in moto takes minutes and measures moto, not the router.
"""

from __future__ import annotations

import time
from typing import Any

QUEUE = "default"
SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100)
FULL_PAGES_FROM = 100
READ_OPERATIONS = ("dynamodb.GetItem", "dynamodb.Query", "dynamodb.BatchGetItem", "dynamodb.Scan")


def _stamp(base: float, offset_seconds: float) -> str:
    from datetime import UTC, datetime

    from chalicelib import clock

    return clock.to_iso(datetime.fromtimestamp(base + offset_seconds, UTC))


def _agents(n: int, room: bool, base: float) -> list[Any]:
    from chalicelib.routing.model import Agent, Presence

    # Two chats each (40 of 60 units); with room they may take a third, without it webchat is capped at two.
    cap = {} if room else {"webchat": 2}
    return [
        Agent(
            agent_id=f"agent{i:05d}",
            name=f"Agent {i}",
            presence=Presence.AVAILABLE,
            skills={"billing": 1 + i % 5} if i % 2 else {},
            queues=(QUEUE,),
            max_per_channel=cap,
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
    """Write ``agents`` and ``contacts`` as the store would, batched; returns the seconds it took."""
    import boto3

    from chalicelib.store import routing as store

    started = time.perf_counter()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")  # the bench's own client: not metered
    puts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    actions = [a for agent in agents for a in store.agent_actions((None, agent))]
    actions += [a for contact in contacts for a in store.contact_actions((None, contact))]
    # Counter updates summed over everything, one ADD per (queue, shard), as the store writes them.
    actions = [a for a in actions if "Update" not in a]
    actions += store.presence_count_actions([(None, agent) for agent in agents])
    actions += store.waiting_count_actions([(None, contact) for contact in contacts])
    for action in actions:
        if "Put" in action:
            puts.append({"PutRequest": {"Item": action["Put"]["Item"]}})
            table = action["Put"]["TableName"]
        elif "Update" in action:
            updates.append(action["Update"])
    for start in range(0, len(puts), 25):
        pending = {table: puts[start : start + 25]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    for update in updates:
        dynamodb.update_item(**update)
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
    from bench.harness import app_on_moto, transactions_without_table_copies
    from bench.meter import Meter
    from chalicelib import clock
    from chalicelib.routing import engine
    from chalicelib.routing.model import Contact
    from chalicelib.store import routing as store

    rows: list[dict[str, Any]] = []
    base = time.time()
    for room in (True, False):
        with app_on_moto(), transactions_without_table_copies():
            load_seconds = bulk_load(_agents(n, room, base), _contacts(n, base))
            meter = Meter()
            # Warm, as a Lambda that has already routed: the client made and the routing config read.
            engine.current_config()
            store.get_agent("agent00000")
            now = clock.now_iso()

            def new_contact(name: str, now: str = now) -> str:
                contact = Contact(
                    contact_id=name,
                    customer_id=f"cust-{name}",
                    channel="webchat",
                    enqueued_at=now,
                    queues=(QUEUE,),
                    sla_deadline=clock.plus_seconds(now, 60),
                    rule="everything else",
                )
                store.create_contact(None, contact)
                return name

            contact_id = new_contact("new-contact")
            decision = "offer a new contact" + ("" if room else " (nobody has room)")
            measured = _measure(
                meter,
                lambda contact_id=contact_id: (
                    "offered" if engine.offer_contact(contact_id, clock.now_iso()) else "stays queued"
                ),
            )
            rows.append({"decision": decision, "n": n, "load_seconds": round(load_seconds, 1), **measured})
            if room:
                freed = "agent00002"  # no skills; room for one more chat
                measured = _measure(
                    meter, lambda freed=freed: f"{len(engine.on_agent_freed(freed, clock.now_iso()).offers)} offer(s)"
                )
                rows.append(
                    {"decision": "give a freed agent work", "n": n, "load_seconds": round(load_seconds, 1), **measured}
                )
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
