"""A supervisor opens a contact's decisions in the console: who could take it, on which key, who got it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin
from tests.browser.test_console import WAIT_MS, _go_available, _sign_in

expect = pytest.importorskip("playwright.sync_api").expect


def test_a_supervisor_sees_why_a_contact_went_to_its_agent(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    admin.create_agent("ivy", "webchat")
    admin.create_agent("vic", "webchat")
    agent_context, supervisor_context = browser.new_context(), browser.new_context()
    try:
        console = agent_context.new_page()
        _sign_in(console, stack, "ivy")
        _go_available(console)
        posted = {"site": "acme", "visitor_id": "v_ivy", "message_id": "m_ivy", "text": "Why me?"}
        written = requests.post(f"{stack.api_url}/widget/messages", json=posted, timeout=10)
        assert written.status_code == 200, written.text
        contact_id = written.json()["conversation_id"]
        offer = console.locator(f'[data-testid="offer"][data-contact-id="{contact_id}"]')
        expect(offer).to_be_visible(timeout=WAIT_MS)

        page = supervisor_context.new_page()
        _sign_in(page, stack, "vic", role="supervisor")
        page.get_by_test_id("tab-supervisor").click()
        page.get_by_test_id("explain-contact-id").fill(contact_id)
        page.get_by_test_id("explain-button").click()
        chosen = page.locator('[data-testid="decision-ranked"][data-candidate="ivy"]')
        expect(chosen).to_contain_text("chosen", timeout=WAIT_MS)
        expect(chosen).to_contain_text("load_permille=0")
        kinds = page.get_by_test_id("lifecycle-event")
        expect(kinds.first).to_contain_text("arrived")
        expect(page.get_by_test_id("contact-record")).to_contain_text("webchat in default")
        screenshot(page, "console_decisions")

        page.get_by_test_id("explain-contact-id").fill("no-such-contact")
        page.get_by_test_id("explain-button").click()
        expect(page.get_by_test_id("explain-error")).to_contain_text("no contact", timeout=WAIT_MS)
        expect(page.get_by_test_id("decision")).to_have_count(0)
    finally:
        agent_context.close()
        supervisor_context.close()
        admin.set_presence("ivy", "Offline")
