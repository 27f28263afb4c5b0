"""A call's lifecycle when it does not go to plan: the caller leaves before the agent reaches them.

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
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.store import outbound
from chalicelib.store import voice as store
from chalicelib.voice import twilio_api

logger = Logger(service="switchboard", child=True)

CALLER_GONE = "The caller has hung up. Goodbye."
FINAL = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})


def caller_gone(call: dict[str, Any] | None) -> bool:
    """Whether the customer's call of this voice record has ended."""
    sid = (call or {}).get("customer_call_sid")
    if not sid:
        return False
    record = outbound.get_status(twilio_api.PROVIDER, str(sid), kind="call")
    return record is not None and str(record.get("status")) in FINAL


def on_caller_left(conversation_id: str, first_time: bool) -> bool:
    """The caller's call ended: True when it ended before they were put through to an agent. ``first_time``:
    this request moved the call's record to final (a repeat does not hang the agent's leg up again)."""
    call = store.get_call(conversation_id)
    if call is None or call.get("bridged_at"):
        return False
    leg_sid = (call.get("agent_leg") or {}).get("call_sid")
    if leg_sid and first_time:
        try:
            twilio_api.hang_up(str(leg_sid))
        except twilio_api.Gone:
            pass  # the agent's leg ended already
        except (ProviderUnavailable, ProviderRejected):
            # The leg's TwiML hangs up if it is answered; unanswered, it rings out.
            logger.warning("could not hang up the agent's leg", extra={"conversation_id": conversation_id})
    return True
