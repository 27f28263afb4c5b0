"""Routing state in its own small table, apart from the growing message history.

Keys (``pk``/``sk``) and the sparse index ``gsi1`` (``gsi1pk``/``gsi1sk``)::

    AGENT#<id>    AGENT          the agent
    AGENT#<id>    POOL#<queue>   a copy in gsi1 under AVAILABLE#<queue> while the agent takes work,
                                 least loaded first
    AGENT#<id>    POOL#<queue>#<skill>  and one per skill under AVAILABLE#<queue>#<skill>: the most
                                 proficient first, then the least loaded (an agent with k skills in q
                                 queues has q * (k + 1) copies, at most MAX_POOL_ENTRIES)
    AGENT#<id>    CONN#<conn>    one open WebSocket connection of the agent
    AGENT#<id>    GRACE          a copy in gsi1 under DISCONNECTED while the agent's reconnect grace
                                 period runs, by when their last connection closed
    CONN#<conn>   CONN           which agent a connection belongs to
    CONTACT#<id>  CONTACT        the contact
    CONTACT#<id>  WAIT#<queue>   a copy in gsi1 under WAITING#<queue> while queued there,
                                 highest priority then earliest SLA deadline first
    CONTACT#<id>  NEED#<queue>   and one under NEEDS#<queue>#<its required skills> (billing=3+english=2,
                                 or - for none), in the same order: what a freed agent reads
    CONTACT#<id>  OFFER          a copy in gsi1 under OFFERED while an offer is open, by expiry
    CONTACT#<id>  WORK           a copy in gsi1 under WORK#<agent> while offered to or assigned to them
    QUEUESTATS#<queue> STATS     recent handle time and how many contacts are being worked

Routing reads bounded pages of an index, never all agents: a contact needing
skills reads the pool of its most demanding skill, a freed agent the waiting
contacts whose required skills it has. Every change of
an agent or contact is a put of its main item conditioned on the version
read, together with its index copies, in one transaction: two routers acting
on the same state cannot both win, no agent goes over capacity and no
contact is offered twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import conversation_key, customer_key
from chalicelib.store.dynamo import from_item, get, key, to_item, to_values, transact
from chalicelib.store.resources import ROUTING_INDEX

OFFERED_INDEX_KEY = "OFFERED"
DISCONNECTED_INDEX_KEY = "DISCONNECTED"
PAGE = 25
# An agent's index copies are rewritten in the transaction of each offer, accept and close (at most 100
# actions, with the contact's): this bounds queues * (skills + 1).
MAX_POOL_ENTRIES = 40

Change = tuple[Any, Any]  # (as read, or None when new; as it should become)


def _table() -> str:
    return get_settings().routing_table


def _data_table() -> str:
    return get_settings().data_table


def _versioned_put(item: dict[str, Any], read_version: int | None) -> dict[str, Any]:
    """A transaction action writing ``item`` only if the stored version is still the one read (None: new)."""
    action: dict[str, Any] = {"TableName": _table(), "Item": to_item(item)}
    if read_version is None:
        action["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        action["ConditionExpression"] = "version = :expected"
        action["ExpressionAttributeValues"] = to_values({":expected": read_version})
    return {"Put": action}


def _index_actions(pk: str, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict]:
    actions: list[dict[str, Any]] = [{"Put": {"TableName": _table(), "Item": to_item(i)}} for i in after.values()]
    actions += [{"Delete": {"TableName": _table(), "Key": key(pk, sk)}} for sk in before if sk not in after]
    return actions


# --- agents -----------------------------------------------------------------


def _agent_values(agent: Agent) -> dict[str, Any]:
    return {
        "pk": f"AGENT#{agent.agent_id}",
        "sk": "AGENT",
        **asdict(agent),
        "presence": agent.presence.value,
        "queues": list(agent.queues),
    }


def pool_entries(agent: Agent) -> int:
    """How many index copies an agent taking work has: one per queue, and one per queue and skill."""
    return len(agent.queues) * (len(agent.skills) + 1)


def _proficiency_key(level: int) -> str:
    """One digit that sorts the most proficient first (5 -> "4", 1 -> "8")."""
    return str(9 - max(0, min(9, level)))


def _agent_index(agent: Agent | None) -> dict[str, dict[str, Any]]:
    if agent is None or not agent.takes_work:
        return {}
    values = _agent_values(agent)
    by_load = f"{agent.load_permille:04d}#{agent.idle_since}#{agent.agent_id}"
    entries = {}
    for queue in agent.queues:
        entries[f"POOL#{queue}"] = {**values, "sk": f"POOL#{queue}", "gsi1pk": f"AVAILABLE#{queue}", "gsi1sk": by_load}
        for skill, level in agent.skills.items():
            entries[f"POOL#{queue}#{skill}"] = {
                **values,
                "sk": f"POOL#{queue}#{skill}",
                "gsi1pk": f"AVAILABLE#{queue}#{skill}",
                "gsi1sk": f"{_proficiency_key(level)}#{by_load}",
            }
    return entries


def _agent_from(values: dict[str, Any]) -> Agent:
    fields = {k: v for k, v in values.items() if k in Agent.__dataclass_fields__}
    fields["presence"] = Presence(values["presence"])
    fields["queues"] = tuple(values.get("queues", ()))
    for name in ("skills", "channel_costs", "max_per_channel", "load"):
        fields[name] = dict(values.get(name, {}))
    return Agent(**fields)


def _grace_index(agent: Agent | None) -> dict[str, dict[str, Any]]:
    """While the agent's reconnect grace period runs: where the sweeper finds them if the timer is lost."""
    if agent is None or agent.disconnected_at is None:
        return {}
    return {
        "GRACE": {
            "pk": f"AGENT#{agent.agent_id}",
            "sk": "GRACE",
            "agent_id": agent.agent_id,
            "disconnected_at": agent.disconnected_at,
            "gsi1pk": DISCONNECTED_INDEX_KEY,
            "gsi1sk": f"{agent.disconnected_at}#{agent.agent_id}",
        }
    }


