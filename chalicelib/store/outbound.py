"""Our outbound messages and calls: the timeline copy the outbox sends, and the provider status updates after.

Keys in the data table::

    CUSTOMER#<id>                               MESSAGE#<received_at>#<message_id>   the message in the
                                                customer's timeline (``direction: outbound``), pending-send
                                                (``pending_send``/``pending_since``: the sparse ``outbox``
                                                index) until its first claim, then leased while it is sent
    REPLYKEY#<conversation>#<agent>#<key>       REPLYKEY   an agent's client idempotency key -> the message
                                                (``expires_at``, TTL: ``conversations.idempotency_expiry``)
    OUTBOUND#<provider>#<provider message id>   OUTBOUND   status, status_rank, conversation_id, expires_at
    CALL#<provider>#<call id>                   CALL       status, conversation_id, role (customer: the caller's
                                                leg), callback_base (the webhooks' URL the call came in on),
                                                expires_at (both: TTL, ``conversations.idempotency_expiry``)
    EMAILTHREAD#<Message-ID>                    EMAILTHREAD  the conversation an e-mail we sent belongs to

Statuses only move forward: providers deliver callbacks out of order and
more than once, and ``delivered`` arriving after ``read`` must not undo it.
The outbox (``chalicelib.outbound.outbox``) decides when to claim, send, commit or give up;
this module keeps what it decided.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.channels.base import StatusUpdate
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import customer_key, idempotency_expiry, thread_key
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact
from chalicelib.store.resources import OUTBOX_INDEX

# How far along a message is. A failure outranks sending but not delivery: a late "failed" after
# "delivered" is noise, while "failed" after "sent" is the news.
MESSAGE_STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "failed": 3, "delivered": 4, "read": 5}
# Calls: Twilio's CallStatus values; the final ones outrank every live one.
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "canceled": 4,
    "failed": 4,
}


def _table() -> str:
    return get_settings().data_table


def _pk(kind: str, provider: str, provider_message_id: str) -> tuple[str, str]:
    prefix = "CALL" if kind == "call" else "OUTBOUND"
    return f"{prefix}#{provider}#{provider_message_id}", prefix


def record(
    provider: str,
    provider_message_id: str,
    conversation_id: str,
    status: str,
    now: str,
    kind: str = "message",
    extra: dict[str, Any] | None = None,
) -> None:
    """Remember something we sent (or a call we hold) so that its status callbacks find it.

    ``extra``: more fields for the record (a call's ``role`` and ``callback_base``)."""
    item = _item(kind, provider, provider_message_id, conversation_id, status, now, extra or {})
    aws.client("dynamodb").put_item(TableName=_table(), Item=to_item(item))


def _item(
    kind: str, provider: str, provider_message_id: str, conversation_id: str, status: str, now: str, extra: dict
) -> dict[str, Any]:
    pk, sk = _pk(kind, provider, provider_message_id)
    ranks = CALL_STATUS_RANK if kind == "call" else MESSAGE_STATUS_RANK
    return {
        "pk": pk,
        "sk": sk,
        "provider": provider,
        "provider_message_id": provider_message_id,
        "conversation_id": conversation_id,
        "status": status,
        "status_rank": ranks.get(status, 0),
        "created_at": now,
        "updated_at": now,
        # Kept while status callbacks may still come (a call lasts hours at most), then dropped by the table's TTL.
        "expires_at": idempotency_expiry(now),
        **extra,
    }


def hold_call(
    provider: str, call_id: str, conversation_id: str, status: str, now: str, extra: dict[str, Any]
) -> dict[str, Any] | None:
    """``record`` a call we begin to hold, unless its record is there already: a repeat, or the call's end that
    came before it (``note_call_ended``), whose record keeps its final status and is given the conversation
    here. Returns the record that was there (None: written now)."""
    item = _item("call", provider, call_id, conversation_id, status, now, extra)
    pk, sk = item["pk"], item["sk"]
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=_table(),
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as failed:
        found = from_item(failed.response.get("Item") or {})  # the record there, returned by the failed condition
        if found.get("conversation_id"):
            return found
        # Ended before anyone held it: the conversation and the call's role are filled in, the status kept.
        sets = {"conversation_id": conversation_id, **extra}
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(
                TableName=_table(),
                Key=key(pk, sk),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(sets))),
                ConditionExpression="conversation_id = :none",
                ExpressionAttributeNames={f"#f{i}": name for i, name in enumerate(sets)},
                ExpressionAttributeValues=to_values(
                    {f":f{i}": value for i, value in enumerate(sets.values())} | {":none": ""}
                ),
            )
        return found | sets
    return None


