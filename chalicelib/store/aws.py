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
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def client(service: str) -> Any:
    """The shared client for an AWS service."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            kwargs: dict[str, Any] = {"region_name": get_settings().region, "config": _CONFIG}
            if service == "apigatewaymanagementapi":
                kwargs["endpoint_url"] = get_settings().websocket_endpoint
            _clients[service] = boto3.session.Session().client(service, **kwargs)
        return _clients[service]


def created_clients() -> list[Any]:
    """Every client made so far (the request-count budget test hooks into them)."""
    return list(_clients.values())


def reset() -> None:
    """Drop every client; the next ``client()`` call builds a new one from the current environment."""
    with _lock:
        _clients.clear()
