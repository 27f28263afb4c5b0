"""Connecting a voice contact: the agent's leg into the conference, then the caller out of the queue into it.

1. ``on_accept`` (after ``Router.accept``, the conditional write it always was): for an agent set up with
   ``voice_mode: phone``, claim the contact's one agent leg (``store.voice.claim_agent_leg``, a conditional
   write) and place a call to the agent's phone (Calls API) whose TwiML (``AGENT_LEG``) joins the contact's
   conference with the ``agent`` label. A retried accept finds the leg claimed and places nothing; a call that
   could not be placed gives the claim back, so a retry places it. Softphone agents dial in through the console's
   TwiML App instead (their leg's TwiML is the same ``twiml.agent_joins_conference``).
2. ``on_conference_event``: the agent's ``participant-join`` moves the caller: Queue Members API with
   ``Url=BRIDGE`` (Twilio then asks that URL for the caller's TwiML: ``twiml.customer_joins_conference``). A
   repeated join finds ``bridged_at`` set; two at once both ask, and Twilio answers the second 20404 (the caller
   is no longer queued), taken as done.

Every callback URL is built on ``callback_base``, the webhooks' URL the call came in on (the API's handlers
cannot name the webhooks' API), and names the conversation in its query (``?conversation=conv_...``: letters,
digits and ``_`` only, so the signed URL is rebuilt exactly).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.routing.config import current_config
from chalicelib.routing.model import Contact
from chalicelib.store import voice as store
from chalicelib.voice import lifecycle, twilio_api, twiml

logger = Logger(service="switchboard", child=True)

AGENT_LEG = "/webhooks/twilio/voice/agent-leg"
CONFERENCE = "/webhooks/twilio/voice/conference"
BRIDGE = "/webhooks/twilio/voice/bridge"
WAIT = "/webhooks/twilio/voice/wait"
STATUS = "/webhooks/twilio/status"
PHONE = "phone"


def url(base: str, path: str, conversation_id: str | None = None) -> str:
    return base + path + (f"?conversation={conversation_id}" if conversation_id else "")


def on_accept(contact: Contact) -> str | None:
    """Call the agent's phone for an accepted voice contact, once; the agent leg's CallSid when placed now."""
    agent_id = contact.assigned_to
    if contact.channel != "voice" or not agent_id:
        return None
    setup = store.agent_phone(agent_id) or {}
    if setup.get("voice_mode") != PHONE or not setup.get("phone"):
        return None  # a softphone agent: the console dials in through the TwiML App
    call = store.get_call(contact.contact_id)
    if call is None:
        logger.warning("accepted call has no voice record", extra={"conversation_id": contact.contact_id})
        return None
    if not store.claim_agent_leg(contact.contact_id, agent_id, clock.now_iso()):
        return None  # placed already (a retried accept)
    if lifecycle.caller_gone(call):  # hung up while the accept was in flight: nobody to call the agent for
        store.release_agent_leg(contact.contact_id, agent_id)
        return None
    base = str(call["callback_base"])
    try:
        sid = twilio_api.create_call(
            to=str(setup["phone"]),
            from_=str(call.get("number") or ""),
            url=url(base, AGENT_LEG, contact.contact_id),
            status_callback=url(base, STATUS),
            timeout=current_config().offer_timeout("voice"),
        )
    except (ProviderUnavailable, ProviderRejected):
        store.release_agent_leg(contact.contact_id, agent_id)
        logger.warning("could not call the agent's phone", extra={"conversation_id": contact.contact_id}, exc_info=True)
        return None
    store.note_agent_call(contact.contact_id, agent_id, sid)
    from chalicelib.store import outbound  # the agent leg's status callbacks find it (role agent: no abandon)

    outbound.record(
        "twilio", sid, contact.contact_id, "queued", clock.now_iso(), "call", {"role": "agent", "agent_id": agent_id}
    )
    return sid


def agent_leg_twiml(conversation_id: str, call_sid: str | None, base: str) -> str:
    """The TwiML of the agent's phone leg: into the conference, if the leg is still the contact's claimed one
    (a leg placed for an earlier claim, answered late, hangs up rather than join as a second agent)."""
    call = store.get_call(conversation_id)
    leg = (call or {}).get("agent_leg")
    if not leg or (leg.get("call_sid") and leg.get("call_sid") != call_sid):
        return twiml.hangup()
    if lifecycle.caller_gone(call):
        return twiml.say_and_hang_up(lifecycle.CALLER_GONE)
    return twiml.agent_joins_conference(conversation_id, status_callback=url(base, CONFERENCE, conversation_id))


def bridge_twiml(conversation_id: str, base: str) -> str:
    """The caller's TwiML once moved out of the queue: into the conference."""
    return twiml.customer_joins_conference(conversation_id, status_callback=url(base, CONFERENCE, conversation_id))


def _customer_joined(conversation_id: str) -> None:
    """The caller's wait ends here (not at the accept): ``WaitUntilAgent``, once per call."""
    now = clock.now_iso()
    if not store.note_customer_joined(conversation_id, now):
        return
    from chalicelib import metrics
    from chalicelib.store import routing as routing_store

    contact = routing_store.get_contact(conversation_id)
    if contact is not None:
        waited = max(0.0, clock.seconds_between(contact.enqueued_at, now))
        metrics.wait_until_agent(waited, contact.queues[0], contact.channel)
        lifecycle.judge_sla(contact, now)


def on_conference_event(conversation_id: str, form: dict[str, Any], base: str) -> bool:
    """A conference status callback; True when it moved the caller into the conference."""
    if form.get("StatusCallbackEvent") != "participant-join":
        return False
    if form.get("ParticipantLabel") == twiml.CUSTOMER_LABEL:
        _customer_joined(conversation_id)
        from chalicelib.voice import callback

        callback.on_customer_joined(conversation_id)
        return False
    if form.get("ParticipantLabel") != twiml.AGENT_LABEL:
        return False
    if form.get("CallSid"):
        store.note_agent_joined(conversation_id, str(form["CallSid"]), clock.now_iso())
    call = store.get_call(conversation_id)
    if call is not None and call.get("callback") and call.get("agent_leg") and not call.get("bridged_at"):
        from chalicelib.voice import callback  # the caller hung up to be called back: call them now

        return callback.on_agent_joined(conversation_id, call, base)
    if call is None or call.get("bridged_at") or not call.get("agent_leg"):
        return False
    customer = str(call["customer_call_sid"])
    target = url(base, BRIDGE, conversation_id)
    try:
        if call.get("queue_sid"):
            twilio_api.dequeue(str(call["queue_sid"]), customer, target)
        else:  # no wait request seen yet: the live call is redirected, which takes it out of the queue too
            twilio_api.redirect(customer, target)
    except twilio_api.Gone:
        logger.info("caller already out of the queue", extra={"conversation_id": conversation_id})
    store.claim_bridge(conversation_id, clock.now_iso())
    return True
