"""Web-chat visitors' open WebSocket connections, per conversation, in the data table.

Keys::

    WIDGET#<conversation_id>   CONN#<connection_id>   one open widget connection listening to the conversation,
                                                      ``expires_at`` (TTL) past API Gateway's 2-hour limit

One item per connection, written once at ``$connect`` and never updated. Nothing is deleted at ``$disconnect``
(its event does not say which conversation the socket listened to, and a second item to look that up would
double the writes of every connection): a connection API Gateway reports gone on a push is deleted then
(``forget``), and any other one is dropped by the table's TTL soon after it can no longer be open. Reads skip
expired items that TTL has not yet removed.
"""

from __future__ import annotations

from chalicelib import clock
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import key, to_item, to_values

# API Gateway closes every WebSocket connection after 2 hours; a minute on top for clocks and slow handshakes.
LIFETIME_SECONDS = 2 * 3600 + 60


def _pk(conversation_id: str) -> str:
    return f"WIDGET#{conversation_id}"


def add(conversation_id: str, connection_id: str, now: str) -> None:
    """Remember that ``connection_id`` listens to the conversation until it can no longer be open."""
    expires = int(clock.parse_iso(now).timestamp()) + LIFETIME_SECONDS
    aws.client("dynamodb").put_item(
        TableName=get_settings().data_table,
        Item=to_item({"pk": _pk(conversation_id), "sk": f"CONN#{connection_id}", "expires_at": expires}),
    )


def of(conversation_id: str, now: str) -> list[str]:
    """The conversation's connections that may still be open, read consistently (one just made is included)."""
    page = aws.client("dynamodb").query(
        TableName=get_settings().data_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
        FilterExpression="expires_at > :now",
        ExpressionAttributeValues=to_values(
            {":pk": _pk(conversation_id), ":conn": "CONN#", ":now": int(clock.parse_iso(now).timestamp())}
        ),
        ProjectionExpression="sk",
        ConsistentRead=True,  # one page: each item is a few dozen bytes, a 4 KB read unit holds dozens
    )
    return [item["sk"]["S"].removeprefix("CONN#") for item in page["Items"]]


def forget(conversation_id: str, connection_id: str) -> None:
    """Drop a connection API Gateway said is gone."""
    aws.client("dynamodb").delete_item(
        TableName=get_settings().data_table, Key=key(_pk(conversation_id), f"CONN#{connection_id}")
    )
