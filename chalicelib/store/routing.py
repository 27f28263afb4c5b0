"""Routing state in its own small table, apart from the growing message history.

Keys (``pk``/``sk``) and the sparse index ``gsi1`` (``gsi1pk``/``gsi1sk``)::

    AGENT#<id>    AGENT          the agent; in gsi1 as AVAILABLE#<queue> while it takes work
    AGENT#<id>    CONN#<conn>    one open WebSocket connection of the agent
    CONN#<conn>   CONN           which agent a connection belongs to
    CONTACT#<id>  CONTACT        the contact; in gsi1 as WAITING#<queue> while queued,
                                 OFFERED while an offer is open (sorted by expiry)

Every change of an agent or contact is a whole-item put conditioned on the
version read, so two routers acting on the same state cannot both win: no
agent goes over capacity and no contact is offered twice.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import conversation_key
from chalicelib.store.dynamo import from_item, get, key, to_item, to_values, transact
from chalicelib.store.resources import ROUTING_INDEX

OFFERED_INDEX_KEY = "OFFERED"


def _table() -> str:
    return get_settings().routing_table


def _data_table() -> str:
    return get_settings().data_table


# --- agents -----------------------------------------------------------------


def _agent_item(agent: Agent) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": f"AGENT#{agent.agent_id}",
        "sk": "AGENT",
        **asdict(agent),
        "presence": agent.presence.value,
        "queues": list(agent.queues),
    }
    if agent.takes_work:
        # One entry per agent for now (one queue); the rules engine will index per queue.
        values["gsi1pk"] = f"AVAILABLE#{agent.queues[0]}"
        values["gsi1sk"] = f"{agent.total_load:04d}#{agent.idle_since}#{agent.agent_id}"
    return to_item(values)


def _agent_from(values: dict[str, Any]) -> Agent:
    return Agent(
        agent_id=values["agent_id"],
        name=values["name"],
        presence=Presence(values["presence"]),
        skills=dict(values.get("skills", {})),
        capacity=dict(values.get("capacity", {})),
        load=dict(values.get("load", {})),
        queues=tuple(values.get("queues", ())),
        idle_since=values.get("idle_since", ""),
        version=int(values["version"]),
    )


def _versioned_put(item: dict[str, Any], version: int) -> dict[str, Any]:
    """A transaction action writing ``item`` (at ``version``) only over the version before it; 0 means new."""
    action: dict[str, Any] = {"TableName": _table(), "Item": item}
    if version == 0:
        action["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        action["ConditionExpression"] = "version = :expected"
        action["ExpressionAttributeValues"] = to_values({":expected": version - 1})
    return {"Put": action}


def agent_put(agent: Agent) -> dict[str, Any]:
    """A transaction action saving ``agent`` if nobody changed it since its previous version."""
    return _versioned_put(_agent_item(agent), agent.version)


def create_agent(agent: Agent) -> None:
    """Store a new agent; ``TransactionConflict`` if the id is taken."""
    transact([agent_put(agent)])


def get_agent(agent_id: str) -> Agent | None:
    found = get(_table(), f"AGENT#{agent_id}", "AGENT")
    return _agent_from(found) if found else None


def save_agent(agent: Agent) -> None:
    """Save an agent changed from the version read (``TransactionConflict`` if it changed meanwhile)."""
    transact([agent_put(agent)])


def list_agents() -> list[Agent]:
    """Every agent (an admin listing; routing never calls this)."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "FilterExpression": "sk = :agent",
        "ExpressionAttributeValues": to_values({":agent": "AGENT"}),
    }
    agents: list[Agent] = []
    while True:
        page = client.scan(**kwargs)
        agents.extend(_agent_from(from_item(i)) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(agents, key=lambda a: a.agent_id)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def available_agents(queue: str, limit: int = 25) -> list[Agent]:
    """Agents taking work in ``queue``, least loaded first; a bounded read however many agents exist."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=to_values({":pk": f"AVAILABLE#{queue}"}),
        Limit=limit,
    )
    return [_agent_from(from_item(i)) for i in page["Items"]]


# --- connections --------------------------------------------------------------


def add_connection(agent_id: str, connection_id: str, now: str) -> None:
    transact(
        [
            {
                "Put": {
                    "TableName": _table(),
                    "Item": to_item({"pk": f"AGENT#{agent_id}", "sk": f"CONN#{connection_id}", "connected_at": now}),
                }
            },
            {
                "Put": {
                    "TableName": _table(),
                    "Item": to_item(
                        {"pk": f"CONN#{connection_id}", "sk": "CONN", "agent_id": agent_id, "connected_at": now}
                    ),
                }
            },
        ]
    )


def agent_of_connection(connection_id: str) -> str | None:
    found = get(_table(), f"CONN#{connection_id}", "CONN")
    return str(found["agent_id"]) if found else None


def remove_connection(agent_id: str, connection_id: str) -> None:
    transact(
        [
            {"Delete": {"TableName": _table(), "Key": key(f"AGENT#{agent_id}", f"CONN#{connection_id}")}},
            {"Delete": {"TableName": _table(), "Key": key(f"CONN#{connection_id}", "CONN")}},
        ]
    )


def connections_of(agent_id: str) -> list[str]:
    page = aws.client("dynamodb").query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
        ExpressionAttributeValues=to_values({":pk": f"AGENT#{agent_id}", ":conn": "CONN#"}),
        ProjectionExpression="sk",
    )
    return [i["sk"]["S"].removeprefix("CONN#") for i in page["Items"]]


# --- contacts -----------------------------------------------------------------


def _contact_item(contact: Contact) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": f"CONTACT#{contact.contact_id}",
        "sk": "CONTACT",
        **asdict(contact),
        "state": contact.state.value,
        "declined_by": list(contact.declined_by),
    }
    if contact.state is ContactState.QUEUED:
        values["gsi1pk"] = f"WAITING#{contact.queue}"
        values["gsi1sk"] = f"{9 - contact.priority}#{contact.enqueued_at}#{contact.contact_id}"
    elif contact.state is ContactState.OFFERED:
        values["gsi1pk"] = OFFERED_INDEX_KEY
        values["gsi1sk"] = f"{contact.offer_expires_at}#{contact.contact_id}"
    return to_item(values)


def _contact_from(values: dict[str, Any]) -> Contact:
    fields = {k: v for k, v in values.items() if k in Contact.__dataclass_fields__}
    fields["state"] = ContactState(values["state"])
    fields["declined_by"] = tuple(values.get("declined_by", ()))
    fields["required_skills"] = dict(values.get("required_skills", {}))
    return Contact(**fields)


def contact_put(contact: Contact) -> dict[str, Any]:
    """A transaction action saving ``contact`` if nobody changed it since its previous version."""
    return _versioned_put(_contact_item(contact), contact.version)


def get_contact(contact_id: str) -> Contact | None:
    found = get(_table(), f"CONTACT#{contact_id}", "CONTACT")
    return _contact_from(found) if found else None


def create_contact(contact: Contact) -> None:
    """Store a new (or reopened) queued contact; ``TransactionConflict`` if it changed meanwhile."""
    transact([contact_put(contact)])


def waiting_contacts(queue: str, limit: int = 25) -> list[Contact]:
    """Queued contacts of ``queue``: highest priority, then oldest, first."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=to_values({":pk": f"WAITING#{queue}"}),
        Limit=limit,
    )
    return [_contact_from(from_item(i)) for i in page["Items"]]


