"""Self-service on the phone: the speech question's answer, when the knowledge base has a confident article, is
answered on the call (``<Say>`` the short answer, then ``<Gather input="dtmf speech">``: "say yes or press 1; say
agent or press 2"). Yes/1 closes the call solved by self-service; anything else (or nothing) queues it as a call,
with the bot exchange in the timeline and the SLA clock from the hand-over; a caller hanging up during the answer
is unconfirmed, not abandoned. Every request is Twilio's, signed; the fake Twilio follows the TwiML.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from chalicelib.store import conversations
from chalicelib.store import routing as routing_store
from chalicelib.store import self_service as counts
from chalicelib.store import voice as voice_store
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VoiceWorld
from tests.integration.test_voice_connect import OUR_NUMBER, STATUS_URL, VOICE_URL, poster
from tests.integration.test_voice_voicemail import use_config
from tests.support import (
    PUBLIC_BASE_URL,
    bearer,
    connect_agent,
    create_agent,
    drain,
    iter_contacts,
    offers_to,
    pushed,
    record_aws_requests,
    stored_messages,
)

ASK = "ask: {question: 'In a few words, what is your call about?', language: en-GB}"
ON = f"""
queues:
  default:
    self_service: {{channels: [voice, sms], languages: [en, de]}}
rules:
  - name: calls
    when: {{channel: voice}}
    queue: default
    {ASK}
  - name: everything else
    queue: default
"""
OFF = f"""
queues:
  default:
    self_service: {{channels: [sms], languages: [en, de]}}
rules:
  - name: calls
    when: {{channel: voice}}
    queue: default
    {ASK}
  - name: everything else
    queue: default
