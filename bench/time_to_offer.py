"""Section 4, time to offer on the local stack: a customer's message posted over HTTP until the agent's
WebSocket receives the offer.

The local stack (``chalicelib.local.LocalStack``: moto's server, the REST server, the WebSocket gateway and
the SQS pump, all on 127.0.0.1) runs the app; one agent is connected over a real WebSocket. Contacts come one
after another from new web-chat visitors; after each offer the agent accepts and closes over the socket, so
every contact finds the agent free: this is the latency of an idle system, not of a loaded one.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

SECRET = "bench-webchat-secret"
CONTACTS = 100
QUICK_CONTACTS = 10


def _next(ws: Any, kind: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = json.loads(ws.recv(timeout=left))
        if event.get("type") == kind:
            return dict(event)
    raise TimeoutError(f"no {kind} within {timeout} s")


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def run(quick: bool = False) -> dict[str, Any]:
    import requests
    from websockets.sync.client import connect

    from chalicelib.channels.signing import sign_sha256
    from chalicelib.local.stack import LocalStack

    os.environ["WEBCHAT_SECRET"] = SECRET
    from app import app

    count = QUICK_CONTACTS if quick else CONTACTS
    waits: list[float] = []
    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as stack:

        def token(agent_id: str, role: str) -> str:
            response = requests.post(
                f"{stack.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10
            )
            response.raise_for_status()
            return str(response.json()["token"])

        admin = {"Authorization": f"Bearer {token('bench-admin', 'admin')}"}
        created = requests.post(
            f"{stack.api_url}/agents",
            headers=admin,
            json={"agent_id": "bench-ada", "name": "Ada", "max_per_channel": {"webchat": 3}, "presence": "Available"},
            timeout=10,
        )
        created.raise_for_status()
        session = requests.Session()
        with connect(f"{stack.ws_url}?token={token('bench-ada', 'agent')}") as ws:
            for i in range(count + 1):  # the first one warms the stack and is not counted
                body = json.dumps(
                    {"site": "acme", "visitor_id": f"bench-v{i}", "message_id": f"bench-m{i}", "text": "Hello?"}
                ).encode()
                headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(SECRET, body)}
                started = time.perf_counter()
                response = session.post(f"{stack.api_url}/webhooks/webchat", data=body, headers=headers, timeout=10)
                response.raise_for_status()
                offer = _next(ws, "offer")
                elapsed = time.perf_counter() - started
                if i:
                    waits.append(elapsed)
                contact = offer["contact_id"]
                ws.send(json.dumps({"action": "accept", "contact_id": contact, "offer_id": offer["offer_id"]}))
                _next(ws, "accepted")
                ws.send(json.dumps({"action": "close", "contact_id": contact, "wrap_up": "resolved"}))
                _next(ws, "closed")
    return {
        "contacts": len(waits),
        "p50_ms": round(statistics.median(waits) * 1000, 1),
        "p99_ms": round(percentile(waits, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(waits) * 1000, 1),
        "max_ms": round(max(waits) * 1000, 1),
    }
