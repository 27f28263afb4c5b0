"""The console's softphone in a real Chromium: the bundled Voice SDK loads under the console's CSP, and accepting
a call fetches a token, connects a Device with the contact id and shows the call bar.

Twilio's signalling and media cannot be reached here, so the test stops at the app's boundary: once the real SDK
file has loaded (``window.Twilio.Device`` is Twilio's), ``Twilio.Device`` is replaced by a recording stub with the
SDK's surface (``new Device(token, options)``, ``on``, ``state``, ``register``, ``unregister``, ``updateToken``,
``connect({params})`` giving a ``Call`` with ``on``, ``mute``, ``isMuted``, ``accept``, ``reject``,
``disconnect``; and ``ring(to)``, what Twilio does when a call reaches the registered Device: see
``test_console_consult``). What the stub was asked to do is then played to the app as Twilio would: the TwiML
App's signed request for that connect gets the contact's conference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.browser.conftest import SOFTPHONE_SETTINGS, Admin
from tests.browser.test_console import _go_available, _sign_in
from tests.fakes.providers import ACCOUNT_SID, FakeProviders
from tests.support import CHANNEL_SECRETS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e
WAIT_MS = 20_000
CALLER = "+14155550177"
BUSINESS_NUMBER = "+14155550100"

# Installed after the real SDK loaded: records what the console asks of the Device and of its Call.
STUB_DEVICE = """() => {
  const seen = { real: typeof window.Twilio.Device, constructed: [], connects: [], updated: [], muted: [], hangups: 0,
    registers: 0, unregisters: 0, accepted: 0, rejected: 0 };
  window.__softphone = seen;
  const events = (target) => {
    target.handlers = {};
    target.on = (name, fn) => { (target.handlers[name] = target.handlers[name] || []).push(fn); return target; };
    target.emit = (name, ...args) => (target.handlers[name] || []).forEach((fn) => fn(...args));
  };
  class Call {
    constructor(params, custom) {
      events(this); this.params = params; this.muted = false; this.customParameters = new Map(custom || []);
    }
    accept() { seen.accepted += 1; setTimeout(() => this.emit("accept", this), 50); }
    reject() { seen.rejected += 1; }
    mute(on = true) { this.muted = on; seen.muted.push(on); this.emit("mute", on, this); }
    isMuted() { return this.muted; }
    disconnect() { seen.hangups += 1; this.emit("disconnect", this); }
  }
  class Device {
    constructor(token, options) {
      events(this); seen.constructed.push({ token, options }); seen.device = this; this.state = "unregistered";
    }
    updateToken(token) { seen.updated.push(token); }
    // As the SDK: registering is asynchronous and allowed only from "unregistered" (unregister from "registered").
    register() {
      if (this.state !== "unregistered") return Promise.reject(new Error("register in state " + this.state));
      seen.registers += 1; this.state = "registering";
      const done = (resolve) => { this.state = "registered"; this.emit("registered"); resolve(); };
      return new Promise((resolve) => setTimeout(() => done(resolve), 50));
    }
    unregister() {
      if (this.state !== "registered") return Promise.reject(new Error("unregister in state " + this.state));
      seen.unregisters += 1; this.state = "unregistered"; this.emit("unregistered");
      return Promise.resolve();
    }
    // What Twilio's signalling does when a call to client:<identity>?<params> reaches this registered Device.
    ring(to) {
      const [address, query] = to.split("?");
      const custom = [...new URLSearchParams(query || "").entries()];
      const call = new Call({ From: "+14155550100", To: address, CallSid: "CA" + "9e".repeat(16) }, custom);
      seen.incoming = call;
      this.emit("incoming", call);
      return call;
    }
    connect(options) {
      seen.connects.push(options);
      const call = new Call(options.params);
      seen.call = call;
      setTimeout(() => { call.emit("ringing"); call.emit("accept", call); }, 100);
      return Promise.resolve(call);
    }
  }
  window.Twilio.Device = Device;
}"""


def _signed_post(stack: LocalStack, path: str, form: dict[str, str]) -> requests.Response:
    signed = stack.api_url + path + "".join(f"{k}{v}" for k, v in sorted(form.items()))
    digest = hmac.new(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode(), signed.encode(), hashlib.sha1).digest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": base64.b64encode(digest)}
    return requests.post(stack.api_url + path, data=urlencode(form), headers=headers, timeout=10)


def _incoming_call(stack: LocalStack, call_sid: str) -> requests.Response:
    return _signed_post(
        stack,
        "/webhooks/twilio/voice",
        {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": BUSINESS_NUMBER,
            "Caller": CALLER,
            "Direction": "inbound",
            "From": CALLER,
            "To": BUSINESS_NUMBER,
        },
    )


def _wait_for(page: Page, script: str) -> Any:
    """``script``'s value once truthy (polled: ``wait_for_function`` evals strings; the console's CSP forbids it)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never true: {script}")


