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
from tests.integration.test_voice_connect import AGENT_PHONE, _offered_call, _requests, poster
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


# --- 2. the agent never joins: the timer moves the call on ----------------------------------------------------


def _join_timers() -> list[dict]:
    """AgentLegDue timers sent to the timer queue (still delayed: read from moto's queue without receiving)."""
    import json

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    from chalicelib.settings import timer_queue_name
    from tests.support import REGION

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[timer_queue_name()]
    return [body for body in (json.loads(m.body) for m in queue._messages) if body["type"] == "AgentLegDue"]


def _fire(timer: dict, at: str) -> str:
    import json

    from chalicelib.routing.events import from_body
    from chalicelib.voice import lifecycle

    return lifecycle.on_timer(from_body(json.dumps(timer)), at)


def _second_agent(client):
    from tests.support import connect_agent, create_agent

    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    bea = connect_agent(client, "bea")
    drain(client)
    return bea


def test_an_agent_leg_whose_status_callback_is_lost_moves_on_after_the_offer_timeout(client, world, fake):
    from chalicelib import clock
    from chalicelib.routing.config import current_config

    connection, conversation, caller = _offered_call(client, world, fake)
    bea = _second_agent(client)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    accepted_at = routing_store.get_contact(conversation).accepted_at
    # Ada's phone rings out, but Twilio's no-answer callback never reaches us.

    [timer] = _join_timers()
    assert timer["conversation_id"] == conversation and timer["agent_id"] == "ada"
    timeout = current_config().offer_timeout("voice")
    assert clock.seconds_between(accepted_at, timer["due_at"]) > timeout, "the offer timeout, with a margin"
    assert _fire(timer, clock.plus_seconds(timer["due_at"], -10)) == "re-armed"
    assert _fire(timer, timer["due_at"]) == "agent-unreachable"
    drain(client)

    [hung_up] = [r for r in _requests(fake, "POST", f"/Calls/{placed.answer['sid']}.json") if r.form.get("Status")]
    assert hung_up.form["Status"] == "completed", "the stray leg is ended"
    withdrawn = [p for p in pushed(connection) if p.get("type") == "offer_withdrawn"]
    assert [w["reason"] for w in withdrawn] == ["agent_unreachable"]
    assert [o["contact_id"] for o in offers_to(bea)] == [conversation]
    ada = routing_store.get_agent("ada")
    assert ada is not None and ada.used == 0 and ada.consecutive_expired == 1
    agent_says(client, bea, action="accept", contact_id=conversation)
    assert [c.form["To"] for c in _requests(fake, "POST", "/Calls.json")] == [AGENT_PHONE, "+14155550188"]
    assert world.calls[caller].queue is not None, "the caller still waits"

    # The timer again (SQS delivers at least once), or the lost callback arriving late: nothing moves twice.
    assert _fire(timer, timer["due_at"]) == "answered"
    world.calls[placed.answer["sid"]].status = "ringing"
    world.no_answer(placed.answer["sid"])
    _deliver(client, world)
    drain(client)
    assert routing_store.get_contact(conversation).assigned_to == "bea"


def test_a_softphone_agent_who_accepts_but_never_dials_in_is_moved_on(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake, agent_mode="softphone")
    bea = _second_agent(client)
    agent_says(client, connection, action="accept", contact_id=conversation)

    [timer] = _join_timers()
    assert _fire(timer, timer["due_at"]) == "agent-unreachable"
    drain(client)

    assert [o["contact_id"] for o in offers_to(bea)] == [conversation]
    assert routing_store.get_contact(conversation).offered_to == "bea"


def test_an_agent_who_joined_in_time_is_left_alone_by_the_timer(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    _deliver(client, world)
    assert voice_store.get_call(conversation)["bridged_at"]

    [timer] = _join_timers()
    assert _fire(timer, timer["due_at"]) == "joined"
    drain(client)
    assert routing_store.get_contact(conversation).assigned_to == "ada"
    assert len(world.participants(conversation)) == 2


def test_the_timer_lambda_takes_the_join_timer(client, world, fake):
    """Through the real handler (its clock is now: the timer is early and re-armed, not refused as unknown)."""
    from chalicelib.settings import timer_queue_name
    from tests.support import lambda_service_sqs, sqs_event

    connection, conversation, _caller = _offered_call(client, world, fake, agent_mode="softphone")
    agent_says(client, connection, action="accept", contact_id=conversation)
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=timer_queue_name())["QueueUrl"]
    [timer] = _join_timers()
    import json

    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(timer))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = [
        m
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if json.loads(m["Body"])["type"] == "AgentLegDue"
    ]
    answer = client.lambda_.invoke("on_timer", sqs_event(messages, arn)).payload
    assert answer.get("batchItemFailures") == [], answer
    assert len(_join_timers()) >= 1, "re-armed"
    assert routing_store.get_contact(conversation).assigned_to == "ada"


