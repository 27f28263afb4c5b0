"""The console's softphone, server side: its access token, the SDK file the console loads, and the TwiML App.

- ``GET /voice/token``: a signed-in agent gets a Twilio access token (HS256 with the API key's secret, header
  ``cty: twilio-fpa;v=1``) whose Voice grant names the TwiML App, for the identity that encodes them.
- ``GET /console/voice-sdk/twilio-voice-<version>.min.js``: the npm package's browser file, byte for byte.
- ``POST /webhooks/twilio/voice/agent``: the TwiML App's Voice URL. Twilio asks it what to do with the call a
  ``Device.connect({params: {contact_id}})`` placed; the agent who holds that accepted voice contact gets the TwiML
  joining its conference, once; anything else is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest

from chalicelib.channels.signing import sign_twilio
from chalicelib.settings import reload_settings
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes import twiml
from tests.fakes.providers import fake_providers  # noqa: F401 (a fixture)
from tests.fakes.twilio_voice import API_KEY_SECRET, API_KEY_SID, Call
from tests.support import (
    CHANNEL_SECRETS,
    PUBLIC_BASE_URL,
    agent_says,
    bearer,
    connect_agent,
    create_agent,
    data_items,
    drain,
    fixture,
    offers_to,
    post_twilio,
    twilio_headers,
)

ACCOUNT_SID = "AC7b4f2c9e1d3a5f60718293a4b5c6d7e8"  # the incoming-call fixture's account
TWIML_APP_SID = "AP9a8b7c6d5e4f30211203f4e5d6c7b8a9"
AGENT_URL = "/webhooks/twilio/voice/agent"
SDK = Path(__file__).resolve().parents[2] / "chalicelib/console/vendor/node_modules/@twilio/voice-sdk"


@pytest.fixture
def voice(client, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", API_KEY_SECRET)
    monkeypatch.setenv("TWILIO_TWIML_APP_SID", TWIML_APP_SID)
    reload_settings()
    return client


# --- the access token ------------------------------------------------------------------------------------------


def test_a_signed_in_agent_gets_a_voice_token_for_the_twiml_app(voice, capsys):
    before = time.time()
    response = voice.http.get("/voice/token", headers=bearer("ada.lovelace", "agent"))
    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert body["identity"] == "ag_ada_dlovelace"

    header = jwt.get_unverified_header(body["token"])
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
    claims = jwt.decode(body["token"], API_KEY_SECRET, algorithms=["HS256"])  # signed with the key's secret
    assert (claims["iss"], claims["sub"]) == (API_KEY_SID, ACCOUNT_SID)
    assert claims["grants"] == {
        "identity": "ag_ada_dlovelace",
        # Incoming for this identity only: a colleague's consult rings client:ag_ada_dlovelace, nobody else's.
        "voice": {"outgoing": {"application_sid": TWIML_APP_SID}, "incoming": {"allow": True}},
    }
    assert before - 1 <= claims["nbf"] <= time.time() + 1
    assert claims["exp"] - claims["nbf"] == body["ttl_seconds"] == 3600  # Twilio allows up to 24 h
    assert body["expires_at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(claims["exp"])))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["token"], "anotherApiKeySecret0123456789abc", algorithms=["HS256"])
    assert API_KEY_SECRET not in capsys.readouterr().out + capsys.readouterr().err


def test_an_agent_who_takes_calls_on_their_phone_gets_no_softphone_token(voice):
    create_agent(voice, "pat", channels=("voice",), phone="+14155550188", voice_mode="phone")
    response = voice.http.get("/voice/token", headers=bearer("pat", "agent"))
    assert response.status_code == 409
    assert json.loads(response.body)["error"] == "phone_mode"


def test_the_token_needs_a_signed_in_agent(voice):
    assert voice.http.get("/voice/token").status_code == 401
    assert voice.http.get("/voice/token", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SID", "TWILIO_TWIML_APP_SID"])
def test_without_voice_settings_the_token_is_a_503_naming_them(voice, monkeypatch, missing):
    monkeypatch.delenv(missing)
    reload_settings()
    response = voice.http.get("/voice/token", headers=bearer("ada", "agent"))
    assert response.status_code == 503
    body = json.loads(response.body)
    assert body["error"] == "not_configured" and missing in body["message"]


def test_without_the_api_key_secret_the_token_is_a_503_naming_it(voice, monkeypatch):
    monkeypatch.delenv("TWILIO_API_KEY_SECRET")
    reload_settings()
    response = voice.http.get("/voice/token", headers=bearer("ada", "agent"))
    assert response.status_code == 503 and "TWILIO_API_KEY_SECRET" in json.loads(response.body)["message"]


# --- the SDK file the console loads -------------------------------------------------------------------------------


def _sdk_version() -> str:
    return str(json.loads((SDK / "package.json").read_text())["version"])


def test_the_pinned_sdk_is_what_npm_installed():
    package = json.loads((SDK.parents[2] / "package.json").read_text())
    lock = json.loads((SDK.parents[2] / "package-lock.json").read_text())
    pinned = package["dependencies"]["@twilio/voice-sdk"]
    assert pinned == _sdk_version() == lock["packages"]["node_modules/@twilio/voice-sdk"]["version"]
    assert pinned[0].isdigit(), "an exact version, not a range"


def test_the_console_serves_the_sdk_browser_file_byte_for_byte_with_long_caching(client):
    path = f"/console/voice-sdk/twilio-voice-{_sdk_version()}.min.js"
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    served = response.body if isinstance(response.body, bytes) else response.body.encode()
    assert served == (SDK / "dist/twilio.min.js").read_bytes()
    assert client.http.get("/console/voice-sdk/twilio-voice-0.0.1.min.js").status_code == 404


def test_the_console_loads_the_served_sdk_with_its_integrity_and_may_reach_twilio(client):
    page = client.http.get("/console")
    html = page.body.decode() if isinstance(page.body, bytes) else page.body
    digest = base64.b64encode(hashlib.sha384((SDK / "dist/twilio.min.js").read_bytes()).digest()).decode()
    tag = f'<script src="console/voice-sdk/twilio-voice-{_sdk_version()}.min.js" integrity="sha384-{digest}"'
    assert tag in html
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["Content-Security-Policy"].split("; ")}
    assert "'self'" in csp["script-src"] and "'unsafe-inline'" not in csp["script-src"]
    assert {"wss://voice-js.roaming.twilio.com", "https://eventgw.twilio.com"} <= set(csp["connect-src"])
    assert {"https://sdk.twilio.com", "https://media.twiliocdn.com"} <= set(csp["connect-src"])
    assert csp["media-src"] == ["blob:", "mediastream:", "https://sdk.twilio.com", "https://media.twiliocdn.com"]
    assert csp["frame-ancestors"] == ["'none'"]


# --- the TwiML App's Voice URL ------------------------------------------------------------------------------------


def _assigned_call(client, agent_id: str = "ada") -> str:
    """A call comes in, is offered to ``agent_id`` and accepted: returns its contact (= conversation) id."""
    create_agent(client, agent_id, channels=("voice",))
    connection = connect_agent(client, agent_id)
    post_twilio(client, "/webhooks/twilio/voice", fixture("twilio/incoming_call.txt"))
    drain(client)
    [offer] = offers_to(connection)
    accepted = agent_says(
        client, connection, action="accept", contact_id=offer["contact_id"], offer_id=offer["offer_id"]
    )
    assert accepted["type"] == "accepted", accepted
    return str(offer["contact_id"])


def _device_connects(client, contact_id: str, identity: str, call_sid: str = "CA" + "1d" * 16, **extra: str):
    """What Twilio posts to the TwiML App's Voice URL when a Device connects with ``params: {contact_id}``."""
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "ApplicationSid": TWIML_APP_SID,
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": "",
        "Caller": f"client:{identity}",
        "Direction": "inbound",
        "From": f"client:{identity}",
        "To": "",
        "contact_id": contact_id,
        **extra,
    }
    return post_twilio(client, AGENT_URL, urlencode(form).encode())


