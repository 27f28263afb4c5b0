"""The agent workspace's own data: a read marker per agent and conversation, and the search's bounded reads.

Read marker: ``pk = READ#<agent_id>``, ``sk = CONVERSATION#<conversation_id>`` with ``read_at`` (the received_at
of the last message the agent saw). Unread = the conversation's inbound messages after it, so the count
survives a reload and a second device.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import from_item, key, to_values

# At most this many customer profiles are read by one name search (a Scan, filtered): enough for a small
# contact centre; a bigger one wants a search index (not built).
SEARCH_SCAN_LIMIT = 2000
READ_MARKERS_LIMIT = 100


def _table() -> str:
    return get_settings().data_table


def _marker_key(agent_id: str, conversation_id: str) -> dict[str, Any]:
    return key(f"READ#{agent_id}", f"CONVERSATION#{conversation_id}")


def mark_read(agent_id: str, conversation_id: str, customer_id: str, read_at: str) -> None:
    """The agent has seen the conversation up to ``read_at``; never moves the marker backwards."""
    client = aws.client("dynamodb")
    # Read further already (another tab): the marker stands.
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=_table(),
            Key=_marker_key(agent_id, conversation_id),
            UpdateExpression="SET read_at = :at, conversation_id = :conversation, customer_id = :customer",
            ConditionExpression="attribute_not_exists(read_at) OR read_at < :at",
            ExpressionAttributeValues=to_values(
                {":at": read_at, ":conversation": conversation_id, ":customer": customer_id}
            ),
        )


def read_markers(agent_id: str, conversation_ids: list[str]) -> dict[str, str]:
    """``read_at`` of each of these conversations this agent has read."""
    if not conversation_ids:
        return {}
    client = aws.client("dynamodb")
    found: dict[str, str] = {}
    keys = [_marker_key(agent_id, c) for c in dict.fromkeys(conversation_ids)]
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {_table(): {"Keys": keys[start : start + 100]}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in map(from_item, response["Responses"].get(_table(), [])):
                found[str(item["conversation_id"])] = str(item["read_at"])
            request = response.get("UnprocessedKeys") or {}
    return found


def read_conversations(agent_id: str, limit: int = READ_MARKERS_LIMIT) -> list[dict[str, Any]]:
    """The conversations this agent has opened (their markers), up to ``limit``."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=to_values({":pk": f"READ#{agent_id}"}),
        Limit=limit,
    )
    return [from_item(i) for i in page["Items"]]


def customer_profiles(limit: int = SEARCH_SCAN_LIMIT) -> list[dict[str, Any]]:
    """Up to ``limit`` customer profiles (not merged away), for a name search."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "FilterExpression": "sk = :profile AND attribute_not_exists(merged_into)",
        "ExpressionAttributeValues": to_values({":profile": "PROFILE"}),
        "ProjectionExpression": "pk, #name, email, phone, tier, tags, identities",
        "ExpressionAttributeNames": {"#name": "name"},
    }
    found: list[dict[str, Any]] = []
    read = 0
    while read < limit:
        page = client.scan(**kwargs, Limit=min(500, limit - read))
        read += int(page.get("ScannedCount", 0))
        found.extend(
            {**from_item(i), "customer_id": from_item(i)["pk"].removeprefix("CUSTOMER#")} for i in page["Items"]
        )
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found
