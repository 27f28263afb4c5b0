"""Where every verified webhook goes: messages stored once and handed to the router, statuses applied."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.channels.base import ChannelAdapter, OneTimeToken, Reply, StatusUpdate, WebhookRequest
from chalicelib.conversations.models import InboundMessage, StoredMessage
from chalicelib.errors import Unauthenticated
from chalicelib.notify import push
from chalicelib.observability import correlate
from chalicelib.outbound import outbox
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.rules import MAX_TEXT
from chalicelib.store import conversations, queue, replay
from chalicelib.voice import calls

logger = Logger(service="switchboard", child=True)


def deliver(adapter: ChannelAdapter, request: WebhookRequest) -> Reply:
    """Verify and parse with the channel's adapter, store what it carries, answer as the provider expects."""
    webhook = adapter.handle(request)
    if webhook.immediate is not None:
        return webhook.immediate
    token: OneTimeToken | None = webhook.context.get("replay_token")
    # Claimed before anything is stored, by one conditional write: of concurrent requests under one token, one wins.
    if token is not None and not replay.claim(token):
        raise Unauthenticated("this webhook token was already used (replayed request)")
    stored = [receive(message) for message in webhook.messages]
    now = clock.now_iso()
    for message, result in zip(webhook.messages, stored, strict=True):
        if message.channel == "voice" and not result.duplicate:
            # A call is something we hold: its provider's status callbacks (completed, no-answer...) update it.
            calls.on_incoming(message, result.conversation_id, webhook.context, now)
    for update in webhook.statuses:
        applied = outbox.apply_status(update, now)
        logger.info(
            "status update",
            extra={
                "provider": update.provider,
                "kind": update.kind,
                "status": update.status,
                "applied": applied is not None,
            },
        )
        if applied is not None and update.kind == "message":
            _tell_the_agent(update, applied)
        if update.kind == "call":
            calls.on_call_status(update, applied)
    if token is not None:
        # Used up only once everything is stored: until then the same request, retried, may still complete.
        replay.use_up(token)
    return adapter.respond(webhook, stored)


def _tell_the_agent(update: StatusUpdate, sent: dict[str, Any]) -> None:
    """The agent who has the conversation sees their reply's delivery status live (``sent``: its record)."""
    conversation = conversations.get_conversation(str(sent.get("conversation_id", ""))) or {}
    if conversation.get("agent_id") and conversation.get("status") == "open":
        push.to_agent(
            conversation["agent_id"],
            {
                "type": "message_status",
                "conversation_id": conversation["conversation_id"],
                "message_id": sent.get("message_id"),
                "provider_message_id": update.provider_message_id,
                "status": update.status,
            },
        )


def receive(message: InboundMessage) -> StoredMessage:
    """Store the message (once, however often the provider retries) and queue its routing event.

    A retried delivery queues the routing event again: if the first attempt
    died between storing and queueing, this is what gets the contact routed.
    The queue drops the repeat (same deduplication id) and the router is
    idempotent, so a healthy first attempt makes this harmless.
    """
    stored = conversations.ingest(message, clock.now_iso())
    correlate(stored.conversation_id)  # every later line of this invocation names the conversation
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
            # As much as the rules search (``rules.MAX_TEXT``), so live routing decides as ``rules explain`` does.
            text=message.text[:MAX_TEXT],
            language=message.language,
            subject=message.subject[:MAX_TEXT] if message.subject else None,
        )
    )
    return stored
