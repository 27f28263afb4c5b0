"""A callback that keeps the caller's place in line (issue 13 §4).

1. **Press 1.** While the caller waits, the wait document (``voice.waiting``) wraps the position in a
   ``<Gather numDigits="1">`` whose action is ``CALLBACK_REQUEST``. A 1 from the caller of the contact's own call,
   from a number we can call back, while the contact still waits: ``store.voice.request_callback`` (one
   conditional write) records the callback on the call's item, the timeline notes it, and the caller hears the
   confirmation and ``<Leave>``s the queue (the Enqueue action then ends the call). Their call ending publishes
   no ``CallerLeft`` (``voice.calls``): the contact stays queued with its ``enqueued_at`` and deadline, so it keeps
   its position, ahead of later arrivals. Another digit goes back to the wait document.
2. **An agent takes it.** Accept and the agent's leg are as for any call (``voice.connect``, ``voice.softphone``).
   When that leg joins the conference, the customer is called back (Calls API, from our number they called, to
   the number they called from) instead of being moved out of the queue: the agent is on the line when the
   customer answers, and a leg that never reaches the agent never rings the customer. The call's TwiML
   (``CALLBACK_LEG``) joins the conference as the customer. Each attempt is claimed by a conditional write
   (``claim_callback_attempt``), so a repeated join or timer places one call.
3. **Not answered.** busy, no-answer, failed or canceled (the call's status callback, role ``callback``): the
   attempt is noted in the timeline and, while attempts are left (``voice.callback.attempts``), a ``CallbackDue``
   timer places the next one ``retry_after`` later. After the last, the callback is recorded as failed: timeline,
   ``CallbackFailed``, the contact closed with wrap-up ``callback_failed`` (the agent freed) and the agent's leg
   hung up. A callback answered and then ended is a call that ended: ``CallerLeft``, the agent wraps up.

Every step that writes does so once (conditional writes keyed on the call's item); a repeated callback finds its
step done and redoes only what is idempotent (the timeline note has a key of its own, the close is idempotent, a
second timer loses its claim), so a Lambda that died midway is made good by Twilio's retry. A placement from the
agent's join (a webhook Twilio does not retry) queues a guard timer first: if its Lambda died after claiming the
attempt, the guard finds the claim stale and places the call; a call that was placed but never noted is noted
when the customer answers it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock, metrics
from chalicelib.errors import Conflict
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.routing.config import current_config
from chalicelib.routing.events import CallbackDue, CallerLeft
from chalicelib.routing.model import Contact, ContactState
from chalicelib.store import conversations as conversation_store
from chalicelib.store import outbound, queue
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as store
from chalicelib.voice import connect, twilio_api, twiml

logger = Logger(service="switchboard", child=True)

CALLBACK_REQUEST = "/webhooks/twilio/voice/callback-request"
CALLBACK_LEG = "/webhooks/twilio/voice/callback-leg"
ROLE = "callback"  # the outbound call record's role: its status callbacks come here
WRAP_UP = "callback_failed"
AUTHOR = "switchboard"
RING_SECONDS = 30  # how long a call back rings before Twilio reports no-answer
# A placement claimed this long ago that got no call died: no function that places one runs past 30 s (the
# webhooks' Lambda is stopped at API Gateway's 29 s, the timer's at its 30 s timeout).
STALE_SECONDS = 35
GUARD_SECONDS = 60  # when the guard of a placement from a webhook looks whether it got its call
NOT_ANSWERED = frozenset({"busy", "no-answer", "canceled", "failed"})
_WAITING = (ContactState.QUEUED, ContactState.OFFERED)


def callable_number(caller: str | None, call_sid: str) -> str | None:
    """The E.164 number a caller can be called back on; None for a withheld, SIP or app caller."""
    from chalicelib.channels.twilio import caller_identity
    from chalicelib.conversations.identity import PHONE

    who = caller_identity(caller or "", call_sid)
    return who.value if who.kind == PHONE else None


def offered_to(caller: str | None, call_sid: str) -> bool:
    """Whether the wait document offers this caller "press 1": callbacks on in routing.yaml, a number to call."""
    return current_config().voice_callback.offer and callable_number(caller, call_sid) is not None


def requested(conversation_id: str) -> bool:
    """Whether the caller of this contact hung up to be called back (their call ending then abandons nothing):
    asked for it, and not put through to an agent after all (a 1 pressed just as the agent's leg joined)."""
    call = store.get_call(conversation_id) or {}
    return bool(call.get("callback")) and not call.get("bridged_at")


# --- 1. press 1 ------------------------------------------------------------------------------------------------


def on_digits(conversation_id: str, form: dict[str, Any], base: str) -> str:
    """The wait document's ``<Gather>`` action: the TwiML the caller hears next."""
    again = connect.url(base, connect.WAIT, conversation_id)
    call_sid = str(form.get("CallSid") or "")
    number = callable_number(form.get("From"), call_sid)
    if form.get("Digits") != "1" or number is None or not current_config().voice_callback.offer:
        return twiml.back_to_waiting(again)
    contact = routing_store.get_contact(conversation_id)
    call = store.get_call(conversation_id)
    if contact is None or call is None or call.get("customer_call_sid") != call_sid:
        return twiml.back_to_waiting(again)
    existing = call.get("callback")
    if existing is None:
        if contact.state not in _WAITING:
            return twiml.back_to_waiting(again)  # an agent has it: the caller is about to be put through
        now = clock.now_iso()
        if not store.request_callback(conversation_id, call_sid, number, now):
            existing = (store.get_call(conversation_id) or {}).get("callback")
            if existing is None:
                return twiml.back_to_waiting(again)  # moved into the conference meanwhile
        else:
            existing = {"requested_at": now, "to": number}
            _count(contact, "requested")
            logger.info("callback requested", extra={"conversation_id": conversation_id})
    _note(contact, "requested", str(existing["requested_at"]), "The caller asked to be called back (pressed 1).")
    return twiml.callback_confirmed()


# --- 2. an agent takes it -------------------------------------------------------------------------------------


def on_agent_joined(conversation_id: str, call: dict[str, Any], base: str) -> bool:
    """The agent's leg joined the conference of a callback contact: place the first call back (once)."""
    return place(conversation_id, 1, call, base, now=clock.now_iso(), guard=True) is not None


def callback_leg_twiml(conversation_id: str, call_sid: str | None, base: str) -> str:
    """The TwiML of a call back: into the conference, if it is the attempt ringing now (else hang up).

    A call placed by an attempt that died before noting it is that attempt's call: noted here, when answered."""
    callback = (store.get_call(conversation_id) or {}).get("callback") or {}
    if not call_sid:
        return twiml.hangup()
    if callback.get("call_sid") != call_sid:
        attempt = int(callback.get("attempts") or 0)
        over = int(callback.get("done") or 0) >= attempt or callback.get("call_sid")
        if not attempt or over or not store.note_callback_call(conversation_id, attempt, call_sid):
            return twiml.hangup()
        outbound.record(
            "twilio",
            call_sid,
            conversation_id,
            "in-progress",
            clock.now_iso(),
            "call",
            {"role": ROLE, "attempt": attempt},
        )
    return twiml.callback_leg(conversation_id, status_callback=connect.url(base, connect.CONFERENCE, conversation_id))


def on_customer_joined(conversation_id: str) -> None:
    """The called-back customer is in the conference: ``CallbackConnected``, once (nothing for other calls)."""
    if not store.callback_connected(conversation_id, clock.now_iso()):
        return
    contact = routing_store.get_contact(conversation_id)
    if contact is not None:
        _count(contact, "connected")


def place(
    conversation_id: str, attempt: int, call: dict[str, Any], base: str | None = None, *, now: str, guard: bool
) -> str | None:
    """Call the customer back (attempt ``attempt``), once; the CallSid when placed now.

    ``guard``: placed from a webhook, whose death Twilio does not make good; a ``CallbackDue`` for this same
    attempt is queued first, and finds the claim stale if it never got its call. (A timer's own death is made good
    by SQS delivering it again.)"""
    callback = call.get("callback") or {}
    contact = routing_store.get_contact(conversation_id)
    if not callback.get("to") or contact is None or contact.state is not ContactState.ASSIGNED:
        return None
    if guard:
        due = clock.plus_seconds(now, GUARD_SECONDS)
        queue.publish_timer(CallbackDue(conversation_id, attempt, due), due, now)
    if not store.claim_callback_attempt(conversation_id, attempt, now, clock.plus_seconds(now, -STALE_SECONDS)):
        return None  # placed already (a repeated join or timer, one under way), or the callback is over
    base = str(call.get("callback_base") or base or "")
    try:
        sid = twilio_api.create_call(
            to=str(callback["to"]),
            from_=str(call.get("number") or ""),
            url=connect.url(base, CALLBACK_LEG, conversation_id),
            status_callback=connect.url(base, connect.STATUS),
            timeout=RING_SECONDS,
        )
    except (ProviderUnavailable, ProviderRejected) as exc:
        logger.warning("could not place the call back", extra={"conversation_id": conversation_id}, exc_info=True)
        result = "not placed" if isinstance(exc, ProviderUnavailable) else "refused"
        if store.callback_attempt_unplaced(conversation_id, attempt, result, now):
            _attempt_over(contact, attempt, result, now)
        return None
    if not store.note_callback_call(conversation_id, attempt, sid):
        # An orphan of this attempt was answered and noted first: this second call would ring for nothing.
        with contextlib.suppress(twilio_api.Gone, ProviderUnavailable, ProviderRejected):
            twilio_api.end_call(sid)
        return None
    outbound.record("twilio", sid, conversation_id, "queued", now, "call", {"role": ROLE, "attempt": attempt})
    logger.info("calling the customer back", extra={"conversation_id": conversation_id, "attempt": attempt})
    return sid


# --- 3. not answered ------------------------------------------------------------------------------------------


def on_call_status(record: dict[str, Any], call_sid: str) -> bool:
    """A final status of a call back (``record``: its call record, status applied); True when it acted."""
    conversation_id = str(record.get("conversation_id") or "")
    status = str(record.get("status") or "")
    if status == "completed":  # answered, then ended: the call ended, the agent wraps up
        queue.publish(CallerLeft(conversation_id, call_sid))
        return True
    if status not in NOT_ANSWERED:
        return False
    now = clock.now_iso()
    attempt = int(record.get("attempt") or 1)
    if not store.callback_attempt_failed(conversation_id, call_sid, attempt, status, now):
        callback = (store.get_call(conversation_id) or {}).get("callback") or {}
        if callback.get("last_call_sid") != call_sid or callback.get("call_sid"):
            return False  # an older attempt's repeat: nothing to redo
        now = str(callback.get("last_failed_at") or now)  # the same step again, as the first report took it
    contact = routing_store.get_contact(conversation_id)
    if contact is None:
        return False
    _attempt_over(contact, attempt, status, now)
    return True


def on_due(event: CallbackDue, now: str) -> str:
    """The ``CallbackDue`` timer: the next attempt, if the contact still waits for it."""
    if clock.seconds_between(now, event.due_at) > 1:
        queue.publish_timer(event, event.due_at, now)  # delivered early: again at its time
        return "re-armed"
    call = store.get_call(event.conversation_id)
    if call is None:
        return "no call"
    placed = place(event.conversation_id, event.attempt, call, now=now, guard=False)
    return "placed" if placed else "nothing to place"


def _attempt_over(contact: Contact, attempt: int, result: str, now: str) -> None:
    """Attempt ``attempt`` reached nobody: the next one after ``retry_after``, or the callback has failed."""
    settings = current_config().voice_callback
    conversation_id = contact.contact_id
    text = f"Call back attempt {attempt} of {settings.attempts} was not answered ({result})."
    _note(contact, f"attempt{attempt}", now, text)
    if attempt < settings.attempts:
        due = clock.plus_seconds(now, settings.retry_after_seconds)
        queue.publish_timer(CallbackDue(conversation_id, attempt + 1, due), due, now)
        if contact.assigned_to:
            from chalicelib.notify import push

            push.to_agent(
                contact.assigned_to,
                {"type": "callback_retry", "conversation_id": conversation_id, "attempt": attempt + 1, "at": due},
            )
        return
    _give_up(contact, now)


def _give_up(contact: Contact, now: str) -> None:
    """Every attempt failed: recorded (timeline, metric, wrap-up ``callback_failed``), the agent freed."""
    conversation_id = contact.contact_id
    first = store.callback_given_up(conversation_id, now)
    callback = (store.get_call(conversation_id) or {}).get("callback") or {}
    failed_at = str(callback.get("failed_at") or now)
    _note(contact, "failed", failed_at, "The call back failed: nobody answered any attempt.")
    if first:
        _count(contact, "failed")
        logger.info("callback failed", extra={"conversation_id": conversation_id})
    if contact.assigned_to:
        from chalicelib.agents import service

        try:
            service.close(contact.assigned_to, conversation_id, WRAP_UP)
        except Conflict:
            logger.info("callback contact already closed", extra={"conversation_id": conversation_id})
    leg = ((store.get_call(conversation_id) or {}).get("agent_leg") or {}).get("call_sid")
    if leg:
        try:
            twilio_api.end_call(str(leg))
        except twilio_api.Gone:
            pass  # the agent's leg has ended already
        except (ProviderUnavailable, ProviderRejected):
            logger.warning("could not hang up the agent's leg", extra={"conversation_id": conversation_id})


def _count(contact: Contact, outcome: str) -> None:
    """``Callback<Outcome>`` in the metrics, and the queue's count in the supervisor view."""
    metrics.callback(outcome, contact.queues[0], contact.channel)
    routing_store.record_callback(contact.queues[0], outcome)


def _note(contact: Contact, step: str, at: str, text: str) -> None:
    """A line in the timeline for the agent (never sent): keyed by the step and its stored time, so written once."""
    note_id = f"callback_{step}_{contact.contact_id}"
    conversation_store.add_note(contact.customer_id, contact.contact_id, note_id, AUTHOR, text, at)
