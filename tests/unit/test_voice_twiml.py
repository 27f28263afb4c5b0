"""The voice TwiML builders (chalicelib/voice/twiml.py)."""

import xml.etree.ElementTree as ET

from chalicelib.voice import twiml

CALLBACK = "https://hooks.example.com/webhooks/twilio/voice/conference/conv-1"


def test_agent_joins_conference_labels_the_agent_and_keeps_the_caller_when_the_agent_leaves():
    root = ET.fromstring(twiml.agent_joins_conference("conv-1", status_callback=CALLBACK))
    (dial,) = root
    (conference,) = dial
    assert (root.tag, dial.tag, conference.tag, conference.text) == ("Response", "Dial", "Conference", "conv-1")
    assert conference.attrib["participantLabel"] == "agent"
    assert conference.attrib["endConferenceOnExit"] == "false"
    assert conference.attrib["startConferenceOnEnter"] == "true"
    assert conference.attrib["statusCallback"] == CALLBACK
    assert conference.attrib["waitUrl"] == ""


def test_customer_joins_conference_ends_it_on_leaving():
    action = "https://hooks.example.com/webhooks/twilio/voice/after/conv-1"
    root = ET.fromstring(twiml.customer_joins_conference("conv-1", status_callback=CALLBACK, action=action))
    (dial,) = root
    (conference,) = dial
    assert dial.attrib["action"] == action
    assert conference.attrib["participantLabel"] == "customer"
    assert conference.attrib["endConferenceOnExit"] == "true"


# --- every builder's document passes the TwiML checker (tests/fakes/twiml.py) --------------------------------

import pytest  # noqa: E402

from chalicelib.channels import twilio as twilio_channel  # noqa: E402
from tests.fakes import twiml as checker  # noqa: E402

BASE = "https://hooks.example.com"
WAIT = f"{BASE}/webhooks/twilio/voice/wait?conversation=conv_1"


@pytest.mark.parametrize(
    ("document", "context"),
    [
        (twiml.agent_joins_conference("conv_1", status_callback=f"{BASE}/c", announce="A caller"), checker.CALL),
        (twiml.agent_joins_conference("conv_1", status_callback=f"{BASE}/c", action=f"{BASE}/a"), checker.CALL),
        (twiml.customer_joins_conference("conv_1", status_callback=f"{BASE}/c"), checker.CALL),
        (twiml.hangup(), checker.CALL),
        (twiml.say_and_hang_up("The caller has hung up. Goodbye."), checker.CALL),
        (twiml.empty(), checker.CALLBACK),
        (twilio_channel.hold_twiml("conv_1", action=f"{BASE}/x", wait_url=WAIT), checker.CALL),
        (twilio_channel.unavailable_twiml(), checker.CALL),
        (
            twiml.waiting(twiml.position_sentence(3, 4), interval_seconds=45, hold_audio=None, again=WAIT),
            checker.ENQUEUE_WAIT,
        ),
        (twiml.waiting(None, interval_seconds=45, hold_audio=f"{BASE}/hold.mp3", again=WAIT), checker.CONFERENCE_WAIT),
    ],
)
def test_every_document_the_app_returns_passes_the_checker(document, context):
    checker.check(document, context, BASE)


@pytest.mark.parametrize(
    ("document", "context", "problem"),
    [
        ("<Response><Gather><Say>1</Say></Gather></Response>", checker.CONFERENCE_WAIT, "not allowed"),
        ('<Response><Enqueue action="/relative">q</Enqueue></Response>', checker.CALL, "absolute"),
        ('<Response><Dial><Conference beep="maybe">c</Conference></Dial></Response>', checker.CALL, "beep"),
        ("<Response><Dial><Conference>+14155550100</Conference></Dial></Response>", checker.CALL, "phone"),
        ("<Response><Enqueue>" + "q" * 65 + "</Enqueue></Response>", checker.CALL, "64"),
        ('<Response><Say colour="red">hi</Say></Response>', checker.CALL, "no attribute"),
        ("<Response><Redirect>https://elsewhere.example/x</Redirect></Response>", checker.CALL, "not under"),
        ("<Response><Say>hi</Say></Response>", checker.CALLBACK, "not allowed"),
        (
            '<Response><Dial><Conference statusCallbackEvent="join talk">c</Conference></Dial></Response>',
            checker.CALL,
            "unknown events",
        ),
    ],
)
def test_the_checker_refuses_documents_twilio_would_refuse(document, context, problem):
    with pytest.raises(AssertionError, match=problem):
        checker.check(document, context, BASE)


def test_the_checkers_attribute_lists_are_the_twilio_packages_names():
    """Cross-check the hand list against twilio-python's verb methods, when the package is installed."""
    voice_response = pytest.importorskip("twilio.twiml.voice_response")
    import inspect
    import re

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)

    methods = {
        "Enqueue": voice_response.VoiceResponse.enqueue,
        "Gather": voice_response.VoiceResponse.gather,
        "Record": voice_response.VoiceResponse.record,
        "Conference": voice_response.Dial.conference,
    }
    for verb, method in methods.items():
        names = {camel(p) for p in inspect.signature(method).parameters if p not in ("self", "kwargs", "name")}
        names = {re.sub("Url$", "Url", n) for n in names}
        assert set(checker.ATTRIBUTES[verb]) <= names | {"maxQueueSize"}, (verb, set(checker.ATTRIBUTES[verb]) - names)


# --- the callback (chalicelib/voice/callback.py) -------------------------------------------------------------

REQUEST = f"{BASE}/webhooks/twilio/voice/callback-request?conversation=conv_1"


def test_the_wait_with_a_callback_listens_for_1_through_the_whole_interval():
    document = twiml.waiting(
        twiml.position_sentence(2, 3), interval_seconds=45, hold_audio=None, again=WAIT, callback_action=REQUEST
    )
    root = checker.check(document, checker.ENQUEUE_WAIT, BASE)
    (gather, redirect) = root
    assert (gather.tag, redirect.tag, redirect.text) == ("Gather", "Redirect", WAIT)
    assert gather.attrib == {"input": "dtmf", "numDigits": "1", "timeout": "1", "action": REQUEST, "method": "POST"}
    assert [e.tag for e in gather] == ["Say", "Say", "Pause"]
    assert "press 1" in gather[1].text and gather[2].attrib["length"] == "45"
    with_audio = twiml.waiting(
        None, interval_seconds=45, hold_audio=f"{BASE}/hold.mp3", again=WAIT, callback_action=REQUEST
    )
    assert [e.tag for e in checker.check(with_audio, checker.ENQUEUE_WAIT, BASE)[0]] == ["Say", "Play"]


@pytest.mark.parametrize(
    ("document", "context"),
    [
        (twiml.callback_confirmed(), checker.ENQUEUE_WAIT),
        (twiml.back_to_waiting(WAIT), checker.ENQUEUE_WAIT),
        (twiml.callback_leg("conv_1", status_callback=f"{BASE}/c"), checker.CALL),
    ],
)
def test_the_callback_documents_pass_the_checker(document, context):
    checker.check(document, context, BASE)


def test_the_called_back_customer_joins_as_the_customer_and_ends_the_conference_on_leaving():
    root = checker.check(twiml.callback_leg("conv_1", status_callback=f"{BASE}/c"), checker.CALL, BASE)
    assert [e.tag for e in root] == ["Say", "Dial"]
    conference = root.find("Dial/Conference")
    assert conference.text == "conv_1" and conference.attrib["participantLabel"] == "customer"
    assert conference.attrib["endConferenceOnExit"] == "true"
