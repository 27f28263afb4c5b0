"""Push JSON to an agent's open WebSocket connections (``store.connections``, API Gateway's management API).

A connection API Gateway reports gone is forgotten.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.store import connections
from chalicelib.store import routing as routing_store

logger = Logger(service="switchboard", child=True)


def to_connection(connection_id: str, payload: dict[str, Any]) -> bool:
    """Send to one connection; False when it is gone."""
    return connections.post(connection_id, json.dumps(payload).encode())


def to_agent(agent_id: str, payload: dict[str, Any]) -> int:
    """Send to every open connection of the agent; returns how many received it."""
    delivered = 0
    for connection_id in routing_store.connections_of(agent_id):
        if to_connection(connection_id, payload):
            delivered += 1
        else:
            logger.info("forgetting gone connection", extra={"agent_id": agent_id, "connection_id": connection_id})
            routing_store.remove_connection(agent_id, connection_id)
    if delivered == 0:
        logger.info("agent has no open connection", extra={"agent_id": agent_id, "push": payload.get("type")})
    return delivered
