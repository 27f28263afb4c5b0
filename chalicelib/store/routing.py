"""Routing state in its own small table, apart from the growing message history.

Keys (``pk``/``sk``) and the sparse index ``gsi1`` (``gsi1pk``/``gsi1sk``)::

    AGENT#<id>    AGENT          the agent, also in gsi1 under AGENTS by id (the supervisor's paged list)
    AGENT#<id>    POOL#<queue>   a copy in gsi1 under AVAILABLE#<queue> while the agent takes work,
                                 least loaded first
    AGENT#<id>    POOL#<queue>#<skill>  and one per skill under AVAILABLE#<queue>#<skill>: the most
                                 proficient first, then the least loaded (an agent with k skills in q
                                 queues has q * (k + 1) copies, at most MAX_POOL_ENTRIES)
    AGENT#<id>    CONN#<conn>    one open WebSocket connection of the agent
    AGENT#<id>    GRACE          a copy in gsi1 under DISCONNECTED while the agent's reconnect grace
                                 period runs, by when their last connection closed
    CONN#<conn>   CONN           which agent a connection belongs to
    CONTACT#<id>  CONTACT        the contact, itself in gsi1 (``layout`` 3): under WAITING#<first queue>
                                 while queued, under OFFERED by the offer's expiry while offered (what the
                                 sweeper reads; an agent's open offers are that partition's of theirs), under
                                 WORK#<agent> once assigned
    CONTACT#<id>  WAIT#<queue>   a copy in gsi1 under WAITING#<queue> while queued there (its other
                                 queues), highest priority then earliest SLA deadline first
    CONTACT#<id>  NEED#<queue>   and one under NEEDS#<queue>#<its required skills> (billing=3+english=2,
                                 or - for none), in the same order: what a freed agent reads
    CONTACT#<id>  AGE#<queue>    a small entry in gsi1 under WAITSINCE#<queue> while queued there,
                                 longest waiting first (the supervisor's oldest wait: one item)
    CONTACT#<id>  OFFER          (written by layout 2, whose offered contact item was under WORK#<agent>: a
                                 copy under OFFERED by expiry, deleted by the contact's next save)
    CONTACT#<id>  WORK           (written by the previous layout, whose contact item was in no index, beside
                                 WAIT# of the first queue: deleted by the contact's next save)
    CONTACT#<id>  RECORD#<arrived at>  the contact record of one arrival of the conversation (its lifecycle:
                                 ``routing.records``) as the arrival's save wrote it, in gsi1 under
                                 CONTACTS#<yyyy-mm-dd of arrival> by arrival: a period is read back by day,
                                 without a scan. Written once (by this version; an earlier one appended to it)
    CONTACT#<id>  RECORDLOG#<arrived at>  what happened to that arrival afterwards (offers, answers, close...),
                                 appended by each save: in no index, so an update pays for the item alone
    CONTACT#<id>  DECISION#<at>#<offer>  why an offer went to its agent (``ports.OfferDecision``)
    QUEUESTATS#<queue> STATS     recent handle time and how many contacts are being worked
    QUEUESTATS#<queue> WAITING#<n>  how many contacts wait in the queue per priority (``waiting_p<0..9>``),
                                 one of ``COUNT_SHARDS`` shards, kept by ADD in the transactions
                                 that move contacts in and out of waiting
    QUEUESTATS#<queue> AGENTS#<n>   how many of the queue's agents are Available, Away, Offline
                                 (``agents_<presence>``), kept alike by the agents' transactions

Routing reads bounded pages of an index, never all agents: a contact needing
skills reads the pool of its most demanding skill, a freed agent the waiting
contacts whose required skills it has. Every change of
an agent or contact is a put of its main item conditioned on the version
read, together with its index copies, in one transaction: two routers acting
on the same state cannot both win, no agent goes over capacity and no
contact is offered twice.

What waits is counted, not read: the same transactions add to or take from the
queue's waiting counts, so the supervisor's view and a customer's place in the
queue read a bounded number of items however many contacts wait. The counts
are spread over shards so that concurrent transactions in one queue seldom
touch the same counter item (DynamoDB cancels transactions that overlap on an item).
"""

from __future__ import annotations

import contextlib
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from chalicelib import clock
from chalicelib.routing import records
from chalicelib.routing.matching import requirement_key, waiting_sort_key
from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from chalicelib.routing.ports import Lifecycle, OfferDecision
from chalicelib.routing.records import SET_ONCE, merged
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import conversation_key, customer_key
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact, write
from chalicelib.store.resources import ROUTING_INDEX

OFFERED_INDEX_KEY = "OFFERED"
DISCONNECTED_INDEX_KEY = "DISCONNECTED"
PAGE = 25
# An agent's index copies are rewritten in the transaction of each offer, accept and close (at most 100
# actions, with the contact's): this bounds queues * (skills + 1).
MAX_POOL_ENTRIES = 40
AGENTS_INDEX_KEY = "AGENTS"
COUNT_SHARDS = 8  # waiting-count items per queue; may grow (a count is the sum of every shard), never shrink
POSITION_EXACT_WITHIN = 50  # contacts counted one by one either side of a customer before the rest is estimated
SUPERVISOR_AGENTS_PAGE = 100

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


def agent_from_values(values: dict[str, Any]) -> Agent:
    """The agent an item of theirs (``AGENT#<id>``/``AGENT``, as read or as the table's stream shows it) holds."""
    return _agent_from(values)


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


