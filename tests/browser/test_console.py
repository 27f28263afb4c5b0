"""Real browser journeys: the agent console and the web-chat widget against the local stack.

Journey 1: an SMS arrives through a signed Twilio webhook, the agent accepts it in the console and
the reply reaches (fake) Twilio. Journey 2: a visitor writes in the widget on another site, the agent
answers in the console and the answer shows up in the widget. Customer text is shown as text, never
as markup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin
from tests.fakes.providers import ACCOUNT_SID, TWILIO, FakeProviders, Recorded
from tests.support import CHANNEL_SECRETS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect  # skipped, not broken, without playwright

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
CUSTOMER_NUMBER = "+14155550123"
BUSINESS_NUMBER = "+14155550100"
SECONDS_LEFT = re.compile(r"^\d+ s$")


def _twilio_sms(stack: LocalStack, body: str, sid: str, sender: str = CUSTOMER_NUMBER) -> requests.Response:
    """An inbound SMS webhook signed as Twilio signs it: the public URL, then sorted names+values, HMAC-SHA1."""
    path = "/webhooks/twilio/messaging"
    form = {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": BUSINESS_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    signed = stack.api_url + path + "".join(f"{k}{v}" for k, v in sorted(form.items()))
    digest = hmac.new(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode(), signed.encode(), hashlib.sha1).digest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": base64.b64encode(digest)}
    return requests.post(stack.api_url + path, data=urlencode(form), headers=headers, timeout=10)


def _sign_in(page: Page, stack: LocalStack, agent_id: str, role: str = "agent") -> None:
    page.goto(f"{stack.api_url}/console?ws={stack.ws_url}")
    page.get_by_test_id("dev-agent-id").fill(agent_id)
    page.get_by_test_id("dev-role").select_option(role)
    page.get_by_test_id("dev-sign-in-button").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(agent_id, timeout=WAIT_MS)
    expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)


def _go_available(page: Page) -> None:
    page.get_by_test_id("presence-Available").click()
    expect(page.get_by_test_id("presence-Available")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)


def _accept_offer(page: Page, channel: str) -> None:
    offer = page.get_by_test_id("offer")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer.get_by_test_id("offer-channel")).to_have_text(channel)
    expect(offer.get_by_test_id("offer-countdown")).to_have_text(SECONDS_LEFT)
    offer.get_by_test_id("offer-accept").click()
    expect(offer).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_test_id("conversation")).to_be_visible(timeout=WAIT_MS)


def _reply(page: Page, text: str) -> None:
    page.get_by_test_id("reply-input").fill(text)
    page.get_by_test_id("reply-send").click()
    expect(page.get_by_test_id("timeline-message").filter(has_text=text)).to_be_visible(timeout=WAIT_MS)


def _sent_to_twilio(fake: FakeProviders, text: str, timeout: float = 20.0) -> Recorded:
    """Waits for the outbox to deliver (the pump runs it on its own schedule)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in fake.sent(TWILIO):
            if request.form.get("Body") == text:
                return request
        time.sleep(0.2)
    raise AssertionError(f"no Twilio message with Body {text!r}; got {[r.form for r in fake.sent(TWILIO)]}")


def test_sms_offer_accept_and_reply_reaches_twilio(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders, screenshot: Any
) -> None:
    admin.create_agent("ada", "sms")
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "ada")
        _go_available(page)

        customer_text = "Where is order <b>4417</b>? It said Tuesday & it's Thursday."
        response = _twilio_sms(stack, customer_text, "SM" + "1f" * 16)
        assert response.status_code == 200, response.text

        _accept_offer(page, "sms")
        timeline = page.get_by_test_id("timeline")
        expect(timeline.get_by_test_id("message-text").filter(has_text=customer_text)).to_be_visible(timeout=WAIT_MS)
        expect(timeline.get_by_test_id("channel-badge").first).to_have_text("sms")
        assert timeline.locator("b").count() == 0, "customer text must be shown as text, not markup"
        expect(page.get_by_test_id("conversation-item")).to_have_count(1)

        # From here on the console shows what its socket tells it (its reply's answer, the customer's next
        # message) without reading the conversation again.
        reads: list[str] = []
        page.on("request", lambda r: reads.append(r.url) if r.method == "GET" and "/conversations/" in r.url else None)
        reply = "It left the depot this morning; you will have it by 6 pm."
        _reply(page, reply)
        sent = _sent_to_twilio(fake_providers, reply)
        assert sent.form["To"] == CUSTOMER_NUMBER
        assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        follow_up = "Thanks! Will the driver call first?"
        assert _twilio_sms(stack, follow_up, "SM" + "3d" * 16).status_code == 200
        expect(timeline.get_by_test_id("message-text").filter(has_text=follow_up)).to_be_visible(timeout=WAIT_MS)
        expect(timeline.get_by_test_id("message-text").filter(has_text=reply)).to_have_count(1)
        assert reads == [], f"the conversation was read again: {reads}"
        screenshot(page, "console_sms_reply")
    finally:
        context.close()
        admin.set_presence("ada", "Offline")