def agent_actions(change: Change) -> list[dict[str, Any]]:
    """Save an agent (versioned) and keep its index copies in step."""
    before, after = change
    return [
        _versioned_put(_agent_values(after), before.version if before else None),
        *_index_actions(
            f"AGENT#{after.agent_id}",
            {**_agent_index(before), **_grace_index(before)},
            {**_agent_index(after), **_grace_index(after)},
        ),
    ]


def create_agent(agent: Agent) -> None:
    """Store a new agent; ``TransactionConflict`` if the id is taken."""
    transact(agent_actions((None, agent)))


def get_agent(agent_id: str) -> Agent | None:
    found = get(_table(), f"AGENT#{agent_id}", "AGENT")
    return _agent_from(found) if found else None


def save_agent(before: Agent, after: Agent) -> None:
    """Save an agent changed from the version read (``TransactionConflict`` if it changed meanwhile)."""
    transact(agent_actions((before, after)))


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


def _index_page(partition: str, limit: int) -> list[dict[str, Any]]:
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=to_values({":pk": partition}),
        Limit=limit,
    )
    return [from_item(i) for i in page["Items"]]


def available_agents(queue: str, limit: int = PAGE) -> list[Agent]:
    """Agents taking work in ``queue``, least loaded first: one bounded read however many agents exist."""
    return [_agent_from(i) for i in _index_page(f"AVAILABLE#{queue}", limit)]


Cursor = dict[str, Any]  # where a page of an index ended (DynamoDB's LastEvaluatedKey)


def pool(
    queue: str, skill: str | None = None, min_level: int = 0, limit: int = PAGE, after: Cursor | None = None
) -> tuple[list[Agent], Cursor | None]:
    """A page of the agents taking work in ``queue`` (with ``skill`` at ``min_level`` or more, if given).

    With a skill: the most proficient in it first, then the least loaded, then the longest idle; without:
    the least loaded first. Returns the page and where the next one starts (None: no more).
    """
    condition, values = "gsi1pk = :pk", {":pk": f"AVAILABLE#{queue}"}
    if skill is not None:
        values[":pk"] = f"AVAILABLE#{queue}#{skill}"
        if min_level > 0:
            condition += " AND gsi1sk < :below"  # proficiency keys of the levels too low sort after this
            values[":below"] = str(10 - min(9, min_level))
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": to_values(values),
        "Limit": limit,
    }
    if after is not None:
        kwargs["ExclusiveStartKey"] = after
    page = aws.client("dynamodb").query(**kwargs)
    return [_agent_from(from_item(i)) for i in page["Items"]], page.get("LastEvaluatedKey")


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


