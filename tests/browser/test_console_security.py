"""The console and the widget as an attacker, and a careful host page, would meet them, in a real Chromium.

- ``/console?ws=<another host>`` never opens a WebSocket to that host (the token would go with it): the console
  connects to the deployment's URL from ``/auth/options`` and says it ignored the parameter.
- The console works under its own CSP (no violation reported while an agent signs in and connects).
- The widget works inside a host page with a strict nonce-based CSP, keeps a failed message's ``message_id``
  for the retry, and holds no socket and asks nothing while its panel is closed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from chalicelib import clock
from chalicelib.local.stack import LocalStack
from tests.browser.conftest import SITE, Admin, serve_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
NONCE = "r4nd0mN0nce"


class Listener:
    """A TCP listener on another loopback port, standing in for the attacker's host: it records who connects."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self.connections = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="attacker", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def attacker() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def _watch(page: Page) -> tuple[list[str], list[str]]:
    """The WebSocket URLs the page opens, and any Content-Security-Policy violation it reports."""
    sockets: list[str] = []
    violations: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return sockets, violations


def _dev_sign_in(page: Page, agent_id: str) -> None:
    page.get_by_test_id("dev-agent-id").fill(agent_id)
    page.get_by_test_id("dev-sign-in-button").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(agent_id, timeout=WAIT_MS)


def test_a_ws_parameter_naming_another_host_never_gets_a_connection(
    browser, stack: LocalStack, admin: Admin, attacker: Listener
):
    admin.create_agent("eve", "webchat")
    context = browser.new_context()
    try:
        page = context.new_page()
        sockets, violations = _watch(page)
        hostile = f"ws://127.0.0.1:{attacker.port}/"
        page.goto(f"{stack.api_url}/console?ws={hostile}")
        expect(page.get_by_test_id("ws-notice")).to_contain_text(f"Ignored ?ws={hostile}", timeout=WAIT_MS)
        _dev_sign_in(page, "eve")
        # Connected all the same, to the deployment's own WebSocket URL.
        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
        assert sockets and all(url.startswith(stack.ws_url + "/?token=") for url in sockets), sockets
        assert attacker.connections == 0
        assert violations == [], violations

        page.goto(f"{stack.api_url}/console?ws=ws://attacker.example/")
        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)  # signed in still
        expect(page.get_by_test_id("ws-notice")).to_contain_text("Ignored ?ws=ws://attacker.example/")
        assert not [url for url in sockets if "attacker" in url], sockets
    finally:
        context.close()


def test_the_console_connects_to_the_deployments_websocket_without_any_parameter(
    browser, stack: LocalStack, admin: Admin
):
    admin.create_agent("ida", "webchat")
    context = browser.new_context()
    try:
        page = context.new_page()
        sockets, violations = _watch(page)
        page.goto(f"{stack.api_url}/console")
        _dev_sign_in(page, "ida")
        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
        expect(page.get_by_test_id("ws-notice")).to_be_hidden()
        assert [url.split("?")[0] for url in sockets] == [stack.ws_url + "/"]
        assert violations == [], violations
    finally:
        context.close()


