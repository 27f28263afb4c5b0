"""The speech question: a rule asks the caller what they need; the answer is the contact's text, routed by the rules.

The rule's ``ask`` answers "a call comes in" with ``<Gather input="speech">``; nothing is stored until Twilio requests
the Gather's action (signed, with ``SpeechResult``). That request stores the call with what the caller said as its
text, so ``text_matches`` and skills route it, and holds the caller in line as before (``<Enqueue>``).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from chalicelib.store import routing as routing_store
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
    stored_messages,
)

CONFIG = """
queues:
  default: {}
  billing: {}
rules:
  - name: billing calls
    when: {channel: voice, text_matches: "refund|invoice"}
    queue: billing
    skills: {billing: 2}
  - name: calls
    when: {channel: voice}
    queue: default
    ask: {question: "In a few words, what is your call about?", language: en-GB}
  - name: everything else
    queue: default
"""
SPEECH_PATH = "/webhooks/twilio/voice/speech"


@pytest.fixture
def world(client, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> VoiceWorld:  # noqa: F811
    use_config(monkeypatch, CONFIG)
    return fake_providers.voice


def _asked(client, world: VoiceWorld) -> str:
    """A call comes in and is asked the question; returns its CallSid."""
    caller = world.incoming(VOICE_URL, number=OUR_NUMBER, status_url=STATUS_URL)
    [(_, _, body)] = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    root = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL)
    assert [verb.tag for verb in root] == ["Gather", "Redirect"], body
    gather = root[0]
    assert gather.attrib["input"] == "speech" and gather.attrib["speechTimeout"] == "auto"
    assert gather.attrib["language"] == "en-GB" and gather.attrib["actionOnEmptyResult"] == "true"
    assert gather.attrib["action"] == PUBLIC_BASE_URL + SPEECH_PATH
    assert [say.text for say in gather] == ["In a few words, what is your call about?"]
    assert (root[1].text or "").strip() == PUBLIC_BASE_URL + SPEECH_PATH
    return caller.sid


def test_what_the_caller_says_is_the_contacts_text_and_routes_it(client, world):
    create_agent(client, "bill", channels=("voice",), skills={"billing": 3}, queues=["billing"])
    connection = connect_agent(client, "bill")
    caller = _asked(client, world)
    drain(client)
    assert stored_messages() == [] and list(iter_contacts()) == [], "nothing is stored while the caller is asked"

    world.speak(caller, "I want a refund for my last invoice")
    done = world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    enqueue = twiml.check(done[0][2], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue")
    assert enqueue is not None, "then held in line as always"
    assert world.calls[caller].queue is not None
    [message] = stored_messages()
    assert (message["channel"], message["text"]) == ("voice", "I want a refund for my last invoice")
    assert message["provider_message_id"] == caller and message["metadata"]["speech_confidence"] == "0.91"
    [contact] = list(iter_contacts())
    assert contact["contact_id"] == enqueue.text
    assert (contact["queues"], contact["required_skills"], contact["rule"]) == (
        ["billing"],
        {"billing": 2},
        "billing calls",
    )
    [offer] = offers_to(connection)
    assert offer["contact_id"] == contact["contact_id"]


def test_a_caller_who_says_nothing_is_routed_as_a_call(client, world):
    caller = _asked(client, world)

    world.speak(caller, "")  # silence until the Gather gives up; actionOnEmptyResult: the action all the same
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    [message] = stored_messages()
    assert message["text"] == "Incoming call"
    [contact] = list(iter_contacts())
    assert (contact["queues"], contact["rule"], contact["state"]) == (["default"], "calls", "queued")
    assert world.calls[caller].queue is not None


def test_twilio_repeating_the_answer_stores_and_routes_it_once(client, world):
    caller = _asked(client, world)
    world.speak(caller, "my invoice is wrong")
    [(url, form, _context, _sid)] = world.pending
    post = poster(client)
    first = post(url, form)
    again = post(url, form)
    drain(client)

    assert first[0] == again[0] == 200
    assert twiml.check(again[1], twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is not None
    assert len(stored_messages()) == 1 and len(list(iter_contacts())) == 1


def test_a_forged_answer_is_refused_and_stores_nothing(client, world):
    caller = _asked(client, world)
    world.speak(caller, "refund please")
    [(url, form, _context, _sid)] = world.pending
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "Zm9yZ2Vk"}
    answer = client.http.post(url.removeprefix(PUBLIC_BASE_URL), headers=headers, body=urlencode(form).encode())
    drain(client)

    assert answer.status_code in (401, 403)
    assert stored_messages() == [] and list(iter_contacts()) == []


def test_a_queue_may_ask_its_callers(client, world, monkeypatch):
    use_config(
        monkeypatch,
        "queues:\n  default:\n    ask: {question: 'In a few words, what is your call about?', language: en-GB}\n"
        "rules:\n  - name: everything else\n    queue: default\n",
    )
    caller = _asked(client, world)
    world.speak(caller, "where is my parcel")
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    [message] = stored_messages()
    assert message["text"] == "where is my parcel"


def test_an_answer_that_comes_after_the_caller_hung_up_queues_no_dead_call(client, world):
    caller = _asked(client, world)
    world.speak(caller, "refund please")
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    hung_up = [(k, "completed" if k == "CallStatus" else v) for k, v in form]

    status, body = poster(client)(url, hung_up)
    drain(client)

    assert status == 200 and twiml.check(body, twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is None
    assert stored_messages() == [] and list(iter_contacts()) == [], "nobody is offered the dead call"


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_caller_who_hangs_up_during_the_question_is_counted_abandoned_for_the_rules_queue(client, world, capsys):
    caller = _asked(client, world)
    capsys.readouterr()

    world.hang_up(caller)  # Twilio requests no Gather action for a caller gone: the call's status callback only
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    assert stored_messages() == [] and list(iter_contacts()) == [], "no contact nobody can answer"
    stats = routing_store.queue_stats("default")
    assert stats["abandoned"] == 1 and float(stats["abandon_seconds"]) >= 0
    assert routing_store.queue_stats("billing").get("abandoned", 0) == 0
    view = client.http.get("/supervisor", headers=bearer("sue", "supervisor"))
    [default] = [q for q in json.loads(view.body)["queues"] if q["queue"] == "default"]
    assert default["abandoned"] == 1 and default["avg_time_to_abandon_seconds"] is not None
    [document] = [d for d in _emf(capsys.readouterr().out) if "Abandoned" in d]
    assert (document["queue"], document["channel"], document["Abandoned"]) == ("default", "voice", [1.0])
    assert len(document["TimeToAbandon"]) == 1 and document["TimeToAbandon"][0] >= 0


def test_the_hang_up_repeated_and_a_late_answer_for_the_ended_call_count_once(client, world, capsys):
    caller = _asked(client, world)
    world.speak(caller, "refund please")
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    world.hang_up(caller)
    [(status_url, status_form, _c, _s)] = world.pending
    post = poster(client)
    capsys.readouterr()

    post(status_url, status_form)
    post(status_url, status_form)  # Twilio retried
    post(url, [(k, "completed" if k == "CallStatus" else v) for k, v in form])  # the answer, for the ended call
    drain(client)

    assert stored_messages() == [] and list(iter_contacts()) == []
    assert routing_store.queue_stats("default")["abandoned"] == 1
    assert sum(d["Abandoned"][0] for d in _emf(capsys.readouterr().out) if "Abandoned" in d) == 1


def test_a_caller_who_answered_and_then_hung_up_is_abandoned_once_as_a_queued_call(client, world):
    caller = _asked(client, world)
    world.speak(caller, "where is my parcel")
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    world.hang_up(caller)
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    [contact] = list(iter_contacts())
    assert (contact["state"], contact["wrap_up"]) == ("closed", "abandoned")
    assert routing_store.queue_stats("default")["abandoned"] == 1, "counted by the contact's abandonment only"


def test_a_forged_hang_up_counts_nothing(client, world):
    caller = _asked(client, world)
    world.hang_up(caller)
    [(status_url, status_form, _c, _s)] = world.pending
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "Zm9yZ2Vk"}
    answer = client.http.post(
        status_url.removeprefix(PUBLIC_BASE_URL), headers=headers, body=urlencode(status_form).encode()
    )
    drain(client)

    assert answer.status_code in (401, 403)
    assert routing_store.queue_stats("default").get("abandoned", 0) == 0


def test_an_answer_that_arrives_after_the_hang_up_was_counted_queues_no_dead_call(client, world):
    caller = _asked(client, world)
    world.speak(caller, "where is my parcel")  # the answer, sent while the call was still up...
    [(url, form, _context, _sid)] = world.pending
    world.pending.clear()
    world.hang_up(caller)  # ...but the hang-up's status callback is handled first
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    status, body = poster(client)(url, form)
    drain(client)

    assert status == 200 and twiml.check(body, twiml.CALL, PUBLIC_BASE_URL).find("Enqueue") is None
    assert stored_messages() == [] and list(iter_contacts()) == [], "nobody is offered the dead call"
    assert routing_store.queue_stats("default")["abandoned"] == 1
