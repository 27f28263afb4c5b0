"""One item per voice contact: what the app must know to act on its call later.

Keys in the data table::

    AGENTVOICE#<agent id>     AGENTVOICE  phone (E.164), voice_mode (softphone | phone): how the agent takes calls
    VOICE#<conversation id>   VOICE   customer_call_sid, callback_base (the webhooks' URL the call came in on),
                                      number (ours, that the customer called), queue_sid (the Twilio queue the
                                      caller waits in, from the first wait request), agent_leg (the one agent leg:
                                      agent_id, claimed_at, call_sid, joined_at), bridged_at (the caller was moved
                                      into the conference), callback (the caller asked to be called back: the
                                      section "the callback" below), expires_at (TTL:
                                      ``conversations.idempotency_expiry``)

Every move is one conditional write, so that a retried accept or a repeated Twilio callback does it once:
``claim_agent_leg`` is the exactly-one guard for the agent leg, ``claim_bridge`` for moving the caller.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import idempotency_expiry
from chalicelib.store.dynamo import get, key, to_item, to_values


def _table() -> str:
    return get_settings().data_table


def _key(conversation_id: str) -> dict[str, Any]:
    return key(f"VOICE#{conversation_id}", "VOICE")


def open_call(conversation_id: str, call_sid: str, callback_base: str, number: str | None, now: str) -> None:
    """Remember the customer's call of a voice contact (a repeat of the same call changes nothing)."""
    item = {
        "pk": f"VOICE#{conversation_id}",
        "sk": "VOICE",
        "conversation_id": conversation_id,
        "customer_call_sid": call_sid,
        "callback_base": callback_base,
        "created_at": now,
        "expires_at": idempotency_expiry(now),  # the table's TTL, as the call's CALL# records
        **({"number": number} if number else {}),
    }
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=_table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def get_call(conversation_id: str) -> dict[str, Any] | None:
    return get(_table(), f"VOICE#{conversation_id}", "VOICE")


