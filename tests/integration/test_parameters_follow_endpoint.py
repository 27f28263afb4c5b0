"""SSM parameters are read through the shared, resettable clients: a reader made while boto3 pointed at another
endpoint (a local stack since stopped) is not kept for the life of the process."""

from __future__ import annotations

import socket

from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

from chalicelib.routing import config as routing_config
from chalicelib.routing.config import current_config, forget_current_config
from chalicelib.settings import reload_settings
from chalicelib.store import aws


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_routing_override_is_read_from_where_boto3_points_now(client, monkeypatch):
    DEFAULT_PROVIDERS.clear()  # as in a fresh process: nothing read through Powertools' own providers yet
    yaml_text = routing_config.DEFAULT_FILE.read_text()
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", "/switchboard/test/routing-config")
    # First, as after a local stack stopped: boto3 points at a server that is gone; the read fails, routing goes on.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    reload_settings()
    aws.reset()
    forget_current_config()
    assert current_config().rules, "routing.yaml stays in force when the parameter cannot be read"

    # Then back to moto (in-process), as the next test or the next stack: a published override is what is read.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    reload_settings()
    aws.reset()
    forget_current_config()
    routing_config.publish_override(yaml_text.replace("name: billing questions", "name: billing-desk", 1))
    forget_current_config()
    assert "billing-desk" in {rule.name for rule in current_config().rules}