def test_console_responses_carry_the_csp_and_framing_headers(stack: LocalStack):
    page = requests.get(f"{stack.api_url}/console?ws=ws://attacker.example/", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "attacker.example" not in csp
    assert stack.ws_url in csp.split("connect-src", 1)[1].split(";")[0]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(f"{stack.api_url}/widget.js", timeout=10).headers["X-Content-Type-Options"] == "nosniff"


# --- the widget on a business's page ---------------------------------------------------------------------------


@pytest.fixture
def strict_site(stack: LocalStack) -> Iterator[str]:
    """A business's page with a strict CSP: nonce-based scripts and styles, connections only to the API."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Strict Shop</title></head>"
        "<body><h1>Strict Shop</h1>"
        f"<script nonce='{NONCE}' src='{stack.api_url}/widget.js' data-site='{SITE}' async></script>"
        "</body></html>"
    ).encode()
    policy = (
        f"default-src 'none'; script-src 'nonce-{NONCE}' 'strict-dynamic'; style-src 'nonce-{NONCE}'; "
        f"connect-src {stack.api_url} {stack.ws_url}; base-uri 'none'; object-src 'none'"
    )

    yield from serve_page(page, "strict-site", {"Content-Security-Policy": policy})


def test_the_widget_works_under_a_strict_host_csp(browser, stack: LocalStack, strict_site: str):
    context = browser.new_context()
    try:
        page = context.new_page()
        _, violations = _watch(page)
        page.goto(strict_site)
        bubble = page.get_by_test_id("widget-bubble")
        expect(bubble).to_be_visible(timeout=WAIT_MS)
        assert bubble.evaluate("b => getComputedStyle(b).position") == "fixed", "the widget's style was blocked"
        bubble.click()
        page.get_by_test_id("widget-input").fill("Hello from a strict page")
        page.get_by_test_id("widget-send").click()
        mine = page.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(mine).to_have_text("Hello from a strict page", timeout=WAIT_MS)
        assert violations == [], violations
    finally:
        context.close()


def test_a_retry_after_a_lost_answer_keeps_the_message_id_and_is_stored_once(
    browser, stack: LocalStack, site_server: str
):
    context = browser.new_context()
    try:
        page = context.new_page()
        sent: list[str] = []

        def lose_the_first_answer(route: Any) -> None:
            sent.append(json.loads(route.request.post_data or "{}")["message_id"])
            if len(sent) == 1:
                route.fetch()  # the server stores it; the answer is lost on the way back (API Gateway's 504)
                route.fulfill(status=504, json={"message": "Endpoint request timed out"})
            else:
                route.continue_()

        page.route("**/widget/messages", lose_the_first_answer)
        page.goto(site_server)
        page.get_by_test_id("widget-bubble").click()
        page.get_by_test_id("widget-input").fill("Is the blue kettle in stock?")
        page.get_by_test_id("widget-send").click()
        expect(page.get_by_test_id("widget-error")).to_contain_text("Not sent", timeout=WAIT_MS)
        page.get_by_test_id("widget-send").click()  # the visitor tries again
        mine = page.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(mine).to_have_text("Is the blue kettle in stock?", timeout=WAIT_MS)
        expect(page.get_by_test_id("widget-error")).to_have_text("")
        assert len(sent) == 2 and sent[0] == sent[1], sent
        page.reload()  # everything the server holds for this visitor, read afresh: the message once
        expect(page.get_by_test_id("widget-panel")).to_be_visible()  # it was open: it opens again by itself
        expect(mine).to_have_count(1, timeout=WAIT_MS)
        page.wait_for_timeout(2500)  # the socket's read of what it missed has come back too
        expect(mine).to_have_count(1)
    finally:
        context.close()


def _visitor_writes(page: Any, site_server: str, text: str) -> tuple[list[str], list[Any]]:
    """Open the site, open the widget and send ``text``, until the socket has opened and read what it missed;
    returns the URLs the page requests and the WebSockets it opens (both lists grow as the page goes on)."""
    made: list[str] = []
    page.on("request", lambda r: made.append(r.url))
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(site_server)
    page.get_by_test_id("widget-bubble").click()
    page.get_by_test_id("widget-input").fill(text)
    with page.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
        page.get_by_test_id("widget-send").click()  # sent; the socket opens and reads what it missed
    return made, sockets


def test_the_widget_holds_a_socket_and_asks_nothing_while_its_panel_is_closed(
    browser, stack: LocalStack, site_server: str
):
    context = browser.new_context()
    try:
        page = context.new_page()
        made, sockets = _visitor_writes(page, site_server, "Just browsing")
        expect(page.locator('[data-testid="widget-message"][data-from="visitor"]')).to_have_count(1, timeout=WAIT_MS)
        assert len(sockets) == 1 and not sockets[0].is_closed()

        page.get_by_test_id("widget-bubble").click()  # closed
        expect(page.get_by_test_id("widget-panel")).to_be_hidden()
        _until(page, lambda: sockets[0].is_closed(), "the socket to close with the panel")
        closed_at = len(made)
        page.wait_for_timeout(5000)  # what used to be two and a half poll intervals
        assert made[closed_at:] == [] and len(sockets) == 1

        with page.expect_request(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
            page.get_by_test_id("widget-bubble").click()  # open again: a socket again, and what it missed, once
        assert len(sockets) == 2 and not sockets[1].is_closed()
        page.wait_for_timeout(3000)
        reads = [u for u in made[closed_at:] if "/widget/conversations/" in u]
        assert len(reads) == 1, made[closed_at:]
    finally:
        context.close()


def _until(page: Any, condition: Any, what: str, timeout: float = WAIT_MS / 1000) -> None:
    """Wait for ``condition``, letting Playwright deliver the page's events meanwhile (a sleep would not)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def test_after_its_socket_drops_the_widget_reconnects_and_reads_what_it_missed_once(
    browser, stack: LocalStack, site_server: str
):
    """As when a mobile network drops or API Gateway closes an idle socket: the widget connects again, reads
    what came meanwhile (here a message the site's backend signed for the visitor, which is never pushed) once,
    and then only waits."""
    import boto3

    from chalicelib.channels.signing import sign_sha256
    from chalicelib.store import visitor_connections
    from tests.support import WEBCHAT_SECRET

    context = browser.new_context()
    try:
        page = context.new_page()
        made, sockets = _visitor_writes(page, site_server, "Do you have it in blue?")
        saved = page.evaluate(f"() => JSON.parse(localStorage.getItem('switchboard.widget.{SITE}'))")
        conversation = saved["conversation_id"]
        [connection] = visitor_connections.of(conversation, clock.now_iso())

        body = json.dumps(
            {"site": SITE, "visitor_id": saved["visitor_id"], "message_id": "backend-1", "text": "(from the shop app)"}
        ).encode()
        signed = {"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(WEBCHAT_SECRET, body)}
        assert requests.post(f"{stack.api_url}/webhooks/webchat", data=body, headers=signed, timeout=10).ok
        page.wait_for_timeout(1000)
        shown = page.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(shown).to_have_count(1)  # not pushed: the widget has no way to know yet

        before = len(made)
        management = boto3.client("apigatewaymanagementapi", endpoint_url=stack.management_url)
        management.delete_connection(ConnectionId=connection)  # the gateway drops the socket
        expect(shown).to_have_count(2, timeout=WAIT_MS)
        expect(shown.last).to_have_text("(from the shop app)")
        page.wait_for_timeout(3000)
        reads = [u for u in made[before:] if "/widget/conversations/" in u]
        assert len(reads) == 1 and not reads[0].endswith("after="), made[before:]  # from its cursor
        assert len(sockets) == 2 and sockets[0].is_closed() and not sockets[1].is_closed()
    finally:
        context.close()
