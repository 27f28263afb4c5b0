"""The console shows a callback contact as such: a caller offered to the agent presses 1 (the wait document's
Gather action, signed as Twilio signs it); the agent accepts and the conversation's header says "callback to"
the caller's number. Twilio's media is out of reach: the Device is the recording stub of test_console_voice."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin
from tests.browser.test_console import _go_available, _sign_in
from tests.browser.test_console_voice import CALLER, STUB_DEVICE, WAIT_MS, _incoming_call, _signed_post, _wait_for
from tests.fakes.providers import ACCOUNT_SID

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e


def test_an_accepted_callback_says_whom_to_call_back(browser: Any, stack: LocalStack, admin: Admin) -> None:
    admin.create_agent("cleo", "voice")
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "cleo")
        _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
        page.evaluate(STUB_DEVICE)
        _go_available(page)

        call_sid = "CA" + "7e" * 16
        assert _incoming_call(stack, call_sid).status_code == 200
        offer = page.get_by_test_id("offer")
        expect(offer.get_by_test_id("offer-channel")).to_have_text("voice", timeout=WAIT_MS)
        contact_id = offer.get_attribute("data-contact-id")
        assert contact_id

        pressed = _signed_post(
            stack,
            f"/webhooks/twilio/voice/callback-request?conversation={contact_id}",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": call_sid,
                "From": CALLER,
                "Digits": "1",
                "CallStatus": "in-progress",
            },
        )
        assert pressed.status_code == 200 and "<Leave" in pressed.text, pressed.text

        offer.get_by_test_id("offer-accept").click()
        expect(page.get_by_test_id("conversation-meta")).to_contain_text(f"callback to {CALLER}", timeout=WAIT_MS)
    finally:
        context.close()
