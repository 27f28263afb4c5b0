"""A call's lifecycle when things go wrong: the caller leaves mid-accept, a callback is lost, an agent never joins.

Driven as in ``test_voice_connect``: the fake Twilio (``tests/fakes/twilio_voice.py``) places the calls, runs our
TwiML and posts its callbacks signed as Twilio signs; AWS is moto.
"""

from __future__ import annotations

import pytest

from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VoiceWorld
from tests.integration.test_voice_connect import _offered_call, _requests, poster
from tests.support import PUBLIC_BASE_URL, agent_says, drain, offers_to, pushed


@pytest.fixture
def fake(client, fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811 (the imported fixture)
    return fake_providers


@pytest.fixture
def world(fake: FakeProviders) -> VoiceWorld:
    return fake.voice


def _deliver(client, world) -> list[tuple[str, int, str]]:
    return world.deliver(poster(client), base=PUBLIC_BASE_URL)


# --- 1. the caller hangs up around the accept ------------------------------------------------------------------


def test_a_caller_who_hangs_up_while_the_agents_phone_rings_is_abandoned_and_the_ringing_stops(client, world, fake):
    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    agent_leg = placed.answer["sid"]

    world.hang_up(caller)  # before ada picks up: nobody to bridge
    _deliver(client, world)
    drain(client)

    [hung_up] = [r for r in _requests(fake, "POST", f"/Calls/{agent_leg}.json") if r.form.get("Status")]
    assert hung_up.form["Status"] == "completed", "the agent's phone stops ringing"
    assert world.calls[agent_leg].status == "completed"
    contact = routing_store.get_contact(conversation)
    assert (contact.state.value, contact.wrap_up) == ("closed", "abandoned"), "the caller never reached the agent"
    assert routing_store.queue_stats("default")["abandoned"] == 1
    assert routing_store.queue_stats("default").get("working", 0) == 0
    ada = routing_store.get_agent("ada")
    assert ada is not None and ada.used == 0, "the agent is free again"
    assert {"type": "closed", "contact_id": conversation, "reason": "abandoned"} in pushed(connection)

    # Twilio repeats the caller's completed: nothing is counted or hung up twice.
    world.calls[caller].status = "in-progress"
    world.end(caller, "completed")
    _deliver(client, world)
    drain(client)
    assert routing_store.queue_stats("default")["abandoned"] == 1
    assert len([r for r in _requests(fake, "POST", f"/Calls/{agent_leg}.json") if r.form.get("Status")]) == 1


def test_an_accept_that_lands_after_the_caller_hung_up_places_no_agent_leg(client, world, fake):
    connection, conversation, caller = _offered_call(client, world, fake)
    world.hang_up(caller)
    _deliver(client, world)  # the webhooks saw it; the router has not yet (CallerLeft still queued)

    accepted = agent_says(client, connection, action="accept", contact_id=conversation)
    drain(client)

    assert accepted.get("type") == "accepted", "the accept's conditional write won the race"
    assert _requests(fake, "POST", "/Calls.json") == [], "nobody is called for the dead call"
    contact = routing_store.get_contact(conversation)
    assert (contact.state.value, contact.wrap_up) == ("closed", "abandoned")
    ada = routing_store.get_agent("ada")
    assert ada is not None and ada.used == 0
    assert routing_store.queue_stats("default").get("working", 0) == 0
    assert not (voice_store.get_call(conversation) or {}).get("agent_leg"), "no claim left behind"


def test_an_agent_leg_answered_after_the_caller_left_hangs_up(client, world, fake):
    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.hang_up(caller)
    _deliver(client, world)
    drain(client)

    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/agent-leg?conversation={conversation}",
        [("AccountSid", world.account_sid), ("CallSid", placed.answer["sid"]), ("CallStatus", "in-progress")],
    )
    assert status == 200
    root = twiml.check(body)
    assert [e.tag for e in root] == ["Say", "Hangup"] and "hung up" in (root[0].text or "")
    assert world.participants(conversation) == []
    assert offers_to(connection)
