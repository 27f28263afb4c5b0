"""On the local stack (real HTTP, moto server, the SQS pump): a web-chat visitor the bot answers says "Yes", then
comes back with another question; the supervisor view counts the answer, the solve and the recontact (issue 14's
acceptance: "a recontact within 72 hours is counted")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from chalicelib.routing.config import forget_current_config
from tests.e2e.test_local_stack_flow import SECRET, _post, _token

pytestmark = pytest.mark.e2e

SELF_SERVICE = "queues:\n  default:\n    self_service: {channels: webchat}\nrules:\n  - name: all\n    queue: default\n"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WEBCHAT_SECRET", SECRET)
    from app import app

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as running:
        yield running
    monkeypatch.undo()
    forget_current_config()


def _until(probe: Any, what: str, timeout: float = 20.0) -> Any:
    """Poll ``probe`` until it returns something truthy (the pump delivers asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def test_a_solved_visitor_who_comes_back_is_counted_as_a_recontact(stack: LocalStack) -> None:
    admin = {"Authorization": f"Bearer {_token(stack, 'e2e-ops', 'admin')}"}
    published = requests.put(
        f"{stack.api_url}/admin/routing",
        data=SELF_SERVICE.encode(),
        headers={**admin, "Content-Type": "application/yaml"},
        timeout=30,
    )
    assert published.status_code == 200, published.text
    forget_current_config()  # the stack's routers run in this process

    def row() -> dict[str, Any] | None:
        view = requests.get(f"{stack.api_url}/supervisor", headers=admin, timeout=10).json()["self_service"]
        return next((r for r in view["rows"] if r["channel"] == "webchat"), None)

    visitor = {"site": "acme", "visitor_id": "e2e-back"}
    assert _post(stack, {**visitor, "message_id": "q1", "text": "What are your opening hours?"}).status_code == 200
    _until(lambda: (row() or {}).get("answered") == 1, "bot answer")
    assert _post(stack, {**visitor, "message_id": "yes", "text": "Yes"}).status_code == 200
    _until(lambda: (row() or {}).get("solved") == 1, "solved count")

    again = _post(stack, {**visitor, "message_id": "q2", "text": "My parcel never came and the tracking is empty"})
    assert again.status_code == 200
    counted = _until(lambda: (r := row()) and r.get("recontact") == 1 and r, "recontact count")
    assert (counted["answered"], counted["solved"], counted["handed_over"]) == (1, 1, 0)