def note_call_ended(provider: str, call_id: str, status: str, now: str) -> None:
    """A call we do not hold (yet) has ended: its record is written final and without a conversation, so that a
    request that goes on to hold the call (``hold_call``) learns the caller has gone. Nothing if a record is there."""
    item = _item("call", provider, call_id, "", status, now, {})
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=_table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def apply(update: StatusUpdate, now: str) -> bool:
    """Move a message or call to a later status; False when it is unknown or already further along."""
    return advance(update, now) is not None


def advance(update: StatusUpdate, now: str) -> dict[str, Any] | None:
    """``apply`` in one conditional update, returning the record as it now is (where its timeline message is,
    its conversation); None when it is unknown or already further along (nothing is read then)."""
    ranks = CALL_STATUS_RANK if update.kind == "call" else MESSAGE_STATUS_RANK
    if update.status not in ranks:
        return None
    pk, sk = _pk(update.kind, update.provider, update.provider_message_id)
    values: dict[str, Any] = {":status": update.status, ":rank": ranks[update.status], ":now": now}
    expression = "SET #status = :status, status_rank = :rank, updated_at = :now"
    if update.error:
        expression += ", #error = :error"
        values[":error"] = update.error
    client = aws.client("dynamodb")
    try:
        response = client.update_item(
            TableName=_table(),
            Key=key(pk, sk),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk) AND status_rank < :rank",
            ExpressionAttributeNames={"#status": "status", **({"#error": "error"} if update.error else {})},
            ExpressionAttributeValues=to_values(values),
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return from_item(response["Attributes"])


def get_status(provider: str, provider_message_id: str, kind: str = "message") -> dict[str, Any] | None:
    return get(_table(), *_pk(kind, provider, provider_message_id))


# --- the outbox's messages in the customer's timeline --------------------------------------------------

# The pending-send mark: the outbox index's partition key on a recorded, not yet claimed message.
PENDING = "outbox"


@dataclass(frozen=True)
class MessageKey:
    """Where an outbound message sits in its customer's timeline."""

    customer_id: str
    sort_key: str  # MESSAGE#<received_at>#<message_id>

    @classmethod
    def of(cls, customer_id: str, received_at: str, message_id: str) -> MessageKey:
        return cls(customer_id, f"MESSAGE#{received_at}#{message_id}")

    def _key(self) -> dict[str, Any]:
        return key(customer_key(self.customer_id), self.sort_key)


@dataclass(frozen=True)
class Sent:
    """What the outbox learnt sending a message: the provider's id, where it went, and e-mail threading."""

    provider: str
    provider_message_id: str
    to: str
    identity: str
    sender: str | None = None
    email_message_id: str | None = None
    subject: str | None = None  # e-mail only
    thread_ids: tuple[str, ...] = field(default_factory=tuple)  # our Message-IDs an answer may refer to
    # Whether the provider reports statuses (Twilio, Meta): only then is the ``OUTBOUND`` lookup item written.
    reports_status: bool = True


class ReplyKeyTaken(Exception):
    """An agent's client idempotency key is recorded already: an earlier request with it got there first."""


def new_message(
    conversation_id: str,
    customer_id: str,
    message_id: str,
    channel: str,
    text: str,
    kind: str,
    now: str,
    *,
    author: str,
    identity: str | None,
) -> dict[str, Any]:
    """A new outbound timeline message, queued and marked pending-send (not written yet)."""
    return {
        "pk": customer_key(customer_id),
        "sk": MessageKey.of(customer_id, now, message_id).sort_key,
        "type": "message",
        "message_id": message_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "direction": "outbound",
        "author": author,
        "kind": kind,
        "channel": channel,
        "identity": identity,
        "text": text,
        "status": "queued",
        "status_rank": MESSAGE_STATUS_RANK["queued"],
        "received_at": now,
        "pending_send": PENDING,
        "pending_since": now,
    }


def record_message_action(message: dict[str, Any]) -> dict[str, Any]:
    """The transaction action that records a new message (for writes that must go with another one)."""
    return {"Put": {"TableName": _table(), "Item": to_item(message), "ConditionExpression": "attribute_not_exists(pk)"}}


def record_message(message: dict[str, Any], also: Sequence[dict[str, Any]] = ()) -> None:
    """Write a new message to the timeline (with ``also``: in one transaction with those actions, whose failed
    condition raises ``TransactionConflict``)."""
    if also:
        transact([record_message_action(message), *also])
        return
    aws.client("dynamodb").put_item(TableName=_table(), Item=to_item(message))


