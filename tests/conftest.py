"""Shared fixtures: AWS is moto in-process, the app runs through ``chalice.test.Client``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.notify.visitors import forget_agent_names
from chalicelib.routing.config import forget_current_config
from chalicelib.settings import reload_settings
from chalicelib.store import aws as aws_clients
from chalicelib.store.queue import forget_queue_urls
from chalicelib.store.resources import create_all
from tests.support import (
    CHANNEL_SECRETS,
    DEV_SIGNING_KEY,
    PUBLIC_BASE_URL,
    REGION,
    SNS_TOPIC_ARN,
    WEBCHAT_SECRET,
    WS_API_ID,
    WS_STAGE,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SWITCHBOARD_SSM_PREFIX", "SWITCHBOARD_ROUTING_CONFIG_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("WEBCHAT_SECRET", WEBCHAT_SECRET)
    for name, value in CHANNEL_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "1")
    monkeypatch.setenv("DEV_SIGNING_KEY", DEV_SIGNING_KEY)
    monkeypatch.setenv("SNS_TOPIC_ARNS", SNS_TOPIC_ARN)
    monkeypatch.setenv(
        "WEBSOCKET_MANAGEMENT_ENDPOINT", f"https://{WS_API_ID}.execute-api.{REGION}.amazonaws.com/{WS_STAGE}"
    )
    _forget_everything()


def _forget_everything() -> None:
    reload_settings()
    aws_clients.reset()
    forget_queue_urls()
    forget_current_config()
    forget_agent_names()


@pytest.fixture
def aws(env: None) -> Iterator[None]:
    """Every AWS resource the app needs, in moto."""
    with mock_aws():
        create_all()
        yield
    _forget_everything()


@pytest.fixture
def client(aws: None) -> Iterator[Client]:
    from app import app

    # A stage absent from .chalice/config.json: only the top-level variables apply, not dev's SSM prefix.
    with Client(app, stage_name="test") as test_client:
        yield test_client


ROUTING_PARAMETER = "/switchboard/test/routing-config"


@pytest.fixture
def routed(client: Client, monkeypatch: pytest.MonkeyPatch) -> Client:
    """The app with the engine tests' routing config, loaded through the SSM override as ops would."""
    import boto3

    from tests.support import fixture

    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=ROUTING_PARAMETER, Value=fixture("routing/engine_test.yaml").decode(), Type="String", Tier="Advanced"
    )
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", ROUTING_PARAMETER)
    reload_settings()
    forget_current_config()
    return client
