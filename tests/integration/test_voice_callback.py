"""A callback keeps its place: a waiting caller presses 1, hangs up, and is called back when an agent takes the call.

The fake Twilio (``tests/fakes/twilio_voice.py``) plays both sides: the caller dials in and hears the wait document
(a ``<Gather numDigits="1">`` around the position), presses 1 (Twilio posts the Gather's action, signed), hears the
confirmation and leaves the queue (``<Leave>``, then the ``<Enqueue action>`` and the call's ``completed``). The
contact stays queued with its arrival time; when an agent accepts it and their leg joins the conference, the app
calls the customer back (Calls API) into the same conference.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VOICE, VoiceWorld
from tests.integration.test_voice_connect import OUR_NUMBER, STATUS_URL, VOICE_URL, poster
from tests.support import PUBLIC_BASE_URL, agent_says, as_agent, connect_agent, create_agent, drain, offers_to, pushed

AGENT_PHONE = "+14155550177"
FIRST_CALLER = "+447700900123"
LATER_CALLER = "+447700900456"


@pytest.fixture
def fake(client, fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811 (the imported fixture)
    return fake_providers


@pytest.fixture
def world(fake: FakeProviders) -> VoiceWorld:
    return fake.voice


def _calls_placed(fake: FakeProviders) -> list:
    return [r for r in fake.requests if r.api == VOICE and r.method == "POST" and r.path.endswith("/Calls.json")]


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def _count(out: str, name: str) -> float:
    return sum(sum(d[name]) for d in _emf(out) if name in d)


def _caller_waits(client, world: VoiceWorld, caller: str) -> tuple[str, str]:
    """A call comes in and waits (nobody to take it), the contact routed; returns (conversation id, CallSid).
    The wait document Twilio asks for next (``fetch_wait``) says the position and offers press 1."""
    call = world.incoming(VOICE_URL, caller=caller, number=OUR_NUMBER, status_url=STATUS_URL)
    answers = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    enqueue = ET.fromstring(answers[0][2]).find("Enqueue")
    assert enqueue is not None and enqueue.text
    drain(client)
    return enqueue.text, call.sid


def _hears(client, world: VoiceWorld, call_sid: str) -> ET.Element:
    world.fetch_wait(call_sid)
    return _wait_document(world.deliver(poster(client), base=PUBLIC_BASE_URL))


def _wait_document(answers: list[tuple[str, int, str]]) -> ET.Element:
    [(_url, _status, body)] = [a for a in answers if "/voice/wait?" in a[0]]
    return twiml.check(body, twiml.ENQUEUE_WAIT, PUBLIC_BASE_URL)


def _press_1(client, world: VoiceWorld, call_sid: str) -> list[tuple[str, int, str]]:
    assert _hears(client, world, call_sid).find("Gather") is not None
    world.press(call_sid, "1")
    return world.deliver(poster(client), base=PUBLIC_BASE_URL)


def test_the_waiting_caller_is_offered_a_callback_with_press_1(client, world, fake):
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    conversation, call_sid = _caller_waits(client, world, FIRST_CALLER)

    wait = _hears(client, world, call_sid)
    gather = wait.find("Gather")
    assert gather is not None, "press 1 is offered around the position"
    assert gather.attrib["numDigits"] == "1" and gather.attrib["input"] == "dtmf"
    assert gather.attrib["action"] == (
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/callback-request?conversation={conversation}"
    )
    said = " ".join(s.text or "" for s in gather.iter("Say"))
    assert "You are next in line" in said and "press 1" in said
    assert [e.tag for e in gather][-1] == "Pause", "the digit is heard during the hold interval too"
    assert wait[-1].tag == "Redirect"
    assert world.calls[call_sid].gather_action == gather.attrib["action"]


def test_a_caller_who_presses_1_hangs_up_keeps_their_place_and_is_not_abandoned(client, world, fake, capsys):
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    before = routing_store.get_contact(first)
    capsys.readouterr()

    answers = _press_1(client, world, first_call)
    drain(client)

    request = next(body for url, _s, body in answers if "/callback-request?" in url)
    confirmation = twiml.check(request, twiml.ENQUEUE_WAIT, PUBLIC_BASE_URL)
    assert [e.tag for e in confirmation] == ["Say", "Leave"]
    assert "call you back" in (confirmation[0].text or "")
    assert [url.rsplit("/", 1)[-1].split("?")[0] for url, _s, _b in answers] == [
        "callback-request",
        "queue-exit",
        "status",
    ], "the confirmation, then Twilio's Enqueue action (QueueResult=leave), then the call's completed"
    assert world.calls[first_call].status == "completed", "the caller's call ended"

    after = routing_store.get_contact(first)
    assert after.state.value == "queued", "not abandoned"
    assert (after.enqueued_at, after.sla_deadline) == (before.enqueued_at, before.sla_deadline)
    assert routing_store.queue_stats("default").get("abandoned", 0) == 0
    callback = voice_store.get_call(first)["callback"]
    assert callback["to"] == FIRST_CALLER and callback["requested_at"]
    out = capsys.readouterr().out
    assert _count(out, "CallbackRequested") == 1 and _count(out, "Abandoned") == 0

    # Twilio retries the Gather's request: one callback, the same answer.
    world.calls[first_call].status = "in-progress"
    again = poster(client)(
        next(url for url, _s, _b in answers if "/callback-request?" in url),
        sorted(
            {
                "AccountSid": world.account_sid,
                "CallSid": first_call,
                "From": FIRST_CALLER,
                "To": OUR_NUMBER,
                "Digits": "1",
                "CallStatus": "in-progress",
            }.items()
        ),
    )
    assert again[0] == 200 and [e.tag for e in twiml.check(again[1], twiml.ENQUEUE_WAIT)] == ["Say", "Leave"]
    assert voice_store.get_call(first)["callback"]["requested_at"] == callback["requested_at"]
    assert _count(capsys.readouterr().out, "CallbackRequested") == 0


def test_another_digit_goes_back_to_waiting(client, world, fake):
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _hears(client, world, first_call)
    world.press(first_call, "7")
    answers = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    root = twiml.check(answers[0][2], twiml.ENQUEUE_WAIT, PUBLIC_BASE_URL)
    assert [e.tag for e in root] == ["Redirect"]
    assert root[0].text == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/wait?conversation={first}"
    assert "callback" not in voice_store.get_call(first)
    assert world.calls[first_call].queue is not None, "still waiting"


def test_a_withheld_number_is_not_offered_a_callback(client, world, fake):
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    _conversation, call_sid = _caller_waits(client, world, "+266696687")  # what Twilio sends for "anonymous"
    wait = _hears(client, world, call_sid)
    assert wait.find("Say") is not None and wait.find("Gather") is None


def test_a_callback_keeps_its_place(client, world, fake, capsys):
    """Acceptance: a caller who pressed 1 is still ahead of later arrivals, and is called back when an agent
    accepts: the agent and the customer end in one conference at the fake Twilio."""
    create_agent(client, "ada", channels=("voice",), presence="Offline", phone=AGENT_PHONE, voice_mode="phone")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)

    later, later_call = _caller_waits(client, world, LATER_CALLER)
    heard = " ".join(s.text or "" for s in _hears(client, world, later_call).iter("Say"))
    assert "You are number 2 in line" in heard, "the later caller waits behind the callback"

    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    [offer] = offers_to(ada)
    assert offer["contact_id"] == first, "the callback is offered first: it kept its place"

    assert agent_says(client, ada, action="accept", contact_id=first).get("type") == "accepted"
    view = json.loads(client.http.get(f"/conversations/{first}", headers=as_agent("ada")).body)
    assert view["callback"]["to"] == FIRST_CALLER, "the console shows a callback as such"
    [agent_leg] = _calls_placed(fake)
    assert agent_leg.form["To"] == AGENT_PHONE
    capsys.readouterr()
    world.answer(agent_leg.answer["sid"])  # ada picks up; her leg joins the conference
    world.deliver(poster(client), base=PUBLIC_BASE_URL)

    [_agent, callback] = _calls_placed(fake)
    assert (callback.form["To"], callback.form["From"]) == (FIRST_CALLER, OUR_NUMBER)
    assert callback.form["Url"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/callback-leg?conversation={first}"
    assert callback.form["StatusCallback"] == STATUS_URL
    world.answer(callback.answer["sid"])  # the customer picks up
    answers = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    leg = next(body for url, _s, body in answers if "/callback-leg?" in url)
    assert twiml.check(leg, twiml.CALL, PUBLIC_BASE_URL).find("Dial/Conference").text == first

    participants = world.participants(first)
    assert sorted((p.label, p.sid) for p in participants) == sorted(
        [("agent", agent_leg.answer["sid"]), ("customer", callback.answer["sid"])]
    ), "the agent and the called-back customer in one conference"
    assert len(_calls_placed(fake)) == 2, "one call to the customer"
    assert world.calls[later_call].queue is not None, "the later caller still waits"
    out = capsys.readouterr().out
    assert _count(out, "CallbackConnected") == 1
    [waited] = [v for d in _emf(out) if "WaitUntilAgent" in d for v in d["WaitUntilAgent"]]
    assert waited >= 0, "the wait runs from arriving in line to the call back joining the agent"
    assert routing_store.get_contact(first).assigned_to == "ada"
    assert routing_store.get_contact(later).state.value == "queued"
    assert not [p for p in pushed(ada) if p.get("type") == "offer_withdrawn"]
