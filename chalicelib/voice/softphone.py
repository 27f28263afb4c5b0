"""The console softphone's leg: who may join a contact's conference from the browser, and the TwiML they get.

An agent accepts a voice offer; the console's ``Device`` then connects with ``params: {contact_id}``, and Twilio
asks the TwiML App's Voice URL (``POST /webhooks/twilio/voice/agent``, signed) what to do with that call, from
``client:<identity>`` (``tokens.identity_of``). The answer joins the contact's conference only when

- the call comes from the softphone's TwiML App (``ApplicationSid`` is ``TWILIO_TWIML_APP_SID``),
- its identity encodes an agent, who holds the contact, a voice call, accepted (ASSIGNED to them),
- and this call is the first to claim the agent leg of that acceptance (``store.agent_legs``): Twilio asking
  again for the same call gets the same answer; any other call (a second tab, a double click) is told it is
  already connected and hung up.

Anything else is refused (403) and claims nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chalicelib import settings
from chalicelib.errors import Forbidden
from chalicelib.observability import logger
from chalicelib.routing.model import ContactState
from chalicelib.store import agent_legs
from chalicelib.store import routing as routing_store
from chalicelib.voice import tokens, twiml

MODE = "softphone"
ALREADY_CONNECTED = "You are already connected to this call on another device. Goodbye."
# Where the contact's conference reports its events (v1-voice-core's route, built from the URL Twilio called).
CONFERENCE_CALLBACK = "/webhooks/twilio/voice/conference/{contact_id}"


def conference_callback(base_url: str, contact_id: str) -> str:
    return base_url + CONFERENCE_CALLBACK.format(contact_id=contact_id)


def admit(*, caller: str, application_sid: str | None, contact_id: str, call_sid: str, base_url: str, now: str) -> str:
    """The TwiML for a softphone call placed for ``contact_id``; ``Forbidden`` when it may not join."""
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
        or not contact.offer_id
    ):
        logger.warning("softphone leg refused", extra={"agent_id": agent_id, "contact_id": contact_id})
        raise Forbidden(f"contact {contact_id} is not a call this agent has accepted")
    if not agent_legs.claim(contact_id, contact.offer_id, agent_id, call_sid, MODE, now):
        logger.info("softphone leg already claimed", extra={"agent_id": agent_id, "contact_id": contact_id})
        return already_connected()
    logger.info("softphone leg joins", extra={"agent_id": agent_id, "contact_id": contact_id})
    return twiml.agent_joins_conference(contact_id, status_callback=conference_callback(base_url, contact_id))


def already_connected() -> str:
    """A polite no to a second leg for the same acceptance."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = ALREADY_CONNECTED
    ET.SubElement(response, "Hangup")
    return twiml.XML_DECLARATION + ET.tostring(response, encoding="unicode")
