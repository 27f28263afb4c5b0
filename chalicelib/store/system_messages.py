"""Messages Switchboard itself sends a customer (queue position, out-of-hours replies).

Each is written to the customer's timeline and put on the outbox queue; the
channel senders take it from there (replies and senders arrive with the
agent side, issue 5).
"""

from __future__ import annotations

import json
import uuid

from chalicelib.settings import get_settings
from chalicelib.store import aws, queue
from chalicelib.store.conversations import customer_key
from chalicelib.store.dynamo import to_item


def send(conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str) -> str:
    """Record and queue one system message; returns its id."""
    message_id = "out_" + uuid.uuid4().hex[:24]
    item = {
        "pk": customer_key(customer_id),
        "sk": f"MESSAGE#{now}#{message_id}",
        "type": "message",
        "message_id": message_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "direction": "outbound",
        "author": "system",
        "kind": kind,
        "channel": channel,
        "text": text,
        "status": "queued",
        "received_at": now,
    }
    aws.client("dynamodb").put_item(TableName=get_settings().data_table, Item=to_item(item))
    queue.send_to_outbox(
        json.dumps(
            {
                "message_id": message_id,
                "conversation_id": conversation_id,
                "customer_id": customer_id,
                "channel": channel,
                "kind": kind,
            }
        )
    )
    return message_id
