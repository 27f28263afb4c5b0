"""A call offered and accepted leads to exactly one agent joining the caller's conference (seen at the fake Twilio).

The fake Twilio (``tests/fakes/twilio_voice.py``) plays both sides: the caller dials in, Twilio asks our URLs
(signed as Twilio signs), runs the TwiML we answer (each document checked by ``tests/fakes/twiml.py``), and takes
the app's REST requests (Calls, Queue Members) the way Twilio does. The agent here is set up with their own phone.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

import pytest

from chalicelib.channels.signing import sign_twilio
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VOICE, VoiceWorld
from tests.support import (
    CHANNEL_SECRETS,
    PUBLIC_BASE_URL,
    agent_says,
    as_admin,
    bearer,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    pushed,
)

AGENT_PHONE = "+14155550177"
OUR_NUMBER = "+14155550100"
VOICE_URL = PUBLIC_BASE_URL + "/webhooks/twilio/voice"  # the number's "a call comes in"
STATUS_URL = PUBLIC_BASE_URL + "/webhooks/twilio/status"  # and its "call status changes"


@pytest.fixture
def fake(client, fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811 (the imported fixture)
    return fake_providers


@pytest.fixture
def world(fake: FakeProviders) -> VoiceWorld:
    return fake.voice


def poster(client):
    """How Twilio reaches the app: the absolute URL it was given, signed with the auth token."""

    def post(url: str, form: list[tuple[str, str]]) -> tuple[int, str]:
        assert url.startswith(PUBLIC_BASE_URL), url
        parts = urlsplit(url)
        path = url.removeprefix(PUBLIC_BASE_URL)
        body = urlencode(form).encode()
        signature = sign_twilio(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"], url, list(form))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        assert parts.scheme in ("http", "https")
        answer = client.http.post(path, headers=headers, body=body)
        text = answer.body.decode() if isinstance(answer.body, bytes) else str(answer.body)
        return answer.status_code, text

    return post


def _requests(fake: FakeProviders, method: str, suffix: str) -> list:
    return [r for r in fake.requests if r.api == VOICE and r.method == method and r.path.split("?")[0].endswith(suffix)]


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def _members(fake: FakeProviders) -> list:
    return [r for r in fake.requests if r.api == VOICE and "/Members/" in r.path and r.status == 200]


def _offered_call(client, world: VoiceWorld, fake: FakeProviders, agent_mode: str = "phone") -> tuple[str, str, str]:
    create_agent(client, "ada", channels=("voice",), phone=AGENT_PHONE, voice_mode=agent_mode)
    connection = connect_agent(client, "ada")
    caller = world.incoming(VOICE_URL, number=OUR_NUMBER, status_url=STATUS_URL)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    [offer] = offers_to(connection)
    return connection, offer["contact_id"], caller.sid


def test_an_accepted_call_rings_the_agents_phone_once_and_bridges_the_caller_once(client, world, fake, capsys):
    connection, conversation, caller = _offered_call(client, world, fake)
    post = poster(client)

    accepted = agent_says(client, connection, action="accept", contact_id=conversation)
    assert accepted.get("type") != "error", accepted
    again = client.http.post(f"/conversations/{conversation}/accept", headers=bearer("ada", "agent"))
    assert again.status_code == 200, "accepting twice is fine"

    [placed] = _requests(fake, "POST", "/Calls.json")
    form = placed.form
    assert (form["To"], form["From"]) == (AGENT_PHONE, OUR_NUMBER)
    assert form["Url"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/agent-leg?conversation={conversation}"
    assert form["StatusCallback"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/status"
    events = [v for k, v in placed.form_pairs if k == "StatusCallbackEvent"]
    assert events == ["initiated", "ringing", "answered", "completed"]
    agent_leg = placed.answer["sid"]

    world.answer(agent_leg)  # ada picks up her phone
    world.deliver(post, base=PUBLIC_BASE_URL)

    participants = world.participants(conversation)
    assert sorted(p.label or "" for p in participants) == ["agent", "customer"]
    assert {p.sid for p in participants} == {agent_leg, caller}
    [dequeue] = _members(fake)
    assert dequeue.path.endswith(f"/Members/{caller}.json")
    assert dequeue.form["Url"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/bridge?conversation={conversation}"
    assert voice_store.get_call(conversation)["bridged_at"]
    waits = [d for d in _emf(capsys.readouterr().out) if "WaitUntilAgent" in d]
    assert len(waits) == 1 and (waits[0]["queue"], waits[0]["channel"]) == ("default", "voice")

    # Twilio repeats both join callbacks: nothing moves twice.
    for sequence, (sid, label) in enumerate(((agent_leg, "agent"), (caller, "customer")), start=1):
        form = {
            "AccountSid": world.account_sid,
            "ConferenceSid": next(iter(world.conferences)),
            "FriendlyName": conversation,
            "StatusCallbackEvent": "participant-join",
            "SequenceNumber": str(sequence),
            "Timestamp": "Wed, 02 Dec 2026 06:20:00 +0000",
            "CallSid": sid,
            "ParticipantLabel": label,
        }
        world.pending.append(
            (
                f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/conference?conversation={conversation}",
                sorted(form.items()),
                twiml.CALLBACK,
                None,
            )
        )
    world.deliver(post, base=PUBLIC_BASE_URL)
    assert len(_members(fake)) == 1, "one bridge"
    assert not [d for d in _emf(capsys.readouterr().out) if "WaitUntilAgent" in d], "the wait is measured once"
    assert len(_requests(fake, "POST", "/Calls.json")) == 1, "one agent leg"


def test_the_waiting_caller_hears_their_position_and_expected_wait(client, world, fake):
    create_agent(client, "ada", channels=("voice",), presence="Offline")
    caller = world.incoming(PUBLIC_BASE_URL + "/webhooks/twilio/voice", number=OUR_NUMBER)
    first = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    enqueue = ET.fromstring(first[0][2]).find("Enqueue")
    assert enqueue is not None
    conversation = enqueue.text
    assert enqueue.attrib["waitUrl"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/wait?conversation={conversation}"
    assert enqueue.attrib["action"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/queue-exit"
    drain(client)

    world.fetch_wait(caller.sid)
    [(_url, _status, body)] = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    root = twiml.check(body, twiml.ENQUEUE_WAIT, PUBLIC_BASE_URL)
    (gather, redirect) = root  # the position inside "press 1 to be called back" (test_voice_callback.py)
    assert gather[0].tag == "Say" and gather[0].text.startswith("You are next in line. The expected wait is about")
    assert (gather[-1].tag, gather[-1].attrib["length"]) == ("Pause", "45"), "routing.yaml voice.position_interval"
    assert redirect.tag == "Redirect" and redirect.text == enqueue.attrib["waitUrl"]
    assert voice_store.get_call(conversation)["queue_sid"] == next(iter(world.queues))


def test_a_softphone_agent_is_not_called_on_their_phone(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake, agent_mode="softphone")
    agent_says(client, connection, action="accept", contact_id=conversation)
    assert _requests(fake, "POST", "/Calls.json") == []


def test_the_agent_leg_url_of_an_unclaimed_contact_hangs_up(client, world, fake):
    _connection, conversation, _caller = _offered_call(client, world, fake)
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/agent-leg?conversation={conversation}",
        [("AccountSid", world.account_sid), ("CallSid", "CA" + "0" * 32), ("CallStatus", "in-progress")],
    )
    assert status == 200
    assert [e.tag for e in twiml.check(body)] == ["Hangup"]


def test_a_stale_agent_leg_answered_late_hangs_up_instead_of_joining_as_a_second_agent(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/agent-leg?conversation={conversation}",
        [("AccountSid", world.account_sid), ("CallSid", "CA" + "9" * 32), ("CallStatus", "in-progress")],
    )
    assert status == 200 and [e.tag for e in twiml.check(body)] == ["Hangup"]


def test_voice_webhooks_refuse_unsigned_requests_and_bad_queries(client, world, fake):
    form = urlencode({"CallSid": "CA" + "1" * 32, "AccountSid": world.account_sid}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    for path in ("wait", "agent-leg", "conference", "bridge"):
        refused = client.http.post(f"/webhooks/twilio/voice/{path}?conversation=conv_1", headers=headers, body=form)
        assert refused.status_code == 401, path
    status, body = poster(client)(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/bridge?conversation=a.b", [("A", "1")])
    assert status == 422 and "conversation" in json.loads(body)["message"]


def test_agent_phone_setup_is_validated(client):
    bad = client.http.post(
        "/agents",
        headers=as_admin(),
        body=json.dumps({"agent_id": "bo", "name": "Bo", "voice_mode": "phone"}),
    )
    assert bad.status_code == 422 and "phone" in bad.body.decode()
    wrong = client.http.post(
        "/agents", headers=as_admin(), body=json.dumps({"agent_id": "bo", "name": "Bo", "phone": "0155 5501"})
    )
    assert wrong.status_code == 422 and "phone" in wrong.body.decode()


def test_an_agent_leg_not_answered_moves_the_call_on_like_an_expired_offer(client, world, fake):
    connection, conversation, caller = _offered_call(client, world, fake)
    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    bea = connect_agent(client, "bea")
    drain(client)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")

    world.no_answer(placed.answer["sid"])  # ada's phone rings out: Twilio's status callback says no-answer
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    withdrawn = [p for p in pushed(connection) if p.get("type") == "offer_withdrawn"]
    assert [w["reason"] for w in withdrawn] == ["agent_unreachable"]
    [offer] = offers_to(bea)
    assert offer["contact_id"] == conversation, "the call moves on to the next agent"
    ada = routing_store.get_agent("ada")
    assert ada is not None and ada.used == 0 and ada.consecutive_expired == 1
    agent_says(client, bea, action="accept", contact_id=conversation)
    calls = _requests(fake, "POST", "/Calls.json")
    assert [c.form["To"] for c in calls] == [AGENT_PHONE, "+14155550188"], "bea's leg is placed: the claim was freed"
    assert world.calls[caller].queue is not None, "the caller still waits in the queue"

    # The same no-answer again (Twilio retried): nothing moves twice.
    world.calls[placed.answer["sid"]].status = "ringing"
    world.no_answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert len(offers_to(bea)) == 1
    assert routing_store.get_contact(conversation).assigned_to == "bea"


def test_a_call_that_ends_after_the_agent_took_it_waits_for_wrap_up(client, world, fake):
    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)

    world.hang_up(caller)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    contact = routing_store.get_contact(conversation)
    assert contact.state.value == "assigned" and contact.assigned_to == "ada", "open until the agent wraps up"
    assert {"type": "call_ended", "conversation_id": conversation} in pushed(connection)
    closed = client.http.post(
        f"/conversations/{conversation}/close", headers=bearer("ada", "agent"), body=json.dumps({"wrap_up": "resolved"})
    )
    assert closed.status_code == 200


def test_a_caller_hanging_up_in_the_queue_is_abandoned_once_and_nobody_is_called(client, world, fake):
    """Twilio's two signals, as the fake sends them: the Enqueue action (QueueResult=hangup), then the status."""
    connection, conversation, caller = _offered_call(client, world, fake)
    world.hang_up(caller)
    exits = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert [url.rsplit("/", 1)[-1] for url, _s, _b in exits] == ["queue-exit", "status"]
    drain(client)

    contact = routing_store.get_contact(conversation)
    assert (contact.state.value, contact.wrap_up) == ("closed", "abandoned")
    assert routing_store.queue_stats("default")["abandoned"] == 1
    accepted = agent_says(client, connection, action="accept", contact_id=conversation)
    assert accepted.get("status") == 409
    assert _requests(fake, "POST", "/Calls.json") == [], "nobody is called for the dead call"