def _directory_entry(agent: Agent) -> dict[str, Any]:
    """Where the agent's own item sits in gsi1: every agent, by id, for a paged listing without a scan."""
    return {"gsi1pk": AGENTS_INDEX_KEY, "gsi1sk": agent.agent_id}


def agent_actions(change: Change) -> list[dict[str, Any]]:
    """Save an agent (versioned) and keep its index copies in step (its queues' counts: ``presence_count_actions``)."""
    before, after = change
    return [
        _versioned_put({**_agent_values(after), **_directory_entry(after)}, before.version if before else None),
        *_index_actions(
            f"AGENT#{after.agent_id}",
            {**_agent_index(before), **_grace_index(before)},
            {**_agent_index(after), **_grace_index(after)},
        ),
    ]


def presence_count_actions(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """ADD updates of the queues' presence counts for agents created, changing presence or changing queues.

    Nothing for the frequent saves that change neither (an offer reserving capacity, a close releasing it).
    """
    deltas: defaultdict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for before, after in changes:
        shard = _count_shard(after.agent_id)
        for queue in after.queues:
            deltas[(queue, shard)][after.presence.value] += 1
        for queue in before.queues if before else ():
            deltas[(queue, shard)][before.presence.value] -= 1
    return _add_actions("AGENTS", "agents_", deltas)


def _add_actions(kind: str, prefix: str, deltas: dict[tuple[str, int], Counter[Any]]) -> list[dict[str, Any]]:
    """One ``ADD`` update per (queue, shard) with a change: a transaction may not touch an item twice."""
    actions: list[dict[str, Any]] = []
    for (queue, shard), by_name in sorted(deltas.items()):
        changed = {name: delta for name, delta in sorted(by_name.items()) if delta}
        if not changed:
            continue
        actions.append(
            {
                "Update": {
                    "TableName": _table(),
                    "Key": key(f"QUEUESTATS#{queue}", f"{kind}#{shard}"),
                    "UpdateExpression": "ADD " + ", ".join(f"{prefix}{name} :{prefix}{name}" for name in changed),
                    "ExpressionAttributeValues": to_values(
                        {f":{prefix}{name}": delta for name, delta in changed.items()}
                    ),
                }
            }
        )
    return actions


def create_agent(agent: Agent) -> None:
    """Store a new agent; ``TransactionConflict`` if the id is taken."""
    transact([*agent_actions((None, agent)), *presence_count_actions([(None, agent)])])


def get_agent(agent_id: str) -> Agent | None:
    found = get(_table(), f"AGENT#{agent_id}", "AGENT")
    return _agent_from(found) if found else None


def save_agent(before: Agent, after: Agent) -> None:
    """Save an agent changed from the version read (``TransactionConflict`` if it changed meanwhile)."""
    transact([*agent_actions((before, after)), *presence_count_actions([(before, after)])])


def list_agents() -> list[Agent]:
    """Every agent, by id (an admin listing; routing never calls this): reads the agents, not the whole table."""
    agents: list[Agent] = []
    after: str | None = None
    while True:
        page, after = agents_page(after, limit=SUPERVISOR_AGENTS_PAGE)
        agents.extend(page)
        if after is None:
            return agents


def index_agents() -> int:
    """List and count agents stored by a version without the ``AGENTS`` index and the presence counts.

    A one-off after an upgrade, before the new version takes traffic (it scans the table); returns how many
    agents it listed. Each agent is listed and counted in one transaction, against the version read.
    """
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "FilterExpression": "sk = :agent AND attribute_not_exists(gsi1pk)",
        "ExpressionAttributeValues": to_values({":agent": "AGENT"}),
    }
    listed = 0
    while True:
        page = client.scan(**kwargs)
        listed += sum(_list_agent(_agent_from(from_item(i))) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return listed
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _list_agent(agent: Agent) -> bool:
    """Put one agent of an older version in the ``AGENTS`` index and its queues' counts; False if saved meanwhile."""
    listing = {
        "Update": {
            "TableName": _table(),
            "Key": key(f"AGENT#{agent.agent_id}", "AGENT"),
            "UpdateExpression": "SET gsi1pk = :pk, gsi1sk = :id",
            "ConditionExpression": "version = :version AND attribute_not_exists(gsi1pk)",
            "ExpressionAttributeValues": to_values(
                {":pk": AGENTS_INDEX_KEY, ":id": agent.agent_id, ":version": agent.version}
            ),
        }
    }
    try:
        transact([listing, *presence_count_actions([(None, agent)])])
    except TransactionConflict:
        return False  # saved meanwhile by the new version: listed by that save
    return True


def agents_page(after: str | None = None, limit: int = SUPERVISOR_AGENTS_PAGE) -> tuple[list[Agent], str | None]:
    """Up to ``limit`` agents by id, those after ``after``; and the id to continue after (None: no more)."""
    values: dict[str, Any] = {":pk": AGENTS_INDEX_KEY}
    condition = "gsi1pk = :pk"
    if after is not None:
        condition += " AND gsi1sk > :after"
        values[":after"] = after
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=to_values(values),
        Limit=limit + 1,  # one more than shown: whether another page follows, without an empty last page
    )
    agents = [_agent_from(from_item(i)) for i in page["Items"]]
    more = len(agents) > limit
    agents = agents[:limit]
    return agents, agents[-1].agent_id if more else None


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
    items = _index_before(DISCONNECTED_INDEX_KEY, moment, limit)
    return [(str(i["agent_id"]), str(i["disconnected_at"])) for i in items]


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


