"""Publishing routing events to the FIFO routing queue."""

from __future__ import annotations

import math
from functools import lru_cache

from chalicelib.routing.events import RoutingEvent
from chalicelib.settings import get_settings, outbox_queue_name, timer_queue_name
from chalicelib.store import aws

MAX_DELAY_SECONDS = 900


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


def publish_timer(event: RoutingEvent, due_at: str, now: str) -> None:
    """Deliver ``event`` at ``due_at`` (to the second, up to SQS's 15-minute delay; longer timers re-arm)."""
    from chalicelib import clock

    delay = max(0, min(MAX_DELAY_SECONDS, math.ceil(clock.seconds_between(now, due_at))))
    aws.client("sqs").send_message(
        QueueUrl=_queue_url(timer_queue_name()), MessageBody=event.to_body(), DelaySeconds=delay
    )


def send_to_outbox(body: str) -> None:
    aws.client("sqs").send_message(QueueUrl=_queue_url(outbox_queue_name()), MessageBody=body)


def send_batch_to_outbox(bodies: list[str]) -> None:
    """Up to ten outbox jobs in one request (the sweeper's requeue); raises if any was not queued."""
    response = aws.client("sqs").send_message_batch(
        QueueUrl=_queue_url(outbox_queue_name()),
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
    )
    if response.get("Failed"):
        raise RuntimeError(f"{len(response['Failed'])} outbox jobs were not queued")


def delay_outbox_job(receipt_handle: str, seconds: int) -> None:
    """Hide a received outbox job from the queue for ``seconds`` (the outbox's backoff after a failed send)."""
    aws.client("sqs").change_message_visibility(
        QueueUrl=_queue_url(outbox_queue_name()), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
    )


class SqsBus:
    """The router's bus port on SQS: events on the FIFO routing queue, timers as delayed timer-queue messages."""

    def publish(self, *events: RoutingEvent) -> None:
        publish(*events)

    def schedule(self, event: RoutingEvent, due_at: str, now: str) -> None:
        publish_timer(event, due_at, now)
