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