LAYOUT = 3  # how contacts are indexed (on every item this version writes): see ``_contact_index``
_LEGACY_READ_LIMIT = 10_000


def _main_index_key(contact: Contact) -> dict[str, Any]:
    """Where the contact's own item sits in gsi1: what a waiting contact is read by in its first queue, what an
    offered one is found by when its offer expires (and, filtered, among its agent's work), what an assigned one
    is read by for its agent; nowhere once closed."""
    if contact.state is ContactState.QUEUED:
        return {"gsi1pk": f"WAITING#{contact.queues[0]}", "gsi1sk": waiting_sort_key(contact)}
    if contact.state is ContactState.OFFERED:
        return _offered_index_key(contact)
    if contact.state is ContactState.ASSIGNED and contact.assigned_to:
        return {"gsi1pk": f"WORK#{contact.assigned_to}", "gsi1sk": contact.enqueued_at}
    return {}


def _offered_index_key(contact: Contact) -> dict[str, Any]:
    return {"gsi1pk": OFFERED_INDEX_KEY, "gsi1sk": f"{contact.offer_expires_at}#{contact.contact_id}"}


def _contact_index(contact: Contact | None) -> dict[str, dict[str, Any]]:
    """The contact's index copies beside its own item (``_main_index_key``): a queued one's under its other
    queues (``WAIT#``), its required skills (``NEED#``) and its waiting time (``AGE#``). An offered or assigned
    one has none (its own item is in the index)."""
    if contact is None:
        return {}
    values = {**_contact_values(contact), "layout": LAYOUT}
    if contact.state is ContactState.QUEUED:
        needs = requirement_key(contact.required_skills)
        entries = {}
        for place, queue in enumerate(contact.queues):
            if place:
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
            entries[f"AGE#{queue}"] = _age_entry(contact, queue)
        return entries
    return {}


def _layout_2_index(contact: Contact) -> dict[str, dict[str, Any]]:
    """The copies layout 2 kept: this layout's, and an ``OFFER`` copy while offered (only its key matters: the
    contact's next save deletes it)."""
    entries = _contact_index(contact)
    if contact.state is ContactState.OFFERED:
        entries["OFFER"] = {"pk": f"CONTACT#{contact.contact_id}", "sk": "OFFER"}
    return entries


def _legacy_contact_index(contact: Contact) -> dict[str, dict[str, Any]]:
    """The index copies an earlier version kept (its contact item was in no index): one waiting copy per queue,
    and a ``WORK`` copy while offered or assigned. Only their keys matter: they are deleted."""
    pk = f"CONTACT#{contact.contact_id}"
    if contact.state is ContactState.QUEUED:
        return {sk: {"pk": pk, "sk": sk} for q in contact.queues for sk in (f"WAIT#{q}", f"NEED#{q}", f"AGE#{q}")}
    if contact.state is ContactState.OFFERED:
        return {"OFFER": {"pk": pk, "sk": "OFFER"}, "WORK": {"pk": pk, "sk": "WORK"}}
    if contact.state is ContactState.ASSIGNED:
        return {"WORK": {"pk": pk, "sk": "WORK"}}
    return {}


# Contacts read (id, version) from items an earlier version wrote, with that layout (1: no ``layout``): their
# next save deletes that version's copies. A save always follows its read in the same process, so this
# process-wide note is enough; bounded.
_legacy_read: dict[tuple[str, int], int] = {}


def _note_layout(values: dict[str, Any], contact: Contact) -> None:
    layout = int(values.get("layout") or 1)
    if layout != LAYOUT and contact.state is not ContactState.CLOSED:
        if len(_legacy_read) >= _LEGACY_READ_LIMIT:
            _legacy_read.clear()
        _legacy_read[(contact.contact_id, contact.version)] = layout


def _stored_index(contact: Contact | None) -> dict[str, dict[str, Any]]:
    """The index copies ``contact`` (as read) has in the table, in whichever layout wrote it."""
    layout = _legacy_read.get((contact.contact_id, contact.version), LAYOUT) if contact is not None else LAYOUT
    if contact is not None and layout == 1:
        return _legacy_contact_index(contact)
    if contact is not None and layout == 2:
        return _layout_2_index(contact)
    return _contact_index(contact)


def _age_entry(contact: Contact, queue: str) -> dict[str, Any]:
    return {
        "pk": f"CONTACT#{contact.contact_id}",
        "sk": f"AGE#{queue}",
        "gsi1pk": f"WAITSINCE#{queue}",
        "gsi1sk": f"{contact.enqueued_at}#{contact.contact_id}",
        "enqueued_at": contact.enqueued_at,
    }


def _contact_from(values: dict[str, Any]) -> Contact:
    fields = {k: v for k, v in values.items() if k in Contact.__dataclass_fields__}
    fields["state"] = ContactState(values["state"])
    fields["queues"] = tuple(values.get("queues", ()))
    fields["declined_by"] = tuple(values.get("declined_by", ()))
    fields["required_skills"] = dict(values.get("required_skills", {}))
    fields["escalation"] = tuple(dict(step) for step in values.get("escalation", ()))
    contact = Contact(**fields)
    _note_layout(values, contact)
    return contact