def test_accepting_a_call_connects_the_softphone_with_the_contact_and_shows_the_call_bar(
    browser: Any, stack: LocalStack, admin: Admin, screenshot: Any
) -> None:
    admin.create_agent("vera", "voice")
    context = browser.new_context()
    try:
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda error: violations.append(f"page error: {error}"))
        token_responses: list[Any] = []
        page.on("response", lambda r: token_responses.append(r) if r.url.endswith("/voice/token") else None)
        sdk: list[tuple[int, str]] = []
        page.on("response", lambda r: sdk.append((r.status, r.url)) if "/console/voice-sdk/" in r.url else None)

        _sign_in(page, stack, "vera")
        # The real SDK, from this app, under the console's CSP.
        _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
        assert [status for status, _ in sdk] == [200] and sdk[0][1].startswith(stack.api_url + "/console/voice-sdk/")
        assert page.evaluate("typeof window.Twilio.Call") == "function"
        page.evaluate(STUB_DEVICE)
        _go_available(page)

        assert _incoming_call(stack, "CA" + "5b" * 16).status_code == 200
        offer = page.get_by_test_id("offer")
        expect(offer.get_by_test_id("offer-channel")).to_have_text("voice", timeout=WAIT_MS)
        contact_id = offer.get_attribute("data-contact-id")
        assert contact_id
        offer.get_by_test_id("offer-accept").click()

        connects = _wait_for(page, "window.__softphone.connects.length === 1 && window.__softphone.connects")
        assert connects == [{"params": {"contact_id": contact_id}}]
        [token] = [r.json()["token"] for r in token_responses if r.status == 200]
        assert len(token_responses) == 1
        [constructed] = page.evaluate("window.__softphone.constructed")
        assert constructed["token"] == token and constructed["options"]["closeProtection"] is True
        claims = jwt.decode(token, SOFTPHONE_SETTINGS["TWILIO_API_KEY_SECRET"], algorithms=["HS256"])
        assert claims["grants"]["identity"] == "ag_vera"
        assert claims["grants"]["voice"]["outgoing"]["application_sid"] == SOFTPHONE_SETTINGS["TWILIO_TWIML_APP_SID"]

        bar = page.get_by_test_id("call-bar")
        expect(bar).to_be_visible()
        expect(bar.get_by_test_id("call-state")).to_have_text("connected", timeout=WAIT_MS)
        expect(bar.get_by_test_id("call-timer")).to_have_text("0:01", timeout=WAIT_MS)
        screenshot(page, "softphone-call-bar")

        # What Twilio does with that connect: the TwiML App's Voice URL, signed, from the token's identity.
        joined = _signed_post(
            stack,
            "/webhooks/twilio/voice/agent",
            {
                "AccountSid": ACCOUNT_SID,
                "ApplicationSid": SOFTPHONE_SETTINGS["TWILIO_TWIML_APP_SID"],
                "CallSid": "CA" + "6c" * 16,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "From": "client:" + claims["grants"]["identity"],
                "Caller": "client:" + claims["grants"]["identity"],
                **connects[0]["params"],
            },
        )
        assert joined.status_code == 200, joined.text
        assert ET.fromstring(joined.text).findtext("Dial/Conference") == contact_id

        # Mute is the SDK's; the token is renewed when the SDK says it will expire.
        bar.get_by_test_id("call-mute").click()
        expect(bar.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "true")
        bar.get_by_test_id("call-mute").click()
        expect(bar.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "false")
        assert page.evaluate("window.__softphone.muted") == [True, False]
        page.evaluate("window.__softphone.device.emit('tokenWillExpire')")
        renewed = _wait_for(page, "window.__softphone.updated.length === 1 && window.__softphone.updated")
        assert len(token_responses) == 2 and renewed == [token_responses[1].json()["token"]]

        bar.get_by_test_id("call-hangup").click()
        expect(bar.get_by_test_id("call-state")).to_have_text("ended", timeout=WAIT_MS)
        assert page.evaluate("window.__softphone.hangups") == 1
        expect(bar.get_by_test_id("call-hangup")).to_be_disabled()
        expect(bar.get_by_test_id("call-mute")).to_be_disabled()
        time.sleep(0.2)
        assert violations == [], violations
    finally:
        context.close()


