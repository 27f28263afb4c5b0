"""A voicemail's recording plays for the agent even when the Twilio account wants credentials for its media.

New Twilio accounts answer a recording's URL only with HTTP Basic auth ("HTTP Basic Authentication for media"):
a bare link asks the agent for a Twilio login. ``GET /conversations/{id}/recordings/{RecordingSid}`` fetches the
MP3 from Twilio with the account's credentials (the API key when set, else the auth token) for an agent who may
see that conversation, and returns it as ``audio/mpeg``. Only recordings stored as this customer's voicemails are
fetched, always from the account's own ``Recordings`` path (no open proxy); one too big for a Lambda response is
refused with a clear error. The fake Twilio serves the media only with the account's credentials.
"""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.settings import reload_settings
from tests.fakes.providers import ACCOUNT_SID, FakeProviders, fake_providers  # noqa: F401
from tests.fakes.twilio_voice import API_KEY_SECRET, API_KEY_SID, VOICE, VoiceWorld
from tests.integration.test_voice_voicemail import TRANSCRIPT, _contacts, _voicemail_call
from tests.integration.test_voice_voicemail import world as world
from tests.support import PUBLIC_BASE_URL, bearer, create_agent, drain

MP3 = {"Accept": "audio/mpeg"}


def _voicemail_for(client, world: VoiceWorld, agent: str = "ada") -> tuple[str, str]:
    """A voicemail left, routed and accepted by ``agent``: (conversation id, recording sid)."""
    create_agent(client, agent, channels=("voicemail",))
    twilio, caller, _ = _voicemail_call(client, world)
    recording_sid, _url = world.leave_voicemail(caller, 14, TRANSCRIPT)
    world.deliver(twilio, base=PUBLIC_BASE_URL)
    drain(client)
    [contact] = _contacts()
    accepted = client.http.post(f"/conversations/{contact['contact_id']}/accept", headers=bearer(agent, "agent"))
    assert accepted.status_code == 200, accepted.body
    return contact["contact_id"], recording_sid


def _media_requests(fake: FakeProviders) -> list:
    return [r for r in fake.requests if r.api == VOICE and "/Recordings/" in r.path]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_agent_gets_the_recording_fetched_with_the_accounts_credentials(client, world, fake_providers):  # noqa: F811
    conversation_id, sid = _voicemail_for(client, world)

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{sid}", headers={**MP3, **bearer("ada", "agent")}
    )

    assert answer.status_code == 200, answer.body
    assert answer.headers["Content-Type"] == "audio/mpeg"
    assert answer.body == world.recordings[sid] and len(answer.body) > 0
    assert "no-store" in answer.headers["Cache-Control"]
    [fetched] = _media_requests(fake_providers)
    assert (fetched.method, fetched.path) == ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}.mp3")
    assert fetched.headers["Authorization"] == _basic(ACCOUNT_SID, world.auth_token)


def test_with_an_api_key_the_recording_is_fetched_with_the_key(client, world, fake_providers, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", API_KEY_SECRET)
    reload_settings()
    conversation_id, sid = _voicemail_for(client, world)

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{sid}", headers={**MP3, **bearer("ada", "agent")}
    )

    assert answer.status_code == 200, answer.body
    assert answer.body == world.recordings[sid]
    [fetched] = _media_requests(fake_providers)
    assert fetched.headers["Authorization"] == _basic(API_KEY_SID, API_KEY_SECRET)


def test_an_agent_who_may_not_see_the_conversation_gets_nothing_and_twilio_is_not_asked(
    client,
    world,
    fake_providers,  # noqa: F811
):
    conversation_id, sid = _voicemail_for(client, world)
    create_agent(client, "bob", channels=("voicemail",))

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{sid}", headers={**MP3, **bearer("bob", "agent")}
    )
    unsigned = client.http.get(f"/conversations/{conversation_id}/recordings/{sid}", headers=MP3)

    assert answer.status_code == 403, answer.body
    assert json.loads(answer.body)["error"] == "forbidden"
    assert unsigned.status_code == 401
    assert _media_requests(fake_providers) == []


@pytest.mark.parametrize(
    ("recording", "status", "error"),
    [
        ("RE" + "0" * 32, 404, "not_found"),  # a recording sid, but no voicemail of this customer's
        ("RE1234", 400, "bad_request"),  # not a recording sid
        ("..%2F..%2FCalls", 400, "bad_request"),  # a path, not a sid: nothing else at Twilio is reachable
    ],
)
def test_only_this_customers_voicemail_recordings_are_fetched(
    client,
    world,
    fake_providers,  # noqa: F811
    recording,
    status,
    error,
):
    conversation_id, _sid = _voicemail_for(client, world)

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{recording}", headers={**MP3, **bearer("ada", "agent")}
    )

    assert answer.status_code == status, answer.body
    assert json.loads(answer.body)["error"] == error
    assert _media_requests(fake_providers) == []


def test_a_recording_too_big_for_a_lambda_response_is_refused_clearly(client, world):
    from chalicelib.voice import recordings

    conversation_id, sid = _voicemail_for(client, world)
    world.recordings[sid] = b"\xff\xfb\x10\xc4" * (recordings.MAX_BYTES // 4 + 1)

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{sid}", headers={**MP3, **bearer("ada", "agent")}
    )

    assert answer.status_code == 413, answer.body
    body = json.loads(answer.body)
    assert body["error"] == "recording_too_large"
    assert sid in body["message"] and "Twilio console" in body["message"]


def test_a_recording_deleted_at_twilio_is_a_clear_404(client, world):
    conversation_id, sid = _voicemail_for(client, world)
    del world.recordings[sid]

    answer = client.http.get(
        f"/conversations/{conversation_id}/recordings/{sid}", headers={**MP3, **bearer("ada", "agent")}
    )

    assert answer.status_code == 404, answer.body
    assert "Twilio" in json.loads(answer.body)["message"]
