"""The local stack under concurrent posters: DynamoDB's requests are atomic, so the stand-in's must be too.

moto's transactions deep-copy a table and restore the copy when a condition
fails, which erased writes that other requests made meanwhile (messages lost or
doubled, customer profiles gone). 20 threads post 300 signed web-chat messages,
a third of them provider retries of a message already posted, to the real app
on the local stack over HTTP.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from websockets.sync.client import connect

from chalicelib.local.stack import LocalStack
from tests.support import WEBCHAT_SECRET, iter_contacts, signed, stored_messages, webchat_payload

pytestmark = pytest.mark.e2e
VISITORS = 100
POSTERS = 20
AGENTS = 3
# Room for every conversation at once, so each one is offered without waiting for a close.
CHATS_PER_AGENT = 50


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WEBCHAT_SECRET", WEBCHAT_SECRET)
    from app import app

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0, retry_delay_seconds=1) as running:
        yield running
    monkeypatch.undo()


def _token(stack: LocalStack, agent_id: str, role: str) -> str:
    response = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


class AgentAtDesk(threading.Thread):
    """An agent's console on the WebSocket that accepts every offer it gets (so none expires meanwhile)."""

    def __init__(self, ws_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{ws_url}?token={token}"
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.offered: list[str] = []

    def run(self) -> None:
        with connect(self.url, open_timeout=10) as ws:
            self.connected.set()
            while not self.stopping.is_set():
                try:
                    event = json.loads(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                if event.get("type") == "offer":
                    self.offered.append(event["contact_id"])
                    ws.send(
                        json.dumps(
                            {"action": "accept", "contact_id": event["contact_id"], "offer_id": event["offer_id"]}
                        )
                    )


def _posts() -> list[tuple[str, str, str]]:
    """(visitor, message id, text): two messages per visitor and a retry of the first, shuffled."""
    posts = []
    for n in range(VISITORS):
        visitor = f"conc-v{n:03d}"
        posts += [
            (visitor, f"{visitor}-m1", "Hello, where is my order?"),
            (visitor, f"{visitor}-m2", f"It is order {1000 + n}."),
            (visitor, f"{visitor}-m1", "Hello, where is my order?"),  # the provider's retry
        ]
    random.Random(18).shuffle(posts)
    return posts


def test_300_concurrent_signed_posts_store_each_message_once_and_offer_every_conversation(stack: LocalStack) -> None:
    admin = {"Authorization": f"Bearer {_token(stack, 'conc-admin', 'admin')}"}
    for n in range(AGENTS):
        created = requests.post(
            f"{stack.api_url}/agents",
            headers=admin,
            json={
                "agent_id": f"conc-agent-{n}",
                "name": f"Agent {n}",
                "capacity": 20 * CHATS_PER_AGENT,
                "max_per_channel": {"webchat": CHATS_PER_AGENT},
                "presence": "Available",
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
    desks = [AgentAtDesk(stack.ws_url, _token(stack, f"conc-agent-{n}", "agent")) for n in range(AGENTS)]
    for desk in desks:
        desk.start()
        assert desk.connected.wait(10)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=POSTERS))

    def post(item: tuple[str, str, str]) -> tuple[str, str, int, dict]:
        visitor, message_id, text = item
        body = json.dumps(webchat_payload(visitor, message_id, text)).encode()
        response = session.post(f"{stack.api_url}/webhooks/webchat", data=body, headers=signed(body), timeout=30)
        try:
            answer = response.json()
        except ValueError:
            answer = {"raw": response.text[:200]}
        return visitor, message_id, response.status_code, answer

    posts = _posts()
    with ThreadPoolExecutor(max_workers=POSTERS) as pool:
        answers = list(pool.map(post, posts))
    stack.pump.drain(timeout=180)

    failed = [(m, status, answer) for _, m, status, answer in answers if status != 200]
    assert not failed, f"{len(failed)} posts failed: {failed[:5]}"
    statuses = Counter((m, a["status"]) for _, m, _, a in answers)
    for _, message_id, _ in posts:
        assert statuses[(message_id, "accepted")] == 1, f"{message_id} accepted {statuses[(message_id, 'accepted')]}x"
    conversation_of = {v: {a["conversation_id"] for w, _, _, a in answers if w == v} for v, _, _ in posts}
    assert all(len(ids) == 1 for ids in conversation_of.values()), "a visitor's messages split across conversations"
    conversations = {ids.pop() for ids in conversation_of.values()}
    assert len(conversations) == VISITORS

    stored = Counter(m["provider_message_id"].removeprefix("acme-shop/") for m in stored_messages())
    expected = {message_id for _, message_id, _ in posts}
    assert sorted(m for m, count in stored.items() if count > 1) == [], "messages stored twice"
    assert sorted(expected - set(stored)) == [], "messages lost"
    # Every visitor is one customer whose profile survived, with both messages in the timeline.
    for visitor in conversation_of:
        (customer_id,) = {a["customer_id"] for w, _, _, a in answers if w == visitor}
        profile = requests.get(f"{stack.api_url}/customers/{customer_id}", headers=admin, timeout=10)
        assert profile.status_code == 200, profile.text
        timeline = {m["provider_message_id"] for m in profile.json()["timeline"] if m.get("direction") == "inbound"}
        assert timeline == {f"acme-shop/{visitor}-m1", f"acme-shop/{visitor}-m2"}

    for desk in desks:
        desk.stopping.set()
        desk.join(10)
    offered = Counter(contact for desk in desks for contact in desk.offered)
    assert sorted(conversations - set(offered)) == [], "conversations never offered"
    contacts = {c["contact_id"]: c for c in iter_contacts()}
    assert {contacts[c]["state"] for c in conversations} == {"assigned"}