"""
QUESTION = "What are your opening hours?"
SELF_SERVICE_URL = PUBLIC_BASE_URL + "/webhooks/twilio/voice/self-service"


@pytest.fixture
def world(client, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> VoiceWorld:  # noqa: F811
    use_config(monkeypatch, ON)
    return fake_providers.voice


@pytest.fixture
def ada(client) -> object:
    create_agent(client, "ada", channels=("voice",), queues=["default"])
    return connect_agent(client, "ada")


def _ask(client, world: VoiceWorld, said: str = QUESTION) -> tuple[str, list[tuple[str, int, str]]]:
    """A call comes in, is asked the question and answers ``said``; returns its CallSid and what Twilio posted."""
    caller = world.incoming(VOICE_URL, number=OUR_NUMBER, status_url=STATUS_URL)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    world.speak(caller.sid, said)
    done = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    return caller.sid, done


def _answered(client, world: VoiceWorld) -> str:
    caller, done = _ask(client, world)
    [(_, _, body)] = done
    root = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL)
    assert [verb.tag for verb in root] == ["Say", "Gather", "Redirect"], body
    say, gather = root[0], root[1]
    assert say.attrib["language"] == "en-GB" and "Monday to Friday" in (say.text or "")
    assert gather.attrib["input"] == "dtmf speech" and gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == SELF_SERVICE_URL and gather.attrib["actionOnEmptyResult"] == "true"
    assert gather.attrib["language"] == "en-GB"
    [prompt] = list(gather)
    assert prompt.tag == "Say" and prompt.attrib["language"] == "en-GB"
    assert "press 1" in (prompt.text or "") and "press 2" in (prompt.text or "")
    assert (root[2].text or "").strip() == SELF_SERVICE_URL
    assert stored_messages() == [] and list(iter_contacts()) == [], "nothing stored while the caller listens"
    return caller


def _timeline() -> list[dict]:
    return sorted(stored_messages(), key=lambda m: m["received_at"])


def _today() -> dict:
    from chalicelib import clock

    return {row["channel"]: row for row in counts.day_counts(clock.now_iso()[:10])}


@pytest.mark.parametrize(("how", "what"), [("key_in", "1"), ("speak", "Yes.")])
def test_a_caller_who_says_yes_is_solved_by_self_service_and_the_call_ends(client, world, ada, how, what):
    caller = _answered(client, world)

    getattr(world, how)(caller, what)
    (url, _, body), *after = world.deliver(poster(client), base=PUBLIC_BASE_URL)  # then the call's completed
    drain(client)

    assert [status_url for status_url, _, _ in after] == [STATUS_URL]
    root = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL)
    assert url == SELF_SERVICE_URL and [verb.tag for verb in root] == ["Say", "Hangup"]
    assert world.calls[caller].status == "completed" and world.calls[caller].queue is None
    assert list(iter_contacts()) == [] and offers_to(ada) == [], "never routed"
    timeline = _timeline()
    assert [(m["direction"], m.get("author")) for m in timeline][:2] == [("inbound", None), ("outbound", "bot")]
    assert timeline[0]["text"] == QUESTION and timeline[0]["provider_message_id"] == caller
    assert "Monday to Friday" in timeline[1]["text"] and timeline[1]["kind"] == "self_service_answer"
    meta = conversations.get_conversation(timeline[0]["conversation_id"]) or {}
    assert (meta.get("status"), meta.get("wrap_up")) == ("closed", "self_service")
    voice = _today()["voice"]
    assert (voice["answered"], voice["solved"], voice["handed_over"]) == (1, 1, 0)
    supervisor = json.loads(client.http.get("/supervisor", headers=bearer("sue", "supervisor")).body)
    assert supervisor["self_service"]["by_channel"]["voice"]["solved"] == 1


@pytest.mark.parametrize(("how", "what"), [("key_in", "2"), ("speak", "I want to talk to an agent"), ("speak", "")])
def test_anything_else_queues_the_call_with_the_exchange_for_the_agent(client, world, ada, how, what):
    caller = _answered(client, world)

    getattr(world, how)(caller, what)
    done = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    enqueue = twiml.check(done[0][2], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue")
    assert enqueue is not None and world.calls[caller].queue is not None, "held in line as a call"
    [contact] = list(iter_contacts())
    assert contact["contact_id"] == enqueue.text and contact["rule"] == "calls"
    held = voice_store.get_call(contact["contact_id"]) or {}
    assert held.get("customer_call_sid") == caller, "the call is held: an agent's accept connects it"
    timeline = _timeline()
    assert [(m["direction"], m.get("author")) for m in timeline] == [
        ("inbound", None),
        ("outbound", "bot"),
        ("inbound", None),
    ]
    assert contact["enqueued_at"] == timeline[-1]["received_at"], "the SLA clock starts at the hand-over"
    [offer] = offers_to(ada)
    assert offer["contact_id"] == contact["contact_id"]
    seen = client.http.get(f"/conversations/{contact['contact_id']}", headers=bearer("ada"))
    assert seen.status_code == 200, seen.body
    texts = json.dumps(json.loads(seen.body))
    assert QUESTION in texts and "Monday to Friday" in texts, "the agent sees what the bot said"
    voice = _today()["voice"]
    assert (voice["answered"], voice["solved"], voice["handed_over"]) == (1, 0, 1)


def test_a_question_no_article_answers_is_queued_as_today(client, world, ada):
    caller, done = _ask(client, world, "My parcel arrived but the cat ate the receipt, what now?")

    assert twiml.check(done[0][2], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is not None
    [message] = stored_messages()
    assert message["provider_message_id"] == caller
    assert len(list(iter_contacts())) == 1 and len(offers_to(ada)) == 1
    assert _today() == {}


def test_where_self_service_is_off_for_calls_a_confident_question_is_queued_as_today(client, world, ada, monkeypatch):
    use_config(monkeypatch, OFF)
    _caller, done = _ask(client, world)

    assert twiml.check(done[0][2], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is not None
    [message] = stored_messages()
    assert message["text"] == QUESTION
    assert len(list(iter_contacts())) == 1 and len(offers_to(ada)) == 1
    assert _today() == {}


def test_twilio_repeating_each_request_stores_and_counts_once(client, world, ada):
    caller = _ask(client, world)[0]  # the speech action, then again below
    world.key_in(caller, "2")
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    post = poster(client)
    first = post(url, form)
    again = post(url, form)
    drain(client)

    assert first[0] == again[0] == 200
    assert twiml.check(again[1], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is not None
    assert len(stored_messages()) == 3 and len(list(iter_contacts())) == 1
    assert len(offers_to(ada)) == 1
    voice = _today()["voice"]
    assert (voice["answered"], voice["handed_over"]) == (1, 1)


def test_a_yes_repeated_closes_once(client, world, ada):
    caller = _answered(client, world)
    world.key_in(caller, "1")
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    post = poster(client)
    first, again = post(url, form), post(url, form)
    drain(client)

    assert first == again
    assert len(stored_messages()) == 3 and list(iter_contacts()) == []
    voice = _today()["voice"]
    assert (voice["answered"], voice["solved"]) == (1, 1)


def test_a_caller_who_hangs_up_during_the_answer_is_unconfirmed_not_abandoned(client, world, ada):
    caller = _answered(client, world)

    world.hang_up(caller)  # Twilio posts the call's status callback only
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    post = poster(client)
    assert post(url, form)[0] == post(url, form)[0] == 200  # and repeats it
    drain(client)

    assert list(iter_contacts()) == [] and offers_to(ada) == []
    [question, bot] = _timeline()
    assert question["text"] == QUESTION and bot.get("author") == "bot"
    meta = conversations.get_conversation(question["conversation_id"]) or {}
    assert (meta.get("status"), meta.get("wrap_up")) == ("closed", "self_service_unconfirmed")
    voice = _today()["voice"]
    assert (voice["answered"], voice["unconfirmed"], voice["solved"]) == (1, 1, 0)
    assert routing_store.queue_stats("default").get("abandoned", 0) == 0


def test_a_hang_up_just_after_asking_for_an_agent_abandons_the_call_nobody_is_left_holding_it(client, world, ada):
    """The caller says "agent" and hangs up at once: the hang-up's status callback (a concurrent Lambda, run at the
    AWS boundary) comes after the Gather's action decided the hand-over and before it stored the call. The call is
    not left waiting in line for a caller who is gone: its contact is abandoned and the agent's offer withdrawn."""
    from typing import Any

    from chalicelib.store import aws as app_clients

    caller = _answered(client, world)
    world.speak(caller, "An agent please")
    [gather_action] = world.pending
    world.pending.clear()
    post = poster(client)
    hung_up: list[int] = []

    def caller_hangs_up(parsed: dict[str, Any], **_: Any) -> None:
        if "outcome" in parsed.get("Attributes", {}) and not hung_up:  # the hand-over, just decided
            world.hang_up(caller)
            [(url, form, _context, _sid)] = world.pending
            world.pending.clear()
            hung_up.append(post(url, form)[0])

    events = app_clients.client("dynamodb").meta.events
    events.register("after-call.dynamodb.UpdateItem", caller_hangs_up)
    try:
        url, form, _context, _sid = gather_action
        status, _body = post(url, form)
    finally:
        events.unregister("after-call.dynamodb.UpdateItem", caller_hangs_up)
    drain(client)

    assert hung_up == [200] and status == 200, "the hang-up came in between"
    [contact] = list(iter_contacts())
    assert (contact["state"], contact.get("wrap_up")) == ("closed", "abandoned"), contact
    assert routing_store.queue_stats("default").get("abandoned", 0) == 1
    withdrawn = [p for p in pushed(ada) if p.get("type") == "offer_withdrawn"]
    assert [o["offer_id"] for o in offers_to(ada)] == [w["offer_id"] for w in withdrawn], "no live offer is left"
    held = voice_store.get_call(contact["contact_id"]) or {}
    from chalicelib.voice import lifecycle

    assert lifecycle.caller_gone(held), "an accept racing this finds the caller gone"
    assert len(stored_messages()) == 3, "question, answer and the caller's reply, once"


