"""Posting to agents' open WebSocket connections through API Gateway's management API.

Which connections an agent has open is kept with the agents (``store.routing.connections_of``); this is
the one way anything reaches them. The same code runs in AWS and locally: ``WEBSOCKET_MANAGEMENT_ENDPOINT``
points the client at API Gateway or at the local gateway (``store.aws``).
"""

from __future__ import annotations

from chalicelib.store import aws


def post(connection_id: str, data: bytes) -> bool:
    """Send ``data`` to one connection; False when API Gateway says it is gone (the client went away)."""
    client = aws.client("apigatewaymanagementapi")
    try:
        client.post_to_connection(ConnectionId=connection_id, Data=data)
    except client.exceptions.GoneException:
        return False
    return True
