"""Commands an agent's console sends on its WebSocket that have a REST route too: the same service, answered
on the socket.

A reply (``{"action": "reply", "conversation_id": ..., "text": ..., "client_message_id": ...}``) calls the
service ``POST /conversations/{id}/messages`` calls (``agents.work.reply``): the same validation, idempotency
key and errors. A WebSocket message costs API Gateway $1.00 a million, with its answer pushed back another
$1.00, where a REST request costs $3.50 and WAF $0.60 (README, "Cost budget"); integrations keep the REST route.
"""

from __future__ import annotations

from typing import Any

from chalicelib.agents import work
from chalicelib.errors import InvalidPayload

REPLY = "reply"
USAGE = '{"action": "reply", "conversation_id": "...", "text": "...", "client_message_id": "<one per message>"}'


def reply(agent_id: str, command: dict[str, Any]) -> dict[str, Any]:
    """The agent's reply, queued for the customer as the REST route queues it; the frame that answers it."""
    conversation_id = command.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidPayload(
            f"conversation_id: name the conversation to reply in (a string); send {USAGE}",
            [{"field": "conversation_id", "problem": "missing" if conversation_id is None else "not an id"}],
        )
    document = {k: v for k, v in command.items() if k not in ("action", "conversation_id")}
    message = work.reply(agent_id, conversation_id, document)
    return {
        "type": "replied",
        "conversation_id": conversation_id,
        "client_message_id": message.get("client_message_id"),
        "message": message,
    }


def about(command: Any) -> dict[str, Any]:
    """What an answer to ``command`` repeats so the console knows which of its commands it answers (a reply's
    conversation and idempotency key); empty for anything else."""
    if not isinstance(command, dict) or command.get("action") != REPLY:
        return {}
    known = {"action": REPLY}
    for name in ("conversation_id", "client_message_id"):
        if isinstance(command.get(name), str):
            known[name] = command[name]
    return known
