"""The bot's exchange with one conversation in the data table: which first message it answered, with which article,
and how the customer took it.

Keys::

    CONVERSATION#<id>   SELFSERVICE   state (waiting | solved | handed_over | unconfirmed), message_id (the
                                      question answered), question, article_id, language, channel, customer_id,
                                      answered_at, close_due_at, resolved_by, resolved_at
    CUSTOMER#<id>       PROFILE       ... self_service_last: how the customer's latest bot exchange ended
                                      (solved | unconfirmed: conversation_id, article_id, channel, outcome,
                                      ended_at), and the recontact counted for it (recontact_at, recontact_by,
                                      recontact_channel)
    SELFSERVICESTATS#<yyyy-mm-dd>  <channel>#<article>   that UTC day's counts: answered, solved, handed_over,
                                      unconfirmed, recontact (ADD), with article_id, title, channel; TTL
                                      ``STATS_RETENTION_DAYS``

The answer's timeline message and this item are written in one transaction (``answered``): a Lambda dying between
the two can neither send an answer the router does not know of nor hold a contact back with no answer sent. A
``waiting`` item is the contact held back from routing; one conditional update moves it on (``resolve``), so a
redelivered reply acts once.

The day's counts are single ``ADD`` updates after the change they count (``count``): a Lambda dying between the
two loses that count, a redelivery never counts it twice (it finds the change made, and counts nothing).
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.settings import get_settings
from chalicelib.store import aws, outbound
from chalicelib.store.conversations import conversation_key, customer_key, forget_open_conversation
from chalicelib.store.dynamo import TransactionConflict, from_item, get, key, to_item, to_values, transact

SORT_KEY = "SELFSERVICE"
WAITING, SOLVED, HANDED_OVER, UNCONFIRMED = "waiting", "solved", "handed_over", "unconfirmed"
RECONTACT = "recontact"
COUNTS = ("answered", SOLVED, HANDED_OVER, UNCONFIRMED, RECONTACT)
STATS_RETENTION_DAYS = 35
LAST = "self_service_last"  # the customer profile's record of their latest bot exchange that ended


def _table() -> str:
    return get_settings().data_table


def get_session(conversation_id: str) -> dict[str, Any] | None:
    """The bot's latest exchange in this conversation, or None."""
    return get(_table(), conversation_key(conversation_id), SORT_KEY)


def answered(session: dict[str, Any], message: dict[str, Any], once: bool = False) -> bool:
    """Record that the bot answered ``session["message_id"]`` with ``message`` (its timeline message, pending-send),
    in one transaction; False when another delivery is waiting on an answer already (nothing written). ``once``:
    False too when that question was answered before, however it ended (the phone's answer, stored after the
    fact: ``voice.self_service``)."""
    condition, values = "attribute_not_exists(pk) OR #state <> :waiting", {":waiting": WAITING}
    if once:
        condition = "attribute_not_exists(pk) OR (#state <> :waiting AND message_id <> :question)"
        values[":question"] = session["message_id"]
    put = {
        "Put": {
            "TableName": _table(),
            "Item": to_item({"pk": conversation_key(session["conversation_id"]), "sk": SORT_KEY, **session}),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_values(values),
        }
    }
    try:
        transact([outbound.record_message_action(message), put])
    except TransactionConflict:
        return False
    return True


