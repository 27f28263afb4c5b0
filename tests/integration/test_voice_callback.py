"""A callback keeps its place: a waiting caller presses 1, hangs up, and is called back when an agent takes the call.

The fake Twilio (``tests/fakes/twilio_voice.py``) plays both sides: the caller dials in and hears the wait document
(a ``<Gather numDigits="1">`` around the position), presses 1 (Twilio posts the Gather's action, signed), hears the
confirmation and leaves the queue (``<Leave>``, then the ``<Enqueue action>`` and the call's ``completed``). The
contact stays queued with its arrival time; when an agent accepts it and their leg joins the conference, the app
calls the customer back (Calls API) into the same conference.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from chalicelib import clock
from chalicelib.routing.events import CallbackDue
from chalicelib.settings import timer_queue_name
from chalicelib.store import conversations as conversation_store
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from chalicelib.voice import callback as voice_callback
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VOICE, VoiceWorld
from tests.integration.test_voice_connect import OUR_NUMBER, STATUS_URL, VOICE_URL, poster
from tests.support import (
    PUBLIC_BASE_URL,
    REGION,
    agent_says,
    as_agent,
    bearer,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    pushed,
    sqs_event,
)

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
    view = client.http.get("/supervisor", headers=bearer("sue", "supervisor"))
    [default] = [q for q in json.loads(view.body)["queues"] if q["queue"] == "default"]
    assert default["callbacks"] == {"requested": 1, "connected": 1, "failed": 0}
    [waited] = [v for d in _emf(out) if "WaitUntilAgent" in d for v in d["WaitUntilAgent"]]
    assert waited >= 0, "the wait runs from arriving in line to the call back joining the agent"
    assert routing_store.get_contact(first).assigned_to == "ada"
    assert routing_store.get_contact(later).state.value == "queued"
    assert not [p for p in pushed(ada) if p.get("type") == "offer_withdrawn"]


# --- a call back nobody answers -------------------------------------------------------------------------------


def _callback_ringing(client, world: VoiceWorld, fake: FakeProviders) -> tuple[str, str, str]:
    """A caller pressed 1, ada accepted and her leg joined: the call back rings. (ada, conversation, agent leg)."""
    create_agent(client, "ada", channels=("voice",), presence="Offline", phone=AGENT_PHONE, voice_mode="phone")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)
    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    agent_says(client, ada, action="accept", contact_id=first)
    [agent_leg] = _calls_placed(fake)
    world.answer(agent_leg.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert len(_calls_placed(fake)) == 2
    return ada, first, agent_leg.answer["sid"]


def _timers(kind: str) -> list[dict]:
    """Timers of ``kind`` sent to the timer queue (still delayed: read from moto's queue without receiving)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[timer_queue_name()]
    return [body for body in (json.loads(m.body) for m in queue._messages) if body["type"] == kind]


def _retries() -> list[dict]:
    """The ``CallbackDue`` timers of attempts after the first (attempt 1's is the guard of its placement)."""
    return [t for t in _timers("CallbackDue") if t["attempt"] > 1]


def _timer_fires(client, timer: dict) -> dict:
    """SQS delivers the timer to the timer Lambda once its delay is up (the due time: now)."""
    body = json.dumps({**timer, "due_at": clock.now_iso()})
    message = {
        "MessageId": "7d6f2c1e-4b8a-4f0e-9a3b-2c1d0e9f8a7b",
        "ReceiptHandle": "AQEB" + "x" * 40,
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # what SQS sends
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "ApproximateFirstReceiveTimestamp": "1"},
    }
    arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{timer_queue_name()}"
    return client.lambda_.invoke("on_timer", sqs_event([message], arn)).payload