def test_an_agent_who_takes_calls_on_their_phone_is_told_so_and_the_console_does_not_dial(
    browser: Any, stack: LocalStack, admin: Admin
) -> None:
    body = {
        "agent_id": "pia",
        "name": "Pia",
        "max_per_channel": {"voice": 1},
        "presence": "Offline",
        "phone": "+14155550166",
        "voice_mode": "phone",
    }
    created = requests.post(f"{admin.api}/agents", json=body, headers=admin.headers, timeout=10)
    assert created.status_code == 201, created.text
    context = browser.new_context()
    try:
        page = context.new_page()
        _sign_in(page, stack, "pia")
        _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
        page.evaluate(STUB_DEVICE)
        _go_available(page)
        assert _incoming_call(stack, "CA" + "7d" * 16).status_code == 200
        offer = page.get_by_test_id("offer")
        expect(offer.get_by_test_id("offer-channel")).to_have_text("voice", timeout=WAIT_MS)
        offer.get_by_test_id("offer-accept").click()

        bar = page.get_by_test_id("call-bar")
        expect(bar.get_by_test_id("call-state")).to_have_text("calling your phone…", timeout=WAIT_MS)
        # The app's call controls work on the conference whichever way the agent joins it.
        expect(bar.get_by_test_id("call-hold")).to_be_enabled()
        expect(bar.get_by_test_id("call-hangup")).to_be_enabled()
        assert page.evaluate("window.__softphone.constructed.length + window.__softphone.connects.length") == 0
    finally:
        context.close()


def _world_post(url: str, form: list[tuple[str, str]]) -> tuple[int, str]:
    """How the fake Twilio reaches the local stack: the absolute URL it was given, signed with the auth token."""
    signed = url + "".join(f"{k}{v}" for k, v in sorted(form))
    digest = hmac.new(CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode(), signed.encode(), hashlib.sha1).digest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": base64.b64encode(digest)}
    answer = requests.post(url, data=urlencode(form), headers=headers, timeout=10)
    return answer.status_code, answer.text


def _until(check: Any) -> Any:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("never true")


def _bridged_softphone_call(page: Page, stack: LocalStack, fake: FakeProviders, agent_id: str) -> tuple[str, str, str]:
    """A caller (at the fake Twilio) offered to ``agent_id``'s console, accepted, the softphone's leg joined and the
    caller bridged into the conference: (contact id, caller's CallSid, the softphone leg's CallSid)."""
    world = fake.voice
    _sign_in(page, stack, agent_id)
    _wait_for(page, "window.Twilio && typeof window.Twilio.Device === 'function'")
    page.evaluate(STUB_DEVICE)
    _go_available(page)
    caller = world.incoming(
        stack.api_url + "/webhooks/twilio/voice",
        number=BUSINESS_NUMBER,
        status_url=stack.api_url + "/webhooks/twilio/status",
    )
    world.deliver(_world_post)
    offer = page.get_by_test_id("offer")
    expect(offer.get_by_test_id("offer-channel")).to_have_text("voice", timeout=WAIT_MS)
    contact_id = offer.get_attribute("data-contact-id")
    assert contact_id
    offer.get_by_test_id("offer-accept").click()
    [connect] = _wait_for(page, "window.__softphone.connects.length === 1 && window.__softphone.connects")
    expect(page.get_by_test_id("call-hold")).to_be_enabled(timeout=WAIT_MS)
    leg = world.client_call(
        stack.api_url + "/webhooks/twilio/voice/agent",
        "ag_" + agent_id,
        SOFTPHONE_SETTINGS["TWILIO_TWIML_APP_SID"],
        connect["params"],
    )
    world.deliver(_world_post)
    assert sorted(p.sid for p in world.participants(contact_id)) == sorted([caller.sid, leg.sid])
    return contact_id, caller.sid, leg.sid


def _voice_requests(fake: FakeProviders, suffix: str) -> list[Any]:
    return [r for r in fake.requests if r.api == "twilio_voice" and r.method == "POST" and r.path.endswith(suffix)]