def _conditional_set(conversation_id: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
    """One conditional update of the call's item: True if it applied, False if its condition failed."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=_key(conversation_id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=to_values(values),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def note_queue(conversation_id: str, queue_sid: str) -> bool:
    """The Twilio queue the caller waits in (named by the conversation); set once."""
    return _conditional_set(
        conversation_id,
        "SET queue_sid = :queue",
        "attribute_exists(pk) AND attribute_not_exists(queue_sid)",
        {":queue": queue_sid},
    )


def claim_agent_leg(conversation_id: str, agent_id: str, now: str) -> bool:
    """The contact's one agent leg, for ``agent_id``: True for the one claim that wins."""
    return _conditional_set(
        conversation_id,
        "SET agent_leg = :leg",
        "attribute_exists(pk) AND attribute_not_exists(agent_leg)",
        {":leg": {"agent_id": agent_id, "claimed_at": now}},
    )


def note_agent_call(conversation_id: str, agent_id: str, call_sid: str) -> bool:
    """The Twilio call of the claimed agent leg."""
    return _conditional_set(
        conversation_id,
        "SET agent_leg.call_sid = :call",
        "agent_leg.agent_id = :agent AND attribute_not_exists(agent_leg.call_sid)",
        {":call": call_sid, ":agent": agent_id},
    )


def claim_bridge(conversation_id: str, now: str) -> bool:
    """Moving the caller into the conference: True for the one request that does it."""
    return _conditional_set(
        conversation_id,
        "SET bridged_at = :now",
        "attribute_exists(agent_leg) AND attribute_not_exists(bridged_at)",
        {":now": now},
    )


def release_agent_leg(conversation_id: str, agent_id: str) -> bool:
    """Give up a claim whose call could not be placed, so that a retried accept places it."""
    return _conditional_set(
        conversation_id,
        "REMOVE agent_leg",
        "agent_leg.agent_id = :agent AND attribute_not_exists(agent_leg.call_sid)",
        {":agent": agent_id},
    )


def set_agent_phone(agent_id: str, phone: str | None, voice_mode: str) -> None:
    """How ``agent_id`` takes calls: the console's softphone, or a call to their own ``phone``."""
    item = {"pk": f"AGENTVOICE#{agent_id}", "sk": "AGENTVOICE", "agent_id": agent_id, "voice_mode": voice_mode}
    if phone:
        item["phone"] = phone
    aws.client("dynamodb").put_item(TableName=_table(), Item=to_item(item))


def agent_phone(agent_id: str) -> dict[str, Any] | None:
    return get(_table(), f"AGENTVOICE#{agent_id}", "AGENTVOICE")


def drop_agent_leg(conversation_id: str, call_sid: str) -> bool:
    """The agent leg ``call_sid`` failed before joining: free the claim for the next agent's accept."""
    return _conditional_set(
        conversation_id,
        "REMOVE agent_leg",
        "agent_leg.call_sid = :call AND attribute_not_exists(bridged_at)",
        {":call": call_sid},
    )


def note_customer_joined(conversation_id: str, now: str) -> bool:
    """The caller is in the conference with the agent: True for the first report of it."""
    return _conditional_set(
        conversation_id,
        "SET customer_joined_at = :now",
        "attribute_exists(pk) AND attribute_not_exists(customer_joined_at)",
        {":now": now},
    )


def drop_agent_claim(conversation_id: str, agent_id: str) -> bool:
    """``agent_id``'s leg, placed or not, never joined in time: free the claim for the next agent's accept (not
    once the leg joined the conference)."""
    return _conditional_set(
        conversation_id,
        "REMOVE agent_leg",
        "agent_leg.agent_id = :agent AND attribute_not_exists(agent_leg.joined_at)",
        {":agent": agent_id},
    )


def note_agent_joined(conversation_id: str, call_sid: str, now: str) -> bool:
    """The claimed agent leg ``call_sid`` is in the conference (its participant-join): True for the first report.
    The join timer asks this, not ``bridged_at``: a caller held for the next agent was bridged by the one before,
    and a called-back caller is never bridged from the queue at all."""
    return _conditional_set(
        conversation_id,
        "SET agent_leg.joined_at = :now",
        "agent_leg.call_sid = :call AND attribute_not_exists(agent_leg.joined_at)",
        {":call": call_sid, ":now": now},
    )


# --- the callback (voice.callback): ``callback`` on the call's item ------------------------------------------
#
#   callback: to (the customer's number), requested_at, attempts (calls claimed so far), call_sid (the attempt
#             ringing now), claimed_at, done (the last attempt that is over), last_call_sid/last_result/
#             last_failed_at (the attempt that failed last), connected_at, failed_at


def request_callback(conversation_id: str, call_sid: str, to: str, now: str) -> bool:
    """The caller of ``call_sid`` asked to be called back on ``to``: True for the one request that records it
    (not once the caller was moved into the conference)."""
    return _conditional_set(
        conversation_id,
        "SET callback = :callback",
        "customer_call_sid = :call AND attribute_not_exists(callback) AND attribute_not_exists(bridged_at)",
        {":callback": {"to": to, "requested_at": now, "attempts": 0}, ":call": call_sid},
    )


def claim_callback_attempt(conversation_id: str, attempt: int, now: str, stale_before: str) -> bool:
    """Call attempt number ``attempt`` (from 1) of the callback: True for the one claim that may place it.

    A claim of this same attempt made before ``stale_before`` that never got its call (its Lambda died between the
    claim and Twilio's answer) and is not over may be taken again: by then that Lambda is long gone."""
    return _conditional_set(
        conversation_id,
        "SET callback.attempts = :attempt, callback.claimed_at = :now",
        "attribute_not_exists(callback.call_sid)"
        " AND attribute_not_exists(callback.connected_at) AND attribute_not_exists(callback.failed_at)"
        " AND (callback.attempts = :before OR (callback.attempts = :attempt AND callback.claimed_at < :stale"
        " AND (attribute_not_exists(callback.done) OR callback.done < :attempt)))",
        {":attempt": attempt, ":before": attempt - 1, ":now": now, ":stale": stale_before},
    )


def note_callback_call(conversation_id: str, attempt: int, call_sid: str) -> bool:
    """The Twilio call of the claimed attempt."""
    return _conditional_set(
        conversation_id,
        "SET callback.call_sid = :call",
        "callback.attempts = :attempt AND attribute_not_exists(callback.call_sid)",
        {":call": call_sid, ":attempt": attempt},
    )


def release_callback_attempt(conversation_id: str, attempt: int) -> bool:
    """Give back a claimed attempt whose call could not be placed, so that a retry places it."""
    return _conditional_set(
        conversation_id,
        "SET callback.attempts = :before",
        "callback.attempts = :attempt AND attribute_not_exists(callback.call_sid)",
        {":attempt": attempt, ":before": attempt - 1},
    )


def callback_attempt_failed(conversation_id: str, call_sid: str, attempt: int, result: str, now: str) -> bool:
    """The attempt ``call_sid`` was not answered (``result``: busy, no-answer...): True for the first report."""
    return _conditional_set(
        conversation_id,
        "SET callback.last_call_sid = :call, callback.last_result = :result, callback.last_failed_at = :now,"
        " callback.done = :attempt REMOVE callback.call_sid",
        "callback.call_sid = :call",
        {":call": call_sid, ":result": result, ":now": now, ":attempt": attempt},
    )


def callback_attempt_unplaced(conversation_id: str, attempt: int, result: str, now: str) -> bool:
    """The claimed attempt could not be placed (Twilio down or refusing it): over, True for the first report."""
    return _conditional_set(
        conversation_id,
        "SET callback.last_result = :result, callback.last_failed_at = :now, callback.done = :attempt",
        "callback.attempts = :attempt AND attribute_not_exists(callback.call_sid)"
        " AND (attribute_not_exists(callback.done) OR callback.done < :attempt)",
        {":result": result, ":now": now, ":attempt": attempt},
    )


def callback_connected(conversation_id: str, now: str) -> bool:
    """The called-back customer is in the conference: True for the first report of it."""
    return _conditional_set(
        conversation_id,
        "SET callback.connected_at = :now",
        "attribute_exists(callback) AND attribute_not_exists(callback.connected_at)",
        {":now": now},
    )


def callback_given_up(conversation_id: str, now: str) -> bool:
    """Every attempt failed: True for the one report that records it."""
    return _conditional_set(
        conversation_id,
        "SET callback.failed_at = :now",
        "attribute_exists(callback) AND attribute_not_exists(callback.failed_at)"
        " AND attribute_not_exists(callback.connected_at)",
        {":now": now},
    )


def note_conference(conversation_id: str, conference_sid: str) -> bool:
    """The Twilio conference of the contact (from a participant's join; the Participants API names it)."""
    return _conditional_set(
        conversation_id,
        "SET conference_sid = :sid",
        "attribute_exists(pk) AND (attribute_not_exists(conference_sid) OR conference_sid <> :sid)",
        {":sid": conference_sid},
    )


def note_controls(conversation_id: str, **flags: bool) -> None:
    """What the agent set on the call (``on_hold``, ``muted``), for the console's call bar."""
    expression = "SET " + ", ".join(f"{name} = :{name}" for name in flags)
    _conditional_set(conversation_id, expression, "attribute_exists(pk)", {f":{n}": v for n, v in flags.items()})


def free_agent_leg(conversation_id: str, call_sid: str) -> bool:
    """The bridged agent leg ``call_sid`` left the call: the caller waits on hold in the conference, and the next
    accept claims a new leg (which joins the conference: the caller is in it already, ``bridged_at`` stays)."""
    return _conditional_set(
        conversation_id,
        "REMOVE agent_leg SET on_hold = :held, muted = :muted, held_for_agent = :held",
        "agent_leg.call_sid = :call AND attribute_exists(bridged_at)",
        {":call": call_sid, ":held": True, ":muted": False},
    )


def caller_taken_off_hold(conversation_id: str) -> bool:
    """The caller held for the next agent is off hold: True for the one report of it (a repeated join: False)."""
    return _conditional_set(
        conversation_id,
        "REMOVE held_for_agent SET on_hold = :off",
        "attribute_exists(held_for_agent)",
        {":off": False},
    )


def start_consult(conversation_id: str, agent_id: str, now: str) -> bool:
    """A consult of ``agent_id`` on the call (a warm transfer): True for the one that may start now."""
    return _conditional_set(
        conversation_id,
        "SET consult = :consult",
        "attribute_exists(agent_leg) AND attribute_not_exists(consult)",
        {":consult": {"agent_id": agent_id, "started_at": now}},
    )


def note_consult_call(conversation_id: str, agent_id: str, call_sid: str) -> bool:
    return _conditional_set(
        conversation_id,
        "SET consult.call_sid = :call",
        "consult.agent_id = :agent AND attribute_not_exists(consult.call_sid)",
        {":call": call_sid, ":agent": agent_id},
    )


def end_consult(conversation_id: str, agent_id: str) -> bool:
    """The consult of ``agent_id`` is over (cancelled, failed, or the colleague hung up)."""
    return _conditional_set(conversation_id, "REMOVE consult", "consult.agent_id = :agent", {":agent": agent_id})


def hand_over_leg(conversation_id: str, old_call_sid: str, consult: dict[str, Any], now: str) -> bool:
    """The consulted colleague's call becomes the contact's agent leg (a warm transfer's hand-over)."""
    # In the conference already (joined as ``consult``): the accept's join timer finds it joined.
    leg = {"agent_id": consult["agent_id"], "call_sid": consult["call_sid"], "claimed_at": now, "joined_at": now}
    return _conditional_set(
        conversation_id,
        "SET agent_leg = :leg REMOVE consult",
        "agent_leg.call_sid = :old AND consult.call_sid = :consult",
        {":leg": leg, ":old": old_call_sid, ":consult": consult["call_sid"]},
    )


# --- a call asked the speech question (voice.speech) ---------------------------------------------------------
#
#     ASKED#<call sid>   ASKED   queue (where the rules would send the call), asked_at, left_at (the caller hung up
#                                during the question, counted abandoned) or answered_at (the answer is being stored:
#                                a contact from here on), expires_at (TTL)


def note_asked(call_sid: str, queue: str, now: str) -> None:
    """A call is being asked the question: remembered until it answers or hangs up (Twilio's repeat of the
    incoming call changes nothing)."""
    item = {
        "pk": f"ASKED#{call_sid}",
        "sk": "ASKED",
        "queue": queue,
        "asked_at": now,
        "expires_at": idempotency_expiry(now),
    }
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=_table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def count_left_while_asked(call_sid: str, now: str) -> tuple[str, float] | None:
    """The asked caller hung up: marked and counted abandoned for its queue in one transaction, so a retry or the
    second signal (the status callback and the answer for the ended call) counts nothing again, and a Lambda that
    dies midway counts nothing yet. ``(queue, seconds asked)`` the first time; else None (never asked, counted)."""
    from chalicelib import clock
    from chalicelib.store.dynamo import TransactionConflict, transact
    from chalicelib.store.routing import abandoned_count

    asked = get(_table(), f"ASKED#{call_sid}", "ASKED")
    if asked is None or "left_at" in asked or "answered_at" in asked:
        return None  # never asked, counted already, or answered (then it is a contact, abandoned as one)
    queue = str(asked["queue"])
    waited = max(0.0, clock.seconds_between(str(asked["asked_at"]), now))
    mark = {
        "TableName": _table(),
        "Key": key(f"ASKED#{call_sid}", "ASKED"),
        "UpdateExpression": "SET left_at = :now",
        "ConditionExpression": (
            "attribute_exists(pk) AND attribute_not_exists(left_at) AND attribute_not_exists(answered_at)"
        ),
        "ExpressionAttributeValues": to_values({":now": now}),
    }
    try:
        transact([{"Update": mark}, {"Update": abandoned_count(queue, waited)}])
    except TransactionConflict:
        return None
    return queue, waited


def note_answered(call_sid: str, now: str) -> bool:
    """The asked caller's answer came: False when the call was counted as left already (its hang-up handled
    first), so nothing is stored for it; True otherwise (a call asked before this record existed included)."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(f"ASKED#{call_sid}", "ASKED"),
            UpdateExpression="SET answered_at = if_not_exists(answered_at, :now)",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(left_at)",
            ExpressionAttributeValues=to_values({":now": now}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return get(_table(), f"ASKED#{call_sid}", "ASKED") is None
    return True