def test_a_reply_whose_socket_answer_was_lost_goes_again_over_rest_with_its_key_and_reaches_the_customer_once(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders
) -> None:
    """The console replies on its WebSocket; the server stores and queues the reply but its answer never reaches the
    browser. The console waits for it, then sends the reply over REST with the same key: the server answers with
    the first reply and the customer gets it once."""
    admin.create_agent("ben", "sms")
    context = browser.new_context()
    frames: list[dict[str, Any]] = []
    posted: list[dict[str, Any]] = []

    def lose_the_first_reply_answer(socket: Any) -> None:
        server = socket.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frames.append(json.loads(message))
            server.send(message)

        def to_browser(message: str | bytes) -> None:
            answer = json.loads(message)
            if answer.get("type") == "replied" and not any(f.get("lost") for f in frames):
                frames.append({"lost": answer})  # the server answered; the browser never hears it
                return
            socket.send(message)

        socket.on_message(to_server)
        server.on_message(to_browser)

    def record(route: Any) -> None:
        if route.request.method == "POST":
            posted.append(route.request.post_data_json)
        route.continue_()

    try:
        page = context.new_page()
        page.route_web_socket(lambda url: url.startswith(stack.ws_url), lose_the_first_reply_answer)
        page.route("**/conversations/*/messages", record)
        _sign_in(page, stack, "ben")
        _go_available(page)
        assert _twilio_sms(stack, "Is my parcel lost?", "SM" + "2e" * 16, sender="+14155550188").status_code == 200
        _accept_offer(page, "sms")

        reply = "No, it is at the depot; it reaches you tomorrow."
        page.get_by_test_id("reply-input").fill(reply)
        page.get_by_test_id("reply-send").click()
        timeline = page.get_by_test_id("timeline")
        expect(timeline.get_by_test_id("timeline-message").filter(has_text=reply)).to_have_count(1, timeout=WAIT_MS)
        expect(page.get_by_test_id("reply-input")).to_have_value("", timeout=WAIT_MS)  # answered: the draft is done

        [sent] = [f for f in frames if f.get("action") == "reply"]
        assert sent["text"] == reply and sent["client_message_id"]
        assert any(f.get("lost") for f in frames), "the socket's answer was the one lost"
        assert posted == [{"text": reply, "client_message_id": sent["client_message_id"]}], "same key over REST"
        _sent_to_twilio(fake_providers, reply)
        time.sleep(1)  # the outbox pump's next pass: nothing more may go out
        assert [r.form["Body"] for r in fake_providers.sent(TWILIO)].count(reply) == 1
    finally:
        context.close()
        admin.set_presence("ben", "Offline")


