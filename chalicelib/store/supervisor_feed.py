"""Who watches the supervisor's live view, and what in the routing table's stream concerns it.

Keys (routing table)::

    SUPERVISORS   CONN#<conn>    one supervisor's WebSocket connection that asked for the live view (its agent,
                                 since when); expires with the connection's longest life (API Gateway closes a
                                 WebSocket after two hours), and is forgotten sooner when a push finds it gone

The table's stream (``NEW_IMAGE``) carries every change; the view needs only two kinds of item, named by
``STREAM_FILTERS`` (the event source mapping's filter in AWS, so the feed's function is invoked only for them;
``concerns`` applies the same rule to whatever a local or test delivery hands it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib import clock
from chalicelib.routing.model import Agent
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import from_item, key, to_item, to_values

WATCHERS_KEY = "SUPERVISORS"
WATCH_SECONDS = 3 * 3600  # longer than API Gateway keeps any WebSocket open (2 h)
QUEUE_PREFIX = "QUEUESTATS#"  # a queue's counts: waiting per priority, agents per presence, SLA and handle time
AGENT_PREFIX = "AGENT#"
AGENT_ITEM = "AGENT"  # the agent themselves (presence, load), not their pool copies or connections

# Lambda event filter patterns (any one matches): a queue's counts changed, or an agent did.
STREAM_FILTERS: tuple[dict[str, Any], ...] = (
    {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": QUEUE_PREFIX}]}}}},
    {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": AGENT_PREFIX}]}, "sk": {"S": [AGENT_ITEM]}}}},
)


def _table() -> str:
    return get_settings().routing_table


def watch(connection_id: str, agent_id: str, now: str) -> None:
    """The connection receives the live view until it goes (or unwatches)."""
    expires = int(clock.parse_iso(now).timestamp()) + WATCH_SECONDS
    aws.client("dynamodb").put_item(
        TableName=_table(),
        Item=to_item(
            {
                "pk": WATCHERS_KEY,
                "sk": f"CONN#{connection_id}",
                "agent_id": agent_id,
                "since": now,
                "expires_at": expires,
            }
        ),
    )


def unwatch(connection_id: str) -> None:
    aws.client("dynamodb").delete_item(TableName=_table(), Key=key(WATCHERS_KEY, f"CONN#{connection_id}"))


def watchers(now: str) -> list[str]:
    """The connections watching now (one query; an item past its expiry, not yet deleted by TTL, is left out)."""
    found: list[str] = []
    request: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": to_values({":pk": WATCHERS_KEY}),
        "ConsistentRead": True,
    }
    moment = int(clock.parse_iso(now).timestamp())
    while True:
        page = aws.client("dynamodb").query(**request)
        for item in (from_item(i) for i in page["Items"]):
            if int(item.get("expires_at", moment + 1)) > moment:
                found.append(str(item["sk"]).removeprefix("CONN#"))
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Changes:
    """What a batch of stream records changed for the live view: queues by name, agents as they are now (None:
    deleted)."""

    queues: set[str] = field(default_factory=set)
    agents: dict[str, Agent | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.queues or self.agents)


def concerns(record: Mapping[str, Any]) -> bool:
    """Whether a stream record (Lambda's DynamoDB event record) matches one of ``STREAM_FILTERS``."""
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk, sk = keys.get("pk", {}).get("S", ""), keys.get("sk", {}).get("S", "")
    return pk.startswith(QUEUE_PREFIX) or (pk.startswith(AGENT_PREFIX) and sk == AGENT_ITEM)


def changes_in(records: Iterable[Mapping[str, Any]]) -> Changes:
    """Fold a batch (in stream order: the last image of an agent wins) into what changed."""
    from chalicelib.store.routing import agent_from_values

    changes = Changes()
    for record in records:
        if not concerns(record):
            continue
        pk = record["dynamodb"]["Keys"]["pk"]["S"]
        if pk.startswith(QUEUE_PREFIX):
            changes.queues.add(pk.removeprefix(QUEUE_PREFIX))
            continue
        agent_id = pk.removeprefix(AGENT_PREFIX)
        image = record["dynamodb"].get("NewImage")
        changes.agents[agent_id] = agent_from_values(from_item(image)) if image else None
    return changes
