"""What a supervisor does to someone else's work: list an agent's conversations, reassign one, close one.

Each acts as the agent the conversation is assigned to would (the same transfer and close, with their checks and
their capacity freed), after checking that it is assigned to someone. A conversation still waiting is the router's
to offer: reassigning it is a 409, as is closing it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.agents import work
from chalicelib.agents.service import get_agent
from chalicelib.errors import Conflict
from chalicelib.notify import push
from chalicelib.routing.model import Contact, ContactState

logger = Logger(child=True)


def agent_conversations(agent_id: str) -> dict[str, Any]:
    """``GET /agents/{id}/conversations``: what the agent has open (offered or assigned), as their own list shows it."""
    from chalicelib.agents import workspace

    get_agent(agent_id)  # 404 for no such agent
    return workspace.my_conversations(agent_id, "mine")


def _worked(supervisor_id: str, conversation_id: str, doing: str) -> Contact:
    contact = work.contact_seen_by(supervisor_id, conversation_id, oversee=True)
    if contact.state is not ContactState.ASSIGNED or not contact.assigned_to:
        raise Conflict(f"only a conversation an agent is working can be {doing}; this one is {contact.state.value}")
    return contact


def reassign(supervisor_id: str, conversation_id: str, document: Any) -> dict[str, Any]:
    """``POST /conversations/{id}/reassign`` ``{"agent_id"}`` or ``{"queue"}``: the assigned agent's transfer."""
    contact = _worked(supervisor_id, conversation_id, "reassigned")
    moved = work.transfer(str(contact.assigned_to), conversation_id, document)
    logger.info("reassigned", contact_id=conversation_id, by=supervisor_id, from_agent=contact.assigned_to)
    _tell(str(contact.assigned_to), {"type": "reassigned", "contact_id": conversation_id, "by": supervisor_id})
    return moved


def close(supervisor_id: str, conversation_id: str, wrap_up: str | None) -> Contact:
    """A supervisor's close of another agent's conversation: that agent's close (their capacity freed)."""
    from chalicelib.agents import service

    contact = _worked(supervisor_id, conversation_id, "closed")
    closed = service.close(str(contact.assigned_to), conversation_id, wrap_up)
    logger.info("closed for the agent", contact_id=conversation_id, by=supervisor_id, agent_id=contact.assigned_to)
    _tell(str(contact.assigned_to), {"type": "closed", "contact_id": conversation_id, "by": supervisor_id})
    return closed


def _tell(agent_id: str, frame: dict[str, Any]) -> None:
    """The agent's console drops the conversation from their list (best effort: its next list read does too)."""
    try:
        push.to_agent(agent_id, frame)
    except Exception:
        logger.warning("could not tell the agent", agent_id=agent_id, push=frame["type"], exc_info=True)
