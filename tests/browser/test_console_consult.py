"""A consult rings the colleague's console softphone: a voice agent's Device is registered for incoming calls while
they are not Offline, with a token whose grant allows incoming for their own identity; an incoming consult says who
consults about which conversation, with Answer (the Device accepts: Twilio joins that leg to the conference) and
Decline (the Device rejects).

As in ``test_console_voice`` (whose recording stub of ``Twilio.Device`` and helpers this uses), Twilio's signalling
cannot be reached: the stub's ``ring(to)`` plays what Twilio does when the consult's ``client:<identity>?<params>``
reaches a registered Device. A module of its own: a fresh local stack, so no contact left queued by another test
is offered to these agents first.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import SOFTPHONE_SETTINGS, Admin
from tests.browser.test_console import _go_available, _sign_in
from tests.browser.test_console_voice import (
    STUB_DEVICE,
    WAIT_MS,
    _bridged_softphone_call,
    _voice_requests,
    _wait_for,
    _world_post,
)
from tests.fakes.providers import FakeProviders

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e


def test_a_voice_agents_softphone_registers_for_consults_and_answering_one_joins_the_callers_conference(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders, screenshot: Any
) -> None:
    admin.create_agent("uma", "voice")
    admin.create_agent("tess", "voice")
    world = fake_providers.voice
    consulting, consulted = browser.new_context(), browser.new_context()
    try:
        page = consulted.new_page()
        tokens: list[Any] = []
        page.on("response", lambda r: tokens.append(r) if r.url.endswith("/voice/token") else None)
        _sign_in(page, stack, "tess")
        _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
        page.evaluate(STUB_DEVICE)
        assert page.evaluate("window.__softphone.constructed.length") == 0, "no Device while Offline"
        _go_available(page)
        # Going Available makes the Device and registers it, with a token for tess alone that allows incoming.
        _wait_for(page, "window.__softphone.device && window.__softphone.device.state === 'registered'")
        [constructed] = page.evaluate("window.__softphone.constructed")
        claims = jwt.decode(constructed["token"], SOFTPHONE_SETTINGS["TWILIO_API_KEY_SECRET"], algorithms=["HS256"])
        assert claims["grants"]["identity"] == "ag_tess"
        assert claims["grants"]["voice"]["incoming"] == {"allow": True}
        assert page.evaluate("window.__softphone.registers") == 1 and len(tokens) == 1
        # Away (so that uma's caller is offered to uma): still reachable for a consult.
        page.get_by_test_id("presence-Away").click()
        expect(page.get_by_test_id("presence-Away")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        assert page.evaluate("[window.__softphone.device.state, window.__softphone.unregisters]") == ["registered", 0]

        # uma, on a call, consults tess: the fake Twilio is asked to ring client:ag_tess.
        contact_id, _caller, _leg = _bridged_softphone_call(consulting.new_page(), stack, fake_providers, "uma")
        token = requests.post(f"{admin.api}/dev/tokens", json={"agent_id": "uma", "roles": ["agent"]}, timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        answer = requests.post(
            f"{admin.api}/conversations/{contact_id}/call",
            json={"action": "consult", "agent_id": "tess"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        [added] = _voice_requests(fake_providers, "/Participants.json")[-1:]
        assert added.form["To"].startswith("client:ag_tess?")

        # Twilio rings tess's registered Device: her console says who consults about which call, and waits.
        page.evaluate(f"window.__softphone.device.ring({added.form['To']!r})")
        card = page.get_by_test_id("consult-offer")
        expect(card).to_be_visible(timeout=WAIT_MS)
        expect(card.get_by_test_id("consult-from")).to_have_text("uma consults you")
        expect(card.get_by_test_id("consult-conversation")).to_contain_text(contact_id)
        assert page.evaluate("window.__softphone.accepted") == 0, "nothing answered before she says so"
        screenshot(page, "softphone-incoming-consult")
        card.get_by_test_id("consult-answer").click()
        expect(card).to_have_count(0, timeout=WAIT_MS)
        assert page.evaluate("window.__softphone.accepted") == 1
        bar = page.get_by_test_id("call-bar")
        expect(bar.get_by_test_id("call-state")).to_have_text("consulted", timeout=WAIT_MS)
        expect(bar.get_by_test_id("call-hangup")).to_be_enabled()
        # The Device's accept is Twilio's join of that participant to uma's conference.
        world.answer(added.answer["call_sid"])
        world.deliver(_world_post)
        assert {p.label for p in world.participants(contact_id)} == {"agent", "customer", "consult"}

        # Offline unregisters the Device: consults no longer ring this console.
        page.get_by_test_id("presence-Offline").click()
        _wait_for(page, "window.__softphone.unregisters === 1")
        assert page.evaluate("window.__softphone.device.state") == "unregistered"
    finally:
        consulting.close()
        consulted.close()


def test_declining_a_consult_rejects_the_incoming_call_and_answers_nothing(
    browser: Any, stack: LocalStack, admin: Admin
) -> None:
    admin.create_agent("otto", "voice")
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "otto")
        _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
        page.evaluate(STUB_DEVICE)
        _go_available(page)
        _wait_for(page, "window.__softphone.device && window.__softphone.device.state === 'registered'")
        page.evaluate("window.__softphone.device.ring('client:ag_otto?conversation_id=conv_1&consulted_by=ada')")
        card = page.get_by_test_id("consult-offer")
        expect(card.get_by_test_id("consult-from")).to_have_text("ada consults you", timeout=WAIT_MS)
        card.get_by_test_id("consult-decline").click()
        expect(card).to_have_count(0, timeout=WAIT_MS)
        assert page.evaluate("[window.__softphone.rejected, window.__softphone.accepted]") == [1, 0]
        expect(page.get_by_test_id("call-bar")).to_be_hidden()

        # A consult the caller's side gives up on (Twilio cancels the ringing call) disappears by itself.
        page.evaluate("window.__softphone.device.ring('client:ag_otto?conversation_id=conv_2&consulted_by=ada')")
        expect(card).to_be_visible(timeout=WAIT_MS)
        page.evaluate("window.__softphone.incoming.emit('cancel')")
        expect(card).to_have_count(0, timeout=WAIT_MS)
    finally:
        context.close()


def test_a_declined_consult_gives_the_consulting_agent_their_consult_button_back(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders
) -> None:
    admin.create_agent("ivy", "voice")
    admin.create_agent("jon", "voice")
    world = fake_providers.voice
    consulting, consulted = browser.new_context(), browser.new_context()
    try:
        colleague = consulted.new_page()
        _sign_in(colleague, stack, "jon")
        _wait_for(colleague, "window.Twilio && typeof window.Twilio.Device === 'function'")
        colleague.evaluate(STUB_DEVICE)
        colleague.get_by_test_id("presence-Away").click()
        _wait_for(colleague, "window.__softphone.device && window.__softphone.device.state === 'registered'")

        page = consulting.new_page()
        _contact_id, _caller, _leg = _bridged_softphone_call(page, stack, fake_providers, "ivy")
        bar = page.get_by_test_id("call-bar")
        bar.get_by_test_id("call-transfer-target").select_option("agent_id:jon")  # Away, listed to consult
        bar.get_by_test_id("call-consult").click()
        expect(bar.get_by_test_id("call-cancel-consult")).to_be_visible(timeout=WAIT_MS)
        [added] = _voice_requests(fake_providers, "/Participants.json")[-1:]
        assert added.form["To"].startswith("client:ag_jon?")

        colleague.evaluate(f"window.__softphone.device.ring({added.form['To']!r})")
        colleague.get_by_test_id("consult-offer").get_by_test_id("consult-decline").click()
        assert colleague.evaluate("window.__softphone.rejected") == 1
        world.end(added.answer["call_sid"], "busy")  # what Twilio makes of the Device's reject
        world.deliver(_world_post)

        expect(bar.get_by_test_id("call-consult")).to_be_visible(timeout=WAIT_MS)
        expect(bar.get_by_test_id("call-cancel-consult")).to_be_hidden()
        expect(bar.get_by_test_id("call-error")).to_have_text("jon did not take the consult (busy)")
        expect(bar.get_by_test_id("call-hold")).to_have_text("Resume")
    finally:
        consulting.close()
        consulted.close()