def _conference(response) -> ET.Element | None:
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/xml")
    return twiml.check(response.body, base=PUBLIC_BASE_URL).find("Dial/Conference")  # Twilio's verbs, absolute URLs


def test_the_agent_holding_the_call_joins_its_conference(voice):
    contact_id = _assigned_call(voice)
    conference = _conference(_device_connects(voice, contact_id, "ag_ada"))
    assert conference is not None and conference.text == contact_id
    assert conference.get("participantLabel") == "agent"
    assert (
        conference.get("statusCallback")
        == f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/conference?conversation={contact_id}"
    )
    leg = (voice_store.get_call(contact_id) or {}).get("agent_leg")
    assert leg is not None and (leg["agent_id"], leg["call_sid"]) == ("ada", "CA" + "1d" * 16)


def test_a_second_connect_for_the_contact_is_told_so_and_hung_up_while_twilios_retry_of_the_first_joins(voice):
    contact_id = _assigned_call(voice)
    first = _device_connects(voice, contact_id, "ag_ada")
    assert _conference(first) is not None
    assert _conference(_device_connects(voice, contact_id, "ag_ada")) is not None, "the same CallSid again"

    second = _device_connects(voice, contact_id, "ag_ada", call_sid="CA" + "2e" * 16)
    document = twiml.check(second.body)
    assert second.status_code == 200 and [verb.tag for verb in document] == ["Say", "Hangup"]
    assert "already" in (document.findtext("Say") or "")


