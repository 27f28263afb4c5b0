"""Where every verified inbound message goes: stored once, then handed to the router."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.conversations.models import InboundMessage, StoredMessage
from chalicelib.routing.events import ConversationMessage
from chalicelib.store import conversations, queue

logger = Logger(service="switchboard", child=True)


def receive(message: InboundMessage) -> StoredMessage:
    """Store the message (once, however often the provider retries) and queue its routing event.

    A retried delivery queues the routing event again: if the first attempt
    died between storing and queueing, this is what gets the contact routed.
    The queue drops the repeat (same deduplication id) and the router is
    idempotent, so a healthy first attempt makes this harmless.
    """
    stored = conversations.ingest(message, clock.now_iso())
    logger.info(
        "inbound message",
        extra={
            "conversation_id": stored.conversation_id,
            "channel": message.channel,
            "message_id": stored.message_id,
            "duplicate": stored.duplicate,
        },
    )
    queue.publish(
        ConversationMessage(
            conversation_id=stored.conversation_id,
            customer_id=stored.customer_id,
            channel=message.channel,
            message_id=stored.message_id,
            received_at=stored.received_at,
        )
    )
    return stored
