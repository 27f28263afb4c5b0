"""A voicemail in the console: offered as a voicemail, shown with its recording's link, and its transcript shown in
place when it arrives (pushed over the socket, without reading the conversation again).

Twilio's requests (the Record action, then the transcription callback) are posted to the local stack signed as
Twilio signs them; the stack's routing config is the deployed one, where a voicemail is routed to ``default``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin
from tests.browser.test_console import _accept_offer, _go_available, _sign_in
from tests.fakes.providers import ACCOUNT_SID
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
TRANSCRIPT = "Hello, my order 5521 arrived broken. Please call me back this afternoon."


def _twilio(stack: LocalStack, path: str, form: dict[str, str]) -> requests.Response:
    signed = stack.api_url + path + "".join(f"{k}{v}" for k, v in sorted(form.items()))
    digest = hmac.new(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode(), signed.encode(), hashlib.sha1).digest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": base64.b64encode(digest)}
    return requests.post(stack.api_url + path, data=urlencode(form), headers=headers, timeout=10)


def test_a_voicemail_is_offered_shown_with_its_recording_and_its_transcript_arrives_in_place(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    admin.create_agent("vera", "voicemail")
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
        link = timeline.get_by_test_id("attachment-link")
        expect(link).to_have_text("Recording")
        expect(link).to_have_attribute("href", RECORDING_URL + ".mp3")

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
        expect(timeline.get_by_test_id("attachment-link")).to_have_count(1)
        assert reads == [], f"the conversation was read again: {reads}"
        screenshot(page, "console_voicemail")
    finally:
        context.close()
        admin.set_presence("vera", "Offline")
