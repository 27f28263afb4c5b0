"""A voicemail becomes a routed contact with its transcript.

A call that comes in while its queue is closed (``out_of_hours: {action: voicemail}``), or that a rule sends to
voicemail, hears a greeting and ``<Record transcribe="true">``: nothing is stored and nobody is offered a live
call. Once the caller has spoken, Twilio's signed requests (the Record ``action``, the ``recordingStatusCallback``,
the ``transcribeCallback``; played by the fake Twilio in ``tests/fakes/twilio_voice.py``) store one message in the
customer's timeline (the recording's link, then its transcript) and route it as a ``voicemail`` contact with the
voicemail SLA. Repeats, any order, and forged requests store nothing twice or at all.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import boto3
import pytest

from chalicelib import clock
from chalicelib.routing.config import forget_current_config
from chalicelib.settings import reload_settings
from tests.conftest import ROUTING_PARAMETER
from tests.fakes import twiml
from tests.fakes.providers import FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import VoiceWorld
from tests.integration.test_voice_connect import OUR_NUMBER, STATUS_URL, VOICE_URL, poster
from tests.support import (
    PUBLIC_BASE_URL,
    REGION,
    bearer,
    connect_agent,
    create_agent,
    drain,
    fails_once,
    iter_contacts,
    offers_to,
    pushed,
    stored_messages,
)

CONFIG = """
queues:
  default: {}
  phones:
    hours: {timezone: Europe/London, weekly: {}}  # never open: every call is out of hours
    out_of_hours:
      action: voicemail
      message: Our lines are closed. Please leave a message after the tone.
sla:
  channels: {voicemail: 4h}
rules:
  - name: voicemails
    when: {channel: voicemail}
    queue: default
  - name: calls
    when: {channel: voice}
    queue: phones
  - name: everything else
    queue: default
"""
TRANSCRIPT = "Hi, this is Ada. My parcel for order 1234 never arrived. Please call me back."
VOICEMAIL_PATH = "/webhooks/twilio/voice/voicemail"


def use_config(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Publish ``text`` as the routing config through the SSM override, as ops would."""
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=ROUTING_PARAMETER, Value=text, Type="String", Tier="Advanced", Overwrite=True
    )
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", ROUTING_PARAMETER)
    reload_settings()
    forget_current_config()


@pytest.fixture
def world(client, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> VoiceWorld:  # noqa: F811
    use_config(monkeypatch, CONFIG)
    return fake_providers.voice


class Twilio:
    """Posts as Twilio does and keeps every request, so a test can send them again."""

    def __init__(self, client) -> None:
        self.client, self.post, self.sent = client, poster(client), []

    def __call__(self, url: str, form: list[tuple[str, str]]) -> tuple[int, str]:
        self.sent.append((url, form))
        return self.post(url, form)

    def forms(self, path: str) -> list[list[tuple[str, str]]]:
        return [form for url, form in self.sent if url.split("?")[0] == PUBLIC_BASE_URL + path]


def _contacts() -> list[dict]:
    return list(iter_contacts())


def _voicemail_call(client, world: VoiceWorld) -> tuple[Twilio, str, dict[str, str]]:
    """A call out of hours, answered with the greeting and <Record>; returns the Record's attributes."""
    twilio = Twilio(client)
    caller = world.incoming(VOICE_URL, number=OUR_NUMBER, status_url=STATUS_URL)
    [(_, _, body)] = world.deliver(twilio, base=PUBLIC_BASE_URL)
    root = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL)
    assert [verb.tag for verb in root] == ["Say", "Record", "Say", "Hangup"], body
    assert root[0].text == "Our lines are closed. Please leave a message after the tone."
    return twilio, caller.sid, dict(root[1].attrib)


def test_an_out_of_hours_call_records_a_voicemail_that_is_routed_with_its_transcript(client, world):
    create_agent(client, "ada", channels=("voicemail",))
    connection = connect_agent(client, "ada")

    twilio, caller, record = _voicemail_call(client, world)
    assert record["action"] == PUBLIC_BASE_URL + VOICEMAIL_PATH
    assert record["recordingStatusCallback"] == PUBLIC_BASE_URL + "/webhooks/twilio/voice/recording"
    assert record["transcribeCallback"] == PUBLIC_BASE_URL + "/webhooks/twilio/voice/transcript"
    assert (record["transcribe"], record["maxLength"]) == ("true", "120")
    drain(client)
    assert _contacts() == [] and stored_messages() == [], "no live call waits, nothing is stored yet"
    assert offers_to(connection) == []

    recording_sid, recording_url = world.leave_voicemail(caller, 14, TRANSCRIPT)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    [contact] = _contacts()
    assert (contact["channel"], contact["queues"]) == ("voicemail", ["default"])
    due = clock.seconds_between(contact["enqueued_at"], contact["sla_deadline"])
    assert due == 4 * 3600, "the voicemail SLA, not a call's seconds"
    [offer] = offers_to(connection)
    assert offer["contact_id"] == contact["contact_id"]
    [message] = stored_messages()
    assert (message["channel"], message["provider_message_id"]) == ("voicemail", recording_sid)
    assert message["conversation_id"] == contact["contact_id"]
    assert message["text"] == TRANSCRIPT and message["transcript"] == TRANSCRIPT
    assert message["transcript_status"] == "completed"
    assert message["attachments"] == [{"content_type": "audio/mpeg", "url": recording_url + ".mp3"}]
    assert message["metadata"]["recording_status"] == "completed"
    assert message["metadata"]["recording_duration"] == "14"
    assert message["metadata"]["call_sid"] == caller

    accepted = client.http.post(f"/conversations/{contact['contact_id']}/accept", headers=bearer("ada", "agent"))
    assert accepted.status_code == 200, accepted.body
    seen = json.loads(client.http.get(f"/conversations/{contact['contact_id']}", headers=bearer("ada", "agent")).body)
    assert seen["channel"] == "voicemail"
    [entry] = seen["timeline"]
    assert entry["transcript"] == TRANSCRIPT and entry["attachments"][0]["url"] == recording_url + ".mp3"


