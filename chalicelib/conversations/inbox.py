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
from chalicelib.routing.events import ConversationMessage, message_payload
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
    claimed = replay.claim(token) if token is not None else None
    if token is not None and claimed is None:
        raise Unauthenticated("this webhook token was already used (replayed request)")
    stored = [receive(message) for message in webhook.messages]
    if claimed == replay.AGAIN and all(result.duplicate for result in stored):
        # The very same request once more, everything in it stored before (and its routing event queued again,
        # in case the first attempt died before queueing): a replay, or a retry of a delivery that was done.
        raise Unauthenticated("this webhook token was already used (replayed request)")
    now = clock.now_iso()
    for message, result in zip(webhook.messages, stored, strict=True):
        if message.channel == "voice":
            # A call is something we hold: its provider's status callbacks (completed, no-answer...) update it. On a
            # repeat too: the first attempt may have died before this (it changes nothing that was done).
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
    return adapter.respond(webhook, stored)


def _tell_the_agent(update: StatusUpdate, sent: dict[str, Any]) -> None:
    """The agent who has the conversation now sees the delivery status of its replies live (``sent``: the reply's
    record). Who has it is the router's word (the contact assigned to them): after a transfer, not the agent who
    handed it over, and while it waits for the next agent, nobody."""
    from chalicelib.routing.model import ContactState
    from chalicelib.store import routing as routing_store

    conversation_id = str(sent.get("conversation_id", ""))
    contact = routing_store.get_contact(conversation_id) if conversation_id else None
    if contact is None or contact.state is not ContactState.ASSIGNED or not contact.assigned_to:
        return
    push.to_agent(
        contact.assigned_to,
        {
            "type": "message_status",
            "conversation_id": conversation_id,
            "message_id": sent.get("message_id"),
            "provider_message_id": update.provider_message_id,
            "status": update.status,
        },
    )


def receive(message: InboundMessage) -> StoredMessage:
    """Store the message (once, however often the provider retries), then tell its agent or queue its routing event.

    A follow-up on a contact its agent has accepted is pushed to that agent from here (``_handled_here``), and
    one on a contact offered to an agent needs nothing: the router would do only that, at the price of an
    invocation and three FIFO requests. Everything else (a new conversation, a queued contact), and
    every retried delivery, goes through the routing queue: if the first attempt died between storing and
    telling (or queueing), the retry's routing event is what gets the message to its agent (or the contact
    routed). The queue drops a repeat (same deduplication id) and the router is idempotent, so a healthy first
    attempt makes this harmless; the console re-reads the conversation on a "message" push, so a second push
    shows nothing twice.
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
    event = ConversationMessage(
        conversation_id=stored.conversation_id,
        customer_id=stored.customer_id,
        channel=message.channel,
        message_id=stored.message_id,
        received_at=stored.received_at,
        # As much as the rules search (``rules.MAX_TEXT``), so live routing decides as ``rules explain`` does.
        text=message.text[:MAX_TEXT],
        language=message.language,
        subject=message.subject[:MAX_TEXT] if message.subject else None,
        choice=_choice(message),
        attachments=len(message.attachments),
        auto_submitted=message.metadata.get("auto_submitted"),
    )
    if event.auto_submitted:
        # A machine answering on its own (an out-of-office reply, a bounce): kept in the history and shown to the
        # agent who holds the conversation, but routed nowhere, so no bot answer, no place-in-queue message and no
        # new contact answers it in turn (``channels.auto_reply``).
        if not stored.duplicate and not stored.new_conversation:
            _handled_here(event)
        logger.info("automatic message kept, not routed", extra={"auto_submitted": event.auto_submitted})
        return stored
    if stored.duplicate or stored.new_conversation or not _handled_here(event):
        queue.publish(event)
    return stored


def _choice(message: InboundMessage) -> str | None:
    """The id of the reply button the customer tapped (WhatsApp's interactive ``button_reply``), or None."""
    if message.metadata.get("interactive_type") != "button_reply":
        return None
    choice = message.metadata.get("interactive_id")
    return choice[:256] if isinstance(choice, str) and choice else None


def _handled_here(event: ConversationMessage) -> bool:
    """What the router would do for a follow-up on an assigned or offered contact, done here: the assigned
    agent is pushed the message (the router's very frame); an offered contact needs nothing (its agent reads
    the whole conversation on accepting, and another agent after a decline or expiry). False (the routing queue
    then carries it, with SQS's redelivery) for any other state, and when anything on the way fails."""
    from chalicelib.routing.model import ContactState
    from chalicelib.store import routing as routing_store

    try:
        contact = routing_store.get_contact(event.conversation_id)
        if contact is None:
            return False  # its first message is not routed yet: the router decides, in the conversation's order
        if contact.state is ContactState.OFFERED and contact.offered_to:
            return True
        if contact.state is not ContactState.ASSIGNED or not contact.assigned_to:
            return False
        push.to_agent(contact.assigned_to, message_payload(event))
    except Exception:
        logger.warning("could not tell the assigned agent; queueing the routing event", exc_info=True)
        return False
    return True
