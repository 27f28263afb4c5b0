"""The speech question: a rule asks the caller what they need before the call is queued (issue 13 §6).

``routing.yaml``'s ``ask`` on a rule (``chalicelib.voice.arrival`` decides): the call hears the question in
``<Gather input="speech" speechTimeout="auto">``. Twilio requests the Gather's action with the call's parameters and
``SpeechResult`` (and ``Confidence``); that request (``chalicelib.channels.twilio_ivr.SPEECH``) stores the call as
"a call comes in" would, with the answer as the message's text, so the routing rules (``text_matches``), skills and
the knowledge base read what the caller said, then holds the caller in line as always. No answer (silence, or an
empty result): the call is stored and queued with the usual text. ``actionOnEmptyResult`` makes Twilio request the
action in both cases; the ``<Redirect>`` after the Gather is the same request, should it not.

A caller who hangs up during the question leaves no contact (nobody could answer it) but is counted as an abandoned
call of the queue the rules send it to, with its time to abandon: the question's asking is noted (``asking``, one
write) and the call's end before an answer (``caller_left``) counts it once; an answer handled after that stores
nothing (``answered``: one more write per answer).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aws_lambda_powertools import Logger

from chalicelib.routing.config.values import SpeechQuestion
from chalicelib.routing.rules import MAX_TEXT
from chalicelib.voice.twiml import XML_DECLARATION

logger = Logger(service="switchboard", child=True)

CHANNEL = "voice"
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


def asking(call_sid: str, queue: str) -> None:
    """The call is asked the question now (``queue``: where the rules send it): kept, so that a caller who hangs
    up before answering is counted as an abandoned call of that queue though no contact is ever made."""
    from chalicelib import clock
    from chalicelib.store import voice as voice_store

    voice_store.note_asked(call_sid, queue, clock.now_iso())


def answered(call_sid: str) -> bool:
    """The answer came while the call was up: True to store it (a contact from here on, abandoned as one if the
    caller hangs up); False when the hang-up was handled first and counted: nothing to store, nobody to offer."""
    from chalicelib import clock
    from chalicelib.store import voice as voice_store

    return voice_store.note_answered(call_sid, clock.now_iso())


def caller_left(call_sid: str) -> bool:
    """An asked call ended before its answer was stored (its status callback, or an answer for the ended call):
    counted once as abandoned (QUEUESTATS, ``Abandoned`` and ``TimeToAbandon``); no contact. True the first time."""
    from chalicelib import clock, metrics
    from chalicelib.store import voice as voice_store

    left = voice_store.count_left_while_asked(call_sid, clock.now_iso())
    if left is None:
        return False
    queue, waited = left
    logger.info("caller left during the question", extra={"queue": queue})
    metrics.abandoned(waited, queue, CHANNEL)
    return True