# --- 3. an unreachable agent leaves no trace on the conversation or the queue --------------------------------


def test_an_unreachable_agent_no_longer_shows_on_the_conversation_or_the_supervisor_view(client, world, fake):
    import json

    from chalicelib.store import conversations
    from tests.support import bearer

    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    assert conversations.get_conversation(conversation)["agent_id"] == "ada"
    [placed] = _requests(fake, "POST", "/Calls.json")

    world.no_answer(placed.answer["sid"])
    _deliver(client, world)
    drain(client)

    assert "agent_id" not in conversations.get_conversation(conversation), "the conversation has no agent again"
    view = json.loads(client.http.get("/supervisor", headers=bearer("sue", "supervisor")).body)
    [default] = [q for q in view["queues"] if q["queue"] == "default"]
    assert (default["working"], default["waiting"], default["sla_attainment"]) == (0, 1, None)


# --- 4. metrics: a call's SLA is judged when the agent joins ---------------------------------------------------


def _emf(out: str) -> list[dict]:
    import json

    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_calls_sla_is_judged_when_the_agent_joins_not_at_the_accept(client, world, fake, capsys):
    connection, conversation, _caller = _offered_call(client, world, fake)
    capsys.readouterr()
    agent_says(client, connection, action="accept", contact_id=conversation)
    at_accept = _emf(capsys.readouterr().out)
    assert [d for d in at_accept if "WaitUntilAccept" in d], "the accept's own wait is still measured"
    assert not [d for d in at_accept if "SLAMet" in d or "SLABreached" in d], "not judged at the accept"
    stats = routing_store.queue_stats("default")
    assert (stats["working"], stats.get("sla_met", 0)) == (1, 0)
    [record] = routing_store.records_of(conversation)
    assert "sla_met" not in record

    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    _deliver(client, world)

    at_join = _emf(capsys.readouterr().out)
    judged = [d for d in at_join if "SLAMet" in d and d.get("queue") == "default"]
    assert len(judged) == 1 and judged[0]["channel"] == "voice"
    assert routing_store.queue_stats("default")["sla_met"] == 1
    [record] = routing_store.records_of(conversation)
    assert record["sla_met"] is True and record["events"][-1]["kind"] == "joined"
    from chalicelib import clock
    from chalicelib.routing import records

    summary = records.summary(record)
    assert summary["joined_at"] == record["joined_at"] > record["accepted_at"]
    assert summary["wait_seconds"] == clock.seconds_between(record["arrived_at"], record["joined_at"]), "to the join"


def test_an_unreachable_agent_never_judges_the_sla_and_the_next_agents_join_does(client, world, fake, capsys):
    connection, conversation, _caller = _offered_call(client, world, fake)
    bea = _second_agent(client)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.no_answer(placed.answer["sid"])
    _deliver(client, world)
    drain(client)
    agent_says(client, bea, action="accept", contact_id=conversation)
    [_, second] = _requests(fake, "POST", "/Calls.json")
    world.answer(second.answer["sid"])
    _deliver(client, world)

    emitted = _emf(capsys.readouterr().out)
    assert sum(1 for d in emitted if "SLAMet" in d and d.get("queue") == "default") == 1
    stats = routing_store.queue_stats("default")
    assert (stats["working"], stats["sla_met"], stats.get("sla_breached", 0)) == (1, 1, 0)


