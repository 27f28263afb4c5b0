"""Dead-letter queues: what ended up there, and sending it back once the cause is fixed.

Listing shows ids, kinds and receive counts, never message bodies (they can
hold what customers wrote).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import get_settings, outbox_queue_name, timer_queue_name
from chalicelib.store import aws
from chalicelib.store.resources import dead_letter_queue_name

_BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    kind: str
    sent_at: str
    receive_count: str
    group: str | None


def source_queues() -> list[str]:
    """Every queue that has a dead-letter queue."""
    return [get_settings().routing_queue_name, timer_queue_name(), outbox_queue_name()]


def _url(name: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def count(source: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=_url(dead_letter_queue_name(source)),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def peek(source: str, limit: int = _BATCH) -> list[DeadLetter]:
    """A look at up to ``limit`` dead letters of ``source``; they stay where they are."""
    response = aws.client("sqs").receive_message(
        QueueUrl=_url(dead_letter_queue_name(source)),
        MaxNumberOfMessages=max(1, min(_BATCH, limit)),
        AttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        VisibilityTimeout=0,
    )
    return [_described(m) for m in response.get("Messages", [])]


def _described(message: dict[str, Any]) -> DeadLetter:
    try:
        body = json.loads(message["Body"])
        kind = str(body.get("type") or body.get("kind") or "?")
    except (ValueError, AttributeError):
        kind = "unreadable"
    attributes = message.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(sent) / 1000)) if sent else "?"
    return DeadLetter(
        message["MessageId"],
        kind,
        sent_at,
        attributes.get("ApproximateReceiveCount", "?"),
        attributes.get("MessageGroupId"),
    )


def redrive(source: str, limit: int = 1000) -> int:
    """Move dead letters back to ``source`` (oldest first); returns how many moved."""
    sqs = aws.client("sqs")
    dlq_url, source_url = _url(dead_letter_queue_name(source)), _url(source)
    fifo = source.endswith(".fifo")
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(_BATCH, limit - moved),
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            send: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if fifo:
                attributes = message["Attributes"]
                send["MessageGroupId"] = attributes["MessageGroupId"]
                # A fresh deduplication id: the original one may still be inside SQS's five-minute window.
                original = attributes.get("MessageDeduplicationId", message["MessageId"])
                send["MessageDeduplicationId"] = hashlib.sha256(
                    f"{original}|redrive|{time.time()}".encode()
                ).hexdigest()
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
