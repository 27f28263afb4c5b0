"""End to end on the local stack (real HTTP, moto in server mode, the SQS pumps, the agent's WebSocket): a WhatsApp
customer's question is answered by the bot as an interactive message with reply buttons, sent to the fake Graph
API; a tap on "Talk to a person" routes the contact, and its offer reaches the agent's socket only then. An SMS
customer (German) gets the short answer and "reply 1 or 2" through the fake Twilio; a web-chat visitor the article
with the widget's buttons (issue 14's acceptance: each gets the right article)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from chalicelib.local.stack import LocalStack
from chalicelib.selfservice import HAND_OVER_CHOICE, SOLVED_CHOICE
from tests.fakes.providers import META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN, TWILIO, WHATSAPP, FakeProviders
from tests.support import CHANNEL_SECRETS, PUBLIC_BASE_URL, WEBCHAT_SECRET, fixture, twilio_headers

pytestmark = pytest.mark.e2e
APP_SECRET = "e2e-meta-app-secret"
ROUTING = """
queues:
  default:
    self_service: {channels: [whatsapp, sms, webchat], languages: [en, de]}
rules:
  - name: everything
    queue: default
"""


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LocalStack, FakeProviders]]:
    fake = FakeProviders(
        "AC" + "0" * 32, CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"], META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN
    ).start()
    env = pytest.MonkeyPatch()
    env.delenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", raising=False)
    env.setenv("META_APP_SECRET", APP_SECRET)
    env.setenv("META_ACCESS_TOKEN", META_ACCESS_TOKEN)
    env.setenv("META_GRAPH_BASE", fake.base_url)
    env.setenv("TWILIO_ACCOUNT_SID", fake.account_sid)
    env.setenv("TWILIO_AUTH_TOKEN", CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"])
    env.setenv("TWILIO_API_BASE", fake.base_url)
    env.setenv("WEBCHAT_SECRET", WEBCHAT_SECRET)
    env.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)  # what Twilio signs: the URL it was configured with
    from app import app

    try:
        with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as running:
            yield running, fake
    finally:
        env.undo()
        fake.stop()


def _token(stack: LocalStack, agent_id: str, role: str) -> str:
    response = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _whatsapp(stack: LocalStack, n: int, text: str | None = None, tap: str | None = None) -> None:
    """Meta's signed webhook for a customer's message (or tap on a reply button), posted over HTTP."""
    name = "whatsapp_interactive_button_reply.json" if tap else "whatsapp_text.json"
    document = json.loads(fixture(f"meta/{name}"))
    [message] = document["entry"][0]["changes"][0]["value"]["messages"]
    message.update(timestamp=str(int(time.time())), id=f"wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgg{n:032d}e2e")
    if tap:
        message["interactive"]["button_reply"] = {"id": tap, "title": "Talk to a person"}
    else:
        message["text"]["body"] = text
    body = json.dumps(document).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = requests.post(
        f"{stack.api_url}/webhooks/meta",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def _sent(fake: FakeProviders, count: int, api: str = WHATSAPP, timeout: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(fake.sent(api)) < count:
        assert time.monotonic() < deadline, f"the fake {api} API got {len(fake.sent(api))} messages, not {count}"
        time.sleep(0.1)
    return fake.sent(api)


def _offer(ws: ClientConnection, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            return None
        if event.get("type") == "offer":
            return dict(event)
    return None


def test_a_whatsapp_customer_gets_the_article_with_buttons_and_a_tap_hands_over(world) -> None:
    stack, fake = world
    admin = {"Authorization": f"Bearer {_token(stack, 'e2e-ops', 'admin')}"}
    published = requests.put(
        f"{stack.api_url}/admin/routing",
        data=ROUTING.encode(),
        headers={**admin, "Content-Type": "application/yaml"},
        timeout=30,
    )
    assert published.status_code == 200, published.text
    agent = {"agent_id": "e2e-ada", "name": "Ada", "max_per_channel": {"whatsapp": 2}, "presence": "Available"}
    assert requests.post(f"{stack.api_url}/agents", headers=admin, json=agent, timeout=10).status_code == 201

    with connect(f"{stack.ws_url}?token={_token(stack, 'e2e-ada', 'agent')}") as ws:
        _whatsapp(stack, 1, "What are your opening hours?")
        [answer] = _sent(fake, 1)
        interactive = answer.json["interactive"]
        assert answer.json["type"] == "interactive" and interactive["body"]["text"].endswith("Did this solve it?")
        assert "10:00" in interactive["body"]["text"], "the opening-hours article's short answer"
        ids = [b["reply"]["id"] for b in interactive["action"]["buttons"]]
        assert ids == [SOLVED_CHOICE, HAND_OVER_CHOICE]
        assert _offer(ws, 2.0) is None, "held back while the customer decides"

        _whatsapp(stack, 2, tap=HAND_OVER_CHOICE)
        offer = _offer(ws, 20.0)
        assert offer is not None and offer["channel"] == "whatsapp", "handed over: offered to a person"
    assert len(fake.sent(WHATSAPP)) == 1, "the bot said nothing more"


def test_an_sms_customer_gets_the_short_answer_and_reply_1_or_2(world) -> None:
    stack, fake = world
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    sid = "SM" + "e2" * 16
    form.update(From="+14155550177", MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body="Wann habt ihr geöffnet?")
    body = urlencode(form).encode()
    path = "/webhooks/twilio/messaging"
    answer = requests.post(f"{stack.api_url}{path}", data=body, headers=twilio_headers(path, body), timeout=10)
    assert answer.status_code == 200, answer.text
    [sms] = _sent(fake, 1, TWILIO)
    assert sms.form["To"] == "+14155550177" and "Montag bis Freitag" in sms.form["Body"], "the German article"
    assert sms.form["Body"].endswith("Antworten Sie 1, wenn das geholfen hat, oder 2 für eine Person.")


def test_a_web_chat_visitor_gets_the_article_with_the_widgets_buttons(world) -> None:
    stack, _fake = world
    written = requests.post(
        f"{stack.api_url}/widget/messages",
        json={"site": "acme", "visitor_id": "e2e-ss", "message_id": "m-1", "text": "How much is shipping?"},
        timeout=10,
    )
    assert written.status_code == 200, written.text
    conversation = written.json()["conversation_id"]
    url = f"{stack.api_url}/widget/conversations/{conversation}/messages?site=acme&visitor_id=e2e-ss"
    deadline = time.monotonic() + 20
    while True:
        seen = requests.get(url, timeout=10).json()["messages"]
        bots = [m for m in seen if m["from"] == "bot"]
        if bots or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [bot] = bots
    assert "shipping" in bot["text"].lower() and bot["text"].endswith("Did this solve it?")
    assert bot["choices"] == ["Yes", "Talk to a person"]
