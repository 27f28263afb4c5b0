"""Customers, identities, conversations and messages in the data table.

Keys (single table, ``pk``/``sk``)::

    IDENTITY#<kind>#<value>      IDENTITY   -> customer_id (phone, email, webchat#site/visitor, telegram#id...)
    CUSTOMER#<id>                PROFILE    name, email, phone, language, identities, open_conversation_id,
                                            merged_into / merged_from
    CUSTOMER#<id>                MESSAGE#<received_at>#<message_id>   one timeline per customer
    CONVERSATION#<id>            META       status, channel (latest), customer_id, agent_id, message_count
    INBOUND#<provider>#<id>      INBOUND    dedupe record: this delivery is stored
    EMAILTHREAD#<Message-ID>     EMAILTHREAD  which conversation an e-mail belongs to

Every inbound message is written in one transaction with its dedupe
records, its new identities and its conversation, so a provider's retry can
never store it twice and a crash never leaves half of it behind.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.conversations.models import Identity, InboundMessage, StoredMessage
from chalicelib.errors import Conflict, InvalidPayload, NotFound
from chalicelib.settings import get_settings
from chalicelib.store import aws, retry
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact

logger = Logger(service="switchboard", child=True)
_THREAD_LOOKUPS = 5


def _table() -> str:
    return get_settings().data_table


def identity_key(identity_key: str) -> str:
    return f"IDENTITY#{identity_key}"


def customer_key(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


def conversation_key(conversation_id: str) -> str:
    return f"CONVERSATION#{conversation_id}"


def inbound_key(dedupe_key: str) -> str:
    return f"INBOUND#{dedupe_key}"


def thread_key(email_message_id: str) -> str:
    return f"EMAILTHREAD#{email_message_id}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# --- ingest -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """Where a message goes: which customer, which conversation, what has to be created."""

    customer_id: str
    conversation_id: str
    mode: str  # "new" conversation, "join" the open one, "reopen" the e-mail thread's closed one
    new_customer: bool = False
    pointer: str | None = None  # the customer's open_conversation_id this plan was made against
    missing: list[Identity] = field(default_factory=list)


def ingest(message: InboundMessage, now: str) -> StoredMessage:
    """Store one inbound message exactly once: resolve the customer, join or open their conversation."""
    stale: set[str] = set()  # conversations found closed meanwhile: the next plan does not join them

    def store_once() -> StoredMessage:
        plan = _plan(message, stale)
        dedupes = [_dedupe_put(k, message, plan, now) for k in message.dedupe_keys]
        conversation_action = _conversation_action(message, plan, now)
        actions = [
            *dedupes,
            _message_put(message, plan, now),
            *(_identity_put(i, plan.customer_id, now) for i in plan.missing),
            _customer_action(message, plan, now),
            conversation_action,
            *_thread_puts(message, plan),
        ]
        try:
            transact(actions)
        except TransactionConflict as conflict:
            for index, dedupe_key in enumerate(message.dedupe_keys):
                if conflict.failed(index):
                    return _stored_duplicate(dedupe_key)
            if plan.mode == "join" and conflict.failed(actions.index(conversation_action)):
                stale.add(plan.conversation_id)  # closed meanwhile, or a pointer left behind by a close or merge
            raise  # another delivery changed the customer or conversation first: plan again
        return StoredMessage(
            message.message_id, plan.customer_id, plan.conversation_id, now, False, plan.mode != "join"
        )

    try:
        return retry.on_conflict(store_once)
    except retry.StillConflicting:
        raise Conflict("the conversation changed too often while storing this message; retry") from None


def _plan(message: InboundMessage, stale: set[str]) -> _Plan:
    found = customers_of(message.identities)
    customer_id = found.get(message.identity.key) or next(iter(found.values()), None)
    if customer_id is None:
        return _Plan(new_id("cus"), new_id("conv"), "new", new_customer=True, missing=list(message.identities))
    profile = get_customer(customer_id) or {}
    if profile.get("merged_into"):  # read between a merge's identity moves and our read
        customer_id = profile["merged_into"]
        profile = get_customer(customer_id) or {}
    others = {k: c for k, c in found.items() if c != customer_id}
    if others:
        logger.warning(
            "identities of one message belong to different customers; not merging on a claim",
            extra={"customer_id": customer_id, "others": sorted(set(others.values()))},
        )
    missing = [i for i in message.identities if i.key not in found]
    pointer = profile.get("open_conversation_id")
    if pointer and pointer not in stale:
        return _Plan(customer_id, pointer, "join", pointer=pointer, missing=missing)
    reopen = _thread_conversation(message, customer_id)
    if reopen and reopen not in stale:
        return _Plan(customer_id, reopen, "reopen", pointer=pointer, missing=missing)
    return _Plan(customer_id, new_id("conv"), "new", pointer=pointer, missing=missing)


def _thread_conversation(message: InboundMessage, customer_id: str) -> str | None:
    """The customer's earlier conversation this e-mail replies to, if any."""
    if message.thread is None or not message.thread.earlier:
        return None
    keys = [thread_key(m) for m in message.thread.earlier[:_THREAD_LOOKUPS]]
    items = {i["pk"]: i for i in _batch_get([(k, "EMAILTHREAD") for k in keys])}
    for k in keys:
        item = items.get(k)
        if item and item.get("customer_id") == customer_id:
            return str(item["conversation_id"])
    return None


