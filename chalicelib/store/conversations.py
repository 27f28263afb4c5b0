"""Customers, identities, conversations and messages in the data table.

Keys (single table, ``pk``/``sk``)::

    IDENTITY#<kind>#<value>      IDENTITY   -> customer_id (phone, email, webchat#site/visitor, telegram#id...)
    CUSTOMER#<id>                PROFILE    name, email, phone, language, identities, open_conversation_id,
                                            merged_into / merged_from
    CUSTOMER#<id>                MESSAGE#<received_at>#<message_id>   one timeline per customer
    CONVERSATION#<id>            META       status, channel (latest), customer_id, agent_id, created_at
    INBOUND#<claim key>          INBOUND    dedupe record: this delivery is stored, and where (``claim_key``:
                                            <provider>#<id>, or an e-mail's email-message-id#<Message-ID>);
                                            ``expires_at`` (TTL): ``idempotency_expiry``
    EMAILTHREAD#<Message-ID>     EMAILTHREAD  which conversation an e-mail belongs to

An inbound message is claimed by one conditional put: its dedupe record
(under ``InboundMessage.claim_key``). The customer's identities, profile and
(when it is new) conversation are written before it, the message and its
e-mail thread record after it, each as a plain (conditional or idempotent)
write: a provider's retry never stores it twice, and one that finds a
half-done first attempt completes it (``ingest``).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.conversations.models import Identity, InboundMessage, StoredMessage
from chalicelib.errors import Conflict, InvalidPayload, NotFound
from chalicelib.settings import get_settings
from chalicelib.store import aws, retry
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact, write

logger = Logger(service="switchboard", child=True)
_THREAD_LOOKUPS = 5
# The channel whose messages never join an open conversation (finding 6 of the voice research).
CALLS = "voice"
# Each call, and each voicemail a caller leaves, is a contact of its own: never joined to an open conversation.
OWN_CONVERSATION = frozenset({CALLS, "voicemail"})


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
    new_customer: bool = False  # no profile yet: it is put (with ``known`` and ``missing`` as its identities)
    pointer: str | None = None  # the customer's open_conversation_id this plan was made against
    missing: list[Identity] = field(default_factory=list)  # identities of the message nobody has claimed
    known: list[str] = field(default_factory=list)  # identity keys already this customer's (a profile to complete)
    profile: dict[str, Any] = field(default_factory=dict)  # the profile as read
    conversation: dict[str, Any] | None = None  # a joined conversation's META as read (None: never written)


def ingest(message: InboundMessage, now: str) -> StoredMessage:
    """Store one inbound message exactly once: resolve the customer, join or open their conversation.

    Plain writes, in this order (each conditional where it decides something; any of them may be the last one a
    dying Lambda made, and the provider's retry, or the customer's next message, completes from there):

    1. the customer: new identities claimed and the profile written (its pointer to the open conversation) when
       they change; one plain write each, a transaction only when several identities come at once;
    2. the conversation: opened (an upsert, so a pointer left by a death before it still works) when it is new
       or was never written; joined, it is only read (open, this customer's) and written only when the customer
       switched channel (replies go to the latest);
    3. the claim: the delivery's dedupe record (``claim_key``), one conditional put: the one write that decides
       the message is stored, and where. A retry finds it and completes what follows;
    4. the message in the customer's timeline (and an e-mail's thread record), idempotent puts that a retry
       finding the claim repeats.

    Reopening an e-mail thread's closed conversation stays one transaction (claim, conversation, pointer): a
    reopen cut in two would not resume.
    """
    stale: set[str] = set()  # conversations found closed meanwhile: the next plan does not join them

    def store_once() -> StoredMessage:
        plan = _plan(message, stale)
        claims = [_identity_put(i, plan.customer_id, now) for i in plan.missing]
        profile = _profile_action(message, plan, now)
        conversation_action = _conversation_action(message, plan, now)
        opens = plan.mode == "new" and not plan.new_customer
        if (opens or (plan.mode == "join" and conversation_action is not None)) and _claimed(message):
            # A retry after the conversation closed opens nothing; one after the customer wrote on another
            # channel does not move the conversation back to this one.
            return _stored_duplicate(message)
        dedupe = _dedupe_put(message.claim_key, message, plan, now)
        if plan.mode == "reopen" and conversation_action is not None:
            # Pointer and conversation move together: a reopen cut in two would not resume.
            try:
                write([dedupe, conversation_action, *claims, *([profile] if profile else [])])
            except TransactionConflict as conflict:
                if conflict.failed(0):
                    return _stored_duplicate(message)
                raise  # another delivery changed the customer or conversation first: plan again
        else:
            _write_customer(claims, profile, plan.new_customer)
            if conversation_action is not None:
                try:
                    _write_conversation(conversation_action)
                except TransactionConflict:
                    stale.add(plan.conversation_id)  # closed meanwhile, or moved to another customer by a merge
                    raise
            try:
                _claim(dedupe)
            except TransactionConflict:
                return _stored_duplicate(message)
        _store_message(message, plan.customer_id, plan.conversation_id, now)
        return StoredMessage(
            message.message_id, plan.customer_id, plan.conversation_id, now, False, plan.mode != "join"
        )

    try:
        return retry.on_conflict(store_once)
    except retry.StillConflicting:
        raise Conflict("the conversation changed too often while storing this message; retry") from None


def _write_customer(claims: list[dict[str, Any]], profile: dict[str, Any] | None, new_customer: bool) -> None:
    """A new customer's identity, then their profile; identities claimed for a known customer with its profile."""
    if new_customer and len(claims) == 1:
        # The identity first: a death before the profile leaves a customer the next attempt completes.
        _claim_identity(claims[0])
        claims = []
    if claims:
        _claim_identities_with_profile([*claims, *([profile] if profile else [])])
    elif profile:
        _write_profile(profile)