def test_the_call_bar_holds_resumes_and_transfers_the_call_through_the_app(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders, screenshot: Any
) -> None:
    admin.create_agent("wren", "voice")
    context = browser.new_context()
    try:
        page = context.new_page()
        contact_id, caller, leg = _bridged_softphone_call(page, stack, fake_providers, "wren")
        world = fake_providers.voice
        bar = page.get_by_test_id("call-bar")

        bar.get_by_test_id("call-hold").click()
        expect(bar.get_by_test_id("call-hold")).to_have_text("Resume", timeout=WAIT_MS)
        [held] = [p for p in world.participants(contact_id) if p.label == "customer"]
        assert held.hold and held.sid == caller
        assert _voice_requests(fake_providers, "/Participants/customer.json")[-1].form["Hold"] == "true"
        screenshot(page, "softphone-call-on-hold")
        bar.get_by_test_id("call-hold").click()
        expect(bar.get_by_test_id("call-hold")).to_have_text("Hold", timeout=WAIT_MS)
        assert not held.hold

        bar.get_by_test_id("call-transfer-target").select_option("queue:default")  # a picker, not free text
        bar.get_by_test_id("call-transfer").click()
        expect(bar.get_by_test_id("call-state")).to_have_text("transferred", timeout=WAIT_MS)
        assert held.hold, "the caller waits on hold for the next agent"
        [ended] = [r for r in _voice_requests(fake_providers, f"/Calls/{leg}.json") if r.form.get("Status")]
        assert ended.form["Status"] == "completed" and world.calls[leg].status == "completed"
        expect(bar.get_by_test_id("call-hangup")).to_be_disabled()
        world.deliver(_world_post)  # the softphone leg's leave: nothing moves
        contact = requests.get(f"{admin.api}/contacts/{contact_id}", headers=admin.headers, timeout=10).json()
        assert contact["state"] in ("queued", "offered") and contact.get("assigned_to") in (None, "")
    finally:
        context.close()


def test_the_call_bar_hang_up_ends_the_callers_call_through_the_app(
    browser: Any, stack: LocalStack, admin: Admin, fake_providers: FakeProviders
) -> None:
    admin.create_agent("yuri", "voice")
    context = browser.new_context()
    try:
        page = context.new_page()
        contact_id, caller, _leg = _bridged_softphone_call(page, stack, fake_providers, "yuri")
        world = fake_providers.voice
        bar = page.get_by_test_id("call-bar")

        # A consult of a colleague on their own phone, then cancelled: both through the app's API.
        body = {"agent_id": "zed", "name": "Zed", "max_per_channel": {"voice": 1}, "presence": "Available"}
        body.update(phone="+14155550144", voice_mode="phone")
        created = requests.post(f"{admin.api}/agents", json=body, headers=admin.headers, timeout=10)
        assert created.status_code == 201, created.text
        bar.get_by_test_id("call-transfer-target").focus()  # the picker reads who is there now: Zed just came
        bar.get_by_test_id("call-transfer-target").select_option("agent_id:zed")
        bar.get_by_test_id("call-consult").click()
        expect(bar.get_by_test_id("call-cancel-consult")).to_be_visible(timeout=WAIT_MS)
        expect(bar.get_by_test_id("call-handover")).to_be_visible()
        [added] = _voice_requests(fake_providers, "/Participants.json")[-1:]
        assert (added.form["To"], added.form["Label"]) == ("+14155550144", "consult")
        [held] = [p for p in world.participants(contact_id) if p.label == "customer"]
        assert held.hold, "the caller holds during the consult"
        world.answer(added.answer["call_sid"])
        world.deliver(_world_post)
        bar.get_by_test_id("call-cancel-consult").click()
        expect(bar.get_by_test_id("call-consult")).to_be_visible(timeout=WAIT_MS)
        assert world.calls[added.answer["call_sid"]].status == "completed" and not held.hold
        world.deliver(_world_post)

        bar.get_by_test_id("call-hangup").click()
        expect(bar.get_by_test_id("call-state")).to_have_text("ended", timeout=WAIT_MS)
        [ended] = [r for r in _voice_requests(fake_providers, f"/Calls/{caller}.json") if r.form.get("Status")]
        assert ended.form["Status"] == "completed"
        assert fake_providers.voice.calls[caller].status == "completed"
        assert page.evaluate("window.__softphone.hangups") == 1
        fake_providers.voice.deliver(_world_post)
    finally:
        context.close()
