"""Publishing routing events to the FIFO routing queue."""

from __future__ import annotations

from functools import lru_cache

from chalicelib.routing.events import RoutingEvent
from chalicelib.settings import get_settings
from chalicelib.store import aws


@lru_cache(maxsize=4)
def _queue_url(name: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def queue_url() -> str:
    """The routing queue's URL (looked up once per container)."""
    return _queue_url(get_settings().routing_queue_name)


def forget_queue_urls() -> None:
    _queue_url.cache_clear()


def publish(*events: RoutingEvent) -> None:
    """Send events in one request; FIFO group and dedupe id come from each event."""
    if not events:
        return
    entries = [
        {
            "Id": str(i),
            "MessageBody": event.to_body(),
            "MessageGroupId": event.group_id,
            "MessageDeduplicationId": event.dedupe_id,
        }
        for i, event in enumerate(events)
    ]
    client = aws.client("sqs")
    if len(entries) == 1:
        entry = entries[0]
        client.send_message(
            QueueUrl=queue_url(),
            MessageBody=entry["MessageBody"],
            MessageGroupId=entry["MessageGroupId"],
            MessageDeduplicationId=entry["MessageDeduplicationId"],
        )
        return
    response = client.send_message_batch(QueueUrl=queue_url(), Entries=entries)
    if response.get("Failed"):
        raise RuntimeError(f"{len(response['Failed'])} routing events were not queued")