def test_the_agent_who_has_the_voicemail_is_told_when_its_transcript_arrives(client, world):
    create_agent(client, "ada", channels=("voicemail",))
    connection = connect_agent(client, "ada")
    twilio, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 9, "Please call me back about my invoice.")
    [transcript] = [p for p in world.pending if p[0].endswith("/transcript")]  # the transcription takes a while
    world.pending.remove(transcript)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)
    [contact] = _contacts()
    client.http.post(f"/conversations/{contact['contact_id']}/accept", headers=bearer("ada", "agent"))
    [message] = stored_messages()
    assert message["text"] == "Voicemail (9 s)" and "transcript" not in message
    before = len(pushed(connection))

    world.pending.append(transcript)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    [message] = stored_messages()
    assert message["text"] == "Please call me back about my invoice."
    told = [p for p in pushed(connection)[before:] if p.get("type") == "message"]
    assert [(p["contact_id"], p["text"], p["updated"]) for p in told] == [
        (contact["contact_id"], "Please call me back about my invoice.", True)
    ]


def test_twilio_repeating_every_voicemail_request_stores_and_routes_it_once(client, world):
    twilio, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 14, TRANSCRIPT)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)
    [first] = stored_messages()

    for url, form in list(twilio.sent)[1:]:  # everything after the incoming call, again
        status, _ = twilio.post(url, form)
        assert status == 200
    drain(client)

    assert stored_messages() == [first]
    assert len(_contacts()) == 1


def test_the_transcript_before_the_recording_still_makes_one_voicemail(client, world):
    twilio, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 14, TRANSCRIPT)
    world.pending.reverse()  # the call's end, the transcript, the recording's status, the Record action
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    [message] = stored_messages()
    assert message["text"] == TRANSCRIPT
    assert message["metadata"]["recording_status"] == "completed"
    assert len(_contacts()) == 1


def test_an_action_that_died_before_routing_is_routed_when_the_transcript_comes(client, world):
    """Twilio does not retry the Record action: the transcription request that always follows it routes a voicemail
    the action stored but could not queue for routing (the Lambda lost SQS just then)."""
    twilio, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 14, TRANSCRIPT)
    with fails_once("sqs", "SendMessage") as fired:
        action = world.pending.pop(0)
        status, _ = twilio.post(action[0], action[1])
    assert fired and status >= 500
    drain(client)
    assert len(stored_messages()) == 1 and _contacts() == []

    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    [contact] = _contacts()
    assert contact["channel"] == "voicemail"
    [message] = stored_messages()
    assert message["text"] == TRANSCRIPT


def test_a_failed_transcription_leaves_the_recording_and_says_so(client, world):
    twilio, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 30, transcript=None)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    [message] = stored_messages()
    assert message["text"] == "Voicemail (30 s)" and message["transcript_status"] == "failed"
    assert "transcript" not in message
    assert len(_contacts()) == 1


def test_a_forged_voicemail_request_is_refused_and_stores_nothing(client, world):
    _, caller, _ = _voicemail_call(client, world)
    world.leave_voicemail(caller, 14, TRANSCRIPT)
    forged = world.pending.copy()
    world.pending.clear()
    for url, form, _context, _sid in forged:
        path = url.removeprefix(PUBLIC_BASE_URL)
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        answer = client.http.post(path, headers=headers, body=body)
        assert answer.status_code in (401, 403), (path, answer.status_code)
    drain(client)
    assert stored_messages() == [] and _contacts() == []


def test_an_empty_recording_says_goodbye_and_stores_nothing(client, world):
    twilio, caller, _ = _voicemail_call(client, world)

    world.leave_voicemail(caller, 0)  # silence: Twilio requests no action and goes on with the next verbs
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)

    assert world.calls[caller].status == "completed"
    assert stored_messages() == [] and _contacts() == []


def test_a_rule_may_send_calls_to_voicemail_while_the_queue_is_open(client, world, monkeypatch):
    use_config(
        monkeypatch,
        CONFIG.replace("weekly: {}", "weekly: {mon-sun: '00:00-24:00'}").replace(
            "    queue: phones\n", "    queue: phones\n    voicemail: Please leave your message for our team.\n"
        ),
    )
    twilio = Twilio(client)
    caller = world.incoming(VOICE_URL, number=OUR_NUMBER, status_url=STATUS_URL)
    [(_, _, body)] = world.deliver(twilio, base=PUBLIC_BASE_URL)
    root = twiml.check(body, twiml.CALL, PUBLIC_BASE_URL)
    assert [verb.tag for verb in root][:2] == ["Say", "Record"]
    assert root[0].text == "Please leave your message for our team."

    world.leave_voicemail(caller.sid, 5, "Call me.")
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)
    [contact] = _contacts()
    assert contact["channel"] == "voicemail"