def _stored_duplicate(dedupe_key: str) -> StoredMessage:
    seen = get(_table(), inbound_key(dedupe_key), "INBOUND")
    if seen is None:  # cannot happen: the condition failed because it exists
        raise Conflict("duplicate delivery record vanished; retry")
    return StoredMessage(
        seen["message_id"], seen["customer_id"], seen["conversation_id"], seen["received_at"], True, False
    )


def _dedupe_put(dedupe_key: str, message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any]:
    item = {
        "pk": inbound_key(dedupe_key),
        "sk": "INBOUND",
        "message_id": message.message_id,
        "customer_id": plan.customer_id,
        "conversation_id": plan.conversation_id,
        "received_at": now,
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def _message_put(message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any]:
    item = {
        "pk": customer_key(plan.customer_id),
        "sk": f"MESSAGE#{now}#{message.message_id}",
        "type": "message",
        "message_id": message.message_id,
        "customer_id": plan.customer_id,
        "conversation_id": plan.conversation_id,
        "direction": "inbound",
        "channel": message.channel,
        "provider": message.provider,
        "identity": message.identity.key,
        "provider_message_id": message.provider_message_id,
        "text": message.text,
        "subject": message.subject,
        "attachments": [{k: v for k, v in vars(a).items() if v is not None} for a in message.attachments] or None,
        "language": message.language,
        "sent_at": message.sent_at,
        "received_at": now,
        "email_message_id": message.thread.message_id if message.thread else None,
        "metadata": message.metadata or None,
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item)}}