def _claim_identity(action: dict[str, Any]) -> None:
    write([action])


def _claim_identities_with_profile(actions: list[dict[str, Any]]) -> None:
    write(actions)  # each identity claimed and listed on the profile, or none


def _write_profile(action: dict[str, Any]) -> None:
    write([action])


def _write_conversation(action: dict[str, Any]) -> None:
    write([action])


def _claim(action: dict[str, Any]) -> None:
    write([action])


def _claimed(message: InboundMessage) -> bool:
    """Whether this delivery was stored already (read before a write a retry must not make: a known customer's
    new conversation, a joined conversation's channel)."""
    return get(_table(), inbound_key(message.claim_key), "INBOUND") is not None


def _plan(message: InboundMessage, stale: set[str]) -> _Plan:
    found = customers_of(message.identities)
    customer_id = found.get(message.identity.key) or next(iter(found.values()), None)
    if customer_id is None:
        return _Plan(new_id("cus"), new_id("conv"), "new", new_customer=True, missing=list(message.identities))
    profile = get_customer(customer_id)
    if profile is not None and profile.get("merged_into"):  # read between a merge's identity moves and our read
        customer_id = profile["merged_into"]
        profile = get_customer(customer_id)
    others = {k: c for k, c in found.items() if c != customer_id}
    if others:
        logger.warning(
            "identities of one message belong to different customers; not merging on a claim",
            extra={"customer_id": customer_id, "others": sorted(set(others.values()))},
        )
    missing = [i for i in message.identities if i.key not in found]
    if profile is None:  # its identity was claimed by an ingest that died before writing the profile
        known = [k for k, c in found.items() if c == customer_id]
        return _Plan(customer_id, new_id("conv"), "new", new_customer=True, missing=missing, known=known)
    pointer = profile.get("open_conversation_id")
    if pointer and pointer not in stale and message.channel not in OWN_CONVERSATION:
        conversation = get_conversation(pointer)
        if conversation is None or _joinable(conversation, customer_id):
            joined = _Plan(customer_id, pointer, "join", pointer=pointer, missing=missing, profile=profile)
            joined.conversation = conversation
            return joined
        stale.add(pointer)  # closed (its pointer not cleared yet), or moved to another customer by a merge
    reopen = _thread_conversation(message, customer_id)
    if reopen and reopen not in stale:
        return _Plan(customer_id, reopen, "reopen", pointer=pointer, missing=missing, profile=profile)
    return _Plan(customer_id, new_id("conv"), "new", pointer=pointer, missing=missing, profile=profile)


def _joinable(conversation: dict[str, Any], customer_id: str) -> bool:
    return conversation.get("status") == "open" and conversation.get("customer_id") == customer_id


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


