"""Customers, identities, conversations and messages in the data table.

Keys (single table, ``pk``/``sk``)::

    IDENTITY#<channel>#<value>   IDENTITY   -> customer_id
    CUSTOMER#<id>                PROFILE    name, email, language, open_conversation_id
    CUSTOMER#<id>                MESSAGE#<received_at>#<message_id>   one timeline per customer
    CONVERSATION#<id>            META       status, channel, agent_id, message_count
    INBOUND#<channel>#<provider id>  INBOUND  dedupe record: this delivery is stored

Every inbound message is written in one transaction with its dedupe record,
so a provider's retry can never store it twice and a crash never leaves half
of it behind.
"""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.conversations.models import InboundMessage, StoredMessage
from chalicelib.errors import Conflict
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact

_ATTEMPTS = 4


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


def ingest(message: InboundMessage, now: str) -> StoredMessage:
    """Store one inbound message exactly once: resolve the customer, join or open their conversation."""
    for _ in range(_ATTEMPTS):
        identity = get(_table(), identity_key(message.identity.key), "IDENTITY")
        if identity is None:
            customer_id, conversation_id = "cus_" + uuid.uuid4().hex[:20], "conv_" + uuid.uuid4().hex[:20]
            actions = _new_customer(message, customer_id, conversation_id, now)
            new_conversation = True
        else:
            customer_id = identity["customer_id"]
            profile = get(_table(), customer_key(customer_id), "PROFILE") or {}
            open_id = profile.get("open_conversation_id")
            new_conversation = open_id is None
            conversation_id = open_id or "conv_" + uuid.uuid4().hex[:20]
            actions = _returning_customer(message, customer_id, conversation_id, open_id, now)
        dedupe = _dedupe_put(message, customer_id, conversation_id, now)
        try:
            transact([dedupe, _message_put(message, customer_id, conversation_id, now), *actions])
        except TransactionConflict as conflict:
            if conflict.failed(0):
                return _stored_duplicate(message)
            continue  # another delivery created the customer or closed the conversation: read again
        return StoredMessage(message.message_id, customer_id, conversation_id, now, False, new_conversation)
    raise Conflict("the conversation changed too often while storing this message; retry")


def _stored_duplicate(message: InboundMessage) -> StoredMessage:
    seen = get(_table(), inbound_key(message.dedupe_key), "INBOUND")
    if seen is None:  # cannot happen: the condition failed because it exists
        raise Conflict("duplicate delivery record vanished; retry")
    return StoredMessage(
        seen["message_id"], seen["customer_id"], seen["conversation_id"], seen["received_at"], True, False
    )


def _dedupe_put(message: InboundMessage, customer_id: str, conversation_id: str, now: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": _table(),
            "Item": to_item(
                {
                    "pk": inbound_key(message.dedupe_key),
                    "sk": "INBOUND",
                    "message_id": message.message_id,
                    "customer_id": customer_id,
                    "conversation_id": conversation_id,
                    "received_at": now,
                }
            ),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _message_put(message: InboundMessage, customer_id: str, conversation_id: str, now: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": _table(),
            "Item": to_item(
                {
                    "pk": customer_key(customer_id),
                    "sk": f"MESSAGE#{now}#{message.message_id}",
                    "type": "message",
                    "message_id": message.message_id,
                    "customer_id": customer_id,
                    "conversation_id": conversation_id,
                    "direction": "inbound",
                    "channel": message.channel,
                    "identity": message.identity.key,
                    "provider_message_id": message.provider_message_id,
                    "text": message.text,
                    "language": message.language,
                    "sent_at": message.sent_at,
                    "received_at": now,
                    "metadata": message.metadata or None,
                }
            ),
        }
    }


def _new_conversation_put(message: InboundMessage, customer_id: str, conversation_id: str, now: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": _table(),
            "Item": to_item(
                {
                    "pk": conversation_key(conversation_id),
                    "sk": "META",
                    "conversation_id": conversation_id,
                    "customer_id": customer_id,
                    "status": "open",
                    "channel": message.channel,
                    "created_at": now,
                    "last_message_at": now,
                    "message_count": 1,
                }
            ),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _new_customer(message: InboundMessage, customer_id: str, conversation_id: str, now: str) -> list[dict[str, Any]]:
    profile = {
        "pk": customer_key(customer_id),
        "sk": "PROFILE",
        "customer_id": customer_id,
        "name": message.name,
        "email": message.email,
        "language": message.language,
        "created_at": now,
        "last_seen_at": now,
        "open_conversation_id": conversation_id,
    }
    identity = {
        "pk": identity_key(message.identity.key),
        "sk": "IDENTITY",
        "customer_id": customer_id,
        "channel": message.identity.channel,
        "created_at": now,
    }
    return [
        {
            "Put": {
                "TableName": _table(),
                "Item": to_item(identity),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {"Put": {"TableName": _table(), "Item": to_item(profile)}},
        _new_conversation_put(message, customer_id, conversation_id, now),
    ]


def _returning_customer(
    message: InboundMessage, customer_id: str, conversation_id: str, open_id: str | None, now: str
) -> list[dict[str, Any]]:
    setters = ["last_seen_at = :now"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {":now": now, ":conversation": conversation_id}
    for field in ("name", "email", "language"):  # what the customer tells us fills gaps, never overwrites
        value = getattr(message, field)
        if value is not None:
            setters.append(f"#{field} = if_not_exists(#{field}, :{field})")
            names[f"#{field}"] = field
            values[f":{field}"] = value
    if open_id is None:
        setters.append("open_conversation_id = :conversation")
        condition = "attribute_exists(pk) AND attribute_not_exists(open_conversation_id)"
        conversation_action = _new_conversation_put(message, customer_id, conversation_id, now)
    else:
        condition = "open_conversation_id = :conversation"
        conversation_action = {
            "Update": {
                "TableName": _table(),
                "Key": key(conversation_key(conversation_id), "META"),
                "UpdateExpression": "SET last_message_at = :now, channel = :channel ADD message_count :one",
                "ConditionExpression": "#status = :open",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_values(
                    {":now": now, ":channel": message.channel, ":one": 1, ":open": "open"}
                ),
            }
        }
    customer_update: dict[str, Any] = {
        "TableName": _table(),
        "Key": key(customer_key(customer_id), "PROFILE"),
        "UpdateExpression": "SET " + ", ".join(setters),
        "ConditionExpression": condition,
        "ExpressionAttributeValues": to_values(values),
    }
    if names:
        customer_update["ExpressionAttributeNames"] = names
    return [{"Update": customer_update}, conversation_action]


def get_conversation(conversation_id: str) -> dict[str, Any] | None:
    """The conversation's META item."""
    return get(_table(), conversation_key(conversation_id), "META")


def get_customer(customer_id: str) -> dict[str, Any] | None:
    """The customer's profile."""
    return get(_table(), customer_key(customer_id), "PROFILE")


def timeline(customer_id: str) -> list[dict[str, Any]]:
    """Every message of the customer, oldest first, across channels and conversations."""
    client = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": to_values({":pk": customer_key(customer_id), ":prefix": "MESSAGE#"}),
    }
    while True:
        page = client.query(**kwargs)
        items.extend(from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