def contact_actions(change: Change) -> list[dict[str, Any]]:
    """Save a contact (versioned) and keep its index copies and its queues' waiting counts in step."""
    return [*_contact_item_actions(change), *waiting_count_actions([change])]


def _contact_item_actions(change: Change) -> list[dict[str, Any]]:
    """The contact's own item (versioned, carrying its main index key) and its index copies: those it leaves
    are deleted, those that change are put; one whose content stays the same (``AGE#``) is left alone."""
    before, after = change
    stored, wanted = _stored_index(before), _contact_index(after)
    pk = f"CONTACT#{after.contact_id}"
    return [
        _versioned_put(
            {**_contact_values(after), "layout": LAYOUT, **_main_index_key(after)}, before.version if before else None
        ),
        *[{"Put": {"TableName": _table(), "Item": to_item(i)}} for sk, i in wanted.items() if stored.get(sk) != i],
        *[{"Delete": {"TableName": _table(), "Key": key(pk, sk)}} for sk in stored if sk not in wanted],
    ]


# --- waiting counts: kept in the contacts' own transactions -----------------------------------


def _count_shard(contact_id: str) -> int:
    return zlib.crc32(contact_id.encode()) % COUNT_SHARDS


def _waiting_places(contact: Contact | None) -> set[tuple[str, int]]:
    """(queue, priority) for each queue the contact waits in; none unless it is queued."""
    if contact is None or contact.state is not ContactState.QUEUED:
        return set()
    return {(queue, contact.priority) for queue in contact.queues}


def waiting_count_actions(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """ADD updates of the waiting counts for contacts entering, leaving or moving between queues or priorities.

    One update per (queue, shard) touched, as one transaction may not touch an item twice; nothing when no
    contact changes where it waits (an acknowledgement, an offer's answer while assigned...).
    """
    deltas: defaultdict[tuple[str, int], Counter[int]] = defaultdict(Counter)
    for before, after in changes:
        shard = _count_shard(after.contact_id)
        for queue, priority in _waiting_places(after):
            deltas[(queue, shard)][priority] += 1
        for queue, priority in _waiting_places(before):
            deltas[(queue, shard)][priority] -= 1
    return _add_actions("WAITING", "waiting_p", deltas)


def _queue_items(queue: str) -> tuple[dict[str, Any], dict[int, int], dict[str, int]]:
    """The queue's statistics, waiting count per priority and agents per presence: one query of a few items."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=to_values({":pk": f"QUEUESTATS#{queue}"}),
        ConsistentRead=True,
    )
    stats: dict[str, Any] = {}
    waiting: Counter[int] = Counter()
    agents: Counter[str] = Counter({presence.value: 0 for presence in Presence})
    for item in (from_item(i) for i in page["Items"]):
        if item["sk"] == "STATS":
            stats = item
            continue
        for name, value in item.items():
            if name.startswith("waiting_p"):
                waiting[int(name.removeprefix("waiting_p"))] += int(value)
            elif name.startswith("agents_"):
                agents[name.removeprefix("agents_")] += int(value)
    return (
        stats,
        {priority: max(0, count) for priority, count in sorted(waiting.items())},
        {presence: max(0, count) for presence, count in agents.items()},
    )


def waiting_counts(queue: str) -> dict[int, int]:
    """How many contacts wait in ``queue``, per priority (every priority ever used there; 0 when none now)."""
    return _queue_items(queue)[1]


def presence_counts(queue: str) -> dict[str, int]:
    """How many agents serving ``queue`` are Available, Away and Offline."""
    return _queue_items(queue)[2]


def oldest_waiting(queue: str) -> str | None:
    """When the contact waiting longest in ``queue`` was queued there (one index item), None if none waits."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=to_values({":pk": f"WAITSINCE#{queue}"}),
        Limit=1,
    )
    return str(page["Items"][0]["enqueued_at"]["S"]) if page["Items"] else None