def test_a_call_back_not_answered_is_retried_as_configured_then_recorded_and_the_agent_freed(
    client, world, fake, capsys
):
    ada, first, agent_leg = _callback_ringing(client, world, fake)
    customer = routing_store.get_contact(first).customer_id
    capsys.readouterr()

    results = ["busy", "no-answer", "failed"]  # routing.yaml: voice.callback.attempts 3, retry_after 2m
    for attempt, result in enumerate(results, start=1):
        ringing = _calls_placed(fake)[-1]
        assert ringing.form["To"] == FIRST_CALLER and len(_calls_placed(fake)) == 1 + attempt
        world.end(ringing.answer["sid"], result)
        world.deliver(poster(client), base=PUBLIC_BASE_URL)
        # Twilio repeats the status callback: nothing moves twice.
        world.calls[ringing.answer["sid"]].status = "ringing"
        world.end(ringing.answer["sid"], result)
        world.deliver(poster(client), base=PUBLIC_BASE_URL)
        drain(client)
        timers = _retries()
        if attempt < len(results):
            # The repeat redoes the step (in case the first report died before its timer): the same timer again.
            assert sorted({t["attempt"] for t in timers}) == list(range(2, attempt + 2))
            assert len({(t["attempt"], t["due_at"]) for t in timers}) == attempt, "one due time per attempt"
            due = timers[-1]["due_at"]
            waited = (routing_store.get_contact(first).accepted_at, due)
            assert waited[1] > waited[0]
            retry = [p for p in pushed(ada) if p.get("type") == "callback_retry"][-1]
            assert (retry["attempt"], retry["at"]) == (attempt + 1, due)
            assert routing_store.get_contact(first).state.value == "assigned", "ada keeps the call meanwhile"
            assert _timer_fires(client, timers[-1]) == {"batchItemFailures": []}
            assert _timer_fires(client, timers[-1]) == {"batchItemFailures": []}  # delivered twice: one call
        else:
            assert {t["attempt"] for t in timers} == {2, 3}, "no timer after the last attempt"

    assert len(_calls_placed(fake)) == 1 + len(results), "each attempt placed once"
    contact = routing_store.get_contact(first)
    assert (contact.state.value, contact.wrap_up) == ("closed", "callback_failed")
    agent = routing_store.get_agent("ada")
    assert agent.used == 0, "the agent is freed"
    assert world.calls[agent_leg].status == "completed", "the agent's leg is hung up"
    out = capsys.readouterr().out
    assert _count(out, "CallbackFailed") == 1 and _count(out, "CallbackConnected") == 0
    notes = [m["text"] for m in conversation_store.timeline(customer) if m.get("kind") == "note"]
    assert notes == [
        "The caller asked to be called back (pressed 1).",
        "Call back attempt 1 of 3 was not answered (busy).",
        "Call back attempt 2 of 3 was not answered (no-answer).",
        "Call back attempt 3 of 3 was not answered (failed).",
        "The call back failed: nobody answered any attempt.",
    ]
    assert voice_store.get_call(first)["callback"]["failed_at"]
    view = client.http.get("/supervisor", headers=bearer("sue", "supervisor"))
    [default] = [q for q in json.loads(view.body)["queues"] if q["queue"] == "default"]
    assert default["callbacks"] == {"requested": 1, "connected": 0, "failed": 1}
    [guard] = [t for t in _timers("CallbackDue") if t["attempt"] == 1]
    event = CallbackDue(**{k: v for k, v in guard.items() if k != "type"})
    assert voice_callback.on_due(event, guard["due_at"]) == "nothing to place", "attempt 1 is over: its guard rests"
    assert len(_calls_placed(fake)) == 1 + len(results)


def test_a_call_back_answered_then_ended_waits_for_wrap_up(client, world, fake):
    ada, first, _agent_leg = _callback_ringing(client, world, fake)
    callback = _calls_placed(fake)[-1].answer["sid"]
    world.answer(callback)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    world.hang_up(callback)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    contact = routing_store.get_contact(first)
    assert contact.state.value == "assigned" and contact.assigned_to == "ada", "open until ada wraps up"
    assert {"type": "call_ended", "conversation_id": first} in pushed(ada)
    assert _retries() == [], "nothing to try again"
    [guard] = _timers("CallbackDue")
    assert guard["attempt"] == 1 and _timer_fires(client, guard) == {"batchItemFailures": []}
    assert len(_calls_placed(fake)) == 2, "the guard of the answered call back places nothing"


# --- what is refused ------------------------------------------------------------------------------------------


def test_the_callback_webhooks_refuse_unsigned_requests_and_store_nothing(client, world, fake):
    from urllib.parse import urlencode

    create_agent(client, "ada", channels=("voice",), presence="Offline")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    form = urlencode({"CallSid": first_call, "AccountSid": world.account_sid, "From": FIRST_CALLER, "Digits": "1"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    for path in ("callback-request", "callback-leg"):
        refused = client.http.post(
            f"/webhooks/twilio/voice/{path}?conversation={first}", headers=headers, body=form.encode()
        )
        assert refused.status_code == 401, path
    assert "callback" not in voice_store.get_call(first)
    assert _calls_placed(fake) == []


def test_a_1_from_another_call_asks_nothing(client, world, fake):
    """A signed request naming the conversation, but from a call that is not the contact's caller."""
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    first, _first_call = _caller_waits(client, world, FIRST_CALLER)
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/callback-request?conversation={first}",
        sorted(
            {
                "AccountSid": world.account_sid,
                "CallSid": "CA" + "5" * 32,
                "From": LATER_CALLER,
                "Digits": "1",
            }.items()
        ),
    )
    assert status == 200 and [e.tag for e in twiml.check(body, twiml.ENQUEUE_WAIT)] == ["Redirect"]
    assert "callback" not in voice_store.get_call(first)


def test_a_1_after_an_agent_accepted_puts_the_caller_through_instead(client, world, fake):
    create_agent(client, "ada", channels=("voice",), phone=AGENT_PHONE, voice_mode="phone")
    ada = connect_agent(client, "ada")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    assert _hears(client, world, first_call).find("Gather") is not None  # offered, not yet accepted
    agent_says(client, ada, action="accept", contact_id=first)

    world.press(first_call, "1")
    answers = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert [e.tag for e in twiml.check(answers[0][2], twiml.ENQUEUE_WAIT)] == ["Redirect"]
    assert "callback" not in voice_store.get_call(first)
    assert world.calls[first_call].queue is not None, "still in line, about to be bridged"


def test_a_stale_call_back_hangs_up_instead_of_joining(client, world, fake):
    _ada, first, _agent_leg = _callback_ringing(client, world, fake)
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/callback-leg?conversation={first}",
        [("AccountSid", world.account_sid), ("CallSid", "CA" + "8" * 32), ("CallStatus", "in-progress")],
    )
    assert status == 200 and [e.tag for e in twiml.check(body)] == ["Hangup"]


