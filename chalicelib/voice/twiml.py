"""Pure TwiML builders for voice: ``xml.etree`` only, every URL passed in absolute.

The conference of a contact is named by its conversation id (no personal data, at most 64 characters,
and the same name as the Twilio queue the caller waits in). Participant labels are ``agent`` and
``customer``: Twilio refuses a second participant with a label already in the conference (error 16025,
"the call will not be added"), which backs up the app's own exactly-one guard for the agent leg.

Sources: https://www.twilio.com/docs/voice/twiml/conference (attributes, events),
https://www.twilio.com/docs/voice/twiml/enqueue, https://www.twilio.com/docs/voice/twiml/gather.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
AGENT_LABEL = "agent"
CUSTOMER_LABEL = "customer"
# Every leg carries the same events: the first participant to join fixes the conference's callbacks.
CONFERENCE_EVENTS = "start end join leave hold mute"
# Caller, agent and a consulted agent for a warm transfer, with headroom for a supervisor.
MAX_PARTICIPANTS = "4"


def _document(response: ET.Element) -> str:
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def _conference(
    parent: ET.Element,
    conference_name: str,
    *,
    label: str,
    status_callback: str,
    start_on_enter: bool,
    end_on_exit: bool,
    wait_url: str | None,
) -> ET.Element:
    attributes = {
        "participantLabel": label,
        "beep": "false",
        "startConferenceOnEnter": "true" if start_on_enter else "false",
        "endConferenceOnExit": "true" if end_on_exit else "false",
        "maxParticipants": MAX_PARTICIPANTS,
        "statusCallback": status_callback,
        "statusCallbackMethod": "POST",
        "statusCallbackEvent": CONFERENCE_EVENTS,
    }
    if wait_url is not None:
        # ``''`` is Twilio's documented "no wait music": silence until the conference starts.
        attributes["waitUrl"] = wait_url
        if wait_url:
            attributes["waitMethod"] = "POST"
    element = ET.SubElement(parent, "Conference", attributes)
    element.text = conference_name
    return element


def agent_joins_conference(
    conference_name: str,
    *,
    status_callback: str,
    action: str | None = None,
    announce: str | None = None,
) -> str:
    """The TwiML that puts a claimed agent leg into the contact's conference.

    Shared by both ways an agent joins: the Calls API leg to the agent's own phone (this module's
    server side) and the console softphone's TwiML App request (the browser ``Device``). Call it only
    after the agent leg is claimed (exactly one per contact).

    - ``conference_name``: the contact's conversation id.
    - ``status_callback``: absolute URL of the conference status callback route for this contact; the
      agent usually joins first, so this value fixes the conference's callbacks.
    - ``action``: absolute URL Twilio requests when the agent's ``<Dial>`` ends (optional).
    - ``announce``: a sentence said to the agent before joining (for example who is calling).

    The agent starts the conference on entering (the caller, moved in after, hears no wait music) and
    does not end it on leaving (a transfer or a dropped agent leg keeps the caller). While alone the
    agent hears silence (``waitUrl=""``).
    """
    response = ET.Element("Response")
    if announce:
        ET.SubElement(response, "Say").text = announce
    dial_attributes = {"action": action, "method": "POST"} if action else {}
    dial = ET.SubElement(response, "Dial", dial_attributes)
    _conference(
        dial,
        conference_name,
        label=AGENT_LABEL,
        status_callback=status_callback,
        start_on_enter=True,
        end_on_exit=False,
        wait_url="",
    )
    return _document(response)


def customer_joins_conference(
    conference_name: str, *, status_callback: str, action: str | None = None, greeting: str | None = None
) -> str:
    """The TwiML the waiting caller is redirected to once the agent's leg has joined.

    The customer ends the conference on leaving (hanging up drops the agent too). ``action`` (optional) is
    asked what comes next when the caller's conference ends; without it, the call ends there. ``greeting``
    (optional) is said first.
    """
    response = ET.Element("Response")
    if greeting:
        ET.SubElement(response, "Say").text = greeting
    dial = ET.SubElement(response, "Dial", {"action": action, "method": "POST"} if action else {})
    _conference(
        dial,
        conference_name,
        label=CUSTOMER_LABEL,
        status_callback=status_callback,
        start_on_enter=True,
        end_on_exit=True,
        wait_url=None,
    )
    return _document(response)


def position_sentence(position: int, wait_minutes: int) -> str:
    """What the waiting caller hears: ``position`` counts from 1."""
    place = "You are next in line." if position <= 1 else f"You are number {position} in line."
    minutes = "minute" if wait_minutes == 1 else "minutes"
    return f"{place} The expected wait is about {wait_minutes} {minutes}. Thank you for holding."


def waiting(
    sentence: str | None,
    *,
    interval_seconds: int,
    hold_audio: str | None,
    again: str,
    callback_action: str | None = None,
) -> str:
    """An ``<Enqueue waitUrl>`` document: the position said, then hold audio (or silence) for about
    ``interval_seconds``, then ``<Redirect>`` to ``again`` (absolute) to say it anew.

    Without ``callback_action``: only Say, Play, Pause and Redirect, so the same document is also valid as a
    conference waitUrl. With it ("press 1 to be called back"): the position, the offer and the hold audio (or pause)
    inside one ``<Gather numDigits="1">``, so a 1 pressed at any moment of the interval reaches ``callback_action``;
    only for an ``<Enqueue waitUrl>`` (Twilio allows Gather there, not in a conference's waitUrl). The Gather's own
    ``timeout`` after its nested verbs is short: with no digit, ``<Redirect>`` says the position anew.
    """
    response = ET.Element("Response")
    holder = response
    if callback_action:
        attributes = {"input": "dtmf", "numDigits": "1", "timeout": "1", "action": callback_action, "method": "POST"}
        holder = ET.SubElement(response, "Gather", attributes)
    if sentence:
        ET.SubElement(holder, "Say").text = sentence
    if callback_action:
        ET.SubElement(holder, "Say").text = CALLBACK_OFFER
    if hold_audio:
        ET.SubElement(holder, "Play").text = hold_audio
    else:
        ET.SubElement(holder, "Pause", {"length": str(interval_seconds)})
    ET.SubElement(response, "Redirect", {"method": "POST"}).text = again
    return _document(response)


def hangup() -> str:
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup")
    return _document(response)


def empty() -> str:
    return _document(ET.Element("Response"))


def say_and_hang_up(sentence: str) -> str:
    """A sentence, then the call ends (a leg with nobody left to join)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = sentence
    ET.SubElement(response, "Hangup")
    return _document(response)


# --- the callback (voice.callback) -----------------------------------------------------------------------------

CALLBACK_OFFER = "To hang up and be called back without losing your place in line, press 1."
CALLBACK_CONFIRMED = (
    "Thank you. We will call you back on the number you are calling from as soon as an agent is free, "
    "and you keep your place in line. Goodbye."
)
CALLBACK_GREETING = "Hello, this is the call back you asked for. Connecting you to an agent now."


def callback_confirmed() -> str:
    """The answer to the 1: the confirmation, then ``<Leave>`` (out of the queue; the Enqueue action ends the call)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = CALLBACK_CONFIRMED
    ET.SubElement(response, "Leave")
    return _document(response)


def back_to_waiting(again: str) -> str:
    """Any other digit (or a callback that cannot be had): back to the wait document."""
    response = ET.Element("Response")
    ET.SubElement(response, "Redirect", {"method": "POST"}).text = again
    return _document(response)


def callback_leg(conference_name: str, *, status_callback: str) -> str:
    """The TwiML of the call back to the customer: a greeting, then the contact's conference as the customer
    (the agent is there already: the call is placed once their leg joined)."""
    return customer_joins_conference(conference_name, status_callback=status_callback, greeting=CALLBACK_GREETING)
