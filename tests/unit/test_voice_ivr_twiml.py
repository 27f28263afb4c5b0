"""The voicemail and speech-question TwiML: Twilio's verbs and attributes, absolute URLs (``tests/fakes/twiml``),
and the checker refusing what Twilio would not do with them."""

from __future__ import annotations

import pytest

from chalicelib.routing.config.values import SpeechQuestion
from chalicelib.voice import speech, voicemail
from tests.fakes import twiml

BASE = "https://hooks.example.com/api"


def test_the_voicemail_greeting_records_at_most_two_minutes_with_a_transcript():
    root = twiml.check(voicemail.record_twiml("Please leave a message.", BASE), twiml.CALL, BASE)
    record = root.find("Record")
    assert record is not None
    assert record.attrib["transcribeCallback"] == BASE + voicemail.TRANSCRIPT
    assert int(record.attrib["maxLength"]) <= 120
    assert [verb.tag for verb in root][-1] == "Hangup", "an empty recording ends the call"
    twiml.check(voicemail.thanks_twiml(), twiml.CALL, BASE)


def test_the_question_listens_for_speech_in_the_rules_language():
    root = twiml.check(speech.question_twiml(SpeechQuestion("Why do you call?", "de-DE"), BASE), twiml.CALL, BASE)
    gather = root.find("Gather")
    assert gather is not None and gather.attrib["language"] == "de-DE"
    assert [say.attrib.get("language") for say in gather] == ["de-DE"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('<Response><Record transcribe="true" maxLength="300" transcribeCallback="https://h/t"/></Response>', "120"),
        ('<Response><Record transcribe="true" maxLength="60"/></Response>', "transcribeCallback"),
        ('<Response><Gather input="speech" speechTimeout="soon"/></Response>', "speechTimeout"),
        ('<Response><Gather input="speech" language="english"/></Response>', "language"),
    ],
)
def test_the_checker_refuses_what_twilio_would_not_do(document, problem):
    with pytest.raises(AssertionError) as refused:
        twiml.check(document)
    assert problem in str(refused.value)


def test_what_the_caller_said_is_kept_tidy_and_silence_is_a_plain_call():
    assert speech.contact_text("  I want   a refund ") == "I want a refund"
    assert speech.contact_text("") == speech.contact_text(None) == "Incoming call"
