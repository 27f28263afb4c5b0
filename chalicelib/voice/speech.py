"""The speech question: a rule asks the caller what they need before the call is queued (issue 13 §6).

``routing.yaml``'s ``ask`` on a rule (``chalicelib.voice.arrival`` decides): the call hears the question in
``<Gather input="speech" speechTimeout="auto">``. Twilio requests the Gather's action with the call's parameters and
``SpeechResult`` (and ``Confidence``); that request (``chalicelib.channels.twilio_ivr.SPEECH``) stores the call as
"a call comes in" would, with the answer as the message's text, so the routing rules (``text_matches``), skills and
the knowledge base read what the caller said, then holds the caller in line as always. No answer (silence, or an
empty result): the call is stored and queued with the usual text. ``actionOnEmptyResult`` makes Twilio request the
action in both cases; the ``<Redirect>`` after the Gather is the same request, should it not.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chalicelib.routing.config.values import SpeechQuestion
from chalicelib.routing.rules import MAX_TEXT
from chalicelib.voice.twiml import XML_DECLARATION

ANSWER = "/webhooks/twilio/voice/speech"  # the Gather's action
SILENCE_SECONDS = 5  # no speech at all for this long: Twilio gives up listening
NO_ANSWER = "Incoming call"  # the text of a call that said nothing (as a call that was asked nothing)


def question_twiml(ask: SpeechQuestion, base: str) -> str:
    """Ask ``ask.question`` and listen; ``base`` is the webhooks' URL the call came in on (absolute)."""
    response = ET.Element("Response")
    gather = ET.SubElement(
        response,
        "Gather",
        {
            "input": "speech",
            "action": base + ANSWER,
            "method": "POST",
            "speechTimeout": "auto",
            "timeout": str(SILENCE_SECONDS),
            "language": ask.language,
            "actionOnEmptyResult": "true",
        },
    )
    ET.SubElement(gather, "Say", {"language": ask.language}).text = ask.question
    ET.SubElement(response, "Redirect", {"method": "POST"}).text = base + ANSWER
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def contact_text(speech_result: str | None) -> str:
    """What the caller said, as the contact's text (as much as the rules search), or the usual text of a call."""
    said = " ".join((speech_result or "").split())
    return said[:MAX_TEXT] if said else NO_ANSWER
