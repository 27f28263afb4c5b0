"""Count the AWS requests the app makes, and the DynamoDB request units they would bill, with botocore hooks.

The meter registers on the app's own clients (``chalicelib.store.aws``), never on the clients the bench uses to
look at state or to play the Lambda service, so only what our code asks AWS for is counted.

DynamoDB on-demand bills request units, not requests:

- writes: 1 WRU per 1 KB of the larger of the item before and after, per item (minimum 1); a transaction's
  items cost twice that; every global secondary index the item is (or was) projected into costs its own
  writes (an entry whose key changes is a delete and a put);
- reads: 1 RRU per 4 KB strongly consistent, half eventually consistent (index queries always are); a query
  bills the summed size of the items it returns, rounded up to 4 KB once; a transaction's reads cost twice.

moto answers ``ReturnConsumedCapacity`` with a constant per call (0.5 or 1.0 whatever the size, nothing for
transactions), so the meter injects it, keeps what moto said beside, and bills the units it computes from
the items' sizes (read from moto with a client of its own, which is not counted).
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3

CAPACITY_OPERATIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
}
UNITS_SOURCE = "computed from item sizes (moto's ConsumedCapacity is a constant per call, kept as moto_reported_units)"


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value in the low-level (typed) form, as DynamoDB sizes items."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner if isinstance(inner, bytes | bytearray) else base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(attribute_size({"B": b}) for b in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


@dataclass
class Tally:
    """What a stretch of work cost: requests per service.operation, DynamoDB units and items."""

    requests: Counter[str] = field(default_factory=Counter)
    wru: float = 0.0
    rru: float = 0.0
    items_read: int = 0
    items_written: int = 0
    moto_reported_units: float = 0.0
    sqs_chunks: int = 0  # SQS bills each 64 KB of a request's payload as one request
    sqs_fifo_chunks: int = 0  # of which on FIFO queues (priced apart)
    websocket_messages: int = 0  # PostToConnection, billed in 32 KB chunks

    def add(self, other: Tally) -> None:
        self.requests.update(other.requests)
        self.wru += other.wru
        self.rru += other.rru
        self.items_read += other.items_read
        self.items_written += other.items_written
        self.moto_reported_units += other.moto_reported_units
        self.sqs_chunks += other.sqs_chunks
        self.sqs_fifo_chunks += other.sqs_fifo_chunks
        self.websocket_messages += other.websocket_messages

    def scaled(self, factor: float) -> dict[str, Any]:
        return {
            "requests": round(sum(self.requests.values()) * factor, 3),
            "wru": round(self.wru * factor, 3),
            "rru": round(self.rru * factor, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "by_operation": dict(sorted(self.requests.items())),
            "dynamodb_requests": sum(n for op, n in self.requests.items() if op.startswith("dynamodb.")),
            "wru": round(self.wru, 3),
            "rru": round(self.rru, 3),
            "items_read": self.items_read,
            "items_written": self.items_written,
            "moto_reported_units": round(self.moto_reported_units, 3),
            "sqs_chunks": self.sqs_chunks,
            "sqs_fifo_chunks": self.sqs_fifo_chunks,
            "websocket_messages": self.websocket_messages,
        }


class Meter:
    """Hooks on the app's clients; ``with meter.measure() as tally:`` counts what runs inside."""

    def __init__(self, region: str = "us-east-1") -> None:
        self._observer = boto3.client("dynamodb", region_name=region)  # the bench's own: never counted
        self._schemas: dict[str, dict[str, Any]] = {}
        self._hooked: set[int] = set()
        self._current: Tally | None = None

    # --- hooks ------------------------------------------------------------------------------------------

    def hook(self, clients: list[Any]) -> None:
        """Register on every client not hooked yet (call again after the app made new ones)."""
        for client in clients:
            if id(client) in self._hooked:
                continue
            self._hooked.add(id(client))
            events = client.meta.events
            events.register("before-parameter-build", self._before_build)
            events.register("before-call", self._before_call)
            events.register("after-call", self._after_call)

    @contextmanager
    def measure(self) -> Iterator[Tally]:
        tally, outer = Tally(), self._current
        self._current = tally
        try:
            yield tally
        finally:
            self._current = outer
            if outer is not None:
                outer.add(tally)

    def _before_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._current is None:
            return
        service = model.service_model.service_name
        if service == "dynamodb" and model.name in CAPACITY_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
            context["bench_before"] = self._write_targets(model.name, params)
        context["bench_params"] = params

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        tally = self._current
        if tally is None:
            return
        service = model.service_model.service_name
        tally.requests[f"{service}.{model.name}"] += 1
        params = context.get("bench_params") or {}
        if service == "sqs":
            if model.name in ("SendMessage", "SendMessageBatch"):
                bodies = [params.get("MessageBody", "")] if model.name == "SendMessage" else []
                bodies += [e.get("MessageBody", "") for e in params.get("Entries", [])]
                chunks = max(1, math.ceil(sum(len(b.encode()) for b in bodies) / 65536))
            else:
                chunks = 1
            tally.sqs_chunks += chunks
            if str(params.get("QueueUrl", "")).endswith(".fifo"):
                tally.sqs_fifo_chunks += chunks
        if service == "apigatewaymanagementapi" and model.name == "PostToConnection":
            data = params.get("Data", b"")
            tally.websocket_messages += max(1, math.ceil(len(data) / 32768))

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        tally = self._current
        if tally is None or model.service_model.service_name != "dynamodb" or model.name not in CAPACITY_OPERATIONS:
            return
        for consumed in _as_list(parsed.get("ConsumedCapacity")):
            tally.moto_reported_units += float(consumed.get("CapacityUnits", 0))
        params = context.get("bench_params") or {}
        self._bill_reads(tally, model.name, params, parsed)
        self._bill_writes(tally, model.name, context.get("bench_before") or [])

    # --- reads --------------------------------------------------------------------------------------------

    def _bill_reads(self, tally: Tally, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if operation == "GetItem":
            item = parsed.get("Item")
            tally.items_read += 1 if item else 0
            tally.rru += read_units(item_size(item), bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            tally.items_read += len(items)
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            tally.rru += read_units(sum(item_size(i) for i in items), consistent)
        elif operation == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(params.get("RequestItems", {}).get(table, {}).get("ConsistentRead"))
                tally.items_read += len(items)
                tally.rru += sum(read_units(item_size(i), consistent) for i in items)
        elif operation == "TransactGetItems":
            for response in parsed.get("Responses", []):
                item = response.get("Item")
                tally.items_read += 1 if item else 0
                tally.rru += 2 * read_units(item_size(item), True)

    # --- writes -------------------------------------------------------------------------------------------

    def _write_targets(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Each item the call writes: its table, key, size now and the new item when the call gives it whole."""
        actions: list[tuple[str, dict[str, Any], int]] = []  # (kind, action, multiplier)
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            actions.append((operation.removesuffix("Item"), params, 1))
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                [(kind, action)] = entry.items()
                actions.append((kind, action, 2))
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        actions.append(("Put", {"TableName": table, **request["PutRequest"]}, 1))
                    else:
                        actions.append(("Delete", {"TableName": table, **request["DeleteRequest"]}, 1))
        targets = []
        for kind, action, multiplier in actions:
            table = action["TableName"]
            key = action.get("Key") or self._key_of(table, action["Item"])
            before = self._observer.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            targets.append(
                {
                    "kind": kind,
                    "table": table,
                    "key": key,
                    "before": before,
                    "item": action.get("Item"),
                    "x": multiplier,
                }
            )
        return targets

    def _bill_writes(self, tally: Tally, operation: str, targets: list[dict[str, Any]]) -> None:
        for target in targets:
            table, before = target["table"], target["before"]
            if target["kind"] == "Put":
                after = target["item"]
            elif target["kind"] in ("Update", "ConditionCheck"):
                after = self._observer.get_item(TableName=table, Key=target["key"], ConsistentRead=True).get("Item")
            else:
                after = None
            size = item_size(after) if target["kind"] != "ConditionCheck" else item_size(before)
            tally.wru += target["x"] * write_units(max(size, item_size(before)))
            tally.items_written += 1
            if target["kind"] != "ConditionCheck":
                tally.wru += self._index_units(table, before, after)

    def _index_units(self, table: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
        """Writes to global secondary indexes: a put, an update in place, or a delete and a put when the key moves."""
        units = 0
        for index in self._schema(table)["indexes"]:
            old, new = _index_entry(index, before), _index_entry(index, after)
            if old is None and new is None:
                continue
            moved = old is not None and new is not None and old[0] != new[0]
            if old is not None and (new is None or moved):
                units += write_units(old[1])
            if new is not None:
                units += write_units(max(new[1], old[1] if old and not moved else 0))
        return units

    def _schema(self, table: str) -> dict[str, Any]:
        if table not in self._schemas:
            described = self._observer.describe_table(TableName=table)["Table"]
            keys = [k["AttributeName"] for k in described["KeySchema"]]
            indexes = [
                {
                    "keys": [k["AttributeName"] for k in i["KeySchema"]],
                    "projection": i["Projection"],
                    "table_keys": keys,
                }
                for i in described.get("GlobalSecondaryIndexes", [])
            ]
            self._schemas[table] = {"keys": keys, "indexes": indexes}
        return self._schemas[table]

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self._schema(table)["keys"]}


def _index_entry(index: dict[str, Any], item: dict[str, Any] | None) -> tuple[tuple[str, ...], int] | None:
    """The index key and the projected size of ``item``'s entry in ``index`` (None: not in it)."""
    if not item or any(k not in item for k in index["keys"]):
        return None
    projection = index["projection"]
    if projection["ProjectionType"] == "ALL":
        size = item_size(item)
    else:
        names = {*index["keys"], *index["table_keys"], *projection.get("NonKeyAttributes", [])}
        size = item_size({k: v for k, v in item.items() if k in names})
    return tuple(str(item[k]) for k in index["keys"]), size


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def plain(value: Any) -> Any:
    """JSON-safe numbers (Decimal from moto's parsed answers)."""
    return float(value) if isinstance(value, Decimal) else value
