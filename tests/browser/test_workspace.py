"""The agent workspace in a browser, as an agent works a day: a customer who e-mails and then texts, the customer
panel, suggested articles and canned responses inserted into a reply, an internal note, a wrap-up picked from the
config, a transfer picked from who is there, unread counts that survive a reload, keyboard shortcuts, and the
page checked by axe-core and at a phone's width. The local stack with fake providers (tests/browser/conftest.py);
the e-mail is a Mailgun route forward and the SMS a Twilio webhook, both signed as those providers sign.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import Admin, accessibility_violations, page_width
from tests.browser.test_console import CUSTOMER_NUMBER, _go_available, _sign_in, _twilio_sms
from tests.support import CHANNEL_SECRETS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
ADA_EMAIL = "ada.lovelace@example.com"
OTHER_NUMBER = "+14155550177"


def _mailgun(
    stack: LocalStack,
    text: str,
    message_id: str,
    sender: str = ADA_EMAIL,
    name: str = "Ada Lovelace",
    **more: str,
) -> requests.Response:
    """A Mailgun route forward: the parsed message's fields, then timestamp, token and their HMAC-SHA256."""
    timestamp, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    key = CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"].encode()
    fields = {
        "recipient": "support@acme-shop.example",
        "sender": sender,
        "from": f"{name} <{sender}>",
        "subject": "Order 4417 has not arrived",
        "body-plain": text + "\r\n",
        "stripped-text": text,
        "Message-Id": f"<{message_id}@mail.gmail.com>",
        "Date": "Thu, 03 Dec 2026 09:00:00 +0000",
        **more,
        "timestamp": timestamp,
        "token": token,
        "signature": hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest(),
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return requests.post(f"{stack.api_url}/webhooks/email/mailgun", data=urlencode(fields), headers=headers, timeout=10)


def _agent(admin: Admin, agent_id: str, **channels: int) -> None:
    body = {"agent_id": agent_id, "name": agent_id.title(), "max_per_channel": channels, "presence": "Offline"}
    created = requests.post(f"{admin.api}/agents", json=body, headers=admin.headers, timeout=10)
    assert created.status_code == 201, created.text


def _item(page: Page, conversation_id: str) -> Any:
    return page.locator(f'[data-testid="conversation-item"][data-conversation-id="{conversation_id}"]')


def _accept_newest_with_the_keyboard(page: Page, channel: str) -> str:
    """Alt+A on the newest offer; the accepted conversation opens. Its id."""
    offer = page.get_by_test_id("offer").last
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer.get_by_test_id("offer-channel")).to_have_text(channel)
    contact_id = offer.get_attribute("data-contact-id")
    assert contact_id
    page.keyboard.press("Alt+A")
    expect(page.get_by_test_id("offer")).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", contact_id, timeout=WAIT_MS)
    return contact_id


def _no_serious_accessibility_issue(page: Page, state: str) -> None:
    violations = accessibility_violations(page)
    assert not violations, f"{state}: {violations}"


