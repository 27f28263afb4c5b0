"""A voicemail in the console: offered as a voicemail, its recording played through the app (Twilio wants the
account's credentials for it: the console fetches it with its sign-in token into a ``blob:`` URL for an ``<audio>``),
and its transcript shown in place when it arrives (pushed over the socket, without reading the conversation again).

Twilio's requests (the Record action, then the transcription callback) are posted to the local stack signed as
Twilio signs them; the stack's routing config is the deployed one, where a voicemail is routed to ``default``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin
from tests.browser.test_console import _accept_offer, _go_available, _sign_in
from tests.fakes import twilio_voice
from tests.fakes.providers import ACCOUNT_SID, FakeProviders
from tests.support import CHANNEL_SECRETS

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
RECORDING_SID = "RE" + "5b" * 16
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
CALL = {
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "CallSid": "CA" + "6e" * 16,
    "CallStatus": "completed",
    "Direction": "inbound",
    "From": "+14155550199",
    "To": "+14155550100",
}
MP3 = b"\xff\xfb\x10\xc4" + b"\x00" * 4092
TRANSCRIPT = "Hello, my order 5521 arrived broken. Please call me back this afternoon."


def _twilio(stack: LocalStack, path: str, form: dict[str, str]) -> requests.Response:
    signed = stack.api_url + path + "".join(f"{k}{v}" for k, v in sorted(form.items()))
    digest = hmac.new(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode(), signed.encode(), hashlib.sha1).digest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": base64.b64encode(digest)}
    return requests.post(stack.api_url + path, data=urlencode(form), headers=headers, timeout=10)


def _media_requests(fake: FakeProviders) -> list:
    return [r for r in fake.requests if r.api == twilio_voice.VOICE and "/Recordings/" in r.path]


def test_a_voicemail_is_offered_its_recording_plays_through_the_app_and_its_transcript_arrives_in_place(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any, fake_providers: FakeProviders
) -> None:
    admin.create_agent("vera", "voicemail")
    fake_providers.voice.recordings[RECORDING_SID] = MP3
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "vera")
        _go_available(page)

        recorded = {**CALL, "RecordingSid": RECORDING_SID, "RecordingUrl": RECORDING_URL, "RecordingDuration": "21"}
        answer = _twilio(stack, "/webhooks/twilio/voice/voicemail", {**recorded, "Digits": "hangup"})
        assert answer.status_code == 200, answer.text

        _accept_offer(page, "voicemail")
        timeline = page.get_by_test_id("timeline")
        expect(timeline.get_by_test_id("message-text")).to_have_text("Voicemail (21 s)", timeout=WAIT_MS)
        expect(timeline.get_by_test_id("attachment-link")).to_have_count(0)  # no bare Twilio link
        seen: list[tuple[dict[str, str], int, dict[str, str], bytes]] = []

        def observe(route: Any) -> None:  # passes the request on as it is, keeping what the app answered
            answer = route.fetch()
            seen.append((route.request.headers, answer.status, answer.headers, answer.body()))
            route.fulfill(response=answer)

        page.route(re.compile(r"/recordings/"), observe)
        timeline.get_by_test_id("recording-play").click()
        audio = timeline.get_by_test_id("recording-audio")
        expect(audio).to_have_attribute("src", re.compile(r"^blob:"), timeout=WAIT_MS)
        assert audio.get_attribute("controls") is not None
        [(asked, status, headers, body)] = seen
        assert asked["authorization"].startswith("Bearer ") and asked["accept"] == "audio/mpeg"
        assert (status, headers["content-type"]) == (200, "audio/mpeg")
        assert body == MP3, "the recording's bytes, as Twilio served them"
        [fetched] = _media_requests(fake_providers)
        assert fetched.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3"
        key = base64.b64encode(f"{twilio_voice.API_KEY_SID}:{twilio_voice.API_KEY_SECRET}".encode()).decode()
        assert fetched.headers["Authorization"] == "Basic " + key, "the account's API key, never the browser's"
        src = audio.get_attribute("src")

        reads: list[str] = []
        page.on("request", lambda r: reads.append(r.url) if r.method == "GET" and "/conversations/" in r.url else None)
        transcript = {
            **CALL,
            "RecordingSid": RECORDING_SID,
            "RecordingUrl": RECORDING_URL,
            "TranscriptionSid": "TR" + "7f" * 16,
            "TranscriptionStatus": "completed",
            "TranscriptionText": TRANSCRIPT,
            "TranscriptionUrl": RECORDING_URL + "/Transcriptions/TR" + "7f" * 16,
        }
        assert _twilio(stack, "/webhooks/twilio/voice/transcript", transcript).status_code == 200

        expect(timeline.get_by_test_id("message-text")).to_have_text(TRANSCRIPT, timeout=WAIT_MS)
        expect(timeline.get_by_test_id("timeline-message")).to_have_count(1)
        expect(timeline.get_by_test_id("recording-audio")).to_have_attribute("src", src or "")
        assert len(_media_requests(fake_providers)) == 1, "the recording is fetched once"
        assert reads == [], f"the conversation was read again: {reads}"
        screenshot(page, "console_voicemail")
    finally:
        context.close()
        admin.set_presence("vera", "Offline")