def test_a_softphone_leg_that_fails_before_joining_frees_the_claim_and_moves_the_call_on(voice):
    """The TwiML App's Status Callback URL is the status webhook: a leg that never got through (failed,
    canceled...) is an agent who could not be reached, as for a phone leg (``voice.calls``)."""
    contact_id = _assigned_call(voice)
    leg = "CA" + "4a" * 16
    assert _conference(_device_connects(voice, contact_id, "ag_ada", call_sid=leg)) is not None
    status = dict(parse_qsl(fixture("twilio/call_status_completed.txt").decode()))
    status.update(CallSid=leg, CallStatus="failed", From="client:ag_ada", To="", Direction="inbound")
    status.pop("CallDuration", None)
    status.pop("Duration", None)
    assert post_twilio(voice, "/webhooks/twilio/status", urlencode(status).encode()).status_code == 200
    drain(voice)

    assert "agent_leg" not in (voice_store.get_call(contact_id) or {})
    contact = routing_store.get_contact(contact_id)
    assert contact is not None and contact.state.value != "assigned", contact


def test_another_agent_an_unknown_contact_or_an_unencoded_identity_is_refused(voice):
    contact_id = _assigned_call(voice)
    create_agent(voice, "bob", channels=("voice",))
    for identity, contact in (("ag_bob", contact_id), ("ag_ada", "conv_nope"), ("ada", contact_id)):
        response = _device_connects(voice, contact, identity)
        assert response.status_code == 403, (identity, contact, response.body)
        assert json.loads(response.body)["error"] == "forbidden"
    assert _conference(_device_connects(voice, contact_id, "ag_ada")) is not None, "the refusals claimed nothing"


def test_a_call_from_a_phone_or_another_twiml_app_or_without_contact_is_refused(voice):
    contact_id = _assigned_call(voice)
    phone = dict(parse_qsl(fixture("twilio/incoming_call.txt").decode())) | {"contact_id": contact_id}
    assert post_twilio(voice, AGENT_URL, urlencode(phone).encode()).status_code == 403
    assert _device_connects(voice, contact_id, "ag_ada", ApplicationSid="AP" + "0" * 32).status_code == 403
    missing = _device_connects(voice, "", "ag_ada")
    assert missing.status_code == 422 and "contact_id" in json.loads(missing.body)["message"]


def test_a_contact_not_yet_accepted_is_refused(voice):
    create_agent(voice, "ada", channels=("voice",))
    connection = connect_agent(voice, "ada")
    post_twilio(voice, "/webhooks/twilio/voice", fixture("twilio/incoming_call.txt"))
    drain(voice)
    [offer] = offers_to(connection)
    assert _device_connects(voice, offer["contact_id"], "ag_ada").status_code == 403  # offered, not accepted
    contact = routing_store.get_contact(offer["contact_id"])
    assert contact is not None and contact.state.value == "offered"


def test_an_unsigned_or_forged_connect_stores_nothing(voice):
    contact_id = _assigned_call(voice)
    before = data_items()
    body = urlencode({"CallSid": "CA" + "3f" * 16, "From": "client:ag_ada", "contact_id": contact_id}).encode()
    assert (
        voice.http.post(AGENT_URL, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=body).status_code
        == 401
    )
    forged = twilio_headers(AGENT_URL, body) | {"X-Twilio-Signature": "bm90IHRoZSBzaWduYXR1cmU="}
    assert voice.http.post(AGENT_URL, headers=forged, body=body).status_code == 401
    assert data_items() == before
    assert _conference(_device_connects(voice, contact_id, "ag_ada")) is not None