def record_reply(
    message: dict[str, Any],
    agent_id: str,
    client_message_id: str,
    text_sha256: str,
    also: Sequence[dict[str, Any]] = (),
) -> None:
    """Write an agent's reply with its idempotency key's record (and ``also``), in one transaction.

    ``ReplyKeyTaken`` when the key is recorded already (nothing is written then); another failed condition
    (of ``also``) raises ``TransactionConflict``.
    """
    reply_key = _reply_key(str(message["conversation_id"]), agent_id, client_message_id)
    record = {
        **{k: v["S"] for k, v in reply_key.items()},
        "message_id": message["message_id"],
        "customer_id": message["customer_id"],
        "message_sk": message["sk"],
        "text_sha256": text_sha256,
        "created_at": message["received_at"],
        "expires_at": idempotency_expiry(str(message["received_at"])),
    }
    key_put = {"TableName": _table(), "Item": to_item(record), "ConditionExpression": "attribute_not_exists(pk)"}
    try:
        transact([record_message_action(message), {"Put": key_put}, *also])
    except TransactionConflict as conflict:
        if conflict.failed(1):
            raise ReplyKeyTaken(client_message_id) from None
        raise


def reply_of_key(conversation_id: str, agent_id: str, client_message_id: str) -> dict[str, Any] | None:
    """The record of an agent's idempotency key (``message_id``, ``message_sk``, ``text_sha256``...), or None."""
    k = _reply_key(conversation_id, agent_id, client_message_id)
    return get(_table(), k["pk"]["S"], k["sk"]["S"])


def _reply_key(conversation_id: str, agent_id: str, client_message_id: str) -> dict[str, Any]:
    return key(f"REPLYKEY#{conversation_id}#{agent_id}#{client_message_id}", "REPLYKEY")


def get_message(message_key: MessageKey) -> dict[str, Any] | None:
    """The message as stored now (read consistently)."""
    return get(_table(), customer_key(message_key.customer_id), message_key.sort_key)


def find_message(customer_id: str, message_id: str) -> MessageKey | None:
    """Where a message is in the customer's timeline, looked for newest first (jobs that do not say when)."""
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "FilterExpression": "message_id = :id",
        "ExpressionAttributeValues": to_values(
            {":pk": customer_key(customer_id), ":prefix": "MESSAGE#", ":id": message_id}
        ),
        "ProjectionExpression": "pk, sk",
        "ScanIndexForward": False,
    }
    client = aws.client("dynamodb")
    while True:
        page = client.query(**kwargs)
        if page["Items"]:
            return MessageKey(customer_id, str(from_item(page["Items"][0])["sk"]))
        if "LastEvaluatedKey" not in page:
            return None
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def pending_messages(recorded_before: str, limit: int) -> list[dict[str, Any]]:
    """Messages recorded before ``recorded_before`` and never claimed, oldest first: one bounded index query.

    Only the index's attributes (``resources.OUTBOX_INDEX_ATTRIBUTES``: enough to queue the message's job).
    """
    page = aws.client("dynamodb").query(
        TableName=_table(),
        IndexName=OUTBOX_INDEX,
        KeyConditionExpression="pending_send = :pending AND pending_since < :cutoff",
        ExpressionAttributeValues=to_values({":pending": PENDING, ":cutoff": recorded_before}),
        Limit=limit,
    )
    return [from_item(i) for i in page["Items"]]


