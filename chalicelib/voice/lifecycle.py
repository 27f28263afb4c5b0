"""A call's lifecycle when it does not go to plan: the caller leaves before the agent reaches them, or the agent
who accepted never joins.

The accept, the agent's leg and the caller's hang-up arrive on different requests in any order, so each looks at
what the others left:

- ``caller_gone``: the caller's call is final (its record ``CALL#twilio#<sid>``, moved forward by the number's
  status callbacks). ``connect.on_accept`` places no agent leg then (the claim given back), the agent leg's TwiML
  and the softphone's say so and hang up instead of joining an empty conference.
- ``on_caller_left``: the caller hung up before being put through (the voice record has no ``bridged_at``): the
  agent's leg, if placed, is hung up (Calls API ``Status=completed``, which ends a ringing call too), and the
  caller's ``CallerLeft`` says ``before_agent``, so the router abandons even an accepted contact and frees its
  agent. A leg placed after this look (an accept racing the hang-up) is stopped by the TwiML guard when answered,
  or rings out (``AgentUnreachable``, which then finds the contact closed).
- ``expect_agent`` / ``on_timer``: every voice accept arms an ``AgentLegDue`` timer (the router's timer queue) at
  the offer timeout plus ``JOIN_MARGIN_SECONDS``. Twilio's no-answer callback normally moves the contact on long
  before; when it was lost, or a softphone agent never dialled in, the timer finds the contact still theirs and
  their leg not joined (``agent_leg.joined_at``, set by the leg's participant-join), frees the leg's claim
  (conditional: not once joined), hangs the leg up and publishes the same
  ``AgentUnreachable`` the callback would have (its dedupe id the leg's CallSid, so the two act once).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.routing.config import current_config
from chalicelib.routing.events import AgentLegDue, AgentUnreachable
from chalicelib.routing.model import Contact, ContactState
from chalicelib.store import outbound, queue
from chalicelib.store import voice as store
from chalicelib.voice import twilio_api

logger = Logger(service="switchboard", child=True)

CALLER_GONE = "The caller has hung up. Goodbye."
# Past the leg's ring timeout (the offer timeout): Twilio's own no-answer callback comes first when it comes.
JOIN_MARGIN_SECONDS = 30
FINAL = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})


def caller_gone(call: dict[str, Any] | None) -> bool:
    """Whether the customer's call of this voice record has ended, and nobody is to call them back (a caller who
    pressed 1 hung up on purpose: ``voice.callback`` calls them once the agent joins)."""
    sid = (call or {}).get("customer_call_sid")
    if not sid or (call or {}).get("callback"):
        return False
    record = outbound.get_status(twilio_api.PROVIDER, str(sid), kind="call")
    return record is not None and str(record.get("status")) in FINAL


def on_caller_left(conversation_id: str, first_time: bool) -> bool:
    """The caller's call ended: True when it ended before they were put through to an agent. ``first_time``:
    this request moved the call's record to final (a repeat does not hang the agent's leg up again)."""
    call = store.get_call(conversation_id)
    if call is None or (call.get("bridged_at") and not call.get("held_for_agent")):
        return False  # put through, and not waiting on hold for a next agent (whose leg has not joined yet)
    leg_sid = (call.get("agent_leg") or {}).get("call_sid")
    if leg_sid and first_time:
        _hang_up(str(leg_sid), conversation_id)
    return True


def _hang_up(call_sid: str, conversation_id: str) -> None:
    """End a stray agent leg, best effort: answered, its TwiML hangs up anyway; unanswered, it rings out."""
    try:
        twilio_api.end_call(call_sid)
    except twilio_api.Gone:
        pass  # it ended already
    except (ProviderUnavailable, ProviderRejected):
        logger.warning("could not hang up the agent's leg", extra={"conversation_id": conversation_id})


def expect_agent(contact: Contact) -> None:
    """Arm the timer by which the agent who accepted ``contact`` (a call) must have joined."""
    if contact.channel != "voice" or not contact.assigned_to or not contact.accepted_at:
        return
    wait = current_config().offer_timeout("voice") + JOIN_MARGIN_SECONDS
    due = clock.plus_seconds(contact.accepted_at, wait)
    queue.publish_timer(
        AgentLegDue(contact.contact_id, contact.assigned_to, contact.accepted_at, due), due, clock.now_iso()
    )


def on_timer(event: AgentLegDue, now: str) -> str:
    """The join timer fired: what it found (for logs and tests)."""
    if clock.seconds_between(now, event.due_at) > 1:  # SQS delivered early (or a delay was capped): again later
        queue.publish_timer(event, event.due_at, now)
        return "re-armed"
    from chalicelib.store import routing as routing_store

    contact = routing_store.get_contact(event.conversation_id)
    if (
        contact is None
        or contact.state is not ContactState.ASSIGNED
        or contact.assigned_to != event.agent_id
        or contact.accepted_at != event.accepted_at
    ):
        return "answered"  # moved on already (rang out, abandoned, a later accept)
    call = store.get_call(event.conversation_id)
    leg = (call or {}).get("agent_leg") or {}
    if call is None or (leg.get("agent_id") == event.agent_id and leg.get("joined_at")):
        return "joined"
    leg_sid = leg.get("call_sid") if leg.get("agent_id") == event.agent_id else None
    if leg.get("agent_id") == event.agent_id and not store.drop_agent_claim(event.conversation_id, event.agent_id):
        return "joined"  # bridged just now
    if leg_sid:
        _hang_up(str(leg_sid), event.conversation_id)
    logger.info("agent did not join in time", extra={"conversation_id": event.conversation_id})
    cause = str(leg_sid or f"join-{event.accepted_at}")
    queue.publish(AgentUnreachable(event.conversation_id, event.agent_id, cause))
    return "agent-unreachable"


def judge_sla(contact: Contact, now: str) -> None:
    """The caller reached the agent (once per call): the SLA is judged here, not at the accept (the router's
    ``Settings.sla_at_join``): the metric, the queue's count and the contact record's ``sla_met``."""
    from chalicelib import metrics
    from chalicelib.routing import records
    from chalicelib.store import routing as routing_store

    met = records.sla_met(contact, now)
    home = contact.queues[0]
    metrics.sla(met, home, contact.channel)
    routing_store.record_sla(home, met)
    routing_store.record_once(records.joined(contact, now))
