"""End to end on the local stack: real HTTP, a real WebSocket client, moto in server mode, the SQS pump.

A signed web-chat message goes in over HTTP; the offer is pushed to the
agent's WebSocket; the agent accepts over the same socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from chalicelib.channels.signing import sign_sha256
from chalicelib.local.stack import LocalStack

pytestmark = pytest.mark.e2e
SECRET = "e2e-webchat-secret"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WEBCHAT_SECRET", SECRET)
    from app import app

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as running:
        yield running
    monkeypatch.undo()


def _next(ws: ClientConnection, kind: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = json.loads(ws.recv(timeout=left))
        if event.get("type") == kind:
            return dict(event)
    raise AssertionError(f"no {kind} within {timeout} s")


def _post(stack: LocalStack, payload: dict[str, Any], secret: str = SECRET) -> requests.Response:
    body = json.dumps(payload).encode()
    return requests.post(
        f"{stack.api_url}/webhooks/webchat",
        data=body,
        headers={"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(secret, body)},
        timeout=10,
    )


def _token(stack: LocalStack, agent_id: str, role: str) -> str:
    response = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def test_message_in_offer_pushed_accept(stack: LocalStack) -> None:
    admin = {"Authorization": f"Bearer {_token(stack, 'e2e-admin', 'admin')}"}
    created = requests.post(
        f"{stack.api_url}/agents",
        headers=admin,
        json={"agent_id": "e2e-ada", "name": "Ada", "max_per_channel": {"webchat": 2}, "presence": "Available"},
        timeout=10,
    )
    assert created.status_code == 201, created.text

    with connect(f"{stack.ws_url}?token={_token(stack, 'e2e-ada', 'agent')}") as ws:
        response = _post(stack, {"site": "acme", "visitor_id": "e2e-v1", "message_id": "e2e-m1", "text": "Hi!"})
        assert response.status_code == 200, response.text
        conversation = response.json()["conversation_id"]

        offer = _next(ws, "offer")
        assert offer["contact_id"] == conversation
        assert offer["channel"] == "webchat"

        ws.send(json.dumps({"action": "accept", "contact_id": conversation, "offer_id": offer["offer_id"]}))
        assert _next(ws, "accepted")["contact_id"] == conversation

    contact = requests.get(f"{stack.api_url}/contacts/{conversation}", headers=admin, timeout=10).json()
    assert contact["state"] == "assigned" and contact["assigned_to"] == "e2e-ada"


def test_forged_webhook_is_refused_over_http(stack: LocalStack) -> None:
    response = _post(stack, {"site": "acme", "visitor_id": "e2e-v2", "message_id": "e2e-m2", "text": "x"}, "wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"


def test_websocket_needs_a_token_of_a_known_agent(stack: LocalStack) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused, connect(f"{stack.ws_url}?token={_token(stack, 'nobody', 'agent')}"):
        pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as unsigned, connect(f"{stack.ws_url}?agent_id=e2e-ada"):
        pass
    assert unsigned.value.response.status_code == 401


def test_a_visitors_widget_socket_gets_the_agents_reply_pushed_and_a_gone_one_is_forgotten(stack: LocalStack) -> None:
    """Issue 12: the local gateway carries the widget's WebSocket as API Gateway does: only the conversation's
    visitor may connect, the agent's reply is pushed to it, and once it is closed the next push forgets it."""
    from websockets.exceptions import InvalidStatus

    from chalicelib import clock
    from chalicelib.store import visitor_connections

    admin = {"Authorization": f"Bearer {_token(stack, 'e2e-admin', 'admin')}"}
    # Earlier tests' agents must not take this visitor's offer.
    requests.put(f"{stack.api_url}/agents/e2e-ada/presence", headers=admin, json={"presence": "Offline"}, timeout=10)
    body = {"agent_id": "e2e-wen", "name": "Wen", "max_per_channel": {"webchat": 2}, "presence": "Available"}
    assert requests.post(f"{stack.api_url}/agents", headers=admin, json=body, timeout=10).status_code == 201
    agent_token = _token(stack, "e2e-wen", "agent")

    with connect(f"{stack.ws_url}?token={agent_token}") as agent:
        written = requests.post(
            f"{stack.api_url}/widget/messages",
            json={"site": "acme", "visitor_id": "e2e-grace", "message_id": "m-1", "text": "Is it in stock?"},
            timeout=10,
        )
        assert written.status_code == 200, written.text
        conversation = written.json()["conversation_id"]
        offer = _next(agent, "offer")
        agent.send(json.dumps({"action": "accept", "contact_id": conversation, "offer_id": offer["offer_id"]}))
        _next(agent, "accepted")

    def widget(visitor: str) -> str:
        return f"{stack.ws_url}?site=acme&visitor_id={visitor}&conversation_id={conversation}"

    with pytest.raises(InvalidStatus) as refused, connect(widget("e2e-mallory")):
        pass
    assert refused.value.response.status_code == 403

    def reply(text: str) -> None:
        answer = requests.post(
            f"{stack.api_url}/conversations/{conversation}/messages",
            headers={"Authorization": f"Bearer {agent_token}"},
            json={"text": text},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

    with connect(widget("e2e-grace")) as visitor:
        reply("Yes, two left.")
        frame = _next(visitor, "message")
        assert frame["conversation_id"] == conversation
        assert frame["message"]["from"] == "agent" and frame["message"]["text"] == "Yes, two left."
        assert len(visitor_connections.of(conversation, clock.now_iso())) == 1

    reply("Shall I reserve one?")  # nobody listens: the push finds the connection gone and forgets it
    deadline = time.monotonic() + 15
    while visitor_connections.of(conversation, clock.now_iso()):
        assert time.monotonic() < deadline, "the gone widget connection was never forgotten"
        time.sleep(0.1)
