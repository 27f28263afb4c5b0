"""The widget as a visitor meets it, in a real Chromium on a phone-sized screen and a desktop one.

- A greeting (routing.yaml's ``widget.greeting``) before anything is written; a close button and Escape; the
  panel fills a 390 px phone screen with no sideways scroll; themed by ``data-color`` and ``data-position``.
- A visitor chats: the agent's answer carries the agent's name and every message its local time; the visitor
  browses on (a reload with the panel closed) and the launcher's badge counts the unseen answer; opening the
  panel clears it, and the chat is still there.
- Out of hours (the web-chat queue closed), the widget shows an offline form; what is sent becomes an e-mail
  contact, waiting in the queue (the supervisor's view shows it).
- axe-core finds no critical or serious violation in the widget in any of these states.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from chalicelib.routing.config import DEFAULT_FILE
from tests.browser.conftest import SITE, Admin, serve_page
from tests.browser.test_console import WAIT_MS, _accept_offer, _go_available, _reply, _sign_in
from tests.browser.test_widget_self_service import _publish
from tests.support import stored_messages

expect = pytest.importorskip("playwright.sync_api").expect

AXE = Path(__file__).resolve().parents[2] / "chalicelib/console/vendor/node_modules/axe-core/axe.min.js"
PHONE = {"width": 390, "height": 844}
GREETING = "Hi! How can we help you today?"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def themed_site(stack: LocalStack) -> Iterator[str]:
    """A business's page (in English) embedding the widget in its own colour, on the left."""
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Acme</title></head>"
        "<body><main><h1>Acme Shop</h1><p>Kettles and teapots.</p></main>"
        f"<script src='{stack.api_url}/widget.js' data-site='{SITE}' data-api='{stack.api_url}'"
        " data-name='Grace Hopper' data-color='#0f766e' data-position='left'></script></body></html>"
    ).encode()
    yield from serve_page(page, "acme-themed-site")


def _axe(page: Any, state: str) -> None:
    """No critical or serious axe-core violation in the widget (its launcher and panel)."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const widget = [...document.querySelectorAll('.sbw-bubble, .sbw-panel')].map(n => [n]);
            const result = await axe.run({include: widget}, {resultTypes: ['violations']});
            return result.violations.filter(v => v.impact === 'critical' || v.impact === 'serious')
                .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}));
        }"""
    )
    assert found == [], f"{state}: {json.dumps(found, indent=1)}"


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


def _stored_state(page: Any) -> dict[str, Any]:
    return dict(page.evaluate(f"() => JSON.parse(localStorage.getItem('switchboard.widget.{SITE}'))"))