def _stored_duplicate(message: InboundMessage) -> StoredMessage:
    """A delivery stored before (a provider's retry): what it was stored as, its message put again if missing.

    The claim is written before the message: a first attempt that died between the two left the claim alone,
    and this is what completes it."""
    seen = get(_table(), inbound_key(message.claim_key), "INBOUND")
    if seen is None:  # cannot happen: the condition failed because it exists
        raise Conflict("duplicate delivery record vanished; retry")
    _store_message(message, seen["customer_id"], seen["conversation_id"], seen["received_at"], seen["message_id"])
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
        "expires_at": idempotency_expiry(now),
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def idempotency_expiry(moment: str) -> int:
    """The TTL (epoch seconds) of an idempotency record written at ``moment``: ``idempotency_retention_days``
    on, past any retry of what it records (provider retries, SQS redelivery, console retries)."""
    return int(clock.parse_iso(moment).timestamp()) + get_settings().idempotency_retention_days * 86400


def _store_message(
    message: InboundMessage, customer_id: str, conversation_id: str, received_at: str, message_id: str | None = None
) -> None:
    """The message in the customer's timeline, unless it is there already (its key is the claim's), and the
    e-mail's thread record. Both idempotent: a retry that finds the claim written puts them again."""
    message_id = message_id or message.message_id
    item = {
        "pk": customer_key(customer_id),
        "sk": f"MESSAGE#{received_at}#{message_id}",
        "type": "message",
        "message_id": message_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
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
        "received_at": received_at,
        "email_message_id": message.thread.message_id if message.thread else None,
        "metadata": message.metadata or None,
    }
    # Conditional: a retry through another provider (the same e-mail from SES and Mailgun) keeps the first copy.
    with contextlib.suppress(TransactionConflict):
        write(
            [{"Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}]
        )
    if message.thread is not None and message.thread.message_id:
        thread = {
            "pk": thread_key(message.thread.message_id),
            "sk": "EMAILTHREAD",
            "conversation_id": conversation_id,
            "customer_id": customer_id,
        }
        _put_thread(thread)


def add_to_conversation(message: InboundMessage, customer_id: str, conversation_id: str, received_at: str) -> None:
    """A message of a call put in the call's own conversation (which no later message joins by itself: the caller's
    reply to the phone's self-service answer, ``voice.self_service``); idempotent for the same ``received_at``."""
    _store_message(message, customer_id, conversation_id, received_at)


def _put_thread(thread: dict[str, Any]) -> None:
    write([{"Put": {"TableName": _table(), "Item": to_item(thread)}}])


def _identity_put(identity: Identity, customer_id: str, now: str) -> dict[str, Any]:
    item = {
        "pk": identity_key(identity.key),
        "sk": "IDENTITY",
        "customer_id": customer_id,
        "kind": identity.kind,
        "created_at": now,
    }
    return {"Put": {"TableName": _table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def _told(message: InboundMessage) -> dict[str, Any]:
    """What the message says about the customer (it fills gaps in their profile, never overwrites it)."""
    told = {"name": message.name, "email": message.email, "phone": message.phone, "language": message.language}
    return {k: v for k, v in told.items() if v is not None}


def _profile_action(message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any] | None:
    """The profile's write, or None when the message changes nothing in it (a follow-up, as a rule)."""
    if plan.new_customer:
        profile = {
            "pk": customer_key(plan.customer_id),
            "sk": "PROFILE",
            "customer_id": plan.customer_id,
            **_told(message),
            "created_at": now,
            "last_seen_at": now,
            "open_conversation_id": plan.conversation_id,
            "identities": {*plan.known, *(i.key for i in plan.missing)},
        }
        return {
            "Put": {"TableName": _table(), "Item": to_item(profile), "ConditionExpression": "attribute_not_exists(pk)"}
        }
    gaps = {k: v for k, v in _told(message).items() if plan.profile.get(k) is None}
    if plan.mode == "join" and not gaps and not plan.missing:
        return None  # a follow-up that tells nothing new writes no profile
    sets = ["last_seen_at = :now"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {":now": now}
    for attribute, value in gaps.items():
        sets.append(f"#{attribute} = if_not_exists(#{attribute}, :{attribute})")
        names[f"#{attribute}"] = attribute
        values[f":{attribute}"] = value
    condition = "attribute_exists(pk) AND attribute_not_exists(merged_into)"
    if plan.mode != "join" and not (message.channel in OWN_CONVERSATION and plan.pointer):
        # A call (or a voicemail) opens its own conversation (someone must be offered it while the caller holds) and
        # leaves an open one of another channel where it is: the customer's next text still goes there.
        sets.append("open_conversation_id = :conversation")
        values[":conversation"] = plan.conversation_id
        if plan.pointer is None:
            condition += " AND attribute_not_exists(open_conversation_id)"
        else:
            condition += " AND open_conversation_id = :pointer"
            values[":pointer"] = plan.pointer
    expression = "SET " + ", ".join(sets)
    if plan.missing:
        expression += " ADD identities :identities"
        values[":identities"] = {i.key for i in plan.missing}
    update: dict[str, Any] = {
        "TableName": _table(),
        "Key": key(customer_key(plan.customer_id), "PROFILE"),
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": to_values(values),
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def _conversation_action(message: InboundMessage, plan: _Plan, now: str) -> dict[str, Any] | None:
    """The conversation's write: reopened (e-mail thread), opened, or for a join only what changed (None: nothing).

    A join creates the conversation when the profile points at one that was never written (an ingest that died
    between the profile and the conversation). No counters: nobody reads them, and a join writes nothing when
    the customer writes on the channel they wrote on before.
    """
    values: dict[str, Any] = {":now": now, ":channel": message.channel, ":open": "open"}
    values[":customer"] = plan.customer_id
    if plan.mode == "reopen":
        expression = "SET channel = :channel, #status = :open"
        condition = "customer_id = :customer"
        del values[":now"]
    elif plan.mode == "join" and plan.conversation is not None:
        if plan.conversation.get("channel") == message.channel:
            return None
        expression = "SET channel = :channel"
        condition = "#status = :open AND customer_id = :customer"
        del values[":now"]
    else:
        expression = (
            "SET conversation_id = :conversation, customer_id = :customer, #status = :open, channel = :channel,"
            " created_at = if_not_exists(created_at, :now)"
        )
        values[":conversation"] = plan.conversation_id
        if plan.mode == "new" and message.subject is not None:
            expression += ", subject = :subject"
            values[":subject"] = message.subject
        condition = "attribute_not_exists(pk) OR (#status = :open AND customer_id = :customer)"
    return {
        "Update": {
            "TableName": _table(),
            "Key": key(conversation_key(plan.conversation_id), "META"),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_values(values),
        }
    }


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


def owner_and_conversation(identity: Identity, conversation_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """The customer ``identity`` belongs to and the conversation's META, in one consistent BatchGetItem."""
    found = {
        (i["pk"], i["sk"]): i
        for i in _batch_get([(identity_key(identity.key), "IDENTITY"), (conversation_key(conversation_id), "META")])
    }
    owner = found.get((identity_key(identity.key), "IDENTITY"))
    return (str(owner["customer_id"]) if owner else None), found.get((conversation_key(conversation_id), "META"))


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


def forget_open_conversation(
    customer_id: str, conversation_id: str, remember: dict[str, dict[str, Any]] | None = None
) -> None:
    """The customer's next message opens a new conversation, unless their pointer moved on already.

    ``remember``: profile fields set with it (each a record with an ``ended_at``), in the same update; when the
    pointer moved on, in an update of their own. A field already holding this record or a later one is kept (a
    retry does not overwrite what was added to it since, a late one does not replace a newer record)."""
    client = aws.client("dynamodb")
    names: dict[str, str] = {}
    values: dict[str, Any] = {":conversation": conversation_id}
    sets, newer = [], []
    for n, (field_name, record) in enumerate((remember or {}).items()):
        names[f"#f{n}"] = field_name
        values[f":v{n}"], values[f":e{n}"] = record, record["ended_at"]
        sets.append(f"#f{n} = :v{n}")
        newer.append(f"(attribute_not_exists(#f{n}) OR #f{n}.ended_at < :e{n})")
    kept = " AND ".join(newer)
    update: dict[str, Any] = {
        "TableName": _table(),
        "Key": key(customer_key(customer_id), "PROFILE"),
        "ExpressionAttributeValues": to_values(values),
        **({"ExpressionAttributeNames": names} if names else {}),
    }
    try:
        client.update_item(
            **update,
            UpdateExpression=("SET " + ", ".join(sets) + " " if sets else "") + "REMOVE open_conversation_id",
            ConditionExpression="open_conversation_id = :conversation" + (f" AND {kept}" if kept else ""),
        )
        return
    except client.exceptions.ConditionalCheckFailedException:
        if not sets:
            return
    del values[":conversation"]
    update["ExpressionAttributeValues"] = to_values(values)
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(**update, UpdateExpression="SET " + ", ".join(sets), ConditionExpression=kept)


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
