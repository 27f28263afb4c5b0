"""The app in one process against moto (``mock_aws``), driven the way tests/conftest.py and tests/support.py do.

HTTP routes go through ``chalice.test.Client``; the routing, timer and outbox queues are pumped into their
Lambda handlers as the SQS event source would. The environment is the test suite's (``tests/conftest.py``,
fixture ``env``), set for the life of the ``app_on_moto()`` block and restored after it.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

from moto import mock_aws

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

SUPPORT_ADDRESS = "support@acme-shop.example"


def _environment() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "WEBCHAT_SECRET": WEBCHAT_SECRET,
        **CHANNEL_SECRETS,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SWITCHBOARD_DEV_AUTH": "1",
        "DEV_SIGNING_KEY": DEV_SIGNING_KEY,
        "SNS_TOPIC_ARNS": SNS_TOPIC_ARN,
        "WEBSOCKET_MANAGEMENT_ENDPOINT": f"https://{WS_API_ID}.execute-api.{REGION}.amazonaws.com/{WS_STAGE}",
        "EMAIL_FROM_ADDRESS": SUPPORT_ADDRESS,
    }


_REMOVED = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SWITCHBOARD_SSM_PREFIX", "SWITCHBOARD_ROUTING_CONFIG_PARAMETER")


@contextmanager
def environment(extra: dict[str, str] | None = None) -> Iterator[None]:
    saved = dict(os.environ)
    for name in _REMOVED:
        os.environ.pop(name, None)
    os.environ.update({**_environment(), **(extra or {})})
    _forget_everything()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_everything()


def _forget_everything() -> None:
    from chalicelib.routing.config import forget_current_config
    from chalicelib.settings import reload_settings
    from chalicelib.store import aws as aws_clients
    from chalicelib.store.queue import forget_queue_urls

    reload_settings()
    aws_clients.reset()
    forget_queue_urls()
    forget_current_config()


@dataclass
class Running:
    client: Any  # chalice.test.Client
    providers: Any  # tests.fakes.providers.FakeProviders, or None


@contextmanager
def app_on_moto(fake_providers: bool = False) -> Iterator[Running]:
    """The app on moto with every table and queue, and (optionally) Twilio/Meta/Telegram faked on loopback."""
    extra: dict[str, str] = {}
    providers = None
    if fake_providers:
        from tests.fakes.providers import ACCOUNT_SID, META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN, FakeProviders

        providers = FakeProviders(
            ACCOUNT_SID, CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"], META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN
        ).start()
        extra = {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "META_ACCESS_TOKEN": META_ACCESS_TOKEN,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_BOT_TOKEN,
            **{name: providers.base_url for name in ("TWILIO_API_BASE", "META_GRAPH_BASE", "TELEGRAM_API_BASE")},
        }
    try:
        with environment(extra), mock_aws():
            import boto3
            from chalice.test import Client

            from chalicelib.store.resources import create_all

            create_all()
            boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity="acme-shop.example")
            from app import app

            with Client(app, stage_name="test") as client:
                yield Running(client, providers)
    finally:
        if providers is not None:
            providers.stop()


class LogBytes:
    """Bytes the app writes to its log stream (Powertools' JSON lines and EMF metrics), which CloudWatch ingests."""

    def __init__(self) -> None:
        self.bytes = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        sink = io.StringIO()
        handlers = [h for h in logging.getLogger("switchboard").handlers if isinstance(h, logging.StreamHandler)]
        streams = [h.setStream(sink) for h in handlers]
        try:
            with redirect_stdout(sink):
                yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream if stream is not None else sys.stdout)
            self.bytes += len(sink.getvalue().encode())


@contextmanager
def transactions_without_table_copies() -> Iterator[None]:
    """moto's transactions rolled back item by item, as the local stack's moto server does them.

    moto deep-copies every table a transaction names, in case it must roll back: at 10,000 agents one
    transaction takes tens of seconds, which would measure moto's copying, not the router. The local stack's
    replacement (``chalicelib/local/moto_server.py``) puts back only the items touched; it is right while
    requests are serial, as they are here.
    """
    from moto.dynamodb import models as dynamodb_models

    from chalicelib.local import moto_server

    original = dynamodb_models.DynamoDBBackend.transact_write_items
    dynamodb_models.DynamoDBBackend.transact_write_items = moto_server._transact_write_items_rolling_back_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        dynamodb_models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