def recount_waiting(queue: str) -> dict[int, int]:
    """Count what waits in ``queue`` the slow way and store it as the queue's counts; returns them.

    For contacts queued before the counts existed (an upgrade) or written around the store (a bulk load).
    It reads the queue's whole index partition: run it while nothing is routed in that queue.
    """
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": to_values({":pk": f"WAITING#{queue}"}),
        "ProjectionExpression": "priority",
    }
    counted: Counter[int] = Counter()
    while True:
        page = client.query(**kwargs)
        counted.update(int(from_item(i)["priority"]) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for shard in range(COUNT_SHARDS):
        item: dict[str, Any] = {"pk": f"QUEUESTATS#{queue}", "sk": f"WAITING#{shard}"}
        if shard == 0:
            item |= {f"waiting_p{p}": n for p, n in counted.items()}
        client.put_item(TableName=_table(), Item=to_item(item))
    return dict(sorted(counted.items()))


def get_contact(contact_id: str) -> Contact | None:
    found = get(_table(), f"CONTACT#{contact_id}", "CONTACT")
    return _contact_from(found) if found else None


def create_contact(
    before: Contact | None, contact: Contact, extra: Sequence[dict[str, Any]] = (), agents: Sequence[Change] = ()
) -> None:
    """Store a new (or reopened) contact, queued or offered with its agent's reservation in ``agents`` (with
    ``extra`` actions), in one transaction; ``TransactionConflict`` if any of them changed meanwhile."""
    save(contacts=[(before, contact)], agents=agents, extra=extra)


def work_of(agent_id: str, limit: int = 100) -> list[Contact]:
    """What is offered to or assigned to an agent now, oldest first: assigned under ``WORK#<agent>``, offered
    among the open offers (``OFFERED``: every agent's, each open until it is answered or expires, so a few per
    agent taking work at most) filtered to theirs. Contacts' own items, or an earlier layout's copies."""
    found: dict[str, Contact] = {}
    items = [*_index_page(f"WORK#{agent_id}", limit), *_open_offers_of(agent_id)]
    for item in items:
        contact = _contact_from(item)
        if contact.contact_id not in found or item["sk"] == "CONTACT":
            found[contact.contact_id] = contact
    live = [c for c in found.values() if agent_id in (c.offered_to, c.assigned_to)]
    return sorted(live, key=lambda c: (c.enqueued_at, c.contact_id))


def _open_offers_of(agent_id: str) -> list[dict[str, Any]]:
    """The items of the ``OFFERED`` partition that are offers to ``agent_id`` (every page of it)."""
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": ROUTING_INDEX,
        "KeyConditionExpression": "gsi1pk = :pk",
        "FilterExpression": "offered_to = :agent",
        "ExpressionAttributeValues": to_values({":pk": OFFERED_INDEX_KEY, ":agent": agent_id}),
    }
    found: list[dict[str, Any]] = []
    while True:
        page = aws.client("dynamodb").query(**kwargs)
        found += [from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def waiting_contacts(queue: str, limit: int = PAGE) -> list[Contact]:
    """Queued contacts of ``queue``: highest priority, then the earliest deadline, first."""
    return [_contact_from(i) for i in _index_page(f"WAITING#{queue}", limit)]


def contacts_needing(queue: str, skills: Mapping[str, int], limit: int = PAGE) -> list[Contact]:
    """Queued contacts of ``queue`` that require exactly ``skills``, in the order of ``waiting_contacts``."""
    return [_contact_from(i) for i in _index_page(f"NEEDS#{queue}#{requirement_key(skills)}", limit)]


def place_in_queue(contact: Contact, queue: str) -> tuple[int, dict[str, Any]]:
    """``position_in_queue`` and the queue's statistics (``queue_stats``), read with the counts it starts from."""
    stats, counts, _ = _queue_items(queue)
    return _position(contact, queue, counts), stats


def position_in_queue(contact: Contact, queue: str) -> int:
    """How many contacts wait ahead of this one in ``queue`` (0: next), from a bounded read.

    Ahead are all of higher priority (from the queue's counts) and those of the same priority that sort
    before it. Those are counted one by one when fewer than ``POSITION_EXACT_WITHIN`` are ahead, or behind
    (the priority's count less those behind); otherwise the rest is shared out between ahead and behind in
    proportion to the stretch of SLA deadlines on each side, and the place (ahead + 1) is rounded to two
    significant figures, at least to ten: an honest estimate, shown as one.
    """
    return _position(contact, queue, waiting_counts(queue))


def _position(contact: Contact, queue: str, counts: dict[int, int]) -> int:
    higher = sum(n for priority, n in counts.items() if priority > contact.priority)
    in_band = counts.get(contact.priority, 0)
    mine = waiting_sort_key(contact)
    band_start, band_end = f"{9 - contact.priority}#", f"{9 - contact.priority}$"  # "$" sorts right after "#"
    ahead, all_ahead = _band_keys(queue, band_start, mine, mine, forward=False)
    if all_ahead:
        return higher + len(ahead)
    behind, all_behind = _band_keys(queue, mine, band_end, mine, forward=True)
    if all_behind:
        return higher + max(len(ahead), in_band - 1 - len(behind))
    unread = max(0, in_band - 1 - len(ahead) - len(behind))
    first, _ = _band_keys(queue, band_start, band_end, mine, forward=True, limit=1)
    last, _ = _band_keys(queue, band_start, band_end, mine, forward=False, limit=1)
    before_span = _seconds_between_keys(first[0], ahead[-1]) if first else 0.0
    after_span = _seconds_between_keys(behind[-1], last[0]) if last else 0.0
    share = before_span / (before_span + after_span) if before_span + after_span > 0 else 0.5
    at_least = higher + len(ahead) + 1  # the place is no nearer than the contacts counted ahead
    place = at_least + round(unread * share)
    step = max(10, 10 ** (len(str(place)) - 2))
    shown = round(place / step) * step
    return (shown if shown >= at_least else shown + step) - 1


def _band_keys(
    queue: str, low: str, high: str, mine: str, *, forward: bool, limit: int = POSITION_EXACT_WITHIN + 1
) -> tuple[list[str], bool]:
    """Waiting sort keys of ``queue`` from ``low`` to ``high`` (inclusive), nearest first, without ``mine``;
    and whether that was all of them."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
        ExpressionAttributeValues=to_values({":pk": f"WAITING#{queue}", ":low": low, ":high": high}),
        ProjectionExpression="gsi1sk",
        ScanIndexForward=forward,
        Limit=limit,
    )
    found = [str(i["gsi1sk"]["S"]) for i in page["Items"]]
    return [k for k in found if k != mine], "LastEvaluatedKey" not in page


def _seconds_between_keys(earlier: str, later: str) -> float:
    """Seconds between the SLA deadlines (else the queueing times) in two waiting sort keys; 0 if unreadable."""

    def moment(sort_key: str) -> str:
        _, deadline, enqueued, *_ = [*sort_key.split("#"), "", ""]
        return deadline or enqueued

    try:
        return max(0.0, clock.seconds_between(moment(earlier), moment(later)))
    except ValueError:
        return 0.0


def expired_offers(now: str, limit: int = 50) -> list[Contact]:
    """Contacts whose offer expired before ``now``, the oldest expiry first."""
    return [_contact_from(i) for i in _index_before(OFFERED_INDEX_KEY, now, limit)]


def _index_before(partition: str, moment: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` entries of a gsi1 partition whose sort key (a time first) is before ``moment``, oldest first."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=ROUTING_INDEX,
        KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
        ExpressionAttributeValues=to_values({":pk": partition, ":before": moment}),
        Limit=limit,
    )
    return [from_item(i) for i in page["Items"]]


def save(contacts: Sequence[Change] = (), agents: Sequence[Change] = (), extra: Sequence[dict[str, Any]] = ()) -> None:
    """Save contacts and agents (each against the version read) and any extra actions, together or not at all."""
    actions: list[dict[str, Any]] = []
    for change in contacts:
        actions += _contact_item_actions(change)
    actions += waiting_count_actions(contacts)
    for change in agents:
        actions += agent_actions(change)
    actions += presence_count_actions(agents)
    write([*actions, *extra])  # one action alone: a plain conditional write, half a transaction's units


def record_assignment(contact: Contact) -> None:
    """Record the accepting agent on the conversation: a plain update after the accept's save, idempotent (the
    same values again), so an accept retried after a crash between the two writes it again."""
    aws.client("dynamodb").update_item(
        TableName=_data_table(),
        Key=key(conversation_key(contact.contact_id), "META"),
        UpdateExpression="SET agent_id = :agent, assigned_at = :now",
        ExpressionAttributeValues=to_values({":agent": contact.assigned_to, ":now": contact.accepted_at}),
    )


def forget_assignment(contact_id: str, agent_id: str) -> None:
    """The conversation no longer names ``agent_id`` (an accept taken back: their call leg never joined; or they
    transferred it); a plain conditional update, so a repeat, or a later agent's assignment, is left alone."""
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=_data_table(),
            Key=key(conversation_key(contact_id), "META"),
            UpdateExpression="REMOVE agent_id, assigned_at",
            ConditionExpression="agent_id = :agent",
            ExpressionAttributeValues=to_values({":agent": agent_id}),
        )