def test_an_agent_works_a_cross_channel_customer_from_list_panel_suggestions_and_pickers(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    _agent(admin, "wes", email=2, sms=2)
    _agent(admin, "tia", email=2, sms=2)
    # The shop's domain is verified in SES (moto), as a deployment's must be: replies by e-mail can go.
    ses = boto3.client("ses", endpoint_url=stack.moto_url, region_name="us-east-1")
    ses.verify_domain_identity(Domain="acme-shop.example")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _sign_in(page, stack, "wes")
        _go_available(page)

        # An e-mail: offered, accepted with Alt+A; the list shows who, on what channel, and what they wrote.
        mailed = _mailgun(stack, "Hello, my order 4417 has not arrived yet. Where is my parcel?", "ada-1")
        assert mailed.status_code == 200, mailed.text
        # An admin links her phone to her (she gave it in the e-mail's signature, say).
        link = {"identities": [{"kind": "email", "value": ADA_EMAIL}, {"kind": "phone", "value": CUSTOMER_NUMBER}]}
        linked = requests.post(f"{admin.api}/admin/identities/link", json=link, headers=admin.headers, timeout=10)
        assert linked.status_code == 200, linked.text
        email_conversation = _accept_newest_with_the_keyboard(page, "email")
        item = _item(page, email_conversation)
        expect(item).to_contain_text("Ada Lovelace")
        expect(item.get_by_test_id("item-channel")).to_have_text("email")
        expect(item.get_by_test_id("item-preview")).to_contain_text("order 4417 has not arrived")
        expect(item).to_have_attribute("aria-current", "true")

        # The customer panel: her name and both identities, linked across channels.
        panel = page.get_by_test_id("customer-panel")
        expect(panel.get_by_test_id("customer-name")).to_have_text("Ada Lovelace", timeout=WAIT_MS)
        expect(panel.get_by_test_id("customer-identity-email")).to_have_text(ADA_EMAIL)
        expect(panel.get_by_test_id("customer-identity-phone")).to_have_text(CUSTOMER_NUMBER)

        # Help with the reply: the tracking article suggested, inserted; the canned order status, with her order.
        suggestion = page.get_by_test_id("suggestion").filter(has_text="Track")
        expect(suggestion.first).to_be_visible(timeout=WAIT_MS)
        suggestion.first.get_by_test_id("suggestion-insert").click()
        box = page.get_by_test_id("reply-input")
        expect(box).to_be_focused()
        inserted = box.input_value()
        assert "track" in inserted.lower() and len(inserted) > 40, inserted
        box.fill("")
        page.get_by_test_id("canned-select").select_option(label="Order status")
        page.get_by_test_id("canned-insert").click()
        expect(box).to_have_value(
            "I've checked order 4417 for you: it has left our warehouse and is on its way. "
            "You'll get the tracking link by e-mail within the hour."
        )
        expect(page.get_by_test_id("canned-missing")).to_have_text("")
        page.get_by_test_id("canned-select").select_option(label="Greeting")
        page.get_by_test_id("canned-insert").click()  # added after the first, on a line of its own
        assert box.input_value().endswith(
            "\nHi Ada, this is Wes from customer service. Thanks for getting in touch, I'm looking into it now."
        ), box.input_value()
        page.keyboard.press("Control+Enter")
        sent = page.get_by_test_id("timeline-message").filter(has_text="I've checked order 4417")
        expect(sent).to_be_visible(timeout=WAIT_MS)
        expect(sent).to_have_attribute("data-direction", "outbound")
        expect(box).to_have_value("", timeout=WAIT_MS)
        delivery = sent.get_by_test_id("delivery-status")
        expect(delivery).to_have_attribute("data-status", re.compile("^(queued|sending|sent|delivered)$"))

        # Her mail system's out-of-office reply joins the thread, marked as sent automatically (answered by no one).
        away = "I am out of the office until Monday."
        headers = '[["Auto-Submitted", "auto-replied"], ["X-Auto-Response-Suppress", "All"]]'
        ooo = _mailgun(stack, away, "ada-ooo", **{"In-Reply-To": "<ada-1@mail.gmail.com>", "message-headers": headers})
        assert ooo.status_code == 200, ooo.text
        expect(page.get_by_test_id("auto-submitted")).to_contain_text("Auto-Submitted: auto-replied", timeout=WAIT_MS)

        # An internal note, shown as a note; never sent.
        page.get_by_test_id("note-input").fill("Parcel stuck at the depot, checked with the carrier")
        page.get_by_test_id("note-button").click()
        note = page.get_by_test_id("timeline-message").filter(has_text="Parcel stuck at the depot")
        expect(note).to_have_attribute("data-direction", "internal", timeout=WAIT_MS)
        expect(note.get_by_test_id("channel-badge")).to_have_text("note")
        expect(page.locator("time[data-testid=human-time]").first).to_have_attribute("title", re.compile(r"\d"))
        expect(page.locator("time[data-testid=human-time]").first).to_contain_text(re.compile(r"just now|min ago"))
        _no_serious_accessibility_issue(page, "a conversation open, with the panel and suggestions")
        screenshot(page, "workspace_conversation")

        # Wrap-up from the config's codes, not free text.
        wrap_up = page.get_by_test_id("wrap-up")
        labels = wrap_up.locator("option").all_inner_texts()
        assert labels[:3] == ["Resolved", "Question answered", "Follow-up needed"], labels
        wrap_up.select_option(label="Follow-up needed")
        page.get_by_test_id("close-button").click()
        expect(_item(page, email_conversation)).to_have_count(0, timeout=WAIT_MS)
        closed = requests.get(f"{admin.api}/contacts/{email_conversation}", headers=admin.headers, timeout=10).json()
        assert closed["state"] == "closed" and closed.get("wrap_up") == "follow_up", closed

        # She texts from her phone: a new conversation, the panel lists the e-mail one as hers too.
        texted = _twilio_sms(stack, "Any news on order 4417?", "SM" + uuid.uuid4().hex)
        assert texted.status_code == 200, texted.text
        sms_conversation = _accept_newest_with_the_keyboard(page, "sms")
        assert sms_conversation != email_conversation, "a new conversation on the new channel"
        past = page.get_by_test_id("customer-conversation")
        expect(past.filter(has_text="this one")).to_have_attribute(
            "data-conversation-id", sms_conversation, timeout=WAIT_MS
        )
        expect(past.filter(has_text="email")).to_contain_text("closed")

        # Another customer texts twice while Wes reads Ada's: unread counts, kept by the server over a reload.
        other = _twilio_sms(stack, "Hi, I need to change my delivery address", "SM" + uuid.uuid4().hex, OTHER_NUMBER)
        assert other.status_code == 200, other.text
        other_conversation = _accept_newest_with_the_keyboard(page, "sms")
        assert other_conversation not in (sms_conversation, email_conversation)
        _item(page, sms_conversation).click()
        expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", sms_conversation)
        for text in ("It's 12 Elm Street", "Flat 3, actually"):
            assert _twilio_sms(stack, text, "SM" + uuid.uuid4().hex, OTHER_NUMBER).status_code == 200
        unread = _item(page, other_conversation).get_by_test_id("unread-count")
        expect(unread).to_have_text("2", timeout=WAIT_MS)
        page.reload()
        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
        expect(_item(page, other_conversation).get_by_test_id("unread-count")).to_have_text("2", timeout=WAIT_MS)
        expect(_item(page, other_conversation).get_by_test_id("item-preview")).to_have_text("Flat 3, actually")
        _item(page, other_conversation).click()
        expect(_item(page, other_conversation).get_by_test_id("unread-count")).to_be_hidden(timeout=WAIT_MS)
        page.reload()
        expect(page.get_by_test_id("ws-status")).to_have_text("connected", timeout=WAIT_MS)
        expect(_item(page, other_conversation).get_by_test_id("unread-count")).to_be_hidden(timeout=WAIT_MS)

        # Alt+N walks the list; the transfer picker lists Tia once she is Available, and the transfer moves it.
        _item(page, sms_conversation).click()
        expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", sms_conversation)
        listed = [i.get_attribute("data-conversation-id") for i in page.get_by_test_id("conversation-item").all()]
        assert set(listed) == {sms_conversation, other_conversation}, listed
        after = listed[(listed.index(sms_conversation) + 1) % len(listed)]
        page.keyboard.press("Alt+N")
        expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", after)
        expect(_item(page, after)).to_be_focused()
        _item(page, sms_conversation).click()
        meta = page.get_by_test_id("conversation-meta")
        expect(meta).to_contain_text(f"{ADA_EMAIL}, {CUSTOMER_NUMBER}")
        expect(meta).not_to_contain_text("#")  # people, not internal keys
        admin.set_presence("tia", "Available")
        target = page.get_by_test_id("transfer-target")
        target.focus()  # the picker reads who is there now
        target.select_option("agent_id:tia")
        page.get_by_test_id("transfer-button").click()
        try:
            expect(_item(page, sms_conversation)).to_have_count(0, timeout=WAIT_MS)
        except AssertionError as still_listed:  # say what the console said
            raise AssertionError(
                f"still listed; the console shows {page.get_by_test_id('error').inner_text()!r}"
            ) from (still_listed)
        moved = requests.get(f"{admin.api}/contacts/{sms_conversation}", headers=admin.headers, timeout=10).json()
        assert "wes" not in (moved.get("assigned_to"), moved.get("offered_to")), moved

        _item(page, other_conversation).click()
        expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", other_conversation)

        # A wide desktop: the list, the conversation and the customer panel side by side, nothing wider.
        page.set_viewport_size({"width": 1440, "height": 900})
        page.wait_for_timeout(200)
        assert page_width(page) <= 1440, f"the page is {page_width(page)} px wide on a 1440 px screen"
        listed, timeline = (
            _item(page, other_conversation).bounding_box(),
            page.get_by_test_id("timeline").bounding_box(),
        )
        customer = page.get_by_test_id("customer-panel").bounding_box()
        assert listed and timeline and customer, (listed, timeline, customer)
        assert listed["x"] + listed["width"] <= timeline["x"] < timeline["x"] + timeline["width"] <= customer["x"], (
            listed,
            timeline,
            customer,
        )
        _no_serious_accessibility_issue(page, "1440 px wide")
        screenshot(page, "workspace_1440px")

        # A phone's width: one column, nothing wider than the screen, still accessible.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        assert page_width(page) <= 390, f"the page is {page_width(page)} px wide on a 390 px screen"
        _no_serious_accessibility_issue(page, "390 px wide")
        screenshot(page, "workspace_390px")
    finally:
        context.close()
        for agent in ("wes", "tia"):
            admin.set_presence(agent, "Offline")


def test_messages_pushed_while_the_list_is_being_read_are_neither_lost_nor_counted_twice(
    browser: Any, stack: LocalStack, admin: Admin
) -> None:
    """The list is read again (here: the Mine filter) while a customer writes twice: the answer, taken before those
    messages were stored, arrives after their pushes. The count is 2, not the answer's 0, and one more push makes 3."""
    _agent(admin, "uma", sms=2)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _sign_in(page, stack, "uma")
        _go_available(page)
        number, talker = "+14155550181", "+14155550182"
        assert _twilio_sms(stack, "Where is my order?", "SM" + uuid.uuid4().hex, number).status_code == 200
        writing = _accept_newest_with_the_keyboard(page, "sms")
        assert _twilio_sms(stack, "Hello?", "SM" + uuid.uuid4().hex, talker).status_code == 200
        _accept_newest_with_the_keyboard(page, "sms")  # Uma reads the other one now
        badge = _item(page, writing).get_by_test_id("unread-count")
        expect(badge).to_be_hidden()

        held: list[bool] = []

        def late_answer(route: Any) -> None:
            if held:  # only the first read is held back
                route.continue_()
                return
            held.append(True)
            answer = route.fetch()  # the list as it is now, before she writes
            for text in ("It is order 4417", "Ordered on Monday"):
                assert _twilio_sms(stack, text, "SM" + uuid.uuid4().hex, number).status_code == 200
            time.sleep(1.5)  # their pushes reach the page meanwhile
            route.fulfill(response=answer)

        page.context.route("**/me/conversations*", late_answer)
        page.locator('[data-filter="mine"]').click()
        expect(badge).to_have_text("2", timeout=WAIT_MS)
        page.wait_for_timeout(500)
        expect(badge).to_have_text("2")
        assert _twilio_sms(stack, "Hello??", "SM" + uuid.uuid4().hex, number).status_code == 200
        expect(badge).to_have_text("3", timeout=WAIT_MS)
        page.reload()
        expect(_item(page, writing).get_by_test_id("unread-count")).to_have_text("3", timeout=WAIT_MS)
    finally:
        context.close()
        admin.set_presence("uma", "Offline")


def test_a_list_answer_taken_before_a_read_marker_was_stored_does_not_bring_back_the_unread_count(
    browser: Any, stack: LocalStack, admin: Admin
) -> None:
    """The list is read (the Mine filter) just as a customer writes into the open conversation: the server counts
    the message unread, the console shows it and stores its read marker, and only then the list's answer arrives.
    That answer is older than the marker: its count of 1 is not shown on the conversation the agent has read."""
    _agent(admin, "ida", sms=2)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _sign_in(page, stack, "ida")
        _go_available(page)
        number = "+14155550191"
        assert _twilio_sms(stack, "Where is my parcel?", "SM" + uuid.uuid4().hex, number).status_code == 200
        reading = _accept_newest_with_the_keyboard(page, "sms")
        badge = _item(page, reading).get_by_test_id("unread-count")
        expect(badge).to_be_hidden()
        page.wait_for_timeout(1000)  # the read marker of the first message is stored

        held: list[bool] = []

        def stale_answer(route: Any) -> None:
            if held:
                route.continue_()
                return
            held.append(True)
            assert _twilio_sms(stack, "It was due on Monday", "SM" + uuid.uuid4().hex, number).status_code == 200
            answer = route.fetch()  # counted before the console marks the new message read
            time.sleep(2.0)  # the push shows it in the open conversation and its read marker is stored
            route.fulfill(response=answer)

        with page.expect_response(lambda r: "/read" in r.url and r.request.method == "POST") as marked:
            page.context.route("**/me/conversations*", stale_answer)
            page.locator('[data-filter="mine"]').click()
        assert marked.value.status == 200
        expect(page.get_by_test_id("timeline-message").last).to_contain_text("It was due on Monday")
        page.wait_for_timeout(2500)  # the held answer has arrived
        assert held
        expect(badge).to_be_hidden()
        page.reload()
        expect(_item(page, reading).get_by_test_id("unread-count")).to_be_hidden(timeout=WAIT_MS)
    finally:
        context.close()
        admin.set_presence("ida", "Offline")


def test_the_sign_in_page_the_empty_workspace_and_the_supervisor_tab_pass_axe_and_fit_a_phone(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    _agent(admin, "sup", webchat=1)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{stack.api_url}/console?ws={stack.ws_url}")
        expect(page.get_by_test_id("dev-sign-in-button")).to_be_visible(timeout=WAIT_MS)
        _no_serious_accessibility_issue(page, "sign-in")
        assert page_width(page) <= 390, page_width(page)

        _sign_in(page, stack, "sup", role="supervisor")
        _no_serious_accessibility_issue(page, "an empty workspace")
        assert page_width(page) <= 390, page_width(page)

        # Supervisors search, open what they find and edit the customer's tier and tags in the panel.
        mailed = _mailgun(
            stack, "Can I change the colour of my sofa order?", "grace-1", "grace@example.org", "Grace Hopper"
        )
        assert mailed.status_code == 200, mailed.text
        page.get_by_test_id("search-input").fill("Grace Hopper")
        page.get_by_test_id("search-button").click()
        found = page.get_by_test_id("search-result").filter(has_text="Grace Hopper")
        expect(found).to_contain_text("grace@example.org", timeout=WAIT_MS)
        found.click()
        panel = page.get_by_test_id("customer-panel")
        expect(panel.get_by_test_id("customer-name")).to_have_text("Grace Hopper", timeout=WAIT_MS)
        page.get_by_test_id("attributes-tier").fill("gold")
        page.get_by_test_id("attributes-tags").fill("sofa, returning")
        page.get_by_test_id("attributes-save").click()
        expect(panel.get_by_test_id("customer-tier")).to_have_text("gold", timeout=WAIT_MS)
        expect(panel.get_by_test_id("customer-tags")).to_have_text("returning, sofa")
        _no_serious_accessibility_issue(page, "a supervisor's open conversation at 390 px")
        assert page_width(page) <= 390, page_width(page)
        screenshot(page, "workspace_supervisor_panel_390px")

        page.get_by_test_id("tab-supervisor").click()
        expect(page.locator('[data-testid="queue-row"][data-queue="default"]')).to_be_visible(timeout=WAIT_MS)
        _no_serious_accessibility_issue(page, "the supervisor tab")
        assert page_width(page) <= 390, page_width(page)
        screenshot(page, "supervisor_390px")
    finally:
        context.close()


def _widget_message(stack: LocalStack, visitor: str, text: str) -> str:
    posted = {"site": "acme", "visitor_id": visitor, "message_id": "m_" + uuid.uuid4().hex[:12], "text": text}
    written = requests.post(f"{stack.api_url}/widget/messages", json=posted, timeout=10)
    assert written.status_code == 200, written.text
    return str(written.json()["conversation_id"])


def test_a_supervisor_watches_reassigns_closes_and_sets_presence_from_the_supervisor_tab(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    _agent(admin, "kai", webchat=2)
    _agent(admin, "lee", webchat=2)
    _agent(admin, "sia", webchat=1)
    agent_side, supervisor_side = browser.new_context(), browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        agent = agent_side.new_page()
        _sign_in(agent, stack, "kai")
        _go_available(agent)
        first = _widget_message(stack, "v_sup1", "My voucher code is refused at checkout")
        expect(agent.locator(f'[data-testid="offer"][data-contact-id="{first}"]')).to_be_visible(timeout=WAIT_MS)
        agent.keyboard.press("Alt+A")
        expect(_item(agent, first)).to_be_visible(timeout=WAIT_MS)

        page = supervisor_side.new_page()
        _sign_in(page, stack, "sia", role="supervisor")
        page.get_by_test_id("tab-supervisor").click()
        sla = page.get_by_test_id("chart-sla")
        expect(sla.locator('[data-testid="chart-sla-bar"][data-queue="default"]')).to_have_count(1, timeout=WAIT_MS)
        expect(page.get_by_test_id("chart-wait").locator("svg")).to_have_attribute("aria-label", re.compile("default"))
        expect(page.get_by_test_id("chart-abandon")).to_be_visible()

        # Kai's open conversations; watch one live: what the visitor writes next shows without a reload.
        row = page.locator('[data-testid="agent-row"][data-agent-id="kai"]')
        row.get_by_test_id("agent-open-work").click()
        item = page.locator(f'[data-testid="agent-work-item"][data-conversation-id="{first}"]')
        expect(item).to_contain_text("My voucher code is refused", timeout=WAIT_MS)
        item.get_by_test_id("work-watch").click()
        watched = page.get_by_test_id("watch-message")
        expect(watched.filter(has_text="My voucher code is refused")).to_be_visible(timeout=WAIT_MS)
        _widget_message(stack, "v_sup1", "It says expired but it's valid until June")
        expect(watched.filter(has_text="valid until June")).to_be_visible(timeout=WAIT_MS)
        item.get_by_test_id("work-why").click()
        expect(page.locator('[data-testid="decision"]').first).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("decision-ranked").filter(has_text="kai").first).to_be_visible()
        _no_serious_accessibility_issue(page, "the supervisor tab, an agent's work and a watched conversation")
        screenshot(page, "supervisor_acting")

        # Reassign to Lee, who is Available: Kai's list drops it at once, Lee is offered it.
        admin.set_presence("lee", "Available")
        page.get_by_test_id("tab-supervisor").click()  # the pickers read who is there now
        target = item.get_by_test_id("work-reassign-target")
        target.select_option("agent_id:lee")
        item.get_by_test_id("work-reassign").click()
        expect(_item(agent, first)).to_have_count(0, timeout=WAIT_MS)
        moved = requests.get(f"{admin.api}/contacts/{first}", headers=admin.headers, timeout=10).json()
        assert moved["state"] in ("queued", "offered") and moved.get("assigned_to") in (None, "", "lee"), moved
        expect(item).to_have_count(0, timeout=WAIT_MS)

        # Close another of Kai's for him, as spam: his list drops it, his capacity is free again.
        admin.set_presence("lee", "Away")
        second = _widget_message(stack, "v_sup2", "WIN A PRIZE click here")
        expect(agent.locator(f'[data-testid="offer"][data-contact-id="{second}"]')).to_be_visible(timeout=WAIT_MS)
        agent.keyboard.press("Alt+A")
        expect(_item(agent, second)).to_be_visible(timeout=WAIT_MS)
        spam = page.locator(f'[data-testid="agent-work-item"][data-conversation-id="{second}"]')
        expect(spam).to_be_visible(timeout=WAIT_MS)
        spam.get_by_test_id("work-wrap-up").select_option(label="Spam")
        spam.get_by_test_id("work-close").click()
        expect(_item(agent, second)).to_have_count(0, timeout=WAIT_MS)
        closed = requests.get(f"{admin.api}/contacts/{second}", headers=admin.headers, timeout=10).json()
        assert closed["state"] == "closed" and closed["wrap_up"] == "spam", closed

        # Kai set Away from his row: his own console shows it.
        row.get_by_test_id("agent-set-presence").select_option("Away")
        expect(agent.get_by_test_id("presence-Away")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        expect(row.get_by_test_id("agent-presence")).to_have_text("Away", timeout=WAIT_MS)
    finally:
        agent_side.close()
        supervisor_side.close()
        for name in ("kai", "lee"):
            admin.set_presence(name, "Offline")
