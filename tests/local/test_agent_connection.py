"""An agent's WebSocket as API Gateway runs it: closed after 10 minutes without data and after 2 hours in any case.

The local gateway enforces both limits, scaled down: 1 s stands for the 10-minute idle timeout and 3 s for the
2-hour limit, so 18 s stand for a three-hour stretch of a shift. A client that behaves like the console (a
heartbeat at once and then well inside the idle limit, a reconnect whenever the socket closes, and its open
work fetched again after each reconnect) stays Available and keeps receiving offers; a client that sends no
heartbeat is closed by the idle timeout and, with no reconnect within the grace period, goes Offline while its
open offer moves on. Every wait polls a condition with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chalicelib.channels.signing import sign_sha256
from chalicelib.local.stack import LocalStack

SECRET = "local-connection-webchat-secret"
MINUTES_10 = 1.0  # the idle timeout, scaled
HOURS_2 = 3.0  # the connection limit, scaled
SCALE = 600 / MINUTES_10  # real seconds per test second
HEARTBEAT = 240 / SCALE  # the console's 4 minutes
GRACE_SECONDS = 3  # the reconnect grace period (whole seconds: SQS delays are whole seconds)
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WEBCHAT_SECRET", SECRET)
    monkeypatch.setenv("SWITCHBOARD_RECONNECT_GRACE_SECONDS", str(GRACE_SECONDS))
    from app import app

    with LocalStack(
        app,
        api_port=0,
        ws_port=0,
        management_port=0,
        moto_port=0,
        ws_idle_timeout_seconds=MINUTES_10,
        ws_max_connection_seconds=HOURS_2,
    ) as running:
        _warm_up(running)
        yield running
    monkeypatch.undo()


def _warm_up(stack: LocalStack) -> None:
    """One heartbeat answered before the tests start. A fresh stack's first WebSocket message runs cold (imports,
    first clients); on a loaded two-core CI machine that took longer than the scaled 2-hour life of the socket,
    so the first connection of a test was closed before its answer came. Retried on a new socket until answered."""
    _create_agent(stack, "warm-up", "Offline")
    deadline = time.monotonic() + 60
    while True:
        with connect(f"{stack.ws_url}?token={_token(stack, 'warm-up')}", open_timeout=10) as ws:
            ws.send(json.dumps({"action": "heartbeat"}))
            try:
                if json.loads(ws.recv(timeout=HOURS_2)).get("type") == "presence":
                    return
            except (TimeoutError, ConnectionClosed):
                pass
        if time.monotonic() > deadline:
            raise AssertionError("the local WebSocket never answered a heartbeat")


def wait_for(condition: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _token(stack: LocalStack, agent_id: str, role: str = "agent") -> str:
    response = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _as(stack: LocalStack, agent_id: str, role: str = "agent") -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(stack, agent_id, role)}"}


def _create_agent(stack: LocalStack, agent_id: str, presence: str) -> None:
    body = {"agent_id": agent_id, "name": agent_id.title(), "max_per_channel": {"webchat": 3}, "presence": presence}
    response = requests.post(f"{stack.api_url}/agents", headers=_as(stack, "root", "admin"), json=body, timeout=10)
    assert response.status_code == 201, response.text


def _presence(stack: LocalStack, agent_id: str) -> str:
    response = requests.get(f"{stack.api_url}/agents/{agent_id}", headers=_as(stack, agent_id), timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["presence"])


def _set_presence(stack: LocalStack, agent_id: str, presence: str) -> None:
    response = requests.put(
        f"{stack.api_url}/agents/{agent_id}/presence", headers=_as(stack, agent_id), json={"presence": presence}
    )
    assert response.status_code == 200, response.text


def _customer_writes(stack: LocalStack, visitor: str) -> str:
    """A signed web-chat message from a new visitor; returns its conversation id."""
    payload = {"site": "acme", "visitor_id": visitor, "message_id": uuid.uuid4().hex, "text": "Is my order on its way?"}
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{stack.api_url}/webhooks/webchat",
        data=body,
        headers={"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(SECRET, body)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["conversation_id"])


class ConsoleLikeClient:
    """What the console does with its WebSocket: a heartbeat as soon as the socket opens and every ``heartbeat``
    seconds after, a reconnect whenever the socket closes, and after each (re)connect its open offers fetched
    from ``GET /me/conversations`` (an offer pushed while the socket was closing is not lost)."""

    def __init__(self, stack: LocalStack, agent_id: str, heartbeat: float = HEARTBEAT) -> None:
        self._stack, self.agent_id, self._heartbeat = stack, agent_id, heartbeat
        self._lock = threading.Lock()
        self.frames: list[tuple[int, dict[str, Any]]] = []  # (connection number, frame)
        self.listed_offers: set[str] = set()
        self.close_codes: list[int | None] = []
        self.connections = 0
        self._stop = threading.Event()
        self._outgoing: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"console-{agent_id}", daemon=True)

    def __enter__(self) -> ConsoleLikeClient:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def of_type(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [(n, f) for n, f in self.frames if f.get("type") == kind]

    def offered(self) -> set[str]:
        """Conversations offered to this agent: pushed, or listed as offered after a reconnect."""
        with self._lock:
            return {f["contact_id"] for _, f in self.frames if f.get("type") == "offer"} | set(self.listed_offers)

    def _run(self) -> None:
        while not self._stop.is_set():
            url = f"{self._stack.ws_url}?token={_token(self._stack, self.agent_id)}"
            with connect(url, open_timeout=10) as ws:
                with self._lock:
                    self.connections += 1
                    number = self.connections
                ws.send(json.dumps({"action": "heartbeat"}))
                self._fetch_open_offers()
                next_beat = time.monotonic() + self._heartbeat
                try:
                    while not self._stop.is_set():
                        while not self._outgoing.empty():
                            ws.send(self._outgoing.get())
                        if time.monotonic() >= next_beat:
                            ws.send(json.dumps({"action": "heartbeat"}))
                            next_beat = time.monotonic() + self._heartbeat
                        try:
                            raw = ws.recv(timeout=min(0.05, max(0.0, next_beat - time.monotonic())))
                        except TimeoutError:
                            continue
                        with self._lock:
                            self.frames.append((number, json.loads(raw)))
                except ConnectionClosed as closed:
                    with self._lock:
                        self.close_codes.append(closed.rcvd.code if closed.rcvd else None)

    def _fetch_open_offers(self) -> None:
        response = requests.get(
            f"{self._stack.api_url}/me/conversations", headers=_as(self._stack, self.agent_id), timeout=10
        )
        offered = {c["conversation_id"] for c in response.json()["conversations"] if c["state"] == "offered"}
        with self._lock:
            self.listed_offers |= offered


def test_a_console_like_client_stays_available_and_gets_offers_for_three_hours(stack: LocalStack) -> None:
    _create_agent(stack, "shift-ada", "Available")
    half_hour = 3 * MINUTES_10  # quiet after each customer: three idle timeouts long
    posted: list[str] = []
    with ConsoleLikeClient(stack, "shift-ada") as console:
        started = time.monotonic()
        for _ in range(6):  # a customer, then a quiet half hour, six times: three hours
            conversation = _customer_writes(stack, f"shift-visitor-{len(posted)}")
            posted.append(conversation)
            wait_for(lambda c=conversation: c in console.offered(), what=f"the offer of {conversation}")
            accepted = requests.post(
                f"{stack.api_url}/conversations/{conversation}/accept", headers=_as(stack, "shift-ada"), timeout=10
            )
            assert accepted.status_code == 200, accepted.text
            closed = requests.post(
                f"{stack.api_url}/conversations/{conversation}/close",
                headers=_as(stack, "shift-ada"),
                json={"wrap_up": "resolved"},
                timeout=10,
            )
            assert closed.status_code == 200, closed.text
            assert _presence(stack, "shift-ada") == "Available"
            quiet_until = time.monotonic() + half_hour
            wait_for(lambda until=quiet_until: time.monotonic() >= until, what="a quiet stretch")

        assert time.monotonic() - started >= 6 * half_hour
        assert _presence(stack, "shift-ada") == "Available"
        connections, close_codes = console.connections, list(console.close_codes)
        heartbeats = console.of_type("presence")
        offers = console.of_type("offer")
    _set_presence(stack, "shift-ada", "Offline")

    assert set(posted) <= console.offered(), "every customer was offered to her"
    assert connections - 1 >= 5, "the gateway closed her socket at its 2-hour limit, and the console came back"
    assert set(close_codes) == {1001}, "closed by the gateway (Going away), never for idling"
    assert heartbeats and {f["presence"] for _, f in heartbeats} == {"Available"}
    assert set(range(1, connections)) <= {n for n, _ in heartbeats}, "each connection was told her presence"
    assert any(n > 1 for n, _ in offers), "offers are still pushed after a reconnect"


def test_without_heartbeat_the_idle_socket_closes_and_after_the_grace_period_the_offer_moves_on(
    stack: LocalStack,
) -> None:
    _create_agent(stack, "idle-cyd", "Available")
    _create_agent(stack, "idle-bob", "Away")
    conversation = _customer_writes(stack, "idle-visitor")
    admin = _as(stack, "root", "admin")

    def offered_to() -> str | None:
        contact = requests.get(f"{stack.api_url}/contacts/{conversation}", headers=admin, timeout=10).json()
        return contact.get("offered_to")

    assert wait_for(offered_to, what="the offer") == "idle-cyd"
    with ConsoleLikeClient(stack, "idle-bob") as bob:
        _set_presence(stack, "idle-bob", "Available")
        silent = connect(f"{stack.ws_url}?token={_token(stack, 'idle-cyd')}", open_timeout=10)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                silent.recv(timeout=30)  # she sends nothing: the gateway's idle timeout closes her socket

        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert closed.value.rcvd.reason == "Going away"
        wait_for(lambda: _presence(stack, "idle-cyd") == "Offline", what="Offline after the grace period")
        wait_for(lambda: conversation in bob.offered(), what="the offer to move on to bob")
        assert offered_to() == "idle-bob"
        assert _presence(stack, "idle-bob") == "Available"
    _set_presence(stack, "idle-bob", "Offline")