def record_closing(contact: Contact, customer_id: str) -> None:
    """After a close's save: close the conversation, remember who served the customer (their preferred agent next
    time) and clear the customer's pointer to this conversation, in one update of each item. Idempotent: a close
    retried after a crash in between writes the same again.

    A message that came after the close (the customer wrote between the contact's save and these writes) keeps
    the conversation open: the router reopens the contact for it, so neither the conversation is marked closed
    nor the customer's pointer cleared then; the served-by fields are set either way.
    """
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_data_table(),
            Key=key(conversation_key(contact.contact_id), "META"),
            UpdateExpression="SET #status = :closed, closed_at = :now, wrap_up = :wrap_up",
            ConditionExpression="attribute_not_exists(last_message_at) OR last_message_at <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values(
                {":closed": "closed", ":now": contact.closed_at, ":wrap_up": contact.wrap_up or "none"}
            ),
        )
        continued = False
    except client.exceptions.ConditionalCheckFailedException:
        continued = True
    served = "SET last_agent_id = :agent, last_served_at = :now"
    values = {":agent": contact.assigned_to, ":now": contact.closed_at}
    profile = {"TableName": _data_table(), "Key": key(customer_key(customer_id), "PROFILE")}
    if not continued:
        try:
            client.update_item(
                **profile,
                UpdateExpression=served + " REMOVE open_conversation_id",
                ConditionExpression="open_conversation_id = :conversation",
                ExpressionAttributeValues=to_values({**values, ":conversation": contact.contact_id}),
            )
            return
        except client.exceptions.ConditionalCheckFailedException:
            pass  # the pointer moved on (or a retry cleared it already): the served-by fields alone
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # a later close's stay
        client.update_item(
            **profile,
            UpdateExpression=served,
            ConditionExpression="attribute_not_exists(last_served_at) OR last_served_at <= :now",
            ExpressionAttributeValues=to_values(values),
        )


# --- queue statistics (for the expected wait told to customers) -------------------------------

_HANDLE_WEIGHT = 0.2  # exponentially weighted: recent handle times count most


def queue_stats(queue: str) -> dict[str, Any]:
    return get(_table(), f"QUEUESTATS#{queue}", "STATS") or {}


def _count_stats(queue: str, by: int, *, working: bool, sla_met: bool | None) -> None:
    """Add ``by`` to the queue's at-work count (``working``) and to its SLA outcome (``sla_met``; None: neither)."""
    counts = (["working"] if working else []) + ([] if sla_met is None else ["sla_met" if sla_met else "sla_breached"])
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(f"QUEUESTATS#{queue}", "STATS"),
        UpdateExpression="ADD " + ", ".join(f"{name} :by" for name in counts),
        ExpressionAttributeValues=to_values({":by": by}),
    )


def record_started(queue: str, sla_met: bool | None) -> None:
    """A contact of ``queue`` was accepted: one more at work, and whether its first response met the SLA
    (``None``: judged later, when a call's agent joins: ``record_sla``)."""
    _count_stats(queue, 1, working=True, sla_met=sla_met)


