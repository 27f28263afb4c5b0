"""The local stack's moto server: serial requests, long polls that do not hold the lock, item-level rollback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.local.moto_server import LOCAL_CREDENTIALS, MotoServer


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = MotoServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _client(service: str, url: str) -> Any:
    keys = {"aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]}
    keys["aws_secret_access_key"] = LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **keys)


def test_a_cancelled_transaction_undoes_its_own_writes_only(moto_url: str) -> None:
    dynamodb = _client("dynamodb", moto_url)
    dynamodb.create_table(
        TableName="rollback",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="rollback", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="rollback", Item={"pk": {"S": "other"}, "sk": {"S": "1"}, "n": {"N": "7"}})

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "rollback", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": "rollback",
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "rollback",
                        "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = {i["pk"]["S"]: i for i in dynamodb.scan(TableName="rollback")["Items"]}
    assert set(items) == {"a", "other"}  # the put is undone, nothing else is lost
    assert items["a"]["n"] == {"N": "1"} and items["other"]["n"] == {"N": "7"}


def test_a_long_poll_does_not_hold_up_other_requests_and_gets_what_is_sent(moto_url: str) -> None:
    sqs = _client("sqs", moto_url)
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    received: list[dict[str, Any]] = []
    poll = threading.Thread(
        target=lambda: received.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", []))
    )
    poll.start()
    try:
        # Served while the poll waits (a lock held for the whole poll would keep these waiting 20 s).
        assert "long-poll" in _client("sqs", moto_url).list_queues()["QueueUrls"][0]
        assert poll.is_alive()
        _client("sqs", moto_url).send_message(QueueUrl=url, MessageBody="hello")
    finally:
        poll.join(25)
    assert [m["Body"] for m in received] == ["hello"]
