"""The AWS resources the app needs, described once.

The local stack and the integration tests create them from here against moto;
the CDK app in ``infra/`` declares the same shapes for AWS (with the stage's
names, and a visibility timeout of six times the consumer's, see
``infra/switchboard_infra/functions.py``), taking ``MAX_RECEIVES``,
``ROUTING_INDEX`` and ``dead_letter_queue_name`` from here.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.settings import Settings, get_settings, outbox_queue_name, timer_queue_name
from chalicelib.store import aws

# Sparse index over the routing table: only items waiting for something
# (available agents, queued contacts, open offers) carry gsi1 attributes, and contact records by day of arrival.
ROUTING_INDEX = "gsi1"
# Sparse index over the data table: only outbound messages recorded but not yet claimed by the outbox
# (``pending_send``/``pending_since``), so the sweeper finds what was never queued in one bounded query.
OUTBOX_INDEX = "outbox"
OUTBOX_INDEX_ATTRIBUTES = ("message_id", "conversation_id", "customer_id", "channel", "kind", "received_at")
MAX_RECEIVES = 5  # then the message goes to the dead-letter queue
VISIBILITY_SECONDS = 30


def table_definitions(settings: Settings) -> list[dict[str, Any]]:
    """CreateTable arguments for every table."""
    key = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    attrs = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    return [
        {
            "TableName": settings.data_table,
            "KeySchema": key,
            "AttributeDefinitions": [
                *attrs,
                {"AttributeName": "pending_send", "AttributeType": "S"},
                {"AttributeName": "pending_since", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": OUTBOX_INDEX,
                    "KeySchema": [
                        {"AttributeName": "pending_send", "KeyType": "HASH"},
                        {"AttributeName": "pending_since", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(OUTBOX_INDEX_ATTRIBUTES)},
                }
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": settings.routing_table,
            "KeySchema": key,
            "AttributeDefinitions": [
                *attrs,
                {"AttributeName": "gsi1pk", "AttributeType": "S"},
                {"AttributeName": "gsi1sk", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": ROUTING_INDEX,
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "BillingMode": "PAY_PER_REQUEST",
            # The supervisor's live view follows the table's changes (agents.live); the stack's table has it too.
            "StreamSpecification": ROUTING_STREAM,
        },
    ]


ROUTING_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}


def dead_letter_queue_name(queue_name: str) -> str:
    """The DLQ paired with a queue (FIFO queues need a FIFO DLQ)."""
    if queue_name.endswith(".fifo"):
        return queue_name.removesuffix(".fifo") + "-dlq.fifo"
    return queue_name + "-dlq"


def create_all(settings: Settings | None = None) -> dict[str, str]:
    """Create every table, queue and the attachments bucket (idempotent); returns the queue URLs by name."""
    settings = settings or get_settings()
    dynamodb = aws.client("dynamodb")
    existing = set(dynamodb.list_tables()["TableNames"])
    for definition in table_definitions(settings):
        if definition["TableName"] not in existing:
            dynamodb.create_table(**definition)
        elif "StreamSpecification" in definition:  # a table made before its stream was wanted
            found = dynamodb.describe_table(TableName=definition["TableName"])["Table"]
            if not found.get("StreamSpecification", {}).get("StreamEnabled"):
                dynamodb.update_table(TableName=definition["TableName"], StreamSpecification=ROUTING_STREAM)
    urls: dict[str, str] = {}
    for name, fifo in (
        (settings.routing_queue_name, True),
        (timer_queue_name(), False),
        (outbox_queue_name(), False),
    ):
        urls.update(_queue_with_dead_letters(name, fifo))
    _attachments_bucket(settings)
    return urls


# Visitors' browsers, on businesses' sites, upload straight to the bucket: POST from any origin (the presigned
# policy, not the origin, decides what may be uploaded); agents' and visitors' presigned GETs are plain links.
ATTACHMENTS_CORS = {"AllowedMethods": ["POST"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 3000}


def _attachments_bucket(settings: Settings) -> None:
    s3 = aws.client("s3")
    if settings.attachments_bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        where = (
            {}
            if settings.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": settings.region}}
        )
        s3.create_bucket(Bucket=settings.attachments_bucket, **where)
    s3.put_bucket_cors(Bucket=settings.attachments_bucket, CORSConfiguration={"CORSRules": [ATTACHMENTS_CORS]})


def _queue_with_dead_letters(name: str, fifo: bool) -> dict[str, str]:
    sqs = aws.client("sqs")
    dlq_name = dead_letter_queue_name(name)
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(
        QueueName=dlq_name,
        Attributes={**fifo_attributes, "MessageRetentionPeriod": str(14 * 24 * 3600)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            **fifo_attributes,
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )["QueueUrl"]
    return {name: url, dlq_name: dlq_url}
