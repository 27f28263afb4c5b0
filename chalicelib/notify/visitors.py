"""Push to the web-chat widgets listening to a conversation (``store.visitor_connections``).

What reaches a visitor this way is exactly what ``GET /widget/conversations/{id}/messages`` would show them
(``visible``): answers sent on web chat and the conversation's status, never notes or other channels' messages.
A widget connects only after proving it is the conversation's visitor (``console.visitors.connect``), so a
conversation's connections are its own visitor's. A push is a fast path, not the record: the widget reads what
it missed (``?after=``) whenever its socket (re)opens. A connection API Gateway reports gone is forgotten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.store import connections, visitor_connections

logger = Logger(service="switchboard", child=True)


def _author(message: Mapping[str, Any]) -> str:
    if message.get("direction") == "inbound":
        return "visitor"
    author = message.get("author", "system")
    return str(author) if author in ("system", "bot") else "agent"


# Agents' display names as this container last read them (a reply's push would otherwise read its agent every
# time): a renamed agent shows under the new name within NAME_SECONDS.
NAME_SECONDS = 300.0
_names: dict[str, tuple[float, str]] = {}


def forget_agent_names() -> None:
    """Drop the names read so far (a new table, as in a test, has other agents)."""
    _names.clear()


def agent_names(messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The display names of the agents who wrote ``messages`` (at most one read per agent), by agent id."""
    from chalicelib.store import routing as routing_store

    ids = {str(m["author"]) for m in messages if _author(m) == "agent" and m.get("author")}
    now = time.monotonic()
    for agent_id in sorted(ids):
        if agent_id not in _names or now - _names[agent_id][0] > NAME_SECONDS:
            agent = routing_store.get_agent(agent_id)
            _names[agent_id] = (now, agent.name.strip() if agent else "")
    return {agent_id: _names[agent_id][1] for agent_id in ids if _names[agent_id][1]}


def visible(message: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A timeline message as the visitor sees it: who wrote it (visitor, agent, system or the self-service bot)
    and, for an agent, their display name (``names``: from ``agent_names``, else read here), text and cursor
    (``received_at``: the widget shows it as local time), and the bot's choices."""
    author = _author(message)
    shown = {
        "message_id": message.get("message_id"),
        "from": author,
        "text": message.get("text"),
        "received_at": message.get("received_at"),
    }
    if message.get("choices"):
        shown["choices"] = list(message["choices"])  # the bot's "Did this solve it?": the widget's buttons
    if message.get("attachments"):
        from chalicelib.store import attachments

        shown["attachments"] = [
            {k: a.get(k) for k in ("url", "content_type", "size", "filename")}
            for a in attachments.signed(message)["attachments"]
        ]
    if author == "agent":
        name = (agent_names([message]) if names is None else names).get(str(message.get("author")))
        if name:
            shown["agent_name"] = name
    return shown


def message(conversation_id: str, stored: Mapping[str, Any]) -> int:
    """Push one outbound web-chat message to the conversation's open widgets; returns how many received it."""
    return _to_conversation(conversation_id, {"type": "message", "message": visible(stored)})


def status(conversation_id: str, new_status: str) -> int:
    """Tell the conversation's open widgets its status changed (``closed``)."""
    return _to_conversation(conversation_id, {"type": "status", "status": new_status})


def typing(conversation_id: str) -> int:
    """Tell the conversation's open widgets its agent is typing."""
    return _to_conversation(conversation_id, {"type": "typing"})


def _to_conversation(conversation_id: str, frame: dict[str, Any]) -> int:
    data = json.dumps({**frame, "conversation_id": conversation_id}).encode()
    delivered = 0
    for connection_id in visitor_connections.of(conversation_id, clock.now_iso()):
        if connections.post(connection_id, data):
            delivered += 1
        else:
            visitor_connections.forget(conversation_id, connection_id)
            logger.info("forgot a gone widget connection", extra={"connection_id": connection_id})
    return delivered
