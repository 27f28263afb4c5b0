"""The supervisor's view pushed live: queues and agents as they change, not polled.

A supervisor's console asks for it on its WebSocket (``{"action": "watch_supervisor", "token": ...}``: the
sign-in token, as connecting takes it, since a connection alone does not carry its roles) and stops with
``{"action": "unwatch_supervisor"}``. The routing table's stream feeds ``on_stream`` (the ``on_routing_change``
function; in AWS invoked only for the items ``store.supervisor_feed.STREAM_FILTERS`` names, batched over a
second): the queues whose counts changed, read afresh (two reads each), and the agents who changed, as the stream
shows them (no read), go in one frame to every watching connection::

    {"type": "supervisor", "queues": [<rows of GET /supervisor>], "agents": [<rows>], "removed_agents": [...],
     "at": "<when>"}

Nobody watching: one query and nothing else. A connection that is gone is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import auth, clock
from chalicelib.agents.service import agent_of_connection
from chalicelib.errors import Forbidden, InvalidPayload
from chalicelib.routing.config import current_config
from chalicelib.store import supervisor_feed as feed

logger = Logger(service="switchboard", child=True)

WATCH = "watch_supervisor"
UNWATCH = "unwatch_supervisor"


def watch(connection_id: str, command: Mapping[str, Any]) -> dict[str, Any]:
    """Start the live view on this connection, for a supervisor whose token names the connection's agent."""
    token = command.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidPayload(
            'send {"action": "watch_supervisor", "token": "<your sign-in token>"}',
            [{"field": "token", "problem": "missing"}],
        )
    principal = auth.verify(token)
    auth.require(principal, auth.SUPERVISOR)
    agent_id = agent_of_connection(connection_id)
    if principal.agent_id != agent_id:
        raise Forbidden("the token names another agent than this connection's")
    feed.watch(connection_id, agent_id, clock.now_iso())
    return {"type": "watching", "view": "supervisor"}


def unwatch(connection_id: str) -> dict[str, Any]:
    feed.unwatch(connection_id)
    return {"type": "unwatched", "view": "supervisor"}


def on_stream(records: Iterable[Mapping[str, Any]], now: str | None = None) -> int:
    """Push what a batch of the routing table's stream changed to every watching connection; how many got it."""
    changes = feed.changes_in(records)
    if not changes:
        return 0
    now = now or clock.now_iso()
    watching = feed.watchers(now)
    if not watching:
        return 0
    frame = _frame(changes, now)
    if not frame["queues"] and not frame["agents"] and not frame["removed_agents"]:
        return 0
    from chalicelib.notify import push

    delivered = 0
    for connection_id in watching:
        if push.to_connection(connection_id, frame):
            delivered += 1
        else:
            logger.info("forgetting gone supervisor connection", extra={"connection_id": connection_id})
            feed.unwatch(connection_id)
    return delivered


def _frame(changes: feed.Changes, now: str) -> dict[str, Any]:
    from chalicelib.agents.work import agent_row, queue_row

    known = current_config().queues
    return {
        "type": "supervisor",
        "queues": [queue_row(name, now) for name in sorted(changes.queues) if name in known],
        "agents": [agent_row(a) for _, a in sorted(changes.agents.items()) if a is not None],
        "removed_agents": sorted(agent_id for agent_id, a in changes.agents.items() if a is None),
        "at": now,
    }