def expired_offers(now: str, limit: int = 50) -> list[Contact]:
    """Contacts whose offer expired before ``now``, the oldest expiry first."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :now",
        ExpressionAttributeValues=to_values({":pk": OFFERED_INDEX_KEY, ":now": now}),
        Limit=limit,
    )
    return [_contact_from(from_item(i)) for i in page["Items"]]


def save(contact: Contact, agent: Agent | None = None) -> None:
    """Save a contact and the agent whose load it changed, together or not at all."""
    transact([contact_put(contact), *([agent_put(agent)] if agent else [])])


def save_assignment(contact: Contact) -> None:
    """Save an accepted contact and record its agent on the conversation, together."""
    transact(
        [
            contact_put(contact),
            {
                "Update": {
                    "TableName": _data_table(),
                    "Key": key(conversation_key(contact.contact_id), "META"),
                    "UpdateExpression": "SET agent_id = :agent, assigned_at = :now",
                    "ExpressionAttributeValues": to_values(
                        {":agent": contact.assigned_to, ":now": contact.accepted_at}
                    ),
                }
            },
        ]
    )


def save_closing(contact: Contact, agent: Agent) -> None:
    """Close the contact and its conversation and free the agent's capacity, together.

    The customer's pointer to their open conversation is cleared afterwards (``forget_open_conversation``);
    if that never happens, the next message finds the conversation closed and opens a new one.
    """
    transact(
        [
            contact_put(contact),
            agent_put(agent),
            {
                "Update": {
                    "TableName": _data_table(),
                    "Key": key(conversation_key(contact.contact_id), "META"),
                    "UpdateExpression": "SET #status = :closed, closed_at = :now",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_values({":closed": "closed", ":now": contact.closed_at}),
                }
            },
        ]
    )
