"""Issue 14, end to end on the local stack: self-service published as ops publish it (``PUT /admin/routing``), signed
webhooks in over real HTTP, the bot's answers out through the providers' APIs (the fakes of tests/fakes), offers to
an agent's WebSocket.

- a web-chat and an SMS customer each get the article that answers them;
- "Talk to a person" and a "no" route the contact, the bot's exchange in the agent's timeline;
- where self-service is off (a queue without it, a channel it does not list) the contact routes at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from chalicelib.channels.signing import sign_sha256, sign_twilio
from chalicelib.local.stack import LocalStack
from tests.fakes.providers import FakeProviders

pytestmark = pytest.mark.e2e

T = TypeVar("T")
WEBCHAT_SECRET = "e2e-self-service-webchat"
TWILIO_AUTH_TOKEN = "e2e-self-service-twilio-token"
ACCOUNT_SID = "AC" + "5" * 32
TELEGRAM_SECRET = "e2e-self-service-telegram-secret"
TELEGRAM_BOT_TOKEN = "7000000001:e2e-self-service-bot-token"
SUPPORT_NUMBER = "+14155550100"
ROUTING = """
queues:
  default:
    self_service: {channels: [webchat, sms], languages: [en, de]}
  orders: {}
rules:
  - name: an order problem goes straight to a person
    when: {text_matches: "(?i)\\\\border\\\\b"}
    queue: orders
  - name: everything else
    queue: default
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    providers = FakeProviders(ACCOUNT_SID, TWILIO_AUTH_TOKEN, "e2e-meta-token", TELEGRAM_BOT_TOKEN).start()
    yield providers
    providers.stop()


@pytest.fixture(scope="module")
def stack(fake: FakeProviders) -> Iterator[LocalStack]:
    env = pytest.MonkeyPatch()
    env.setenv("WEBCHAT_SECRET", WEBCHAT_SECRET)
    env.setenv("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN)
    env.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    env.setenv("TELEGRAM_SECRET_TOKEN", TELEGRAM_SECRET)
    env.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_BOT_TOKEN)
    for name in ("TWILIO_API_BASE", "META_GRAPH_BASE", "TELEGRAM_API_BASE"):
        env.setenv(name, fake.base_url)
    env.delenv("PUBLIC_BASE_URL", raising=False)  # Twilio signs the URL it posts to: the local API's
    env.delenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", raising=False)
    from app import app

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as running:
        admin = _headers(running, "e2e-ops", "admin")
        published = requests.put(
            f"{running.api_url}/admin/routing",
            data=ROUTING.encode(),
            headers={**admin, "Content-Type": "application/yaml"},
            timeout=30,
        )
        assert published.status_code == 200, published.text
        agent = {"agent_id": "e2e-kim", "name": "Kim", "presence": "Available", "queues": ["default", "orders"]}
        agent["max_per_channel"] = {"webchat": 5, "sms": 5, "telegram": 5, "whatsapp": 5}
        created = requests.post(f"{running.api_url}/agents", headers=admin, json=agent, timeout=10)
        assert created.status_code == 201, created.text
        yield running
    env.undo()


@pytest.fixture
def kim(stack: LocalStack) -> Iterator[ClientConnection]:
    with connect(f"{stack.ws_url}?token={_token(stack, 'e2e-kim', 'agent')}") as ws:
        yield ws