def test_a_visitor_is_greeted_chats_browses_on_and_keeps_the_chat(
    browser: Any, stack: LocalStack, admin: Admin, themed_site: str, screenshot: Any
) -> None:
    admin.create_agent("noor", "webchat")
    agent_context = browser.new_context()
    visitor_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        console = agent_context.new_page()
        _sign_in(console, stack, "noor")
        _go_available(console)

        widget = visitor_context.new_page()
        widget.goto(themed_site)
        bubble = widget.get_by_test_id("widget-bubble")
        expect(bubble).to_have_attribute("aria-expanded", "false")
        left = bubble.bounding_box()
        assert left and left["x"] < PHONE["width"] / 2, "data-position=left puts the launcher on the left"
        assert widget.evaluate("() => getComputedStyle(document.querySelector('.sbw-bubble')).backgroundColor") == (
            "rgb(15, 118, 110)"
        )
        _axe(widget, "closed")
        bubble.click()
        panel = widget.get_by_test_id("widget-panel")
        expect(panel).to_be_visible()
        expect(widget.get_by_test_id("widget-greeting")).to_have_text(GREETING, timeout=WAIT_MS)
        box = panel.bounding_box()
        assert box and box["width"] == PHONE["width"] and box["height"] == PHONE["height"], "full screen on a phone"
        expect(widget.get_by_test_id("widget-input")).to_be_focused()
        _no_sideways_scroll(widget)
        _axe(widget, "greeting")
        screenshot(widget, "widget_greeting_phone")

        widget.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(bubble).to_be_focused()
        bubble.click()
        widget.get_by_test_id("widget-close").click()
        expect(panel).to_be_hidden()
        bubble.click()

        widget.get_by_test_id("widget-input").fill("Is the teal kettle in stock?")
        with widget.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
            widget.get_by_test_id("widget-send").click()
        mine = widget.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(mine).to_have_text("Is the teal kettle in stock?", timeout=WAIT_MS)

        _accept_offer(console, "webchat")
        _reply(console, "It is: 12 left.")
        theirs = widget.locator('[data-testid="widget-message"][data-from="agent"]')
        expect(theirs).to_have_text("It is: 12 left.", timeout=WAIT_MS)
        metas = widget.get_by_test_id("widget-meta")
        expect(metas.last).to_contain_text("Noor · ")
        stamp = metas.last.locator("time")
        local = widget.evaluate(
            "iso => new Date(Date.parse(iso.slice(0, 23) + 'Z')).toLocaleTimeString([], "
            "{hour: '2-digit', minute: '2-digit'})",
            stamp.get_attribute("datetime"),
        )
        expect(stamp).to_have_text(local)  # the visitor's local time, not an ISO string
        expect(metas.first.locator("time")).not_to_be_empty()  # the visitor's own message has its time too
        # A photo of the kettle's label: uploaded to S3 by presigned POST, then the message carries it.
        expect(widget.get_by_test_id("widget-attach")).to_be_visible()
        widget.get_by_test_id("widget-file").set_input_files(
            {"name": "label.png", "mimeType": "image/png", "buffer": PNG}
        )
        sent_file = widget.get_by_test_id("widget-attachment")
        expect(sent_file).to_have_text("label.png", timeout=WAIT_MS)
        expect(mine.last).to_contain_text("label.png")
        assert requests.get(str(sent_file.get_attribute("href")), timeout=10).content == PNG
        agents_link = console.get_by_test_id("attachment-link").filter(has_text="label.png")
        expect(agents_link).to_be_visible(timeout=WAIT_MS)
        assert requests.get(str(agents_link.get_attribute("href")), timeout=10).content == PNG
        _no_sideways_scroll(widget)
        _axe(widget, "chatting")
        screenshot(widget, "widget_chat_phone")
        screenshot(console, "console_widget_attachment")

        # The visitor closes the chat and browses on; the agent answers meanwhile.
        widget.get_by_test_id("widget-close").click()
        _reply(console, "Shall I reserve one for you?")
        widget.reload()
        badge = widget.get_by_test_id("widget-badge")
        expect(badge).to_have_text("1", timeout=WAIT_MS)
        expect(bubble).to_have_attribute("aria-label", "Chat with us, 1 unread")
        _axe(widget, "unread")
        screenshot(widget, "widget_unread_phone")

        bubble.click()
        expect(badge).to_be_hidden()
        expect(theirs).to_have_text(["It is: 12 left.", "Shall I reserve one for you?"], timeout=WAIT_MS)
        expect(mine).to_have_count(2)
        widget.reload()  # open again by itself, with the whole chat read back, and nothing unread
        expect(panel).to_be_visible()
        expect(theirs).to_have_count(2, timeout=WAIT_MS)
        expect(sent_file).to_have_text("label.png")  # the attachment too, read back
        expect(badge).to_be_hidden()
        assert _stored_state(widget)["conversation_id"]
    finally:
        agent_context.close()
        visitor_context.close()
        admin.set_presence("noor", "Offline")


def _closed_now() -> str:
    today = datetime.now(UTC).date()
    days = ", ".join(str(today + timedelta(days=n)) for n in (-1, 0, 1))
    return (
        "queues:\n  default: {}\n  chat:\n    hours:\n      timezone: UTC\n"
        f"      weekly: {{mon-sun: '00:00-24:00'}}\n      holidays: [{days}]\n"
        "rules:\n  - {name: chat, when: {channel: [webchat, email]}, queue: chat}\n  - {name: all, queue: default}\n"
    )