def _identity_put(identity: Identity, customer_id: str, now: str) -> dict[str, Any]:
    item = {
        "pk": identity_key(identity.key),
        "sk": "IDENTITY",
        "customer_id": customer_id,
        "kind": identity.kind,
        "created_at": now,
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def _customer_action(message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any]:
    if plan.new_customer:
        profile = {
            "pk": customer_key(plan.customer_id),
            "sk": "PROFILE",
            "customer_id": plan.customer_id,
            "name": message.name,
            "email": message.email,
            "phone": message.phone,
            "language": message.language,
            "created_at": now,
            "last_seen_at": now,
            "open_conversation_id": plan.conversation_id,
            "identities": {i.key for i in message.identities},
        }
        return {
            "Put": {"TableName": _table(), "Item": to_item(profile), "ConditionExpression": "attribute_not_exists(pk)"}
        }
    sets = ["last_seen_at = :now"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {":now": now}
    # What the customer tells us fills gaps in their profile, never overwrites it.
    for attribute, value in (
        ("name", message.name),
        ("email", message.email),
        ("phone", message.phone),
        ("language", message.language),
    ):
        if value is not None:
            sets.append(f"#{attribute} = if_not_exists(#{attribute}, :{attribute})")
            names[f"#{attribute}"] = attribute
            values[f":{attribute}"] = value
    if plan.mode == "join":
        condition = "open_conversation_id = :conversation"
    else:
        sets.append("open_conversation_id = :conversation")
        condition = (
            "attribute_not_exists(open_conversation_id)" if plan.pointer is None else "open_conversation_id = :pointer"
        )
        if plan.pointer is not None:
            values[":pointer"] = plan.pointer
    values[":conversation"] = plan.conversation_id
    expression = "SET " + ", ".join(sets)
    if plan.missing:
        expression += " ADD identities :identities"
        values[":identities"] = {i.key for i in plan.missing}
    update: dict[str, Any] = {
        "TableName": _table(),
        "Key": key(customer_key(plan.customer_id), "PROFILE"),
        "UpdateExpression": expression,
        "ConditionExpression": f"attribute_exists(pk) AND attribute_not_exists(merged_into) AND {condition}",
        "ExpressionAttributeValues": to_values(values),
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def _conversation_action(message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any]:
    if plan.mode == "new":
        item = {
            "pk": conversation_key(plan.conversation_id),
            "sk": "META",
            "conversation_id": plan.conversation_id,
            "customer_id": plan.customer_id,
            "status": "open",
            "channel": message.channel,
            "subject": message.subject,
            "created_at": now,
            "last_message_at": now,
            "message_count": 1,
        }
        return {
            "Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}
        }
    condition = "#status = :open" if plan.mode == "join" else "customer_id = :customer"
    values: dict[str, Any] = {":now": now, ":channel": message.channel, ":one": 1, ":open": "open"}
    if plan.mode == "reopen":
        values[":customer"] = plan.customer_id
    return {
        "Update": {
            "TableName": _table(),
            "Key": key(conversation_key(plan.conversation_id), "META"),
            "UpdateExpression": (
                "SET last_message_at = :now, channel = :channel, #status = :open ADD message_count :one"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_values(values),
        }
    }


def _thread_puts(message: InboundMessage, plan: _Plan) -> list[dict[str, Any]]:
    if message.thread is None or not message.thread.message_id:
        return []
    item = {
        "pk": thread_key(message.thread.message_id),
        "sk": "EMAILTHREAD",
        "conversation_id": plan.conversation_id,
        "customer_id": plan.customer_id,
    }
    return [{"Put": {"TableName": _table(), "Item": to_item(item)}}]


# --- reads ----------------------------------------------------------------------------------


def _batch_get(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if not keys:
        return []
    if len(keys) == 1:
        found = get(_table(), *keys[0])
        return [found] if found else []
    request = {_table(): {"Keys": [key(pk, sk) for pk, sk in dict.fromkeys(keys)], "ConsistentRead": True}}
    items: list[dict[str, Any]] = []
    client = aws.client("dynamodb")
    while request:
        response = client.batch_get_item(RequestItems=request)
        items.extend(from_item(i) for i in response["Responses"].get(_table(), []))
        request = response.get("UnprocessedKeys") or {}
    return items


def customers_of(identities: tuple[Identity, ...] | list[Identity]) -> dict[str, str]:
    """Which customer each known identity belongs to, by identity key."""
    items = _batch_get([(identity_key(i.key), "IDENTITY") for i in identities])
    return {i["pk"].removeprefix("IDENTITY#"): str(i["customer_id"]) for i in items}


def get_conversation(conversation_id: str) -> dict[str, Any] | None:
    """The conversation's META item."""
    return get(_table(), conversation_key(conversation_id), "META")


def get_customer(customer_id: str) -> dict[str, Any] | None:
    """The customer's profile."""
    return get(_table(), customer_key(customer_id), "PROFILE")


def timeline(customer_id: str) -> list[dict[str, Any]]:
    """Every message of the customer, oldest first, across channels, conversations and merged customers."""
    profile = get_customer(customer_id) or {}
    return messages_since([customer_id, *sorted(profile.get("merged_from", ()))], "")


def messages_since(customer_ids: list[str], since: str, *, consistent: bool = False) -> list[dict[str, Any]]:
    """The messages in these customers' timelines received at or after ``since`` (ISO time; "" for all), oldest first.

    A key condition on the sort key (``MESSAGE#<received_at>#<message_id>``), so a caller that keeps a cursor
    (the widget's catch-up) reads what is new, not the whole history; ``consistent`` reads strongly consistently.
    """
    client = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    for partition in customer_ids:
        kwargs: dict[str, Any] = {
            "TableName": _table(),
            # "MESSAGE$" sorts right after every "MESSAGE#..." key, and before the profile's.
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": to_values(
                {":pk": customer_key(partition), ":from": f"MESSAGE#{since}", ":to": "MESSAGE$"}
            ),
            "ConsistentRead": consistent,
        }
        while True:
            page = client.query(**kwargs)
            items.extend(from_item(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda m: m["sk"])


def inbound_page(
    customer_id: str, limit: int, after: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of the customer's inbound messages (this partition only), newest first, and where the next starts.

    ``after`` is the cursor the page before returned (opaque; None for the first page); the cursor returned is
    None on the last page. A page may hold fewer than ``limit`` messages: ``limit`` bounds what is read.
    """
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "FilterExpression": "direction = :inbound",
        "ExpressionAttributeValues": to_values(
            {":pk": customer_key(customer_id), ":prefix": "MESSAGE#", ":inbound": "inbound"}
        ),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if after:
        kwargs["ExclusiveStartKey"] = after
    page = aws.client("dynamodb").query(**kwargs)
    return [from_item(i) for i in page["Items"]], page.get("LastEvaluatedKey")


def email_message_ids(customer_ids: list[str], conversation_id: str, since: str) -> list[tuple[str, str]]:
    """``(sort key, Message-ID)`` of every e-mail of the conversation, both ways, in these customers' timelines.

    Read from ``since`` (the conversation's start) on, so an old customer's long history is not read.
    """
    found: list[tuple[str, str]] = []
    client = aws.client("dynamodb")
    for partition in customer_ids:
        kwargs: dict[str, Any] = {
            "TableName": _table(),
            # "MESSAGE$" sorts right after every "MESSAGE#...": the conversation's messages and nothing else.
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "FilterExpression": "conversation_id = :conversation AND attribute_exists(email_message_id)",
            "ExpressionAttributeValues": to_values(
                {
                    ":pk": customer_key(partition),
                    ":from": f"MESSAGE#{since}",
                    ":to": "MESSAGE$",
                    ":conversation": conversation_id,
                }
            ),
            "ProjectionExpression": "sk, email_message_id",
        }
        while True:
            page = client.query(**kwargs)
            found.extend((str(i["sk"]), str(i["email_message_id"])) for i in map(from_item, page["Items"]))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def add_note(customer_id: str, conversation_id: str, note_id: str, author: str, text: str, now: str) -> None:
    """An agent's internal note in the customer's timeline: agents see it, it is never sent to the customer."""
    item = {
        "pk": customer_key(customer_id),
        "sk": f"MESSAGE#{now}#{note_id}",
        "type": "message",
        "message_id": note_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "direction": "internal",
        "kind": "note",
        "author": author,
        "text": text,
        "received_at": now,
    }
    aws.client("dynamodb").put_item(TableName=_table(), Item=to_item(item))


def set_attributes(customer_id: str, tier: str | None, tags: list[str]) -> None:
    """The customer's tier and tags, which routing rules match on."""
    client = aws.client("dynamodb")
    values: dict[str, Any] = {":tags": tags}
    if tier is None:
        expression = "SET tags = :tags REMOVE tier"
    else:
        expression, values[":tier"] = "SET tags = :tags, tier = :tier", tier
    client.update_item(
        TableName=_table(),
        Key=key(customer_key(customer_id), "PROFILE"),
        UpdateExpression=expression,
        ExpressionAttributeValues=to_values(values),
    )


def forget_open_conversation(customer_id: str, conversation_id: str) -> None:
    """The customer's next message opens a new conversation, unless their pointer moved on already."""
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=_table(),
            Key=key(customer_key(customer_id), "PROFILE"),
            UpdateExpression="REMOVE open_conversation_id",
            ConditionExpression="open_conversation_id = :conversation",
            ExpressionAttributeValues=to_values({":conversation": conversation_id}),
        )


# --- linking and merging -----------------------------------------------------------------------


def merge_customers(source_id: str, target_id: str) -> dict[str, Any]:
    """Fold ``source`` into ``target``: its identities now resolve to target; both histories stay. Idempotent."""
    if source_id == target_id:
        raise InvalidPayload("a customer cannot be merged into itself")

    def merge_once() -> dict[str, Any]:
        source, target = get_customer(source_id), get_customer(target_id)
        if source is None or target is None:
            raise NotFound(f"no customer {source_id if source is None else target_id}")
        if source.get("merged_into") == target_id:
            return {"customer_id": target_id, "merged": [source_id], "changed": False}
        if source.get("merged_into") or target.get("merged_into"):
            merged = source_id if source.get("merged_into") else target_id
            raise Conflict(f"customer {merged} was already merged into another customer")
        transact(_merge_actions(source, target))
        return {"customer_id": target_id, "merged": [source_id], "changed": True}

    try:
        return retry.on_conflict(merge_once)
    except retry.StillConflicting:
        raise Conflict("the customers changed too often while merging; retry") from None


def _merge_actions(source: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    source_id, target_id = source["customer_id"], target["customer_id"]
    identities = set(source.get("identities", ()))
    actions: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": _table(),
                "Key": key(identity_key(k), "IDENTITY"),
                "UpdateExpression": "SET customer_id = :target",
                "ConditionExpression": "customer_id = :source",
                "ExpressionAttributeValues": to_values({":target": target_id, ":source": source_id}),
            }
        }
        for k in sorted(identities)
    ]
    moved = source.get("open_conversation_id")
    target_sets: list[str] = []
    values: dict[str, Any] = {":source": {source_id}}
    expression = "ADD merged_from :source"
    if identities:
        expression += ", identities :identities"
        values[":identities"] = identities
    condition = "attribute_not_exists(merged_into)"
    for attribute in ("name", "email", "phone", "language"):
        if source.get(attribute) and not target.get(attribute):
            target_sets.append(f"{attribute} = :{attribute}")
            values[f":{attribute}"] = source[attribute]
    if moved and not target.get("open_conversation_id"):
        target_sets.append("open_conversation_id = :moved")
        values[":moved"] = moved
        condition += " AND attribute_not_exists(open_conversation_id)"
    if target_sets:
        expression = "SET " + ", ".join(target_sets) + " " + expression
    actions.append(
        {
            "Update": {
                "TableName": _table(),
                "Key": key(customer_key(target_id), "PROFILE"),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": to_values(values),
            }
        }
    )
    actions.append(
        {
            "Update": {
                "TableName": _table(),
                "Key": key(customer_key(source_id), "PROFILE"),
                "UpdateExpression": "SET merged_into = :target REMOVE open_conversation_id",
                "ConditionExpression": "attribute_not_exists(merged_into)",
                "ExpressionAttributeValues": to_values({":target": target_id}),
            }
        }
    )
    if moved:
        actions.append(
            {
                "Update": {
                    "TableName": _table(),
                    "Key": key(conversation_key(moved), "META"),
                    "UpdateExpression": "SET customer_id = :target",
                    "ExpressionAttributeValues": to_values({":target": target_id}),
                }
            }
        )
    return actions


def link_identities(identities: list[Identity], now: str) -> dict[str, Any]:
    """Say these identities are one person: unknown ones join the known customer; two customers are merged.

    The customer of the first known identity in the list survives. Idempotent.
    """
    found = customers_of(identities)
    customers = list(dict.fromkeys(found[i.key] for i in identities if i.key in found))
    if not customers:
        raise NotFound("none of these identities belongs to a customer yet")
    survivor, merged = customers[0], []
    for other in customers[1:]:
        if merge_customers(other, survivor)["changed"]:
            merged.append(other)
    linked = [i for i in identities if i.key not in found]
    if linked:
        try:
            transact(
                [
                    *(_identity_put(i, survivor, now) for i in linked),
                    {
                        "Update": {
                            "TableName": _table(),
                            "Key": key(customer_key(survivor), "PROFILE"),
                            "UpdateExpression": "ADD identities :identities",
                            "ExpressionAttributeValues": to_values({":identities": {i.key for i in linked}}),
                        }
                    },
                ]
            )
        except TransactionConflict:
            raise Conflict("an identity was claimed meanwhile; retry") from None
    return {"customer_id": survivor, "merged": merged, "linked": [i.key for i in linked]}


def opening_text(customer_id: str, received_at: str, message_id: str) -> str:
    """The text of the message that opened a contact (``""`` if it is gone, or the customer was merged away):
    what ``switchboard replay`` shows the rules again. One item, by key."""
    found = get(_table(), customer_key(customer_id), f"MESSAGE#{received_at}#{message_id}")
    return str((found or {}).get("text") or "")