def resolve(conversation_id: str, question_id: str, state: str, reply_id: str | None, now: str) -> bool:
    """The customer's reply ``reply_id`` to the answer of ``question_id`` moved it to ``state`` (solved or handed
    over), or no reply in time (``reply_id`` None: ``unconfirmed``); False when it was not waiting on that answer
    any more (a repeat, or another reply came first)."""
    sets, values = "SET #state = :state, resolved_at = :now", {":state": state, ":now": now}
    if reply_id is not None:
        sets, values = sets + ", resolved_by = :reply", values | {":reply": reply_id}
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(conversation_key(conversation_id), SORT_KEY),
            UpdateExpression=sets,
            ConditionExpression="#state = :waiting AND message_id = :question",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_values(values | {":waiting": WAITING, ":question": question_id}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def close(conversation_id: str, customer_id: str, now: str, wrap_up: str, ended: dict[str, Any]) -> None:
    """Close the conversation the bot's exchange ended in (wrap-up ``self_service``: solved, or
    ``self_service_unconfirmed``) and clear the customer's pointer to it, as an agent's close does
    (``store.routing.record_closing``), remembering on their profile how it ended (``ended``: ``self_service_last``,
    for the recontact); a message written since keeps it open. Idempotent."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(conversation_key(conversation_id), "META"),
            UpdateExpression="SET #status = :closed, closed_at = :now, wrap_up = :wrap_up",
            ConditionExpression="attribute_not_exists(last_message_at) OR last_message_at <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values({":closed": "closed", ":now": now, ":wrap_up": wrap_up}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return  # the customer wrote again: the conversation goes on
    forget_open_conversation(customer_id, conversation_id, remember={LAST: ended})


def close_solved(conversation_id: str, customer_id: str, now: str, ended: dict[str, Any]) -> None:
    close(conversation_id, customer_id, now, "self_service", ended)


def note_recontact(customer_id: str, last: dict[str, Any], message_id: str, channel: str, now: str) -> bool:
    """Mark the customer's ended exchange ``last`` (as read) recontacted by ``message_id``: True once, False when it
    was marked already (a redelivery, another message first) or a newer exchange replaced it."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(customer_key(customer_id), "PROFILE"),
            UpdateExpression=f"SET {LAST}.recontact_at = :now, {LAST}.recontact_by = :message,"
            f" {LAST}.recontact_channel = :channel",
            ConditionExpression=f"{LAST}.ended_at = :ended AND {LAST}.conversation_id = :conversation"
            f" AND attribute_not_exists({LAST}.recontact_at)",
            ExpressionAttributeValues=to_values(
                {
                    ":now": now,
                    ":message": message_id,
                    ":channel": channel,
                    ":ended": last.get("ended_at", ""),
                    ":conversation": last.get("conversation_id", ""),
                }
            ),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


# --- the day's counts ---------------------------------------------------------------------------------------


def _stats_key(day: str) -> str:
    return f"SELFSERVICESTATS#{day}"


def count(outcome: str, article_id: str, channel: str, now: str, title: str | None = None) -> None:
    """One more ``outcome`` (one of ``COUNTS``) of ``article_id`` on ``channel`` on ``now``'s UTC day: one update."""
    values: dict[str, Any] = {
        ":one": 1,
        ":article": article_id,
        ":channel": channel,
        ":ttl": int(clock.parse_iso(now).timestamp()) + STATS_RETENTION_DAYS * 86400,
    }
    expression = "SET article_id = :article, channel = :channel, expires_at = :ttl"
    if title:
        expression += ", title = :title"
        values[":title"] = title
    aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(_stats_key(now[:10]), f"{channel}#{article_id}"),
        UpdateExpression=f"{expression} ADD #outcome :one",
        ExpressionAttributeNames={"#outcome": outcome},
        ExpressionAttributeValues=to_values(values),
    )


def day_counts(day: str) -> list[dict[str, Any]]:
    """The counts of that UTC day (``yyyy-mm-dd``), one row per channel and article: one query (a few pages at most:
    articles times channels)."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": to_values({":pk": _stats_key(day)}),
    }
    rows = []
    while True:
        page = client.query(**kwargs)
        for item in (from_item(i) for i in page["Items"]):
            rows.append(
                {
                    "article_id": str(item.get("article_id", "")),
                    "title": str(item.get("title") or item.get("article_id", "")),
                    "channel": str(item.get("channel", "")),
                    **{name: int(item.get(name, 0)) for name in COUNTS},
                }
            )
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