def test_a_call_back_twilio_could_not_place_counts_as_an_attempt_and_is_retried(client, world, fake):
    create_agent(client, "ada", channels=("voice",), presence="Offline", phone=AGENT_PHONE, voice_mode="phone")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)
    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    agent_says(client, ada, action="accept", contact_id=first)
    [agent_leg] = _calls_placed(fake)
    world.answer(agent_leg.answer["sid"])
    fake.fail_next(status=503, api=VOICE)  # Twilio is down when the call back is placed

    world.deliver(poster(client), base=PUBLIC_BASE_URL)

    [timer] = _retries()
    assert timer["attempt"] == 2
    assert voice_store.get_call(first)["callback"]["attempts"] == 1
    assert _timer_fires(client, timer) == {"batchItemFailures": []}
    placed = [r for r in _calls_placed(fake) if r.status == 201]
    assert [r.form["To"] for r in placed] == [AGENT_PHONE, FIRST_CALLER], "the retry placed the call back"


def test_a_call_back_whose_lambda_died_after_its_claim_is_placed_by_its_guard_timer(client, world, fake):
    """The agent's join claims attempt 1 and the Lambda dies before calling Twilio: nothing would ever call the
    customer. The guard timer published before the claim finds the claim stale and places the call."""
    from tests.faults import AFTER, Faults

    create_agent(client, "ada", channels=("voice",), presence="Offline", phone=AGENT_PHONE, voice_mode="phone")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)
    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    agent_says(client, ada, action="accept", contact_id=first)
    [agent_leg] = _calls_placed(fake)
    world.answer(agent_leg.answer["sid"])

    died = Faults(fail=lambda call: "claim_callback_attempt" in call.site, when=AFTER)
    with died.installed(), pytest.raises(AssertionError, match="500"):
        world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert died.fired, "the claim was written, then the Lambda died"
    assert [r.form["To"] for r in _calls_placed(fake)] == [AGENT_PHONE], "nobody called the customer"

    [guard] = _timers("CallbackDue")
    assert guard["attempt"] == 1
    event = CallbackDue(**{k: v for k, v in guard.items() if k != "type"})
    assert voice_callback.on_due(event, guard["due_at"]) == "placed", "the guard, due a minute later"
    assert voice_callback.on_due(event, guard["due_at"]) != "placed", "delivered twice: placed once"
    assert [r.form["To"] for r in _calls_placed(fake)] == [AGENT_PHONE, FIRST_CALLER], "placed once"
    world.answer(_calls_placed(fake)[-1].answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert sorted(p.label for p in world.participants(first)) == ["agent", "customer"]


def test_a_softphone_agent_who_dials_in_gets_the_called_back_customer(client, world, fake, monkeypatch):
    from chalicelib.settings import reload_settings
    from tests.integration.test_softphone import API_KEY_SECRET, API_KEY_SID, TWIML_APP_SID, _device_dials

    for name, value in (
        ("TWILIO_API_KEY_SID", API_KEY_SID),
        ("TWILIO_API_KEY_SECRET", API_KEY_SECRET),
        ("TWILIO_TWIML_APP_SID", TWIML_APP_SID),
    ):
        monkeypatch.setenv(name, value)
    reload_settings()
    create_agent(client, "ada", channels=("voice",), presence="Offline")  # the softphone (the default)
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)
    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    agent_says(client, ada, action="accept", contact_id=first)
    assert _calls_placed(fake) == [], "nobody is rung before the agent is on the line"

    device = _device_dials(world, "ag_ada", first)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    [callback] = _calls_placed(fake)
    assert callback.form["To"] == FIRST_CALLER
    world.answer(callback.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert sorted((p.label, p.sid) for p in world.participants(first)) == sorted(
        [("agent", device.sid), ("customer", callback.answer["sid"])]
    )


def test_a_1_pressed_just_as_the_agent_joined_leaves_the_caller_put_through(client, world, fake):
    """The caller's 1 is recorded between the agent's join reading the call and the bridge's claim (a concurrent
    Lambda, run at the AWS boundary): the caller is put through, nobody is called back, and their hang-up later is
    the call ending, not a callback's."""
    from typing import Any

    from chalicelib.store import aws as app_clients

    create_agent(client, "ada", channels=("voice",), phone=AGENT_PHONE, voice_mode="phone")
    ada = connect_agent(client, "ada")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    agent_says(client, ada, action="accept", contact_id=first)
    [agent_leg] = _calls_placed(fake)
    world.answer(agent_leg.answer["sid"])
    pressed: list[bool] = []

    def caller_presses_1(params: dict[str, Any], **_: Any) -> None:
        if params.get("UpdateExpression") == "SET bridged_at = :now" and not pressed:
            pressed.append(voice_store.request_callback(first, first_call, FIRST_CALLER, clock.now_iso()))

    events = app_clients.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", caller_presses_1)
    try:
        world.deliver(poster(client), base=PUBLIC_BASE_URL)
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", caller_presses_1)
    assert pressed == [True], "the 1 was recorded in between"
    assert sorted(p.label for p in world.participants(first)) == ["agent", "customer"]
    assert len(_calls_placed(fake)) == 1, "nobody is called back"

    world.hang_up(first_call)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert {"type": "call_ended", "conversation_id": first} in pushed(ada)


def test_with_callbacks_off_the_wait_offers_none_and_a_1_asks_nothing(client, world, fake, monkeypatch):
    import boto3

    from chalicelib.routing.config import DEFAULT_FILE, forget_current_config
    from chalicelib.settings import reload_settings

    text = DEFAULT_FILE.read_text().replace("  callback:\n", "  callback:\n    offer: false\n")
    assert "offer: false" in text
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/switchboard/test/routing-config", Value=text, Type="String", Tier="Advanced"
    )
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", "/switchboard/test/routing-config")
    reload_settings()
    forget_current_config()
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)

    wait = _hears(client, world, first_call)
    assert wait.find("Gather") is None and "You are next in line" in (wait.findtext("Say") or "")
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/callback-request?conversation={first}",
        sorted({"AccountSid": world.account_sid, "CallSid": first_call, "From": FIRST_CALLER, "Digits": "1"}.items()),
    )
    assert status == 200 and [e.tag for e in twiml.check(body, twiml.ENQUEUE_WAIT)] == ["Redirect"]
    assert "callback" not in voice_store.get_call(first)