def test_the_supervisor_view_shows_each_queues_abandonment_rate_and_time_to_abandon(client, world, fake):
    import json

    from tests.support import bearer

    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    _deliver(client, world)  # the first caller reaches ada
    second = world.incoming(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice", caller="+14155550124")
    _deliver(client, world)
    drain(client)
    world.hang_up(second.sid)  # the second gives up waiting
    _deliver(client, world)
    drain(client)

    view = json.loads(client.http.get("/supervisor", headers=bearer("sue", "supervisor")).body)
    [default] = [q for q in view["queues"] if q["queue"] == "default"]
    assert default["abandoned"] == 1
    assert default["abandon_rate"] == 0.5, "one of the two callers who left the queue gave up"
    assert isinstance(default["avg_time_to_abandon_seconds"], float | int)
    assert default["avg_time_to_abandon_seconds"] >= 0
    stats = routing_store.queue_stats("default")
    assert stats["abandon_seconds"] >= 0


# --- 5. a call's records expire ---------------------------------------------------------------------------------


def test_a_calls_records_expire_after_the_idempotency_retention(client, world, fake, monkeypatch):
    from chalicelib import clock
    from chalicelib.settings import get_settings, reload_settings
    from tests.support import all_items

    monkeypatch.setenv("SWITCHBOARD_IDEMPOTENCY_RETENTION_DAYS", "20")
    reload_settings()
    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")

    items = {i["pk"]: i for i in all_items(get_settings().data_table)}
    for pk in (f"VOICE#{conversation}", f"CALL#twilio#{caller}", f"CALL#twilio#{placed.answer['sid']}"):
        item = items[pk]
        assert int(item["expires_at"]) == int(clock.parse_iso(item["created_at"]).timestamp()) + 20 * 86400, pk


# --- 6. the REST API with an API key ------------------------------------------------------------------------------


def test_voice_requests_use_the_api_key_when_one_is_set(client, world, fake, monkeypatch):
    import base64

    from chalicelib.settings import reload_settings
    from tests.fakes.twilio_voice import API_KEY_SECRET, API_KEY_SID

    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", API_KEY_SECRET)
    reload_settings()
    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    assert placed.status == 201
    expected = base64.b64encode(f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()
    assert placed.headers["Authorization"] == f"Basic {expected}"
    assert f"/Accounts/{world.account_sid}/" in placed.path, "the account, not the key, in the path"


def test_the_fake_refuses_a_key_with_the_wrong_secret(client, world, fake, monkeypatch):
    from chalicelib.settings import reload_settings
    from tests.fakes.twilio_voice import API_KEY_SID

    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", "not-the-secret")
    reload_settings()
    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [refused] = _requests(fake, "POST", "/Calls.json")
    assert refused.status == 401 and refused.answer["code"] == 20003
    assert not (voice_store.get_call(conversation) or {}).get("agent_leg"), "the claim given back for a retry"


def test_a_join_timer_whose_lambda_dies_before_publishing_moves_the_call_on_when_sqs_retries(client, world, fake):
    """The claim was freed, then the publish failed (the Lambda died): SQS delivers the timer again, which finds
    the claim gone and still publishes the move (a leg answered meanwhile hears the agent-leg TwiML hang up)."""
    from typing import Any

    from chalicelib.store import aws as app_clients

    connection, conversation, _caller = _offered_call(client, world, fake)
    bea = _second_agent(client)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    [timer] = _join_timers()
    failed: list[str] = []

    def die_at_the_publish(params: dict[str, Any], **_: Any) -> None:
        if "AgentUnreachable" in str(params.get("MessageBody", "")) and not failed:
            failed.append("once")
            raise ConnectionError("the Lambda died here")

    events = app_clients.client("sqs").meta.events
    events.register("before-parameter-build.sqs.SendMessage", die_at_the_publish)
    try:
        with pytest.raises(ConnectionError):
            _fire(timer, timer["due_at"])
    finally:
        events.unregister("before-parameter-build.sqs.SendMessage", die_at_the_publish)
    assert _fire(timer, timer["due_at"]) == "agent-unreachable", "SQS's retry"
    drain(client)

    assert [o["contact_id"] for o in offers_to(bea)] == [conversation]
    status, body = poster(client)(
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/agent-leg?conversation={conversation}",
        [("AccountSid", world.account_sid), ("CallSid", placed.answer["sid"]), ("CallStatus", "in-progress")],
    )
    assert status == 200 and [e.tag for e in twiml.check(body)] == ["Hangup"], "ada's late answer joins nothing"


def test_a_caller_who_hung_up_before_the_agent_joined_is_an_abandonment_in_the_record_and_the_replay(
    client, world, fake
):
    """What reports and ``switchboard replay`` (the simulator's inputs) read: the caller never reached an agent,
    however far the accept got; they gave up after ``patience_seconds``."""
    from chalicelib import clock
    from chalicelib.routing import records
    from chalicelib.sim import replay

    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    world.hang_up(caller)
    _deliver(client, world)
    drain(client)

    [record] = routing_store.records_of(conversation)
    summary = records.summary(record)
    assert summary["abandoned"] and summary["accepted_at"], "accepted, then abandoned before the join"
    assert (summary["answered_at"], summary["wait_seconds"], summary["handle_seconds"]) == (None, None, None)
    _scenario, rows = replay.scenario_of(
        [summary], [], summary["arrived_at"], clock.plus_seconds(summary["arrived_at"], 3600), lambda s: ""
    )
    [row] = rows
    assert row["patience_seconds"] == clock.seconds_between(summary["arrived_at"], summary["closed_at"])