# --- with the fake Twilio: the softphone leg is the one agent in the caller's conference ---------------------------


@pytest.fixture
def world(client, fake_providers, monkeypatch):  # noqa: F811 (the imported fixture)
    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", API_KEY_SECRET)
    monkeypatch.setenv("TWILIO_TWIML_APP_SID", TWIML_APP_SID)
    reload_settings()
    return fake_providers.voice


def _device_dials(world, identity: str, contact_id: str):
    """Twilio's side of ``device.connect({params: {contact_id}})``: a call from ``client:<identity>`` whose TwiML it
    asks the TwiML App's Voice URL for, with the standard call fields and the params."""
    with world.lock:
        call = Call("CA" + secrets.token_hex(16), "", f"client:{identity}", "inbound", status="ringing")
        call.url = PUBLIC_BASE_URL + AGENT_URL
        world.calls[call.sid] = call
        form = {
            "AccountSid": world.account_sid,
            "ApiVersion": "2010-04-01",
            "ApplicationSid": TWIML_APP_SID,
            "CallSid": call.sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": call.from_,
            "Caller": call.from_,
            "contact_id": contact_id,
        }
        world.pending.append((call.url, sorted(form.items()), twiml.CALL, call.sid))
    return call


def test_a_softphone_connect_is_the_one_agent_in_the_callers_conference_and_a_second_is_hung_up(client, world):
    post = _poster(client)
    create_agent(client, "ada", channels=("voice",))  # a softphone agent: nothing is dialled on accept
    connection = connect_agent(client, "ada")
    caller = world.incoming(
        PUBLIC_BASE_URL + "/webhooks/twilio/voice", status_url=PUBLIC_BASE_URL + "/webhooks/twilio/status"
    )
    world.deliver(post, base=PUBLIC_BASE_URL)
    drain(client)
    [offer] = offers_to(connection)
    contact_id = offer["contact_id"]
    accepted = agent_says(client, connection, action="accept", contact_id=contact_id, offer_id=offer["offer_id"])
    assert accepted["type"] == "accepted", accepted
    assert world.participants(contact_id) == [], "no leg until the console connects"

    device = _device_dials(world, "ag_ada", contact_id)
    world.deliver(post, base=PUBLIC_BASE_URL)  # our TwiML, the agent's join, the caller's dequeue and bridge

    participants = world.participants(contact_id)
    assert sorted((p.label, p.sid) for p in participants) == sorted([("agent", device.sid), ("customer", caller.sid)])
    assert voice_store.get_call(contact_id)["bridged_at"]

    second = _device_dials(world, "ag_ada", contact_id)  # another tab, or a double click
    world.deliver(post, base=PUBLIC_BASE_URL)
    assert world.calls[second.sid].status == "completed" and second.sid not in {p.sid for p in participants}
    assert sorted(p.label or "" for p in world.participants(contact_id)) == ["agent", "customer"]


def _poster(client):
    def post(url: str, form: list[tuple[str, str]]) -> tuple[int, str]:
        body = urlencode(form).encode()
        signature = sign_twilio(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"], url, list(form))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        answer = client.http.post(url.removeprefix(PUBLIC_BASE_URL), headers=headers, body=body)
        return answer.status_code, answer.body.decode() if isinstance(answer.body, bytes) else str(answer.body)

    return post


def test_a_softphone_that_dials_in_after_the_caller_hung_up_is_told_so_and_claims_nothing(voice):
    contact_id = _assigned_call(voice)
    incoming = dict(parse_qsl(fixture("twilio/incoming_call.txt").decode()))
    form = dict(parse_qsl(fixture("twilio/call_status_completed.txt").decode()))
    form.update(CallSid=incoming["CallSid"], CallStatus="completed", SequenceNumber="2")
    assert post_twilio(voice, "/webhooks/twilio/status", urlencode(form).encode()).status_code == 200

    answer = _device_connects(voice, contact_id, "ag_ada")
    assert answer.status_code == 200
    root = twiml.check(answer.body, base=PUBLIC_BASE_URL)
    assert [e.tag for e in root] == ["Say", "Hangup"] and "hung up" in (root[0].text or "")
    assert not (voice_store.get_call(contact_id) or {}).get("agent_leg"), "no agent leg claimed for a dead call"
