"""Writers that lose a race read again and retry (``store.retry``); when the state changes faster than they can
act, they answer 409 "retry" and leave nothing half-written.

The rival is another writer at the AWS boundary: just before each of the app's ``TransactWriteItems`` it
changes, in DynamoDB (moto), what the app's transaction is conditioned on, as a concurrent Lambda would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from chalicelib.conversations.models import Identity, InboundMessage
from chalicelib.errors import Conflict
from chalicelib.settings import get_settings
from chalicelib.store import aws as app_clients
from chalicelib.store import conversations as conversation_store
from chalicelib.store import retry
from tests.support import REGION, stored_messages

T0 = "2026-11-24T10:00:00.000000Z"
T1 = "2026-11-24T10:01:00.000000Z"


@contextmanager
def rival(before_each_transaction: Callable[[int], None]) -> Iterator[list[int]]:
    """Run ``before_each_transaction(n)`` before the app's n-th TransactWriteItems; yields the attempts seen."""
    attempts: list[int] = []

    def act(**_: Any) -> None:
        attempts.append(len(attempts) + 1)
        before_each_transaction(len(attempts))

    client = app_clients.client("dynamodb")
    event = "before-call.dynamodb.TransactWriteItems"
    client.meta.events.register(event, act)
    try:
        yield attempts
    finally:
        client.meta.events.unregister(event, act)


@contextmanager
def rival_before_the_join(before_each_read: Callable[[int], None]) -> Iterator[list[int]]:
    """Run ``before_each_read(n)`` before the app's n-th read of a conversation it is about to join (the join's
    guard: the ingest joins a conversation it read open and this customer's, with no transaction)."""
    attempts: list[int] = []

    def act(params: dict[str, Any], **_: Any) -> None:
        if params["Key"]["pk"]["S"].startswith("CONVERSATION#"):
            attempts.append(len(attempts) + 1)
            before_each_read(len(attempts))

    client = app_clients.client("dynamodb")
    event = "before-parameter-build.dynamodb.GetItem"
    client.meta.events.register(event, act)
    try:
        yield attempts
    finally:
        client.meta.events.unregister(event, act)


def _message(n: int) -> InboundMessage:
    return InboundMessage(
        channel="webchat",
        provider="test",
        provider_message_id=f"m{n}",
        identity=Identity("webchat", "v1"),
        text=f"m{n}",
    )


def _open_conversation_elsewhere(customer_id: str, conversation_id: str) -> None:
    """What an agent's close and a concurrent delivery do: the customer's conversation is closed, and another is
    opened for them, the profile pointing at it. (The pointer leaves an open conversation only so: the join is
    guarded by the conversation it joins.)"""
    dynamodb = boto3.client("dynamodb", region_name=REGION)  # not the app's client: no rival hook on it
    table = get_settings().data_table
    profile = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "PROFILE"}})
    current = profile["Item"]["open_conversation_id"]["S"]
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"CONVERSATION#{current}"}, "sk": {"S": "META"}},
        UpdateExpression="SET #s = :closed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":closed": {"S": "closed"}},
    )
    dynamodb.put_item(
        TableName=table,
        Item={
            "pk": {"S": f"CONVERSATION#{conversation_id}"},
            "sk": {"S": "META"},
            "conversation_id": {"S": conversation_id},
            "customer_id": {"S": customer_id},
            "status": {"S": "open"},
            "message_count": {"N": "0"},
        },
    )
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET open_conversation_id = :c",
        ExpressionAttributeValues={":c": {"S": conversation_id}},
    )


def test_a_message_that_lost_the_race_is_stored_once_in_the_conversation_that_won(aws):
    first = conversation_store.ingest(_message(1), T0)

    def once(attempt: int) -> None:
        if attempt == 1:
            _open_conversation_elsewhere(first.customer_id, "conv_rival")

    with rival_before_the_join(once) as attempts:
        stored = conversation_store.ingest(_message(2), T1)
    assert attempts == [1, 2]  # found it closed, lost the profile's pointer, planned again from fresh reads
    assert stored.conversation_id == "conv_rival" and not stored.duplicate
    assert [m["text"] for m in stored_messages()] == ["m1", "m2"]


def test_a_message_whose_customer_changes_at_every_attempt_is_refused_with_409_and_nothing_stored(aws):
    first = conversation_store.ingest(_message(1), T0)

    def every_time(attempt: int) -> None:
        _open_conversation_elsewhere(first.customer_id, f"conv_rival_{attempt}")

    with rival_before_the_join(every_time) as attempts, pytest.raises(Conflict) as refused:
        conversation_store.ingest(_message(2), T1)
    assert len(attempts) == retry.ATTEMPTS
    assert refused.value.status == 409 and "retry" in refused.value.message
    assert [m["text"] for m in stored_messages()] == ["m1"]


def test_a_merge_that_keeps_losing_is_refused_with_409_and_changes_nothing(aws):
    source = conversation_store.ingest(_message(1), T0)
    other = InboundMessage(
        channel="webchat", provider="test", provider_message_id="o1", identity=Identity("webchat", "v2"), text="o1"
    )
    target = conversation_store.ingest(other, T0)
    dynamodb = boto3.client("dynamodb", region_name=REGION)

    def claim_the_identity(_: int) -> None:
        # Another merge moves the source's identity to a third customer first.
        dynamodb.update_item(
            TableName=get_settings().data_table,
            Key={"pk": {"S": "IDENTITY#webchat#v1"}, "sk": {"S": "IDENTITY"}},
            UpdateExpression="SET customer_id = :c",
            ExpressionAttributeValues={":c": {"S": "cus_third"}},
        )

    with rival(claim_the_identity) as attempts, pytest.raises(Conflict) as refused:
        conversation_store.merge_customers(source.customer_id, target.customer_id)
    assert len(attempts) == retry.ATTEMPTS
    assert "retry" in refused.value.message
    profile = conversation_store.get_customer(source.customer_id) or {}
    assert "merged_into" not in profile
    assert "merged_from" not in (conversation_store.get_customer(target.customer_id) or {})


def test_one_conditional_write_is_a_plain_request_that_loses_as_a_transaction_does(aws):
    """``dynamo.write``: one action is a plain PutItem (half a transaction's write units), and a failed
    condition raises the same ``TransactionConflict`` a transaction raises, so ``retry.on_conflict`` plans again."""
    from chalicelib.store.dynamo import TransactionConflict, write

    calls: list[str] = []
    client = app_clients.client("dynamodb")

    def seen(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    item = {"pk": {"S": "TEST#one"}, "sk": {"S": "TEST"}}
    put = {
        "Put": {"TableName": get_settings().data_table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
    }
    client.meta.events.register("before-call.dynamodb", seen)
    try:
        write([put])
        with pytest.raises(TransactionConflict) as lost:
            write([put])
    finally:
        client.meta.events.unregister("before-call.dynamodb", seen)
    assert calls == ["PutItem", "PutItem"]
    assert lost.value.failed(0)
