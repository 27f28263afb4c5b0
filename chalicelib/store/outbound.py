"""Our outbound messages and calls, and the provider status updates that follow them.

Keys in the data table::

    OUTBOUND#<provider>#<provider message id>   OUTBOUND   status, status_rank, conversation_id
    CALL#<provider>#<call id>                   CALL       status, conversation_id

Statuses only move forward: providers deliver callbacks out of order and
more than once, and ``delivered`` arriving after ``read`` must not undo it.
"""

from __future__ import annotations

from typing import Any

from chalicelib.channels.base import StatusUpdate
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import get, key, to_item, to_values

# How far along a message is. A failure outranks sending but not delivery: a late "failed" after
# "delivered" is noise, while "failed" after "sent" is the news.
MESSAGE_STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "failed": 3, "delivered": 4, "read": 5}
# Calls: Twilio's CallStatus values; the final ones outrank every live one.
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "canceled": 4,
    "failed": 4,
}


def _table() -> str:
    return get_settings().data_table


def _pk(kind: str, provider: str, provider_message_id: str) -> tuple[str, str]:
    prefix = "CALL" if kind == "call" else "OUTBOUND"
    return f"{prefix}#{provider}#{provider_message_id}", prefix


def record(
    provider: str, provider_message_id: str, conversation_id: str, status: str, now: str, kind: str = "message"
) -> None:
    """Remember something we sent (or a call we hold) so that its status callbacks find it."""
    pk, sk = _pk(kind, provider, provider_message_id)
    ranks = CALL_STATUS_RANK if kind == "call" else MESSAGE_STATUS_RANK
    item = {
        "pk": pk,
        "sk": sk,
        "provider": provider,
        "provider_message_id": provider_message_id,
        "conversation_id": conversation_id,
        "status": status,
        "status_rank": ranks.get(status, 0),
        "created_at": now,
        "updated_at": now,
    }
    aws.client("dynamodb").put_item(TableName=_table(), Item=to_item(item))


def apply(update: StatusUpdate, now: str) -> bool:
    """Move a message or call to a later status; False when it is unknown or already further along."""
    ranks = CALL_STATUS_RANK if update.kind == "call" else MESSAGE_STATUS_RANK
    if update.status not in ranks:
        return False
    pk, sk = _pk(update.kind, update.provider, update.provider_message_id)
    values: dict[str, Any] = {":status": update.status, ":rank": ranks[update.status], ":now": now}
    expression = "SET #status = :status, status_rank = :rank, updated_at = :now"
    if update.error:
        expression += ", #error = :error"
        values[":error"] = update.error
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(pk, sk),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk) AND status_rank < :rank",
            ExpressionAttributeNames={"#status": "status", **({"#error": "error"} if update.error else {})},
            ExpressionAttributeValues=to_values(values),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def get_status(provider: str, provider_message_id: str, kind: str = "message") -> dict[str, Any] | None:
    return get(_table(), *_pk(kind, provider, provider_message_id))