def test_widget_visitor_and_agent_chat(
    browser: Any, stack: LocalStack, admin: Admin, site_server: str, screenshot: Any
) -> None:
    """The agent's reply and the close are pushed to the open widget: nothing is polled while the visitor waits."""
    admin.create_agent("lin", "webchat")
    agent_context, visitor_context = browser.new_context(), browser.new_context()
    try:
        console = agent_context.new_page()
        _sign_in(console, stack, "lin")
        _go_available(console)

        widget = visitor_context.new_page()
        requests_made: list[str] = []
        widget.on("request", lambda r: requests_made.append(f"{r.method} {r.url}"))
        frames: list[dict[str, Any]] = []
        widget.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(json.loads(data))))
        widget.goto(site_server)
        widget.get_by_test_id("widget-bubble").click()
        expect(widget.get_by_test_id("widget-panel")).to_be_visible()
        question = "Do you ship to Norway? <img src=x onerror=alert(1)>"
        widget.get_by_test_id("widget-input").fill(question)
        # Sent, then (once the socket is open) what was missed is read, once.
        with widget.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
            widget.get_by_test_id("widget-send").click()
        mine = widget.locator('[data-testid="widget-message"][data-from="visitor"]')
        expect(mine).to_have_text(question, timeout=WAIT_MS)
        waiting_since = len(requests_made)

        _accept_offer(console, "webchat")
        expect(console.get_by_test_id("message-text").filter(has_text=question)).to_be_visible(timeout=WAIT_MS)
        expect(console.get_by_test_id("conversation-title")).to_have_text("Grace Hopper")

        answer = "We do: 3-5 working days to Oslo."
        _reply(console, answer)
        theirs = widget.locator('[data-testid="widget-message"][data-from="agent"]')
        expect(theirs).to_have_text(answer, timeout=WAIT_MS)
        assert widget.locator('[data-testid="widget-log"] img').count() == 0
        assert [f["message"]["text"] for f in frames if f.get("type") == "message"] == [answer], frames

        conversation = widget.evaluate("() => JSON.parse(localStorage.getItem('switchboard.widget.acme'))")
        closed = requests.post(
            f"{stack.api_url}/conversations/{conversation['conversation_id']}/close",
            json={"wrap_up": "resolved"},
            headers={"Authorization": f"Bearer {_token(stack, 'lin')}"},
            timeout=10,
        )
        assert closed.status_code == 200, closed.text
        expect(widget.get_by_test_id("widget-status")).to_contain_text("ended", timeout=WAIT_MS)
        # However long the visitor waited (the offer, the accept, the reply, the close), the page asked nothing.
        assert requests_made[waiting_since:] == []
        screenshot(widget, "widget_visitor")
        screenshot(console, "console_webchat")
    finally:
        agent_context.close()
        visitor_context.close()
        admin.set_presence("lin", "Offline")


def _token(stack: LocalStack, agent_id: str) -> str:
    answer = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": ["agent"]}, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["token"])


def test_supervisor_tab_shows_queues_and_agents_live(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    admin.create_agent("sue", "webchat")
    admin.create_agent("max", "webchat")
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "sue", role="supervisor")
        page.get_by_test_id("tab-supervisor").click()
        expect(page.locator('[data-testid="queue-row"][data-queue="default"]')).to_be_visible(timeout=WAIT_MS)
        max_presence = page.locator('[data-testid="agent-row"][data-agent-id="max"] [data-testid="agent-presence"]')
        expect(max_presence).to_have_text("Offline", timeout=WAIT_MS)
        expect(page.locator('[data-agent-id="max"] [data-testid="agent-load"]')).to_have_text("idle")

        expect(page.get_by_test_id("supervisor")).to_have_attribute("data-live", "true", timeout=WAIT_MS)
        reads: list[str] = []
        page.on("request", lambda r: reads.append(r.url) if "/supervisor" in r.url else None)

        admin.set_presence("max", "Away")  # someone else's change: pushed to the tab, not polled
        expect(max_presence).to_have_text("Away", timeout=WAIT_MS)
        expect(
            page.locator('[data-testid="queue-row"][data-queue="default"] [data-testid="queue-agents"]')
        ).to_contain_text(" / 1 / ", timeout=WAIT_MS)
        page.wait_for_timeout(3500)  # longer than the old refresh period
        assert reads == [], "the supervisor's view is pushed, not read again"
        screenshot(page, "console_supervisor")
    finally:
        context.close()


def test_widget_endpoint_refuses_what_a_browser_may_not_claim(stack: LocalStack) -> None:
    """An unsigned caller cannot link itself to a customer by e-mail, nor read another visitor's conversation."""
    claim = {"site": "acme", "visitor_id": "v_x", "message_id": "m_x", "text": "hi", "email": "ada@example.com"}
    refused = requests.post(f"{stack.api_url}/widget/messages", json=claim, timeout=10)
    assert refused.status_code == 422 and refused.json()["details"][0]["field"] == "email"

    del claim["email"]
    taken = requests.post(f"{stack.api_url}/widget/messages", json=claim, timeout=10)
    assert taken.status_code == 200, taken.text
    conversation = taken.json()["conversation_id"]
    url = f"{stack.api_url}/widget/conversations/{conversation}/messages"
    own = requests.get(url, params={"site": "acme", "visitor_id": "v_x"}, timeout=10)
    assert own.status_code == 200 and [m["text"] for m in own.json()["messages"]] == ["hi"]
    other = requests.get(url, params={"site": "acme", "visitor_id": "v_someone_else"}, timeout=10)
    assert other.status_code == 404