def test_out_of_hours_a_visitor_leaves_an_email_and_it_becomes_a_contact(
    browser: Any, stack: LocalStack, admin: Admin, themed_site: str, screenshot: Any
) -> None:
    _publish(stack, admin, _closed_now())
    waiting_before = _waiting_in(stack, "chat")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        widget = context.new_page()
        widget.goto(themed_site)
        widget.get_by_test_id("widget-bubble").click()
        offline = widget.get_by_test_id("widget-offline")
        expect(offline).to_be_visible(timeout=WAIT_MS)
        # On a wide desktop the panel floats in its corner (data-position=left) over the shop's page.
        box = widget.get_by_test_id("widget-panel").bounding_box()
        assert box and box["width"] <= 420 and box["x"] + box["width"] < 1440 / 2, box
        _no_sideways_scroll(widget)
        expect(offline).to_contain_text("We are away right now. We are back on ")
        expect(widget.get_by_test_id("widget-input")).to_be_hidden()
        expect(widget.get_by_test_id("offline-name")).to_have_value("Grace Hopper")  # data-name
        _axe(widget, "offline form")
        screenshot(widget, "widget_offline_form")

        widget.get_by_test_id("offline-email").fill("not an address")
        widget.get_by_test_id("offline-message").fill("Do you repair kettles?")
        widget.get_by_test_id("offline-send").click()
        expect(widget.get_by_test_id("widget-error")).to_contain_text("e-mail address")
        expect(widget.get_by_test_id("offline-email")).to_have_attribute("aria-invalid", "true")
        _axe(widget, "offline form with an error")

        widget.get_by_test_id("offline-email").fill("grace@example.com")
        with widget.expect_response(lambda r: r.url.endswith("/widget/offline"), timeout=WAIT_MS) as sent:
            widget.get_by_test_id("offline-send").click()
        assert sent.value.status == 202
        expect(widget.get_by_test_id("offline-done")).to_have_text(
            "Thank you! We will answer you at grace@example.com."
        )
        _axe(widget, "offline form sent")
        screenshot(widget, "widget_offline_sent")

        # It became an e-mail from that address, waiting in the closed queue (the supervisor sees it there).
        (stored,) = [m for m in stored_messages() if m.get("text") == "Do you repair kettles?"]
        assert (stored["channel"], stored["identity"]) == ("email", "email#grace@example.com")
        deadline = time.monotonic() + WAIT_MS / 1000
        while _waiting_in(stack, "chat") != waiting_before + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _waiting_in(stack, "chat") == waiting_before + 1
    finally:
        context.close()
        _publish(stack, admin, DEFAULT_FILE.read_text(encoding="utf-8"))


def _waiting_in(stack: LocalStack, queue: str) -> int:
    view = requests.get(f"{stack.api_url}/supervisor", headers=_supervisor(stack), timeout=10).json()
    return int(next(q for q in view["queues"] if q["queue"] == queue)["waiting"])


def _supervisor(stack: LocalStack) -> dict[str, str]:
    token = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": "sup", "roles": ["supervisor"]}, timeout=10)
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['token']}"}