def disconnected_before(moment: str, limit: int = 50) -> list[tuple[str, str]]:
    """(agent id, disconnected at) of agents whose last connection closed before ``moment``, oldest first."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
        ExpressionAttributeValues=to_values({":pk": DISCONNECTED_INDEX_KEY, ":before": moment}),
        Limit=limit,
    )
    return [(str(i["agent_id"]), str(i["disconnected_at"])) for i in map(from_item, page["Items"])]


def connections_of(agent_id: str) -> list[str]:
    page = aws.client("dynamodb").query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
        ExpressionAttributeValues=to_values({":pk": f"AGENT#{agent_id}", ":conn": "CONN#"}),
        ProjectionExpression="sk",
    )
    return [i["sk"]["S"].removeprefix("CONN#") for i in page["Items"]]


# --- contacts -----------------------------------------------------------------


def _contact_values(contact: Contact) -> dict[str, Any]:
    return {
        "pk": f"CONTACT#{contact.contact_id}",
        "sk": "CONTACT",
        **asdict(contact),
        "state": contact.state.value,
        "queues": list(contact.queues),
        "declined_by": list(contact.declined_by),
        "escalation": [dict(step) for step in contact.escalation],
    }


def waiting_sort_key(contact: Contact) -> str:
    """Highest priority first, then the earliest SLA deadline, then the longest waiting."""
    return f"{9 - contact.priority}#{contact.sla_deadline}#{contact.enqueued_at}#{contact.contact_id}"


def requirement_key(skills: Mapping[str, int]) -> str:
    """Required skills as one partition name: ``billing=3+english=2``, ``-`` for none (names hold no = or +)."""
    return "+".join(f"{skill}={level}" for skill, level in sorted(skills.items())) or "-"


def _contact_index(contact: Contact | None) -> dict[str, dict[str, Any]]:
    if contact is None:
        return {}
    values = _contact_values(contact)
    if contact.state is ContactState.QUEUED:
        needs = requirement_key(contact.required_skills)
        entries = {}
        for queue in contact.queues:
            entries[f"WAIT#{queue}"] = {
                **values,
                "sk": f"WAIT#{queue}",
                "gsi1pk": f"WAITING#{queue}",
                "gsi1sk": waiting_sort_key(contact),
            }
            entries[f"NEED#{queue}"] = {
                **values,
                "sk": f"NEED#{queue}",
                "gsi1pk": f"NEEDS#{queue}#{needs}",
                "gsi1sk": waiting_sort_key(contact),
            }
        return entries
    if contact.state is ContactState.OFFERED:
        return {
            "OFFER": {
                **values,
                "sk": "OFFER",
                "gsi1pk": OFFERED_INDEX_KEY,
                "gsi1sk": f"{contact.offer_expires_at}#{contact.contact_id}",
            },
            "WORK": {**values, "sk": "WORK", "gsi1pk": f"WORK#{contact.offered_to}", "gsi1sk": contact.enqueued_at},
        }
    if contact.state is ContactState.ASSIGNED:
        return {
            "WORK": {**values, "sk": "WORK", "gsi1pk": f"WORK#{contact.assigned_to}", "gsi1sk": contact.enqueued_at},
        }
    return {}


def _contact_from(values: dict[str, Any]) -> Contact:
    fields = {k: v for k, v in values.items() if k in Contact.__dataclass_fields__}
    fields["state"] = ContactState(values["state"])
    fields["queues"] = tuple(values.get("queues", ()))
    fields["declined_by"] = tuple(values.get("declined_by", ()))
    fields["required_skills"] = dict(values.get("required_skills", {}))
    fields["escalation"] = tuple(dict(step) for step in values.get("escalation", ()))
    return Contact(**fields)


def contact_actions(change: Change) -> list[dict[str, Any]]:
    """Save a contact (versioned) and keep its index copies in step."""
    before, after = change
    return [
        _versioned_put(_contact_values(after), before.version if before else None),
        *_index_actions(f"CONTACT#{after.contact_id}", _contact_index(before), _contact_index(after)),
    ]


def get_contact(contact_id: str) -> Contact | None:
    found = get(_table(), f"CONTACT#{contact_id}", "CONTACT")
    return _contact_from(found) if found else None


def create_contact(before: Contact | None, contact: Contact) -> None:
    """Store a new (or reopened) queued contact; ``TransactionConflict`` if it changed meanwhile."""
    transact(contact_actions((before, contact)))


def work_of(agent_id: str, limit: int = 100) -> list[Contact]:
    """What is offered to or assigned to an agent now, oldest first."""
    return [_contact_from(i) for i in _index_page(f"WORK#{agent_id}", limit)]


def waiting_contacts(queue: str, limit: int = PAGE) -> list[Contact]:
    """Queued contacts of ``queue``: highest priority, then the earliest deadline, first."""
    return [_contact_from(i) for i in _index_page(f"WAITING#{queue}", limit)]


def contacts_needing(queue: str, skills: Mapping[str, int], limit: int = PAGE) -> list[Contact]:
    """Queued contacts of ``queue`` that require exactly ``skills``, in the order of ``waiting_contacts``."""
    return [_contact_from(i) for i in _index_page(f"NEEDS#{queue}#{requirement_key(skills)}", limit)]


def position_in_queue(contact: Contact, queue: str) -> int:
    """How many contacts wait ahead of this one in ``queue`` (0: next)."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk < :mine",
        "ExpressionAttributeValues": to_values({":pk": f"WAITING#{queue}", ":mine": waiting_sort_key(contact)}),
        "Select": "COUNT",
    }
    ahead = 0
    while True:
        page = client.query(**kwargs)
        ahead += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return ahead
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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