def test_a_forged_self_service_request_is_refused_and_stores_nothing(client, world, ada):
    caller = _answered(client, world)
    world.key_in(caller, "1")
    [(url, form, _context, _sid)] = world.pending
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "Zm9yZ2Vk"}
    answer = client.http.post(url.removeprefix(PUBLIC_BASE_URL), headers=headers, body=urlencode(form).encode())
    drain(client)

    assert answer.status_code in (401, 403)
    assert stored_messages() == [] and _today() == {}


def test_a_german_call_hears_the_german_article_and_question_in_german(client, world, ada, monkeypatch):
    use_config(monkeypatch, ON.replace("language: en-GB", "language: de-DE"))
    caller, done = _ask(client, world, "Wann haben Sie geöffnet?")

    root = twiml.check(done[0][2], twiml.CALL, PUBLIC_BASE_URL)
    say, gather = root.find("Say"), root.find("Gather")
    assert say is not None and gather is not None
    assert say.attrib["language"] == gather.attrib["language"] == "de-DE"
    assert "drücken Sie die 1" in (gather[0].text or "")
    world.key_in(caller, "1")
    (_, _, body), *_ = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    thanks = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL).find("Say")
    assert thanks is not None and thanks.attrib["language"] == "de-DE" and "Vielen Dank" in (thanks.text or "")
    assert _today()["voice"]["solved"] == 1


def _speech_action_requests(client, world: VoiceWorld, caller: str) -> list[str]:
    """The AWS requests of one speech action (a new caller's spoken question, confidently answerable)."""
    call = world.incoming(VOICE_URL, caller=caller, number=OUR_NUMBER, status_url=STATUS_URL)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    world.speak(call.sid, QUESTION)
    sent = record_aws_requests()
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    return list(sent)


def test_a_config_that_never_answers_calls_costs_the_speech_action_no_request(client, world, ada, monkeypatch):
    use_config(monkeypatch, OFF)
    off = _speech_action_requests(client, world, "+14155550161")
    use_config(monkeypatch, OFF.replace("    self_service: {channels: [sms], languages: [en, de]}\n", ""))
    none = _speech_action_requests(client, world, "+14155550162")

    assert "self_service" not in OFF.replace("    self_service: {channels: [sms], languages: [en, de]}\n", "")
    assert off == none and off, "the same requests as with no self-service at all"
