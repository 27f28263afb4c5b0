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
)

AGENT_PHONE = "+14155550177"
OUR_NUMBER = "+14155550100"


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


def _members(fake: FakeProviders) -> list:
    return [r for r in fake.requests if r.api == VOICE and "/Members/" in r.path and r.status == 200]


def _offered_call(client, world: VoiceWorld, fake: FakeProviders, agent_mode: str = "phone") -> tuple[str, str, str]:
    create_agent(client, "ada", channels=("voice",), phone=AGENT_PHONE, voice_mode=agent_mode)
    connection = connect_agent(client, "ada")
    caller = world.incoming(PUBLIC_BASE_URL + "/webhooks/twilio/voice", number=OUR_NUMBER)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    [offer] = offers_to(connection)
    return connection, offer["contact_id"], caller.sid


def test_an_accepted_call_rings_the_agents_phone_once_and_bridges_the_caller_once(client, world, fake):
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

    # Twilio repeats the agent's join callback: nothing moves twice.
    world.pending.append(
        (
            f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/conference?conversation={conversation}",
            sorted(
                {
                    "AccountSid": world.account_sid,
                    "ConferenceSid": next(iter(world.conferences)),
                    "FriendlyName": conversation,
                    "StatusCallbackEvent": "participant-join",
                    "SequenceNumber": "1",
                    "CallSid": agent_leg,
                    "ParticipantLabel": "agent",
                }.items()
            ),
            twiml.CALLBACK,
            None,
        )
    )
    world.deliver(post, base=PUBLIC_BASE_URL)
    assert len(_members(fake)) == 1, "one bridge"
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
    assert root[0].tag == "Say" and root[0].text.startswith("You are next in line. The expected wait is about")
    assert (root[1].tag, root[1].attrib["length"]) == ("Pause", "45"), "routing.yaml voice.position_interval"
    assert root[2].tag == "Redirect" and root[2].text == enqueue.attrib["waitUrl"]
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