def record_sla(queue: str, sla_met: bool) -> None:
    """A call of ``queue`` reached its agent: whether it met the SLA (its accept counted it at work)."""
    _count_stats(queue, 1, working=False, sla_met=sla_met)


def record_unstarted(queue: str, sla_met: bool | None) -> None:
    """An accept of ``queue`` taken back (the call's agent never joined): one fewer at work, and its SLA outcome
    uncounted when one was counted with it."""
    _count_stats(queue, -1, working=True, sla_met=sla_met)


def record_abandoned(queue: str, waited_seconds: float = 0.0) -> None:
    """A contact of ``queue`` was abandoned (its customer gave up waiting) after ``waited_seconds``: counted, and
    summed (``abandon_seconds``), for the supervisor view's abandonment rate and average time to abandon."""
    aws.client("dynamodb").update_item(**abandoned_count(queue, waited_seconds))


def abandoned_count(queue: str, waited_seconds: float) -> dict[str, Any]:
    """``record_abandoned``'s update, also as a transaction's ``Update`` (a caller gone before any contact)."""
    return {
        "TableName": _table(),
        "Key": key(f"QUEUESTATS#{queue}", "STATS"),
        "UpdateExpression": "ADD abandoned :one, abandon_seconds :waited",
        "ExpressionAttributeValues": to_values({":one": 1, ":waited": round(max(0.0, waited_seconds), 1)}),
    }


def record_callback(queue: str, outcome: str) -> None:
    """A callback of ``queue`` was ``requested``, ``connected`` or ``failed``: counted for the supervisor view."""
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(f"QUEUESTATS#{queue}", "STATS"),
        UpdateExpression="ADD #outcome :one",
        ExpressionAttributeNames={"#outcome": f"callbacks_{outcome}"},
        ExpressionAttributeValues=to_values({":one": 1}),
    )


def waiting_summary(queue: str) -> tuple[int, str | None]:
    """How many contacts wait in ``queue`` and since when the longest has waited: a few items, not the queue."""
    return sum(waiting_counts(queue).values()), oldest_waiting(queue)


def queue_overview(queue: str) -> tuple[dict[str, Any], int, str | None, dict[str, int]]:
    """The queue's statistics, how many wait, since when the longest has, its agents per presence: two reads."""
    stats, counts, agents = _queue_items(queue)
    return stats, sum(counts.values()), oldest_waiting(queue), agents


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


# --- contact records and decision records -----------------------------------------------------

RECORDS_INDEX_PREFIX = "CONTACTS#"
DECISIONS_PAGE = 100  # decision records returned per contact (the newest kept when there are more)


def _expires_at(moment: str, days: int) -> int:
    """The TTL (epoch seconds) ``days`` after ``moment``; the table's TTL attribute deletes the item then."""
    return int(clock.parse_iso(moment).timestamp()) + days * 86400


def record_partition(arrived_at: str) -> str:
    """The gsi1 partition of the contact records that arrived on that UTC day."""
    return f"{RECORDS_INDEX_PREFIX}{arrived_at[:10]}"


RECORD_PREFIX = "RECORD#"  # the arrival's part of a contact record, in gsi1
RECORD_LOG_PREFIX = "RECORDLOG#"  # the rest of its lifecycle, in no index


def lifecycle_action(change: Lifecycle) -> dict[str, Any]:
    """Append events to a contact record and set its summary fields; creates the record on first use.

    The arrival's save (its events begin with ``arrived``) writes the record's indexed part (``RECORD#``); every
    later one appends to its unindexed part (``RECORDLOG#``): the index is written once per arrival, not at
    every offer, answer and close. Readers merge the two (``records_of``, ``records_between``).

    An update without a condition: it never cancels the transaction of the change it goes with, and that
    transaction (conditioned on the contact's version) commits it at most once.
    """
    contact = change.contact
    arrived = contact.record_key
    arrival = any(e.get("kind") == "arrived" for e in change.events)
    names: dict[str, str] = {"#events": "events"}
    values: dict[str, Any] = {
        ":events": [dict(e) for e in change.events],
        ":none": [],
        ":ttl": _expires_at(arrived, get_settings().contact_record_retention_days),
    }
    sets = ["#events = list_append(if_not_exists(#events, :none), :events)", "expires_at = :ttl"]
    if arrival:
        values |= {":gpk": record_partition(arrived), ":gsk": f"{arrived}#{contact.contact_id}"}
        sets += ["gsi1pk = :gpk", "gsi1sk = :gsk"]
    for place, (name, value) in enumerate(sorted(change.fields.items())):
        if value is None:
            continue
        names[f"#f{place}"], values[f":f{place}"] = name, value
        if name in SET_ONCE:
            sets.append(f"#f{place} = if_not_exists(#f{place}, :f{place})")
        else:
            sets.append(f"#f{place} = :f{place}")
    return {
        "Update": {
            "TableName": _table(),
            "Key": key(f"CONTACT#{contact.contact_id}", f"{RECORD_PREFIX if arrival else RECORD_LOG_PREFIX}{arrived}"),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_values(values),
        }
    }


def record_once(change: Lifecycle) -> None:
    """Append ``change`` (``once`` set) to its record after the save it goes with, unless a save of the same
    name did already (the record keeps the names it was written under in ``applied``)."""
    update = lifecycle_action(change)["Update"]
    update["UpdateExpression"] += " ADD applied :once"
    update["ConditionExpression"] = "NOT contains(applied, :name)"
    values = {":once": {change.once}, ":name": change.once}
    update["ExpressionAttributeValues"] = {**update["ExpressionAttributeValues"], **to_values(values)}
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(**update)  # failed: written before (the save's earlier attempt got this far)


