"""The widget's self-service buttons in a real browser: the bot's answer shows with Yes / Talk to a person, and
"Talk to a person" hands the chat over to an agent, who sees the bot's exchange."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from chalicelib.routing.config import DEFAULT_FILE, forget_current_config
from tests.browser.conftest import Admin
from tests.browser.test_console import WAIT_MS, _accept_offer, _go_available, _sign_in

expect = pytest.importorskip("playwright.sync_api").expect

SELF_SERVICE = "queues:\n  default:\n    self_service: {channels: webchat}\nrules:\n  - name: all\n    queue: default\n"


def _publish(stack: LocalStack, admin: Admin, text: str) -> None:
    answer = requests.put(
        f"{stack.api_url}/admin/routing",
        data=text.encode(),
        headers={**admin.headers, "Content-Type": "application/yaml"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    forget_current_config()  # the stack runs in this process: its routers read the new config at once


def test_the_widget_shows_the_bots_buttons_and_talk_to_a_person_reaches_an_agent(
    browser: Any, stack: LocalStack, admin: Admin, site_server: str
) -> None:
    admin.create_agent("kim", "webchat")
    _publish(stack, admin, SELF_SERVICE)
    agent_context, visitor_context = browser.new_context(), browser.new_context()
    try:
        console = agent_context.new_page()
        _sign_in(console, stack, "kim")
        _go_available(console)
        widget = visitor_context.new_page()
        widget.goto(site_server)
        widget.get_by_test_id("widget-bubble").click()
        widget.get_by_test_id("widget-input").fill("What are your opening hours?")
        widget.get_by_test_id("widget-send").click()

        bot = widget.locator('[data-testid="widget-message"][data-from="bot"]')
        expect(bot).to_contain_text("Did this solve it?", timeout=WAIT_MS)
        buttons = widget.get_by_test_id("widget-choice")
        expect(buttons).to_have_text(["Yes", "Talk to a person"])
        expect(console.get_by_test_id("offer")).to_have_count(0)

        buttons.filter(has_text="Talk to a person").click()
        mine = widget.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(mine.last).to_have_text("Talk to a person", timeout=WAIT_MS)
        expect(widget.get_by_test_id("widget-choices")).to_have_count(0)

        _accept_offer(console, "webchat")
        expect(console.get_by_test_id("timeline")).to_contain_text("Did this solve it?", timeout=WAIT_MS)
        expect(console.get_by_test_id("timeline")).to_contain_text("What are your opening hours?")
    finally:
        agent_context.close()
        visitor_context.close()
        admin.set_presence("kim", "Offline")
        _publish(stack, admin, DEFAULT_FILE.read_text(encoding="utf-8"))
