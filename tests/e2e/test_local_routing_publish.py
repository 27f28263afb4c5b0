"""``make local``'s documented routing change: ``PUT /admin/routing`` publishes into moto's SSM and routes by it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
import requests

from chalicelib.local import LocalStack
from chalicelib.routing.config import DEFAULT_FILE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    env = pytest.MonkeyPatch()
    env.delenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", raising=False)  # as on a fresh clone
    from app import app

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as running:
        yield running
    env.undo()


def test_the_routing_parameter_setting_is_restored_when_the_stack_stops() -> None:
    # Runs before the module's stack starts (file order), so it is the only stack up.
    from app import app

    before = os.environ.get("SWITCHBOARD_ROUTING_CONFIG_PARAMETER")
    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0):
        assert os.environ["SWITCHBOARD_ROUTING_CONFIG_PARAMETER"].startswith("/switchboard/")
    assert os.environ.get("SWITCHBOARD_ROUTING_CONFIG_PARAMETER") == before


def test_put_admin_routing_works_on_the_local_stack(stack: LocalStack) -> None:
    token = requests.post(f"{stack.api_url}/dev/tokens", json={"agent_id": "ops", "roles": ["admin"]}, timeout=30)
    headers = {"Authorization": f"Bearer {token.json()['token']}", "Content-Type": "application/yaml"}
    text = DEFAULT_FILE.read_text().replace("queues:\n", "queues:\n  returns: {}\n", 1)

    published = requests.put(f"{stack.api_url}/admin/routing", data=text.encode(), headers=headers, timeout=30)

    assert published.status_code == 200, published.text
    assert "returns" in published.json()["queues"]
    parameter = os.environ["SWITCHBOARD_ROUTING_CONFIG_PARAMETER"]
    assert boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"] == text  # in moto's SSM
