"""Lazily created boto3 clients, one per container.

Importing the app costs nothing; tests and the local stack call ``reset()``
after pointing the environment at moto so the next call builds fresh
clients. ``AWS_ENDPOINT_URL`` (honoured by boto3) sends every client to
moto's server locally.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_parameters: list[Any] = []  # Powertools' SSM reader over the shared SSM client, once made
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def client(service: str, region: str | None = None) -> Any:
    """The shared client for an AWS service, in this deployment's region unless ``region`` names another."""
    home = get_settings().region
    name = service if region is None or region == home else f"{service}@{region}"
    found = _clients.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _clients:
            kwargs: dict[str, Any] = {"region_name": region or home, "config": _CONFIG}
            if service == "apigatewaymanagementapi":
                kwargs["endpoint_url"] = get_settings().websocket_endpoint
            _clients[name] = boto3.session.Session().client(service, **kwargs)
        return _clients[name]


def parameters() -> Any:
    """Powertools' SSM parameter reader (with its cache) over the shared SSM client.

    Not Powertools' module-level default provider: that keeps the first client it made for the life of the
    process, so after ``reset()`` (tests, a local stack stopped and another started) it would still read the
    old endpoint.
    """
    if not _parameters:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        ssm = client("ssm")
        with _lock:
            if not _parameters:
                _parameters.append(SSMProvider(boto3_client=ssm))
    return _parameters[0]


def created_clients() -> list[Any]:
    """Every client made so far (the request-count budget test hooks into them)."""
    return list(_clients.values())


def reset() -> None:
    """Drop every client; the next ``client()`` call builds a new one from the current environment."""
    with _lock:
        _clients.clear()
        _parameters.clear()
