"""In-call controls: hold and resume, mute and unmute, hang up, as Participants API requests seen at the fake Twilio.

The call is set up as in ``test_voice_connect``: a caller dials in, ada (on her own phone) accepts, answers, and the
caller is bridged into the contact's conference. Then ada's console calls ``POST /conversations/{id}/call``.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VoiceWorld
from tests.integration.test_voice_connect import PUBLIC_BASE_URL, _offered_call, _requests, poster
from tests.support import agent_says, bearer, connect_agent, create_agent, drain, offers_to, pushed


@pytest.fixture
def fake(client, fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811 (the imported fixture)
    return fake_providers


@pytest.fixture
def world(fake: FakeProviders) -> VoiceWorld:
    return fake.voice


def _bridged(client, world: VoiceWorld, fake: FakeProviders) -> tuple[str, str, str, str]:
    connection, conversation, caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert voice_store.get_call(conversation)["bridged_at"]
    return connection, conversation, caller, placed.answer["sid"]


def _control(client, conversation: str, action: object, agent: str = "ada", **more: object):
    body = json.dumps({"action": action, **more})
    headers = {"Content-Type": "application/json", **bearer(agent, "agent")}
    return client.http.post(f"/conversations/{conversation}/call", headers=headers, body=body)


def _body(answer) -> dict:
    return json.loads(answer.body)


def _participant(world: VoiceWorld, conversation: str, label: str):
    [found] = [p for p in world.participants(conversation) if p.label == label]
    return found


def _participant_updates(fake: FakeProviders) -> list:
    return [r for r in _requests(fake, "POST", ".json") if "/Participants/" in r.path]


def test_hold_and_resume_put_the_caller_on_hold_and_back(client, world, fake):
    _connection, conversation, _caller, _leg = _bridged(client, world, fake)
    conference = next(iter(world.conferences))

    held = _control(client, conversation, "hold")
    assert held.status_code == 200, held.body
    assert _body(held)["call"] == {"on_hold": True, "muted": False}
    [update] = _participant_updates(fake)
    assert update.path.endswith(f"/Conferences/{conference}/Participants/customer.json")
    assert update.form["Hold"] == "true"
    assert _participant(world, conversation, "customer").hold
    world.deliver(poster(client), base=PUBLIC_BASE_URL)  # participant-hold: changes nothing in the app

    resumed = _control(client, conversation, "resume")
    assert resumed.status_code == 200 and _body(resumed)["call"]["on_hold"] is False
    assert not _participant(world, conversation, "customer").hold
    assert voice_store.get_call(conversation)["on_hold"] is False


def test_mute_and_unmute_the_agent(client, world, fake):
    _connection, conversation, _caller, leg = _bridged(client, world, fake)
    muted = _control(client, conversation, "mute")
    assert muted.status_code == 200 and _body(muted)["call"] == {"on_hold": False, "muted": True}
    [update] = _participant_updates(fake)
    assert update.path.endswith(f"/Participants/{leg}.json") and update.form["Muted"] == "true"
    assert _participant(world, conversation, "agent").muted
    assert _control(client, conversation, "unmute").status_code == 200
    assert not _participant(world, conversation, "agent").muted


def test_hang_up_ends_the_callers_call_and_the_contact_waits_for_wrap_up(client, world, fake):
    connection, conversation, caller, _leg = _bridged(client, world, fake)
    ended = _control(client, conversation, "hangup")
    assert ended.status_code == 200, ended.body
    [update] = [r for r in _requests(fake, "POST", f"/Calls/{caller}.json") if r.form.get("Status")]
    assert update.form["Status"] == "completed"
    assert world.calls[caller].status == "completed"
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert {"type": "call_ended", "conversation_id": conversation} in pushed(connection)
    contact = routing_store.get_contact(conversation)
    assert contact.state.value == "assigned" and contact.assigned_to == "ada"
    again = _control(client, conversation, "hold")
    assert again.status_code == 409 and "call" in _body(again)["message"]


def test_controls_refuse_bad_input_strangers_and_calls_not_connected(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake)
    not_yet = _control(client, conversation, "hold")
    assert not_yet.status_code == 409, "offered, not accepted"
    agent_says(client, connection, action="accept", contact_id=conversation)
    before_bridge = _control(client, conversation, "hold")
    assert before_bridge.status_code == 409 and "connected" in _body(before_bridge)["message"]
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)

    bad = _control(client, conversation, "explode")
    assert bad.status_code == 422 and _body(bad)["details"][0]["field"] == "action"
    create_agent(client, "bea", channels=("voice",))
    stranger = _control(client, conversation, "hold", agent="bea")
    assert stranger.status_code == 403
    missing = _control(client, "conv_nope", "hold")
    assert missing.status_code == 404
    assert _participant_updates(fake) == [], "nothing reached Twilio"


def _offers(connection: str) -> list[dict]:
    return [p for p in pushed(connection) if p.get("type") == "offer"]


def test_an_agent_leg_dropping_mid_call_holds_the_caller_and_puts_the_contact_back_at_the_head(client, world, fake):
    connection, conversation, caller, leg = _bridged(client, world, fake)
    before = routing_store.get_contact(conversation)
    later = world.incoming(PUBLIC_BASE_URL + "/webhooks/twilio/voice", caller="+14155550199", number="+14155550100")
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    offers_before = len(_offers(connection))

    world.hang_up(leg)  # ada's phone drops (not the console's hang-up): Twilio says participant-leave
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    customer = _participant(world, conversation, "customer")
    assert customer.sid == caller and customer.hold, "the caller stays in the conference, on hold"
    assert {"type": "call_requeued", "conversation_id": conversation, "reason": "agent_left"} in pushed(connection)
    call = voice_store.get_call(conversation)
    assert "agent_leg" not in call and call["bridged_at"] and call["on_hold"] is True
    [offer] = _offers(connection)[offers_before:]
    assert offer["contact_id"] == conversation, "back at the head: ahead of the later caller"
    again = routing_store.get_contact(conversation)
    assert (again.enqueued_at, again.sla_deadline) == (before.enqueued_at, before.sla_deadline)
    assert world.calls[later.sid].queue is not None

    # Twilio repeats the leave: nothing moves twice.
    conference = next(iter(world.conferences))
    form = {
        "AccountSid": world.account_sid,
        "ConferenceSid": conference,
        "FriendlyName": conversation,
        "StatusCallbackEvent": "participant-leave",
        "SequenceNumber": "99",
        "Timestamp": "Wed, 02 Dec 2026 06:20:00 +0000",
        "CallSid": leg,
        "ParticipantLabel": "agent",
    }
    url = f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/conference?conversation={conversation}"
    updates = len(_participant_updates(fake))
    assert poster(client)(url, sorted(form.items()))[0] == 200
    drain(client)
    assert len(_participant_updates(fake)) == updates and len(_offers(connection)) == offers_before + 1

    # The next accept's agent joins the existing conference: no dequeue, the caller taken off hold.
    agent_says(client, connection, action="accept", contact_id=conversation)
    placed = _requests(fake, "POST", "/Calls.json")[-1]
    assert placed.form["To"] == "+14155550177" and placed.answer["sid"] != leg
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert {p.sid for p in world.participants(conversation)} == {caller, placed.answer["sid"]}
    assert not _participant(world, conversation, "customer").hold
    assert len([r for r in fake.requests if "/Members/" in r.path]) == 1, "one dequeue, for the first agent"
    assert _control(client, conversation, "hold").status_code == 200, "the new leg is the one in control"
    join = {**form, "StatusCallbackEvent": "participant-join", "CallSid": placed.answer["sid"], "SequenceNumber": "100"}
    assert poster(client)(url, sorted(join.items()))[0] == 200  # Twilio repeats the new leg's join
    assert _participant(world, conversation, "customer").hold, "the hold the agent chose stays"


def test_the_console_hang_up_does_not_put_the_contact_back_in_the_queue(client, world, fake):
    connection, conversation, _caller, _leg = _bridged(client, world, fake)
    assert _control(client, conversation, "hangup").status_code == 200
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    contact = routing_store.get_contact(conversation)
    assert contact.state.value == "assigned" and contact.assigned_to == "ada"
    assert not [p for p in pushed(connection) if p.get("type") == "call_requeued"]


def _transfer(client, conversation: str, agent: str = "ada", **target: object):
    headers = {"Content-Type": "application/json", **bearer(agent, "agent")}
    return client.http.post(f"/conversations/{conversation}/transfer", headers=headers, body=json.dumps(target))


def test_a_cold_transfer_to_an_agent_holds_the_caller_drops_our_leg_and_the_colleague_joins_the_conference(
    client, world, fake
):
    connection, conversation, caller, leg = _bridged(client, world, fake)
    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    bea = connect_agent(client, "bea")
    drain(client)

    moved = _transfer(client, conversation, agent_id="bea")
    assert moved.status_code == 200, moved.body
    assert _participant(world, conversation, "customer").hold, "the caller waits on hold"
    [hang_up] = [r for r in _requests(fake, "POST", f"/Calls/{leg}.json") if r.form.get("Status")]
    assert hang_up.form["Status"] == "completed" and world.calls[leg].status == "completed"
    world.deliver(poster(client), base=PUBLIC_BASE_URL)  # ada's participant-leave and call status
    drain(client)
    assert not [p for p in pushed(connection) if p.get("type") == "call_requeued"], "the leave changes nothing"
    assert _control(client, conversation, "hold").status_code == 403, "no longer ada's call"

    [offer] = offers_to(bea)
    assert offer["contact_id"] == conversation
    agent_says(client, bea, action="accept", contact_id=conversation)
    placed = _requests(fake, "POST", "/Calls.json")[-1]
    assert placed.form["To"] == "+14155550188"
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert {p.sid for p in world.participants(conversation)} == {caller, placed.answer["sid"]}
    assert not _participant(world, conversation, "customer").hold
    assert len([r for r in fake.requests if "/Members/" in r.path]) == 1, "the caller was never queued again"


def test_a_voice_transfer_with_bad_input_or_before_the_bridge_touches_no_call(client, world, fake):
    connection, conversation, _caller = _offered_call(client, world, fake)
    agent_says(client, connection, action="accept", contact_id=conversation)
    early = _transfer(client, conversation, queue="default")
    assert early.status_code == 409 and "connected" in _body(early)["message"]
    [placed] = _requests(fake, "POST", "/Calls.json")
    world.answer(placed.answer["sid"])
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    bad = _transfer(client, conversation, queue="nowhere")
    assert bad.status_code == 422 and "nowhere" in _body(bad)["message"]
    assert _participant_updates(fake) == [] and not _participant(world, conversation, "customer").hold
    assert routing_store.get_contact(conversation).assigned_to == "ada"


def test_a_warm_transfer_consults_a_colleague_on_hold_then_cancels_or_hands_over(client, world, fake):
    connection, conversation, caller, leg = _bridged(client, world, fake)
    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    bea = connect_agent(client, "bea")
    drain(client)
    conference = next(iter(world.conferences))
    assert _control(client, conversation, "consult", agent_id="ada").status_code == 422, "not yourself"
    assert _control(client, conversation, "handover").status_code == 409, "no consult to hand over to"

    consulted = _control(client, conversation, "consult", agent_id="bea")
    assert consulted.status_code == 200, consulted.body
    [added] = _requests(fake, "POST", f"/Conferences/{conference}/Participants.json")
    assert (added.form["To"], added.form["From"], added.form["Label"]) == ("+14155550188", "+14155550100", "consult")
    assert _participant(world, conversation, "customer").hold, "the caller waits on hold while ada consults"
    assert _control(client, conversation, "consult", agent_id="bea").status_code == 409, "one consult at a time"
    world.answer(added.answer["call_sid"])  # bea picks up and joins the conference
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert {p.label for p in world.participants(conversation)} == {"agent", "customer", "consult"}

    cancelled = _control(client, conversation, "cancel_consult")
    assert cancelled.status_code == 200, cancelled.body
    assert world.calls[added.answer["call_sid"]].status == "completed"
    assert not _participant(world, conversation, "customer").hold, "back with the caller"
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert "consult" not in voice_store.get_call(conversation)

    assert _control(client, conversation, "consult", agent_id="bea").status_code == 200
    second = _requests(fake, "POST", f"/Conferences/{conference}/Participants.json")[-1].answer["call_sid"]
    world.answer(second)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    placed_before = len(_requests(fake, "POST", "/Calls.json"))
    handed = _control(client, conversation, "handover")
    assert handed.status_code == 200, handed.body
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert world.calls[leg].status == "completed", "ada's leg is hung up"
    assert {p.sid for p in world.participants(conversation)} == {caller, second}
    assert not _participant(world, conversation, "customer").hold, "bea has the caller"
    [offer] = offers_to(bea)
    assert offer["contact_id"] == conversation
    agent_says(client, bea, action="accept", contact_id=conversation)
    assert len(_requests(fake, "POST", "/Calls.json")) == placed_before, "bea is on the call already: no new leg"
    assert _control(client, conversation, "mute", agent="bea").status_code == 200
    assert _requests(fake, "POST", ".json")[-1].path.endswith(f"/Participants/{second}.json")
    assert not [p for p in pushed(connection) if p.get("type") == "call_requeued"]


def test_a_consulted_colleague_who_hangs_up_ends_the_consult_and_requeues_nothing(client, world, fake):
    connection, conversation, _caller, _leg = _bridged(client, world, fake)
    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    drain(client)
    unknown = _control(client, conversation, "consult", agent_id="nobody")
    assert unknown.status_code == 422 and _participant_updates(fake) == [], "nothing held for an unknown colleague"
    assert "consult" not in voice_store.get_call(conversation)

    assert _control(client, conversation, "consult", agent_id="bea").status_code == 200
    consult_sid = _requests(fake, "POST", "/Participants.json")[-1].answer["call_sid"]
    world.answer(consult_sid)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    world.hang_up(consult_sid)  # bea hangs up on the consult
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert "consult" not in voice_store.get_call(conversation)
    assert routing_store.get_contact(conversation).assigned_to == "ada"
    assert not [p for p in pushed(connection) if p.get("type") == "call_requeued"]
    assert _control(client, conversation, "handover").status_code == 409, "nobody to hand over to"
    assert _control(client, conversation, "resume").status_code == 200
    assert not _participant(world, conversation, "customer").hold


def test_a_lambda_dying_between_the_requeue_and_freeing_the_leg_is_made_good_by_twilios_retry(client, world, fake):
    from typing import Any

    from chalicelib.store import aws as app_clients

    connection, conversation, _caller, leg = _bridged(client, world, fake)
    conference = next(iter(world.conferences))
    form = {
        "AccountSid": world.account_sid,
        "ConferenceSid": conference,
        "FriendlyName": conversation,
        "StatusCallbackEvent": "participant-leave",
        "SequenceNumber": "7",
        "Timestamp": "Wed, 02 Dec 2026 06:20:00 +0000",
        "CallSid": leg,
        "ParticipantLabel": "agent",
    }
    url = f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/conference?conversation={conversation}"

    class Died(Exception):
        pass

    def die_freeing_the_leg(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("UpdateExpression", "")).startswith("REMOVE agent_leg SET on_hold"):
            raise Died("the Lambda ran out of time here")

    events = app_clients.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", die_freeing_the_leg)
    try:
        status, _body = poster(client)(url, sorted(form.items()))
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", die_freeing_the_leg)
    assert status == 500
    drain(client)  # the router requeued the contact meanwhile (the event was published first)
    assert routing_store.get_contact(conversation).state.value in ("queued", "offered")
    assert voice_store.get_call(conversation)["agent_leg"]["call_sid"] == leg, "the leg still claimed"

    assert poster(client)(url, sorted(form.items()))[0] == 200  # Twilio retries the callback
    drain(client)
    assert "agent_leg" not in voice_store.get_call(conversation), "the retry freed the leg"
    agent_says(client, connection, action="accept", contact_id=conversation)
    assert _requests(fake, "POST", "/Calls.json")[-1].answer["sid"] != leg, "the next accept places a new leg"


def test_a_consult_whose_call_was_never_noted_can_be_cancelled(client, world, fake):
    """An attempt that died after starting the consult and before noting its call: cancel clears it."""
    _connection, conversation, _caller, _leg = _bridged(client, world, fake)
    create_agent(client, "bea", channels=("voice",), phone="+14155550188", voice_mode="phone")
    assert voice_store.start_consult(conversation, "bea", "2026-12-02T13:00:00Z")
    assert _control(client, conversation, "consult", agent_id="bea").status_code == 409
    assert _control(client, conversation, "cancel_consult").status_code == 200
    assert "consult" not in voice_store.get_call(conversation)
    assert _control(client, conversation, "consult", agent_id="bea").status_code == 200


def test_a_consult_of_a_softphone_colleague_rings_their_identity_saying_who_consults_and_for_which_call(
    client, world, fake
):
    from urllib.parse import parse_qs, urlsplit

    _connection, conversation, _caller, _leg = _bridged(client, world, fake)
    create_agent(client, "bea.k", channels=("voice",))  # the default: her console's softphone
    drain(client)
    assert _control(client, conversation, "consult", agent_id="bea.k").status_code == 200
    [added] = _requests(fake, "POST", "/Participants.json")
    to = urlsplit(added.form["To"])
    # Only a Device registered with a token of bea's identity rings; the custom parameters (Twilio passes them to
    # the SDK's Call.customParameters) tell her console who consults her and about which conversation.
    assert (to.scheme, to.path) == ("client", "ag_bea_dk")
    assert parse_qs(to.query) == {"conversation_id": [conversation], "consulted_by": ["ada"]}
    assert added.form["Label"] == "consult"
    world.answer(added.answer["call_sid"])  # her console's Answer: the Device accepts, the leg joins
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert {p.label for p in world.participants(conversation)} == {"agent", "customer", "consult"}
    assert voice_store.get_call(conversation)["consult"]["call_sid"] == added.answer["call_sid"]


def test_a_declined_consult_ends_the_consult_and_tells_the_consulting_agent_once(client, world, fake):
    connection, conversation, _caller, _leg = _bridged(client, world, fake)
    create_agent(client, "bea", channels=("voice",))
    drain(client)
    assert _control(client, conversation, "consult", agent_id="bea").status_code == 200
    [added] = _requests(fake, "POST", "/Participants.json")
    assert added.form["StatusCallback"] == PUBLIC_BASE_URL + "/webhooks/twilio/status"
    world.end(added.answer["call_sid"], "busy")  # bea's console: Decline (the Device rejects the call)
    replay = [p for p in world.pending if p[0] == PUBLIC_BASE_URL + "/webhooks/twilio/status"]
    assert len(replay) == 1, "the declined leg's end: its status callback (it never joined: no participant-leave)"
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    world.pending.extend(replay)  # Twilio retrying the status callback
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    assert "consult" not in voice_store.get_call(conversation)
    ended = [p for p in pushed(connection) if p.get("type") == "consult_ended"]
    assert ended == [{"type": "consult_ended", "conversation_id": conversation, "agent_id": "bea", "status": "busy"}]
    assert _participant(world, conversation, "customer").hold, "on hold until ada resumes"
    assert routing_store.get_contact(conversation).assigned_to == "ada"
    assert _control(client, conversation, "consult", agent_id="bea").status_code == 200, "may consult again"