def test_a_dropped_websocket_shows_reconnecting_then_the_servers_presence(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    """API Gateway closes idle sockets and every socket after 2 hours: the console says it is reconnecting, comes
    back by itself, and then shows the presence the server holds, not the one it showed before."""
    admin.create_agent("rio", "webchat")
    context = browser.new_context()
    try:
        page = context.new_page()
        before = set(stack.gateway.connection_ids())
        _sign_in(page, stack, "rio")
        _go_available(page)
        [connection] = set(stack.gateway.connection_ids()) - before

        # The network is gone for a moment: every reconnect fails until it is back. (Chromium's offline mode does
        # not reliably cover loopback WebSockets, so a reconnect could slip through and hide "reconnecting…".)
        network = {"up": False}

        def socket(route: Any) -> None:
            route.connect_to_server() if network["up"] else route.close()

        context.route_web_socket(re.compile(r"^wss?://"), socket)
        stack.gateway.delete_connection(connection)
        status = page.get_by_test_id("ws-status")
        expect(status).to_have_text("reconnecting…", timeout=WAIT_MS)
        expect(page.get_by_test_id("presence")).to_have_attribute("data-connection", "reconnecting")
        screenshot(page, "console_reconnecting")
        admin.set_presence("rio", "Away")  # meanwhile a supervisor set her Away: her console could not hear it
        network["up"] = True

        expect(status).to_have_text("connected", timeout=WAIT_MS)
        expect(page.get_by_test_id("presence-Away")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        expect(page.get_by_test_id("presence-Available")).to_have_attribute("aria-pressed", "false")
        expect(page.get_by_test_id("presence")).to_have_attribute("data-connection", "connected")
        assert len(set(stack.gateway.connection_ids()) - before - {connection}) == 1, "one new connection"
    finally:
        context.close()
        admin.set_presence("rio", "Offline")


def test_a_heartbeat_answered_late_does_not_undo_the_presence_the_agent_just_chose(
    browser: Any, stack: LocalStack, admin: Admin
) -> None:
    """The first heartbeat's answer carries the presence read when it was sent. If it arrives after the agent has
    clicked Available (a slow socket, a busy Lambda), it is stale and must not flip the buttons back to Offline."""
    admin.create_agent("ula", "webchat")
    context = browser.new_context()
    held: list[str] = []
    routes: list[Any] = []

    def socket(route: Any) -> None:  # the console's socket, the server's presence answers held back
        routes.append(route)
        server = route.connect_to_server()
        route.on_message(server.send)
        server.on_message(lambda m: held.append(str(m)) if '"presence"' in str(m) else route.send(m))

    try:
        context.route_web_socket(re.compile(r"^wss?://"), socket)
        page = context.new_page()
        _sign_in(page, stack, "ula")
        deadline = time.monotonic() + WAIT_MS / 1000
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        [stale] = held
        assert json.loads(stale)["presence"] == "Offline" and json.loads(stale)["reason"] == "heartbeat", stale
        _go_available(page)

        routes[0].send(stale)  # the heartbeat's answer arrives only now
        page.wait_for_timeout(500)
        expect(page.get_by_test_id("presence-Available")).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_test_id("presence-Offline")).to_have_attribute("aria-pressed", "false")

        admin.set_presence("ula", "Away")  # a change made elsewhere is pushed and shown
        deadline = time.monotonic() + WAIT_MS / 1000
        while not any('"Away"' in m for m in held) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        for frame in held[1:]:  # the PUT's own "set" push (Available), then the supervisor's (Away)
            routes[0].send(frame)
        expect(page.get_by_test_id("presence-Away")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
    finally:
        context.close()
        admin.set_presence("ula", "Offline")


def test_an_open_offer_comes_back_after_the_console_reconnects(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    """An offer pushed while the console was away (a reload here, a dropped socket in general) is not lost: after
    (re)connecting, the console lists the offers still open to the agent and can accept them."""
    admin.create_agent("kit", "webchat")
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "kit")
        _go_available(page)
        posted = {"site": "acme", "visitor_id": "v_kit", "message_id": "m_kit", "text": "Anyone there?"}
        written = requests.post(f"{stack.api_url}/widget/messages", json=posted, timeout=10)
        assert written.status_code == 200, written.text
        # Earlier tests may have left a contact waiting, offered to her too: this test watches its own.
        offer = page.locator(f'[data-testid="offer"][data-contact-id="{written.json()["conversation_id"]}"]')
        expect(offer).to_be_visible(timeout=WAIT_MS)

        page.reload()  # the page's memory of the offer is gone; the server still holds it open

        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
        expect(page.get_by_test_id("presence-Available")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        expect(offer.get_by_test_id("offer-countdown")).to_have_text(SECONDS_LEFT, timeout=WAIT_MS)
        offer.get_by_test_id("offer-accept").click()
        expect(offer).to_have_count(0, timeout=WAIT_MS)
        expect(page.get_by_test_id("conversation")).to_have_attribute(
            "data-conversation-id", written.json()["conversation_id"], timeout=WAIT_MS
        )
        screenshot(page, "console_offer_after_reconnect")
    finally:
        context.close()
        admin.set_presence("kit", "Offline")


# Last in the file: their visitors' contacts stay waiting (no agent takes them), which would be offered to the
# agents of the tests after them.
def test_an_open_widget_pings_its_socket_just_under_the_idle_timeout(
    browser: Any, stack: LocalStack, site_server: str
) -> None:
    """API Gateway drops a WebSocket idle for 10 minutes: the open widget sends one ping at 9 minutes (its page
    clock run forward), answered with nothing (no error frame), so the socket stays and nothing is read again."""
    context = browser.new_context()
    try:
        widget = context.new_page()
        widget.clock.install()
        sockets: list[Any] = []
        sent: list[str] = []
        received: list[dict[str, Any]] = []

        def opened(ws: Any) -> None:
            sockets.append(ws)
            ws.on("framesent", lambda data: sent.append(data))
            ws.on("framereceived", lambda data: received.append(json.loads(data)))

        widget.on("websocket", opened)
        requests_made: list[str] = []
        widget.on("request", lambda r: requests_made.append(r.url))
        widget.goto(site_server)
        widget.get_by_test_id("widget-bubble").click()
        widget.get_by_test_id("widget-input").fill("Is anyone there at night?")
        with widget.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
            widget.get_by_test_id("widget-send").click()
        before = len(requests_made)
        assert len(sockets) == 1 and sent == []

        widget.clock.run_for(8 * 60 * 1000)
        assert sent == [], "no ping before 9 minutes"
        with sockets[0].expect_event("framesent") as ping:
            widget.clock.run_for(60 * 1000 + 500)
        assert json.loads(ping.value) == {"action": "ping"}
        time.sleep(1)  # the local gateway hands the ping to the Lambda; an answer would arrive by now
        widget.evaluate("() => 0")  # lets Playwright deliver any frame received meanwhile
        assert [json.loads(frame) for frame in sent] == [{"action": "ping"}]
        assert [frame for frame in received if frame.get("type") == "error"] == [] and not sockets[0].is_closed()
        assert len(sockets) == 1 and requests_made[before:] == []
    finally:
        context.close()


def test_a_widget_cut_off_by_the_gateway_reconnects_and_reads_only_from_its_cursor(
    browser: Any, stack: LocalStack, site_server: str
) -> None:
    """API Gateway ends every connection after 2 hours (here: the management API deletes it, as the cut does):
    the widget opens a new socket after its backoff and reads once, from the newest message it has, not all."""
    from urllib.parse import parse_qs, urlsplit

    context = browser.new_context()
    try:
        widget = context.new_page()
        sockets: list[Any] = []
        widget.on("websocket", lambda ws: sockets.append(ws))
        reads: list[dict[str, list[str]]] = []
        widget.on(
            "request",
            lambda r: (
                reads.append(parse_qs(urlsplit(r.url).query, keep_blank_values=True))
                if "/widget/conversations/" in r.url
                else None
            ),
        )
        before = set(stack.gateway.connection_ids())
        widget.goto(site_server)
        widget.get_by_test_id("widget-bubble").click()
        widget.get_by_test_id("widget-input").fill("Still there after two hours?")
        with widget.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS) as first:
            widget.get_by_test_id("widget-send").click()
        newest = max(m["received_at"] for m in first.value.json()["messages"])
        [connection] = set(stack.gateway.connection_ids()) - before
        assert reads == [{**reads[0], "after": [""]}]

        with widget.expect_response(lambda r: "/widget/conversations/" in r.url, timeout=WAIT_MS):
            assert stack.gateway.delete_connection(connection)
        assert len(sockets) == 2 and sockets[0].is_closed() and not sockets[1].is_closed()
        assert len(reads) == 2 and reads[1]["after"] == [newest]
        shown = widget.locator('[data-testid="widget-message"]').all_text_contents()
        assert "Still there after two hours?" in shown and len(shown) == len(set(shown)), shown  # nothing twice
    finally:
        context.close()
