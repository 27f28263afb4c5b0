"""The bot's exchange with one conversation in the data table: which first message it answered, with which article,
and how the customer took it.

Keys::

    CONVERSATION#<id>   SELFSERVICE   state (waiting | solved | handed_over), message_id (the question answered),
                                      question, article_id, language, answered_at, resolved_by, resolved_at

The answer's timeline message and this item are written in one transaction (``answered``): a Lambda dying between
the two can neither send an answer the router does not know of nor hold a contact back with no answer sent. A
``waiting`` item is the contact held back from routing; one conditional update moves it on (``resolve``), so a
redelivered reply acts once.
"""

from __future__ import annotations

from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws, outbound
from chalicelib.store.conversations import conversation_key, forget_open_conversation
from chalicelib.store.dynamo import TransactionConflict, get, key, to_item, to_values, transact

SORT_KEY = "SELFSERVICE"
WAITING, SOLVED, HANDED_OVER = "waiting", "solved", "handed_over"


def _table() -> str:
    return get_settings().data_table


def get_session(conversation_id: str) -> dict[str, Any] | None:
    """The bot's latest exchange in this conversation, or None."""
    return get(_table(), conversation_key(conversation_id), SORT_KEY)


def answered(session: dict[str, Any], message: dict[str, Any]) -> bool:
    """Record that the bot answered ``session["message_id"]`` with ``message`` (its timeline message, pending-send),
    in one transaction; False when another delivery is waiting on an answer already (nothing written)."""
    put = {
        "Put": {
            "TableName": _table(),
            "Item": to_item({"pk": conversation_key(session["conversation_id"]), "sk": SORT_KEY, **session}),
            "ConditionExpression": "attribute_not_exists(pk) OR #state <> :waiting",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_values({":waiting": WAITING}),
        }
    }
    try:
        transact([outbound.record_message_action(message), put])
    except TransactionConflict:
        return False
    return True


def resolve(conversation_id: str, question_id: str, state: str, reply_id: str, now: str) -> bool:
    """The customer's reply ``reply_id`` to the answer of ``question_id`` moved it to ``state`` (solved or handed
    over); False when it was not waiting on that answer any more (a repeat, or another reply came first)."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(conversation_key(conversation_id), SORT_KEY),
            UpdateExpression="SET #state = :state, resolved_by = :reply, resolved_at = :now",
            ConditionExpression="#state = :waiting AND message_id = :question",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_values(
                {":state": state, ":reply": reply_id, ":now": now, ":waiting": WAITING, ":question": question_id}
            ),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def close_solved(conversation_id: str, customer_id: str, now: str) -> None:
    """Close the conversation the bot solved (wrap-up ``self_service``) and clear the customer's pointer to it, as
    an agent's close does (``store.routing.record_closing``); a message written since keeps it open. Idempotent."""
    client = aws.client("dynamodb")
    try:
        client.update_item(
            TableName=_table(),
            Key=key(conversation_key(conversation_id), "META"),
            UpdateExpression="SET #status = :closed, closed_at = :now, wrap_up = :wrap_up",
            ConditionExpression="attribute_not_exists(last_message_at) OR last_message_at <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values({":closed": "closed", ":now": now, ":wrap_up": "self_service"}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return  # the customer wrote again: the conversation goes on
    forget_open_conversation(customer_id, conversation_id)