def save(contacts: Sequence[Change] = (), agents: Sequence[Change] = (), extra: Sequence[dict[str, Any]] = ()) -> None:
    """Save contacts and agents (each against the version read) and any extra actions, together or not at all."""
    actions: list[dict[str, Any]] = []
    for change in contacts:
        actions += contact_actions(change)
    for change in agents:
        actions += agent_actions(change)
    transact([*actions, *extra])


def assignment_actions(contact: Contact) -> list[dict[str, Any]]:
    """Record the accepting agent on the conversation."""
    return [
        {
            "Update": {
                "TableName": _data_table(),
                "Key": key(conversation_key(contact.contact_id), "META"),
                "UpdateExpression": "SET agent_id = :agent, assigned_at = :now",
                "ExpressionAttributeValues": to_values({":agent": contact.assigned_to, ":now": contact.accepted_at}),
            }
        }
    ]


def closing_actions(contact: Contact, customer_id: str) -> list[dict[str, Any]]:
    """Close the conversation and remember who served the customer (their preferred agent next time).

    The customer's pointer to their open conversation is cleared afterwards (``forget_open_conversation``);
    if that never happens, the next message finds the conversation closed and opens a new one.
    """
    return [
        {
            "Update": {
                "TableName": _data_table(),
                "Key": key(conversation_key(contact.contact_id), "META"),
                "UpdateExpression": "SET #status = :closed, closed_at = :now, wrap_up = :wrap_up",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_values(
                    {":closed": "closed", ":now": contact.closed_at, ":wrap_up": contact.wrap_up or "none"}
                ),
            }
        },
        {
            "Update": {
                "TableName": _data_table(),
                "Key": key(customer_key(customer_id), "PROFILE"),
                "UpdateExpression": "SET last_agent_id = :agent, last_served_at = :now",
                "ExpressionAttributeValues": to_values({":agent": contact.assigned_to, ":now": contact.closed_at}),
            }
        },
    ]


# --- queue statistics (for the expected wait told to customers) -------------------------------

_HANDLE_WEIGHT = 0.2  # exponentially weighted: recent handle times count most


def queue_stats(queue: str) -> dict[str, Any]:
    return get(_table(), f"QUEUESTATS#{queue}", "STATS") or {}


def record_started(queue: str, sla_met: bool) -> None:
    """A contact of ``queue`` was accepted: one more at work, and whether its first response met the SLA."""
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(f"QUEUESTATS#{queue}", "STATS"),
        UpdateExpression="ADD working :one, " + ("sla_met :one" if sla_met else "sla_breached :one"),
        ExpressionAttributeValues=to_values({":one": 1}),
    )


def waiting_summary(queue: str) -> tuple[int, str | None]:
    """How many contacts wait in ``queue`` and since when the longest has waited."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": to_values({":pk": f"WAITING#{queue}"}),
        "ProjectionExpression": "enqueued_at",
    }
    count, oldest = 0, None
    while True:
        page = client.query(**kwargs)
        for item in page["Items"]:
            count += 1
            enqueued = item["enqueued_at"]["S"]
            oldest = enqueued if oldest is None or enqueued < oldest else oldest
        if "LastEvaluatedKey" not in page:
            return count, oldest
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def record_handled(queue: str, handle_seconds: float) -> None:
    """One contact of ``queue`` finished after ``handle_seconds``: fold it into the average."""
    stats = queue_stats(queue)
    previous = float(stats.get("avg_handle_seconds", handle_seconds))
    average = (1 - _HANDLE_WEIGHT) * previous + _HANDLE_WEIGHT * handle_seconds
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(f"QUEUESTATS#{queue}", "STATS"),
        UpdateExpression="SET avg_handle_seconds = :average ADD working :minus",
        ExpressionAttributeValues=to_values({":average": round(average, 1), ":minus": -1}),
    )
