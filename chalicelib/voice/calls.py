"""What a call's status callbacks do to its contact.

The customer's leg ending (``completed``, ``busy``, ``no-answer``, ``canceled``, ``failed``; or the Enqueue
action's ``QueueResult=hangup``, applied as ``completed``) publishes ``CallerLeft`` on the routing queue: the
router abandons the contact if it still waits, and leaves it alone once an agent has it. The call's record only
moves forward (``store.outbound.advance``), so a repeated or late callback changes nothing; when the record was
already final, the event is published again (the queue drops the repeat, the router's abandon is idempotent),
so a Lambda that died between the update and the publish is made good by Twilio's retry.

A caller who pressed 1 to be called back (``voice.callback``) hangs up without abandoning: no ``CallerLeft``.
The call back's own statuses (role ``callback``) go to ``voice.callback.on_call_status``.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.channels.base import StatusUpdate
from chalicelib.conversations.models import InboundMessage
from chalicelib.routing.events import AgentUnreachable, CallerLeft
from chalicelib.store import outbound, queue
from chalicelib.store import voice as voice_store
from chalicelib.voice import lifecycle

CUSTOMER = "customer"
AGENT = "agent"
FINAL = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
# An agent leg ending so never reached the agent: the contact moves on.
UNANSWERED = frozenset({"busy", "no-answer", "canceled", "failed"})


def on_incoming(message: InboundMessage, conversation_id: str, context: dict[str, Any], now: str) -> None:
    """A call came in, its routing event queued: the call we hold (its status callbacks update it) and the voice
    record (where later callbacks are built, our number the agent's phone leg is called from). Idempotent: a
    repeat (or a retry after a Lambda died here) changes neither, nor moves the call's status back.

    When the call had ended already (its hang-up's status callback came while this request stored it, and found
    no call held: ``note_call_ended``), ``CallerLeft`` is published here, after the routing event that opens the
    contact, so the router abandons it rather than keep a gone caller in line."""
    status = str(message.metadata.get("call_status", "ringing")).lower()
    base = context.get("callback_base")
    extra = {"role": CUSTOMER, **({"callback_base": base} if base else {})}
    call_sid = message.provider_message_id
    if base:
        voice_store.open_call(conversation_id, call_sid, str(base), message.metadata.get("to"), now)
    found = outbound.hold_call(message.provider, call_sid, conversation_id, status, now, extra)
    if found is not None and found.get("status") in FINAL and found.get("role", CUSTOMER) == CUSTOMER:
        before_agent = lifecycle.on_caller_left(conversation_id, first_time=False)
        queue.publish(CallerLeft(conversation_id, call_sid, before_agent=before_agent))


def on_call_status(update: StatusUpdate, applied: dict[str, Any] | None) -> bool:
    """Publish ``CallerLeft`` when ``update`` ends a customer's call; True when it did."""
    if update.status not in FINAL:
        return False
    record = applied
    if record is None:  # a repeat, or one the first attempt applied before dying: was the call final already?
        record = outbound.get_status(update.provider, update.provider_message_id, kind="call")
        if record is None:  # a call never stored: one that hung up during the speech question is counted
            from chalicelib.voice import self_service, speech

            # ... abandoned; during the self-service answer to it: unconfirmed (voice.self_service).
            sid = update.provider_message_id
            if speech.caller_left(sid) or self_service.caller_left(sid):
                return True
            # Perhaps a call a request is storing right now: it learns from this that the caller has gone.
            outbound.note_call_ended(update.provider, sid, update.status, clock.now_iso())
            return False
        if record.get("status") not in FINAL:
            return False
    conversation_id = str(record.get("conversation_id") or "")
    if not conversation_id:
        return False
    role = record.get("role", CUSTOMER)
    if role == AGENT:
        if record.get("status") not in UNANSWERED or not record.get("agent_id"):
            return False
        voice_store.drop_agent_leg(conversation_id, update.provider_message_id)  # the next accept places a leg
        queue.publish(AgentUnreachable(conversation_id, str(record["agent_id"]), update.provider_message_id))
        return True
    # Imported here: every webhook imports this module, and only a call's end needs the callback's.
    from chalicelib.voice import callback

    if role == callback.ROLE:
        return callback.on_call_status(record, update.provider_message_id)
    if role == "consult":  # voice.controls.CONSULT_ROLE
        from chalicelib.voice import controls

        return controls.on_consult_call_end(record, update.provider_message_id)
    if role != CUSTOMER:
        return False
    if callback.requested(conversation_id):
        return False  # the caller hung up to be called back: the contact keeps waiting
    before_agent = lifecycle.on_caller_left(conversation_id, first_time=applied is not None)
    queue.publish(CallerLeft(conversation_id, update.provider_message_id, before_agent=before_agent))
    return True
