"""Voicemail: a call nobody can take now leaves a message, which is routed like an e-mail (issue 13 §5).

Which calls: ``chalicelib.voice.arrival`` (a closed queue's ``out_of_hours: {action: voicemail}``, or a rule's
``voicemail``). The call hears the greeting and ``<Record transcribe="true">``; nothing is stored while the caller
speaks, so a caller who says nothing leaves nothing (Twilio then goes on with the verbs after ``<Record>``: a
goodbye). Then Twilio's three signed requests, each a route of ``chalicelib.channels.twilio_ivr``:

1. the Record ``action`` (the call's parameters and ``RecordingSid``/``RecordingUrl``/``RecordingDuration``): the
   voicemail is stored as an inbound message on the ``voicemail`` channel (keyed by the recording, so once), in a
   conversation of its own, and routed by the rules like any first message: its own SLA (``sla.channels.voicemail``)
   and cost, no live call to bridge;
2. the ``recordingStatusCallback`` (the file is ready): its status and length noted on the message;
3. the ``transcribeCallback``: the transcript becomes the message's text, and the agent who has it is told. It also
   carries the call's parameters, so when it comes first (the action lost) it stores the voicemail itself.

Twilio transcribes recordings of up to two minutes: ``MAX_SECONDS``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aws_lambda_powertools import Logger

from chalicelib.conversations.models import StoredMessage
from chalicelib.routing.rules import MAX_TEXT
from chalicelib.store import voicemail as store
from chalicelib.voice.twiml import XML_DECLARATION

logger = Logger(service="switchboard", child=True)

RECORDED = "/webhooks/twilio/voice/voicemail"  # the Record action
RECORDING = "/webhooks/twilio/voice/recording"  # its recordingStatusCallback
TRANSCRIPT = "/webhooks/twilio/voice/transcript"  # its transcribeCallback
MAX_SECONDS = 120
SILENCE_SECONDS = 5  # this long without a sound ends the recording
THANKS = "Thank you. We have your message and will call you back. Goodbye."
NOTHING_LEFT = "We did not hear a message. Goodbye."
CHANNEL = "voicemail"
PROVIDER = "twilio"


def _document(response: ET.Element) -> str:
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def record_twiml(greeting: str, base: str) -> str:
    """The greeting, then the recording; ``base`` is the webhooks' URL the call came in on (absolute)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = greeting
    ET.SubElement(
        response,
        "Record",
        {
            "action": base + RECORDED,
            "method": "POST",
            "maxLength": str(MAX_SECONDS),
            "timeout": str(SILENCE_SECONDS),
            "finishOnKey": "#",
            "playBeep": "true",
            "trim": "trim-silence",
            "recordingStatusCallback": base + RECORDING,
            "recordingStatusCallbackMethod": "POST",
            "transcribe": "true",
            "transcribeCallback": base + TRANSCRIPT,
        },
    )
    # Reached only when the recording is empty: Twilio then requests no action.
    ET.SubElement(response, "Say").text = NOTHING_LEFT
    ET.SubElement(response, "Hangup")
    return _document(response)


def thanks_twiml() -> str:
    """The Record action's answer: the caller (if still there) is thanked, and the call ends."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = THANKS
    ET.SubElement(response, "Hangup")
    return _document(response)


def text_of(duration: str | None) -> str:
    """A voicemail's text until its transcript arrives (what the rules and the agent see)."""
    return f"Voicemail ({duration} s)" if duration and duration.isdigit() else "Voicemail"


def recording_ready(recording_sid: str, status: str, duration: str | None) -> None:
    """The ``recordingStatusCallback``: noted on the voicemail, if it is stored (else the action or the transcript
    stores it; a status seen before either is not kept)."""
    stored = store.find(PROVIDER, recording_sid)
    if stored is None:
        logger.info("recording status before its voicemail; not kept", extra={"status": status})
        return
    store.note_recording(stored, status, duration)


def transcribed_stored(recording_sid: str, status: str, text: str | None) -> bool:
    """The ``transcribeCallback`` of a voicemail stored already (the usual order): its transcript noted; False when
    the voicemail is not stored yet (the caller then stores it, and calls ``transcribed``)."""
    found = store.find(PROVIDER, recording_sid)
    if found is None:
        return False
    _transcribed(found, status, text, routed=False)
    return True


def transcribed(stored: StoredMessage, status: str, text: str | None) -> None:
    """The ``transcribeCallback`` that stored its voicemail itself (its routing event queued with it): the
    transcript on it."""
    _transcribed(
        store.StoredVoicemail(stored.customer_id, stored.conversation_id, stored.message_id, stored.received_at),
        status,
        text,
        routed=True,
    )


def _transcribed(found: store.StoredVoicemail, status: str, text: str | None, *, routed: bool) -> None:
    """The transcript on the message (``completed``), or that there will be none (``failed``); the agent who has
    the contact is told, once. ``routed``: this request queued the voicemail's routing event already."""
    completed = status == "completed" and bool(text and text.strip())
    transcript = text.strip() if completed and text else None
    noted = store.add_transcript(found, "completed" if completed else "failed", transcript)
    from chalicelib.store import routing as routing_store

    contact = routing_store.get_contact(found.conversation_id)
    if contact is None:
        if not routed:
            _route(found, transcript)
    elif noted and contact.assigned_to:
        _tell_the_agent(contact.assigned_to, found, transcript)
    # Offered or queued: whoever accepts it reads the conversation, transcript included.


def _route(found: store.StoredVoicemail, transcript: str | None) -> None:
    """The voicemail's routing event, again: the request that stored it may have died before queueing it, and
    Twilio does not repeat a Record action. The queue drops a repeat and the router opens a contact once."""
    from chalicelib.routing.events import ConversationMessage
    from chalicelib.store import queue

    queue.publish(
        ConversationMessage(
            conversation_id=found.conversation_id,
            customer_id=found.customer_id,
            channel=CHANNEL,
            message_id=found.message_id,
            received_at=found.received_at,
            text=(transcript or text_of(None))[:MAX_TEXT],
        )
    )


def _tell_the_agent(agent_id: str, found: store.StoredVoicemail, transcript: str | None) -> None:
    from chalicelib.notify import push

    push.to_agent(
        agent_id,
        {
            "type": "message",
            "contact_id": found.conversation_id,
            "message_id": found.message_id,
            "channel": CHANNEL,
            "text": transcript or "The voicemail could not be transcribed; listen to the recording.",
            "received_at": found.received_at,
            "updated": True,
        },
    )