def lifecycle_actions(changes: Sequence[Lifecycle]) -> list[dict[str, Any]]:
    """One update per contact record (a transaction may not touch an item twice)."""
    return [lifecycle_action(change) for change in merged(changes)]


def decision_action(decision: OfferDecision) -> dict[str, Any]:
    """Store a decision record under its contact; a new item per offer, a few kilobytes at most."""
    item = {
        "pk": f"CONTACT#{decision.contact_id}",
        "sk": f"DECISION#{decision.made_at}#{decision.offer_id}",
        **decision.as_item(),
        "expires_at": _expires_at(decision.made_at, get_settings().decision_retention_days),
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item)}}


def _under_contact(contact_id: str, prefix: str, limit: int | None = None, newest: bool = False) -> list[dict]:
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": to_values({":pk": f"CONTACT#{contact_id}", ":prefix": prefix}),
        "ScanIndexForward": not newest,
    }
    found: list[dict[str, Any]] = []
    while True:
        if limit is not None:
            kwargs["Limit"] = limit - len(found)
        page = aws.client("dynamodb").query(**kwargs)
        found += [from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page or (limit is not None and len(found) >= limit):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found[::-1] if newest else found


def _without_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk", "expires_at", "applied")}


def decisions_of(contact_id: str, limit: int = DECISIONS_PAGE) -> list[dict[str, Any]]:
    """The contact's decision records, oldest first (the newest ``limit`` of them)."""
    return [_without_keys(i) for i in _under_contact(contact_id, "DECISION#", limit, newest=True)]


def records_of(contact_id: str) -> list[dict[str, Any]]:
    """The contact records of a conversation (one per arrival), oldest first: both parts of each, merged."""
    parts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for item in _under_contact(contact_id, "RECORD"):  # RECORD#<arrival> and RECORDLOG#<arrival>
        part, _, arrival = str(item["sk"]).partition("#")
        parts[arrival][part] = item
    return [_merged_record(p.get("RECORD"), p.get("RECORDLOG")) for _, p in sorted(parts.items())]


def _merged_record(indexed: dict[str, Any] | None, log: dict[str, Any] | None) -> dict[str, Any]:
    """One contact record from its indexed part and its log (either may be missing): the indexed part's events
    then the log's, each field as its last save set it (a set-once field as its first)."""
    first, rest = _without_keys(indexed or {}), _without_keys(log or {})
    merged = {**first, **{k: v for k, v in rest.items() if not (k in SET_ONCE and k in first)}}
    merged["events"] = [*first.get("events", []), *rest.get("events", [])]
    return merged


def _with_logs(indexed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records' indexed parts (as stored) merged with their logs, read in batches of a hundred keys."""
    client = aws.client("dynamodb")
    logs: dict[tuple[str, str], dict[str, Any]] = {}
    wanted = [key(str(i["pk"]), f"{RECORD_LOG_PREFIX}{str(i['sk']).removeprefix(RECORD_PREFIX)}") for i in indexed]
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {_table(): {"Keys": wanted[start : start + 100]}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in (from_item(i) for i in response["Responses"].get(_table(), [])):
                logs[(str(item["pk"]), str(item["sk"]))] = item
            request = response.get("UnprocessedKeys") or {}
    return [
        _merged_record(i, logs.get((str(i["pk"]), f"{RECORD_LOG_PREFIX}{str(i['sk']).removeprefix(RECORD_PREFIX)}")))
        for i in indexed
    ]


def records_between(start: str, end: str) -> Iterator[dict[str, Any]]:
    """Contact records that arrived from ``start`` up to (not including) ``end``, by arrival: one query per
    day of the period (pages followed), never a scan, and their logs read by key (``BatchGetItem``)."""
    day = clock.parse_iso(start).date()
    last = clock.parse_iso(end).date()
    client = aws.client("dynamodb")
    while day <= last:
        kwargs: dict[str, Any] = {
            "TableName": _table(),
            "IndexName": ROUTING_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_values(
                {":pk": f"{RECORDS_INDEX_PREFIX}{day.isoformat()}", ":low": start, ":high": end}
            ),
        }
        while True:
            page = client.query(**kwargs)
            found = [i for i in (from_item(i) for i in page["Items"]) if start <= str(i.get("arrived_at", "")) < end]
            yield from _with_logs(found)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        day += timedelta(days=1)


def record_first_response(contact: Contact, agent_id: str, now: str) -> None:
    """Mark the contact's first agent response, outside the reply's own write, in two idempotent steps.

    First its contact record: one update conditioned on the record having no first response yet (a failed
    condition means an earlier try of this reply, or a racing first reply, wrote it: nothing to do). Then the
    contact, versioned: ``TransactionConflict`` when it changed since it was read (the caller reads it again).
    The record goes first so that the contact, which says whether a reply is the first, is marked last.
    """
    responded = contact.responded(now)
    update = dict(lifecycle_action(records.responded(responded, agent_id, now))["Update"])
    update["ConditionExpression"] = "attribute_not_exists(first_response_at)"
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # marked already
        client.update_item(**update)
    write(_contact_item_actions((contact, responded)))
