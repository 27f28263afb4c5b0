"""The console softphone's leg: who may join a contact's conference from the browser, and the TwiML they get.

An agent accepts a voice offer; the console's ``Device`` then connects with ``params: {contact_id}``, and Twilio
asks the TwiML App's Voice URL (``POST /webhooks/twilio/voice/agent``, signed) what to do with that call, from
``client:<identity>`` (``tokens.identity_of``). The answer joins the contact's conference only when

- the call comes from the softphone's TwiML App (``ApplicationSid`` is ``TWILIO_TWIML_APP_SID``),
- its identity encodes an agent, who holds the contact, a voice call, accepted (ASSIGNED to them),
- the caller is still on the line (``lifecycle.caller_gone``: else it is told so and hung up),
- and this call is the first to claim the contact's one agent leg (``store.voice.claim_agent_leg``, the same
  conditional write that guards the phone leg of ``voice.connect``), recording its ``CallSid`` there: Twilio
  asking again for the same call gets the same answer; any other call (a second tab, a double click) is told it
  is already connected and hung up. The conference's ``participant-join`` of that leg then moves the caller in
  (``voice.connect.on_conference_event``).

Anything else is refused (403) and claims nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chalicelib import settings
from chalicelib.errors import Forbidden
from chalicelib.observability import logger
from chalicelib.routing.model import ContactState
from chalicelib.store import outbound
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from chalicelib.voice import calls, connect, lifecycle, tokens, twiml

ALREADY_CONNECTED = "You are already connected to this call on another device. Goodbye."


def admit(*, caller: str, application_sid: str | None, contact_id: str, call_sid: str, base_url: str, now: str) -> str:
    """The TwiML for a softphone call placed for ``contact_id``; ``Forbidden`` when it may not join.

    ``base_url``: the webhooks' root Twilio called, for the conference's callbacks when the call's own record has
    none (it keeps the one the call came in on)."""
    app_sid = settings.get_settings().twilio_twiml_app_sid
    if not app_sid:
        raise settings.MissingSetting("TWILIO_TWIML_APP_SID")
    if application_sid != app_sid:
        raise Forbidden("this call was not placed through the softphone's TwiML App (ApplicationSid)")
    scheme, _, identity = caller.partition(":")
    try:
        if scheme != "client":
            raise ValueError(caller)
        agent_id = tokens.agent_of(identity)
    except ValueError:
        raise Forbidden("From must be client:<the Device identity of an agent>") from None
    contact = routing_store.get_contact(contact_id)
    if (
        contact is None
        or contact.channel != "voice"
        or contact.state is not ContactState.ASSIGNED
        or contact.assigned_to != agent_id
    ):
        logger.warning("softphone leg refused", extra={"agent_id": agent_id, "contact_id": contact_id})
        raise Forbidden(f"contact {contact_id} is not a call this agent has accepted")
    call = voice_store.get_call(contact_id)
    if call is None:
        logger.warning("softphone leg for a call without its voice record", extra={"contact_id": contact_id})
        raise Forbidden(f"contact {contact_id} has no call to join")
    if lifecycle.caller_gone(call):
        logger.info("softphone leg for a caller who hung up", extra={"agent_id": agent_id, "contact_id": contact_id})
        return twiml.say_and_hang_up(lifecycle.CALLER_GONE)
    if not _claimed(contact_id, agent_id, call_sid, now):
        logger.info("softphone leg already claimed", extra={"agent_id": agent_id, "contact_id": contact_id})
        return already_connected()
    logger.info("softphone leg joins", extra={"agent_id": agent_id, "contact_id": contact_id})
    base = str(call.get("callback_base") or base_url)
    return twiml.agent_joins_conference(contact_id, status_callback=connect.url(base, connect.CONFERENCE, contact_id))


def _claimed(contact_id: str, agent_id: str, call_sid: str, now: str) -> bool:
    """Whether ``call_sid`` is (now) the contact's one agent leg: claimed here, or by this very call before."""
    if voice_store.claim_agent_leg(contact_id, agent_id, now):
        _note(contact_id, agent_id, call_sid, now)
        return True
    leg = (voice_store.get_call(contact_id) or {}).get("agent_leg") or {}
    if leg.get("agent_id") != agent_id:
        return False
    if leg.get("call_sid") == call_sid:
        return True  # Twilio asking again for the same call
    # Claimed by this agent with no call noted (an attempt that died between the writes): this call takes it.
    return not leg.get("call_sid") and _note(contact_id, agent_id, call_sid, now)


def _note(contact_id: str, agent_id: str, call_sid: str, now: str) -> bool:
    """The claimed leg's call, and its record as the agent's leg: its status callbacks (the TwiML App's Status
    Callback URL) then find it, and one that never got through frees the claim and moves the call on."""
    noted = voice_store.note_agent_call(contact_id, agent_id, call_sid)
    if noted:
        extra = {"role": calls.AGENT, "agent_id": agent_id}
        outbound.record("twilio", call_sid, contact_id, "ringing", now, "call", extra)
    return noted


def already_connected() -> str:
    """A polite no to a second leg for a contact whose agent leg is another call's."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = ALREADY_CONNECTED
    ET.SubElement(response, "Hangup")
    return twiml.XML_DECLARATION + ET.tostring(response, encoding="unicode")