def test_with_the_pre_chat_form_on_a_visitor_gives_name_and_email_first_and_the_agent_sees_them(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    text = DEFAULT_FILE.read_text(encoding="utf-8").replace("  pre_chat_form: false", "  pre_chat_form: true")
    assert "pre_chat_form: true" in text
    _publish(stack, admin, text)
    admin.create_agent("oma", "webchat")
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Acme</title></head><body><h1>Acme</h1>"
        f"<script src='{stack.api_url}/widget.js' data-site='{SITE}' data-api='{stack.api_url}'></script></body></html>"
    ).encode()
    served = serve_page(page, "acme-prechat-site")
    site = next(served)
    visitor_context, agent_context = browser.new_context(viewport=PHONE), browser.new_context()
    try:
        agent = agent_context.new_page()
        _sign_in(agent, stack, "oma")
        _go_available(agent)
        widget = visitor_context.new_page()
        widget.goto(site)
        widget.get_by_test_id("widget-bubble").click()
        expect(widget.get_by_test_id("widget-prechat")).to_be_visible(timeout=WAIT_MS)
        _axe(widget, "pre-chat form")
        widget.get_by_test_id("prechat-name").fill("Alan Turing")
        widget.get_by_test_id("widget-input").fill("Is the green teapot back in stock?")
        widget.get_by_test_id("widget-send").click()
        expect(widget.get_by_test_id("widget-error")).to_contain_text("e-mail address")
        expect(widget.get_by_test_id("prechat-email")).to_have_attribute("aria-invalid", "true")
        assert not [m for m in stored_messages() if m.get("text") == "Is the green teapot back in stock?"]

        widget.get_by_test_id("prechat-email").fill("alan@example.org")
        widget.get_by_test_id("widget-send").click()
        expect(widget.get_by_test_id("widget-prechat")).to_be_hidden(timeout=WAIT_MS)
        screenshot(widget, "widget_prechat_sent")
        (stored,) = [m for m in stored_messages() if m.get("text") == "Is the green teapot back in stock?"]
        assert stored["metadata"]["contact_email"] == "alan@example.org" and not stored["metadata"]["email_verified"]

        _accept_offer(agent, "webchat")
        expect(agent.get_by_test_id("conversation-title")).to_have_text("Alan Turing", timeout=WAIT_MS)
        left = agent.get_by_test_id("contact-email")
        expect(left).to_contain_text("alan@example.org")
        expect(left).to_contain_text("not verified")

        widget.reload()
        if widget.get_by_test_id("widget-panel").is_hidden():
            widget.get_by_test_id("widget-bubble").click()
        expect(widget.get_by_test_id("widget-input")).to_be_visible(timeout=WAIT_MS)
        expect(widget.get_by_test_id("widget-prechat")).to_be_hidden()  # asked once
    finally:
        visitor_context.close()
        agent_context.close()
        served.close()
        admin.set_presence("oma", "Offline")
        _publish(stack, admin, DEFAULT_FILE.read_text(encoding="utf-8"))


def test_each_side_sees_the_other_typing(browser: Any, stack: LocalStack, admin: Admin, themed_site: str) -> None:
    admin.create_agent("tao", "webchat")
    agent_context, visitor_context = browser.new_context(), browser.new_context(viewport=PHONE)
    try:
        console = agent_context.new_page()
        _sign_in(console, stack, "tao")
        _go_available(console)
        widget = visitor_context.new_page()
        widget.goto(themed_site)
        widget.get_by_test_id("widget-bubble").click()
        widget.get_by_test_id("widget-input").fill("Hello, is anyone there?")
        widget.get_by_test_id("widget-send").click()
        _accept_offer(console, "webchat")

        # The visitor types (the socket is open once a chat exists): the agent sees it, then their message.
        expect(widget.get_by_test_id("widget-message")).to_have_count(1, timeout=WAIT_MS)
        typed = console.get_by_test_id("customer-typing")
        deadline = time.monotonic() + WAIT_MS / 1000
        while typed.is_hidden() and time.monotonic() < deadline:  # until the widget's socket is up
            widget.get_by_test_id("widget-input").press_sequentially("I ", delay=20)
            console.wait_for_timeout(500)
        expect(typed).to_have_text("The customer is typing…", timeout=WAIT_MS)
        _axe(widget, "typing")

        # The agent types a reply: the widget says so, and the reply itself takes its place.
        console.get_by_test_id("reply-input").press_sequentially("Yes, Tao here", delay=20)
        note = widget.get_by_test_id("widget-typing")
        expect(note).to_have_text("The agent is typing…", timeout=WAIT_MS)
        console.get_by_test_id("reply-send").click()
        expect(widget.get_by_test_id("widget-message").filter(has_text="Yes, Tao here")).to_be_visible(timeout=WAIT_MS)
        expect(note).to_be_hidden()
    finally:
        agent_context.close()
        visitor_context.close()
        admin.set_presence("tao", "Offline")