def claim(message_key: MessageKey, now: str, lease_until: str) -> dict[str, Any] | None:
    """Lease the message to one sending attempt until ``lease_until``; returns it as claimed.

    Only a message with no provider id yet, ``queued``/``sending`` (or given up and redriven) and not leased
    to another attempt now; the claim counts the attempt and takes the pending-send mark off. None when the
    condition fails: the caller reads the message to tell done from in progress.
    """
    client = aws.client("dynamodb")
    try:
        response = client.update_item(
            TableName=_table(),
            Key=message_key._key(),
            UpdateExpression=(
                "SET #status = :sending, status_rank = :rank, lease_until = :until, "
                "attempts = if_not_exists(attempts, :zero) + :one REMOVE gave_up_at, pending_send, pending_since"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(provider_message_id) "
                "AND (#status IN (:queued, :sending) OR attribute_exists(gave_up_at)) "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values(
                {
                    ":sending": "sending",
                    ":queued": "queued",
                    ":rank": MESSAGE_STATUS_RANK["sending"],
                    ":until": lease_until,
                    ":zero": 0,
                    ":one": 1,
                    ":now": now,
                }
            ),
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return from_item(response["Attributes"])


def record_sent(message_key: MessageKey, message: dict[str, Any], sent: Sent, now: str) -> dict[str, Any] | None:
    """Record a message the provider took, in plain writes in an order where every crash point is safe:

    1. each of ``sent.thread_ids`` (an e-mail) threads the customer's answer back to the conversation;
    2. the ``OUTBOUND`` item lets the status callbacks find the message (only for providers that report
       statuses: ``sent.reports_status``);
    3. last, the commit: one conditional update makes the message ``sent`` with the provider's id and takes off
       its lease and pending-send mark.

    A crash before 3 leaves the message leased and pending: it is sent again after the lease (the documented
    at-least-once window), and what 1 and 2 wrote points at the same message, harmlessly. Nothing is written
    after the commit, so a committed message always has its lookup and thread items.

    Returns what the commit set, or None when another attempt recorded the message as sent first.
    """
    client = aws.client("dynamodb")
    for thread_id in sent.thread_ids:
        thread = {
            "pk": thread_key(thread_id),
            "sk": "EMAILTHREAD",
            "conversation_id": message["conversation_id"],
            "customer_id": message["customer_id"],
        }
        client.put_item(TableName=_table(), Item=to_item(thread))
    if sent.reports_status:
        lookup = {
            "pk": f"OUTBOUND#{sent.provider}#{sent.provider_message_id}",
            "sk": "OUTBOUND",
            "provider": sent.provider,
            "provider_message_id": sent.provider_message_id,
            "conversation_id": message["conversation_id"],
            "status": "sent",
            "status_rank": MESSAGE_STATUS_RANK["sent"],
            "created_at": now,
            "updated_at": now,
            "expires_at": idempotency_expiry(now),  # as ``record``'s
            # Where its timeline message is, for apply_to_timeline.
            "message_id": message["message_id"],
            "customer_id": message["customer_id"],
            "message_sk": message_key.sort_key,
        }
        client.put_item(TableName=_table(), Item=to_item(lookup))
    fields: dict[str, Any] = {
        "provider": sent.provider,
        "provider_message_id": sent.provider_message_id,
        "status": "sent",
        "status_rank": MESSAGE_STATUS_RANK["sent"],
        "sent_at": now,
        "status_updated_at": now,
        "sent_to": sent.to,
        "identity": sent.identity,
    }
    if sent.sender:
        fields["sent_from"] = sent.sender
    if sent.email_message_id:
        fields["email_message_id"] = sent.email_message_id
    if sent.subject is not None:
        fields["subject"] = sent.subject
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":f{i}": value for i, value in enumerate(fields.values())}
    try:
        client.update_item(
            TableName=_table(),
            Key=message_key._key(),
            UpdateExpression="SET "
            + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
            + " REMOVE lease_until, last_error, pending_send, pending_since",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(provider_message_id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_values(values),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return fields


def mark_failed(message_key: MessageKey, error: str, now: str) -> None:
    """The message will not be sent: ``failed`` with the reason, lease, give-up and pending-send marks gone."""
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=message_key._key(),
        UpdateExpression=(
            "SET #status = :failed, status_rank = :rank, #error = :error, status_updated_at = :now "
            "REMOVE lease_until, gave_up_at, pending_send, pending_since"
        ),
        ExpressionAttributeNames={"#status": "status", "#error": "error"},
        ExpressionAttributeValues=to_values(
            {":failed": "failed", ":rank": MESSAGE_STATUS_RANK["failed"], ":error": error, ":now": now}
        ),
    )


def release(message_key: MessageKey, error: str, now: str, gave_up_with: str | None = None) -> None:
    """Drop this attempt's lease (the next may claim at once), noting ``error``.

    ``gave_up_with``: the attempts are used up; the message shows ``failed`` with that error, marked given up
    (a redrive from the dead-letter queue may claim it again). Nothing changes if another attempt recorded
    it as sent meanwhile.
    """
    values: dict[str, Any] = {":error": error, ":now": now}
    expression = "SET last_error = :error, status_updated_at = :now"
    if gave_up_with is not None:
        expression += ", #status = :failed, status_rank = :rank, #error = :final, gave_up_at = :now"
        values.update({":failed": "failed", ":rank": MESSAGE_STATUS_RANK["failed"], ":final": gave_up_with})
    update: dict[str, Any] = {
        "TableName": _table(),
        "Key": message_key._key(),
        "UpdateExpression": expression + " REMOVE lease_until",
        "ConditionExpression": "attribute_not_exists(provider_message_id)",
        "ExpressionAttributeValues": to_values(values),
    }
    if gave_up_with is not None:
        update["ExpressionAttributeNames"] = {"#status": "status", "#error": "error"}
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # another attempt committed
        client.update_item(**update)


def apply_to_timeline(customer_id: str, message_sk: str, update: StatusUpdate, now: str) -> None:
    """``apply``'s forward-only move on the message in the customer's timeline (a no-op when it is further)."""
    rank = MESSAGE_STATUS_RANK[update.status]
    values: dict[str, Any] = {":status": update.status, ":rank": rank, ":now": now}
    expression = "SET #status = :status, status_rank = :rank, status_updated_at = :now"
    names = {"#status": "status"}
    if update.error:
        expression += ", #error = :error"
        names["#error"] = "error"
        values[":error"] = update.error
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # the timeline is further along
        client.update_item(
            TableName=_table(),
            Key=key(customer_key(customer_id), message_sk),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(status_rank) OR status_rank < :rank)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_values(values),
        )