def _token(stack: LocalStack, agent_id: str, role: str) -> str:
    response = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _headers(stack: LocalStack, agent_id: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(stack, agent_id, role)}"}


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def _offer(ws: ClientConnection, conversation_id: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
    """The next offer (of ``conversation_id`` when given), accepted so the agent can be offered the next one."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = json.loads(ws.recv(timeout=left))
        if event.get("type") == "offer" and conversation_id in (None, event.get("contact_id")):
            accept = {"action": "accept", "contact_id": event["contact_id"], "offer_id": event["offer_id"]}
            ws.send(json.dumps(accept))
            while (left := deadline - time.monotonic()) > 0:
                if json.loads(ws.recv(timeout=left)).get("type") == "accepted":
                    return dict(event)

    raise AssertionError(f"no offer of {conversation_id or 'anything'} within {timeout} s")


def _close(stack: LocalStack, conversation: str) -> None:
    """The agent wraps the conversation up, so their capacity is free for the next test's contact."""
    response = requests.post(
        f"{stack.api_url}/conversations/{conversation}/close",
        headers=_headers(stack, "e2e-kim", "agent"),
        json={"wrap_up": "resolved"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _no_offer(ws: ClientConnection, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            return
        assert event.get("type") != "offer", f"offered while the bot holds it: {event}"


def _webchat(stack: LocalStack, visitor: str, text: str) -> str:
    payload = {"site": "acme-shop", "visitor_id": visitor, "message_id": uuid.uuid4().hex, "text": text}
    payload["language"] = "en"
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{stack.api_url}/webhooks/webchat",
        data=body,
        headers={"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(WEBCHAT_SECRET, body)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["conversation_id"])


def _widget_messages(stack: LocalStack, visitor: str, conversation: str) -> list[dict[str, Any]]:
    query = urlencode({"site": "acme-shop", "visitor_id": visitor})
    response = requests.get(f"{stack.api_url}/widget/conversations/{conversation}/messages?{query}", timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def _sms(stack: LocalStack, phone: str, text: str) -> str:
    sid = "SM" + uuid.uuid4().hex
    params = [
        ("AccountSid", ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("From", phone),
        ("To", SUPPORT_NUMBER),
        ("FromCountry", "GB"),
        ("Body", text),
    ]
    from chalicelib.settings import get_settings

    signed = get_settings().public_base_url + "/webhooks/twilio/messaging"  # the URL configured at Twilio
    response = requests.post(
        f"{stack.api_url}/webhooks/twilio/messaging",
        data=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign_twilio(TWILIO_AUTH_TOKEN, signed, params),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return sid


def _texts_to(fake: FakeProviders, phone: str) -> list[str]:
    return [sent.form["Body"] for sent in fake.sent("twilio") if sent.form.get("To") == phone]


def _timeline(stack: LocalStack, conversation: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{stack.api_url}/conversations/{conversation}", headers=_headers(stack, "e2e-kim", "agent"), timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["timeline"])


def _conversation_of_phone(phone: str) -> str:
    """The SMS customer's open conversation, read from the stack's table (moto server)."""
    from chalicelib.conversations.models import PHONE, Identity
    from chalicelib.store import conversations

    def probe() -> str | None:
        customer = conversations.customers_of([Identity(PHONE, phone)]).get(f"{PHONE}#{phone}")
        profile = conversations.get_customer(customer) if customer else None
        return str(profile["open_conversation_id"]) if profile and profile.get("open_conversation_id") else None

    return _eventually(probe, f"open conversation of {phone}")


def test_a_web_chat_customer_gets_the_article_that_answers_them_and_is_not_routed(
    stack: LocalStack, kim: ClientConnection
) -> None:
    conversation = _webchat(stack, "e2e-hours", "When are you open on Saturday?")

    bot = _eventually(
        lambda: [m for m in _widget_messages(stack, "e2e-hours", conversation) if m["from"] == "bot"],
        "bot answer in the widget",
    )
    assert "opening hours" in bot[0]["text"].lower()
    assert bot[0]["choices"] == ["Yes", "Talk to a person"]
    _no_offer(kim)


def test_an_sms_customer_gets_the_short_answer_and_reply_1_or_2(
    stack: LocalStack, fake: FakeProviders, kim: ClientConnection
) -> None:
    phone = "+447700900141"
    _sms(stack, phone, "How much does shipping cost?")

    [answer] = _eventually(lambda: _texts_to(fake, phone), "SMS answer")
    assert "shipping" in answer.lower() or "delivery" in answer.lower()
    assert "Reply 1 if this solved it, 2 to talk to a person." in answer
    _no_offer(kim)


def test_talk_to_a_person_routes_the_contact_with_the_bot_exchange_in_the_timeline(
    stack: LocalStack, kim: ClientConnection
) -> None:
    conversation = _webchat(stack, "e2e-person", "Which payment methods do you accept?")
    _eventually(
        lambda: [m for m in _widget_messages(stack, "e2e-person", conversation) if m["from"] == "bot"], "bot answer"
    )
    _webchat(stack, "e2e-person", "Talk to a person")

    offer = _offer(kim, conversation)
    assert offer["channel"] == "webchat"
    texts = [(m.get("author") or m["direction"], m["text"]) for m in _timeline(stack, conversation)]
    assert texts[0] == ("inbound", "Which payment methods do you accept?")
    assert any(author == "bot" and "Did this solve it?" in text for author, text in texts), texts
    assert texts[-1] == ("inbound", "Talk to a person")
    _close(stack, conversation)


def test_a_no_by_sms_routes_the_contact_too(stack: LocalStack, fake: FakeProviders, kim: ClientConnection) -> None:
    phone = "+447700900142"
    _sms(stack, phone, "How long does delivery take?")
    _eventually(lambda: _texts_to(fake, phone), "SMS answer")
    conversation = _conversation_of_phone(phone)
    _sms(stack, phone, "no")

    offer = _offer(kim, conversation)
    assert offer["channel"] == "sms"
    assert [m["text"] for m in _timeline(stack, conversation)][-1] == "no"
    _close(stack, conversation)


def test_a_queue_without_self_service_routes_at_once(stack: LocalStack, kim: ClientConnection) -> None:
    conversation = _webchat(stack, "e2e-order", "My order never arrived, where is it?")

    _offer(kim, conversation)
    assert not [m for m in _widget_messages(stack, "e2e-order", conversation) if m["from"] == "bot"]
    _close(stack, conversation)


def test_a_channel_self_service_does_not_list_routes_at_once(stack: LocalStack, kim: ClientConnection) -> None:
    update = {
        "update_id": 880000001,
        "message": {
            "message_id": 17,
            "from": {"id": 5193621111, "is_bot": False, "first_name": "Ola", "language_code": "en"},
            "chat": {"id": 5193621111, "first_name": "Ola", "type": "private"},
            "date": int(time.time()),
            "text": "What are your opening hours?",
        },
    }
    response = requests.post(
        f"{stack.api_url}/webhooks/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text

    offer = _offer(kim)
    assert offer["channel"] == "telegram"
    conversation = str(offer["contact_id"])
    assert not [m for m in _timeline(stack, conversation) if m.get("author") == "bot"]
    _close(stack, conversation)
