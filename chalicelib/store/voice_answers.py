"""The phone's self-service answer (``chalicelib.voice.self_service``): what the bot said on a call, kept until the
caller says how it went.

Keys in the data table::

    VOICEANSWER#<call sid>   VOICEANSWER   call_sid, question (what the caller said), confidence, article_id, title,
                                           language, said (the answer and the prompt, as spoken), answered_at,
                                           reply_at (when the reply is in the timeline),
                                           metadata (the call's parameters, ``twilio._CALL_METADATA``), name,
                                           outcome (solved | handed_over | unconfirmed), reply (what the caller
                                           said or pressed), decided_at, expires_at (TTL)

Nothing of the call is in a conversation while the caller listens: the outcome is decided once (``decide``, one
conditional update), and the call is stored from this record then, so that Twilio's retries, and a hang-up racing
the caller's answer, store and count it once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.conversations import idempotency_expiry
from chalicelib.store.dynamo import from_item, get, key, to_item, to_values

SORT_KEY = "VOICEANSWER"


def _table() -> str:
    return get_settings().data_table


def _pk(call_sid: str) -> str:
    return f"VOICEANSWER#{call_sid}"


def note_answer(answer: dict[str, Any], now: str) -> None:
    """The bot answers the call ``answer["call_sid"]`` now (Twilio's repeat of the speech action changes nothing)."""
    item = {"pk": _pk(answer["call_sid"]), "sk": SORT_KEY, **answer, "expires_at": idempotency_expiry(now)}
    client = aws.client("dynamodb")
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=_table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def get_answer(call_sid: str) -> dict[str, Any] | None:
    return get(_table(), _pk(call_sid), SORT_KEY)


def decide(call_sid: str, outcome: str, reply: str | None, now: str) -> dict[str, Any] | None:
    """How the caller took the answer: ``outcome`` unless another request decided first. Returns the record as it is
    now (its ``outcome`` the one that counts), or None when the bot never answered this call."""
    sets = "SET outcome = :outcome, decided_at = :now" + (", reply = :reply" if reply is not None else "")
    values: dict[str, Any] = {":outcome": outcome, ":now": now} | ({":reply": reply} if reply is not None else {})
    client = aws.client("dynamodb")
    try:
        updated = client.update_item(
            TableName=_table(),
            Key=key(_pk(call_sid), SORT_KEY),
            UpdateExpression=sets,
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(outcome)",
            ExpressionAttributeValues=to_values(values),
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return get_answer(call_sid)
    return from_item(updated["Attributes"])


def reply_at(call_sid: str, now: str) -> str:
    """When the caller's reply is in the timeline: ``now`` the first time, the same moment for every repeat."""
    updated = aws.client("dynamodb").update_item(
        TableName=_table(),
        Key=key(_pk(call_sid), SORT_KEY),
        UpdateExpression="SET reply_at = if_not_exists(reply_at, :now)",
        ExpressionAttributeValues=to_values({":now": now}),
        ReturnValues="ALL_NEW",
    )
    return str(from_item(updated["Attributes"])["reply_at"])