def test_an_agent_leg_not_answered_moves_the_callback_on_with_its_place_and_the_next_agent_gets_the_customer(
    client, world, fake
):
    create_agent(client, "ada", channels=("voice",), presence="Offline", phone=AGENT_PHONE, voice_mode="phone")
    create_agent(client, "bea", channels=("voice",), presence="Offline", phone="+14155550188", voice_mode="phone")
    first, first_call = _caller_waits(client, world, FIRST_CALLER)
    _press_1(client, world, first_call)
    drain(client)
    arrived = routing_store.get_contact(first).enqueued_at
    ada = connect_agent(client, "ada")
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Available"}')
    drain(client)
    agent_says(client, ada, action="accept", contact_id=first)
    bea = connect_agent(client, "bea")
    client.http.put("/agents/bea/presence", headers=as_agent("bea"), body='{"presence": "Available"}')
    drain(client)

    [ada_leg] = _calls_placed(fake)
    world.no_answer(ada_leg.answer["sid"])  # ada's phone rings out before her leg joined: nobody rang the customer
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert routing_store.get_contact(first).enqueued_at == arrived, "the callback keeps its place"
    [offer] = offers_to(bea)
    assert offer["contact_id"] == first
    agent_says(client, bea, action="accept", contact_id=first)
    bea_leg = _calls_placed(fake)[-1]
    assert bea_leg.form["To"] == "+14155550188"
    world.answer(bea_leg.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)

    customer_calls = [r for r in _calls_placed(fake) if r.form["To"] == FIRST_CALLER]
    assert len(customer_calls) == 1, "the customer is called once, when bea's leg joined"
    world.answer(customer_calls[0].answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert sorted((p.label, p.sid) for p in world.participants(first)) == sorted(
        [("agent", bea_leg.answer["sid"]), ("customer", customer_calls[0].answer["sid"])]
    )