def test_two_accepts_at_once_place_one_agent_leg(client, world, fake):
    """The WebSocket and the REST API accept at the same moment: the other accept's claim lands just before ours
    (a rival run at the AWS boundary, right before our claim's conditional write, as a concurrent Lambda would),
    and the claim (one conditional write) lets only it place the agent's call. Deterministic on purpose: moto's
    in-process backend does not make a conditional write atomic across threads, as DynamoDB does."""
    from typing import Any

    from chalicelib.store import aws as app_clients
    from chalicelib.voice import connect

    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    voice_store.drop_agent_leg(conversation, _requests(fake, "POST", "/Calls.json")[0].answer["sid"])
    fake.requests.clear()
    contact = routing_store.get_contact(conversation)
    rivals: list[str | None] = []

    def rival_claims_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("UpdateExpression") == "SET agent_leg = :leg" and not rivals:
            rivals.append(None)  # before the rival's own claim comes through here
            rivals[0] = connect.on_accept(contact)

    events = app_clients.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", rival_claims_first)
    try:
        ours = connect.on_accept(contact)
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", rival_claims_first)
    assert rivals and rivals[0], "the rival accept placed the agent's call"
    assert ours is None, "our claim lost: we place nothing"
    assert len(_requests(fake, "POST", "/Calls.json")) == 1
