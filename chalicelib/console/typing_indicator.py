"""The typing indicator, both ways over the WebSockets; nothing is stored.

- The widget sends ``{"action": "typing", "site", "visitor_id", "conversation_id"}`` (its socket's own
  credentials: a widget's connection is not looked up by id) at most every few seconds while the visitor types;
  the agent the conversation is assigned to gets ``{"type": "typing", "contact_id", "who": "visitor"}``.
- An agent's console sends ``{"action": "typing", "conversation_id"}`` for a web-chat conversation assigned to
  them; its open widgets get ``{"type": "typing", "conversation_id"}``.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import InvalidPayload


def is_visitors(command: dict[str, Any]) -> bool:
    return "visitor_id" in command


def from_visitor(command: dict[str, Any]) -> None:
    """The visitor types: their conversation's agent is told (no one, while it waits for one)."""
    from chalicelib.console import visitors
    from chalicelib.notify import push
    from chalicelib.routing.model import ContactState
    from chalicelib.store import routing as routing_store

    query = {name: command.get(name) for name in ("site", "visitor_id", "conversation_id")}
    if not all(isinstance(value, str) for value in query.values()):
        raise InvalidPayload(
            'send {"action": "typing", "site", "visitor_id", "conversation_id"} as strings',
            [{"field": name, "problem": "must be a string"} for name, v in query.items() if not isinstance(v, str)],
        )
    conversation_id = str(query["conversation_id"])
    visitors.prove_visitor(conversation_id, {k: str(v) for k, v in query.items()})  # 404 for anyone else's
    contact = routing_store.get_contact(conversation_id)
    if contact is not None and contact.state is ContactState.ASSIGNED and contact.assigned_to:
        push.to_agent(contact.assigned_to, {"type": "typing", "contact_id": conversation_id, "who": "visitor"})


def from_agent(agent_id: str, command: dict[str, Any]) -> None:
    """The agent types a reply: the conversation's open widgets are told (web chat only)."""
    from chalicelib.agents import work
    from chalicelib.errors import Forbidden
    from chalicelib.notify import visitors
    from chalicelib.routing.model import ContactState

    conversation_id = command.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidPayload(
            'send {"action": "typing", "conversation_id": "..."}',
            [{"field": "conversation_id", "problem": "required"}],
        )
    contact = work.contact_seen_by(agent_id, conversation_id)
    if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
        raise Forbidden("only the agent a conversation is assigned to types into it")
    if contact.channel == "webchat":
        visitors.typing(conversation_id)
