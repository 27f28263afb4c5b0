"""Test support: signed provider payloads, Lambda events built the way AWS builds them, and readers of moto state.

Nothing here replaces our own code: AWS is moto, and handlers run through
``chalice.test.Client`` exactly as Lambda would call them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import boto3
from botocore.exceptions import EndpointConnectionError
from chalice.test import Client
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.auth import generate_dev_key, issue_dev_token
from chalicelib.channels.signing import sign_sha256
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import from_item
from chalicelib.store.queue import queue_url

DEV_SIGNING_KEY = generate_dev_key()  # one local signing key for the whole test session
WEBCHAT_SECRET = "test-webchat-secret-6f1d"
API_CHANNEL_SECRET = "test-api-channel-secret-91ac"
CHANNEL_SECRETS = {
    "API_CHANNEL_SECRET": API_CHANNEL_SECRET,
    "TWILIO_AUTH_TOKEN": "test-twilio-auth-token-12ab",
    "META_APP_SECRET": "test-meta-app-secret-77de",
    "META_VERIFY_TOKEN": "test-meta-verify-token",
    "TELEGRAM_SECRET_TOKEN": "test-telegram-secret_token-1",
    "MAILGUN_SIGNING_KEY": "test-mailgun-signing-key-5f2e",
}
PUBLIC_BASE_URL = "https://hooks.example.com/api"
SNS_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:switchboard-inbound-email"
REGION = "us-east-1"
WS_API_ID = "a1b2c3d4e5"
WS_STAGE = "ws"


def record_aws_requests() -> list[str]:
    """Every request the app's clients send from now on, as ``service.Operation``, in order (botocore's
    ``before-send``, so retries count too). Call it once every client exists, as in a warm Lambda."""
    sent: list[str] = []
    for client in aws.created_clients():
        client.meta.events.register_first("before-send", lambda event_name, **_: sent.append(event_name[12:]))
    return sent


def webchat_payload(visitor: str = "v_1", message: str = "m_1", text: str = "Where is my order?", **extra: Any) -> dict:
    return {"site": "acme-shop", "visitor_id": visitor, "message_id": message, "text": text, **extra}


def signed(body: bytes, secret: str = WEBCHAT_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(secret, body)}


def api_channel_headers(body: bytes, timestamp: int | None = None, secret: str = API_CHANNEL_SECRET) -> dict[str, str]:
    """Signed the way a business's backend signs for the API channel (written out here, not imported)."""
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": stamp,
        "X-Switchboard-Signature": f"sha256={digest}",
    }


def post_api_channel(client: Client, payload: dict[str, Any], **signing: Any) -> Any:
    body = json.dumps(payload).encode()
    return client.http.post("/webhooks/api", headers=api_channel_headers(body, **signing), body=body)


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes().strip()


def twilio_headers(path: str, body: bytes, base_url: str = PUBLIC_BASE_URL) -> dict[str, str]:
    """Signed as Twilio signs: the public URL, then every parameter name+value sorted, HMAC-SHA1, base64."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import parse_qsl

    params = sorted(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    signed = base_url + path + "".join(f"{k}{v}" for k, v in params)
    token = CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"].encode()
    signature = base64.b64encode(hmac.new(token, signed.encode(), hashlib.sha1).digest()).decode()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}


def post_twilio(client: Client, path: str, body: bytes) -> Any:
    return client.http.post(path, headers=twilio_headers(path, body), body=body)


def post_meta(client: Client, body: bytes, secret: str | None = None) -> Any:
    """Signed as Meta signs: X-Hub-Signature-256 = sha256=<hex HMAC-SHA256 of the raw body under the app secret>."""
    import hashlib
    import hmac

    key = (secret or CHANNEL_SECRETS["META_APP_SECRET"]).encode()
    signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return client.http.post("/webhooks/meta", headers=headers, body=body)


def post_telegram(client: Client, body: bytes, secret: str | None = None) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": secret or CHANNEL_SECRETS["TELEGRAM_SECRET_TOKEN"],
    }
    return client.http.post("/webhooks/telegram", headers=headers, body=body)


def post_mailgun(client: Client, fields: dict[str, str], key: str | None = None, age: float = 0) -> Any:
    """A Mailgun route forward(): urlencoded fields plus timestamp, token and their HMAC-SHA256 signature."""
    import hashlib
    import hmac
    import time
    from urllib.parse import urlencode

    timestamp, token = str(int(time.time() - age)), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signing_key = (key or CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"]).encode()
    signature = hmac.new(signing_key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = urlencode({**fields, "timestamp": timestamp, "token": token, "signature": signature}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return client.http.post("/webhooks/email/mailgun", headers=headers, body=body)


def post_webchat(client: Client, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()
    return client.http.post("/webhooks/webchat", headers=signed(body), body=body)


# --- the routing queue, pumped into the router Lambda as the SQS event source does ---------


_FIFO_ATTRIBUTES = ("SequenceNumber", "MessageGroupId", "MessageDeduplicationId")


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """A Lambda SQS event for received messages (one record each; FIFO attributes when the queue is FIFO)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"],
                    "SentTimestamp": m["Attributes"]["SentTimestamp"],
                    "SenderId": m["Attributes"].get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                    "ApproximateFirstReceiveTimestamp": m["Attributes"]["ApproximateFirstReceiveTimestamp"],
                    **{name: m["Attributes"][name] for name in _FIFO_ATTRIBUTES if name in m["Attributes"]},
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def lambda_service_sqs() -> Any:
    """The SQS client of the Lambda event source poller: not the app's, so the app's request counts stay its own."""
    return boto3.client("sqs", region_name=REGION)


def receive_routing_messages(max_messages: int = 10) -> list[dict[str, Any]]:
    return (
        lambda_service_sqs()
        .receive_message(
            QueueUrl=queue_url(),
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        .get("Messages", [])
    )


def routing_queue_arn() -> str:
    attrs = lambda_service_sqs().get_queue_attributes(QueueUrl=queue_url(), AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def deliver_once(client: Client) -> tuple[int, list[str]]:
    """One batch from the routing queue into ``on_routing_event``, honouring partial batch failures.

    Returns (records delivered, message ids that failed). Failed messages are
    made visible again at once, as if their visibility timeout had passed.
    """
    messages = receive_routing_messages()
    if not messages:
        return 0, []
    try:
        response = client.lambda_.invoke("on_routing_event", sqs_event(messages, routing_queue_arn())).payload
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    except Exception:  # an invocation error: Lambda returns the whole batch to the queue
        failed = {m["MessageId"] for m in messages}
    sqs = lambda_service_sqs()
    for m in messages:
        if m["MessageId"] in failed:
            sqs.change_message_visibility(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=queue_url(), ReceiptHandle=m["ReceiptHandle"])
    return len(messages), sorted(failed)


def drain(client: Client, max_batches: int = 50) -> int:
    """Deliver routing events until the queue is empty; returns how many records were delivered."""
    delivered = 0
    for _ in range(max_batches):
        count, _failed = deliver_once(client)
        if count == 0:
            return delivered
        delivered += count
    raise AssertionError("routing queue did not drain")


def queued_message_count() -> int:
    attrs = lambda_service_sqs().get_queue_attributes(
        QueueUrl=queue_url(), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


# --- agents on the WebSocket API ------------------------------------------------------------


def ws_event(route_key: str, connection_id: str, body: str | None = None, query: dict | None = None) -> dict:
    """An API Gateway WebSocket proxy event as Lambda receives it."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": "Kx" + uuid.uuid4().hex[:12] + "=",
            "requestTime": "23/Nov/2026:10:00:00 +0000",
            "messageDirection": "IN",
            "stage": WS_STAGE,
            "connectedAt": 1795428000000,
            "requestTimeEpoch": 1795428000123,
            "requestId": "Kx" + uuid.uuid4().hex[:12] + "=",
            "domainName": f"{WS_API_ID}.execute-api.{REGION}.amazonaws.com",
            "connectionId": connection_id,
            "apiId": WS_API_ID,
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "isBase64Encoded": False,
    }
    if route_key == "$connect":
        event["headers"] = {"Host": event["requestContext"]["domainName"], "Sec-WebSocket-Version": "13"}
        event["queryStringParameters"] = query or {}
    if body is not None:
        event["requestContext"]["messageId"] = "Kx" + uuid.uuid4().hex[:12] + "="
        event["body"] = body
    return event


def bearer(agent_id: str = "root", *roles: str) -> dict[str, str]:
    """Authorization for a signed-in agent (dev tokens carry Cognito's claims)."""
    return {"Authorization": f"Bearer {issue_dev_token(agent_id, list(roles) or ['admin'])}"}


def as_admin() -> dict[str, str]:
    return {"Content-Type": "application/json", **bearer("root", "admin")}


def as_agent(agent_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", **bearer(agent_id, "agent")}


def connect_agent(client: Client, agent_id: str, connection_id: str | None = None) -> str:
    connection_id = connection_id or uuid.uuid4().hex[:12] + "="
    token = issue_dev_token(agent_id, ["agent"])
    response = client.lambda_.invoke("ws_connect", ws_event("$connect", connection_id, query={"token": token}))
    assert response.payload["statusCode"] == 200, response.payload
    return connection_id


def agent_says(client: Client, connection_id: str, **command: Any) -> dict[str, Any]:
    """Send an agent command over the WebSocket and return the reply pushed back to that connection."""
    before = len(pushed(connection_id))
    client.lambda_.invoke("ws_message", ws_event("$default", connection_id, body=json.dumps(command)))
    replies = pushed(connection_id)[before:]
    assert replies, f"no reply pushed for {command}"
    return replies[-1]


def pushed(connection_id: str) -> list[dict[str, Any]]:
    """Every JSON document pushed to a connection through moto's API Gateway management API."""
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]
    key = quote(connection_id, safe="")  # moto keys connections by the id as it appears in the URL path
    data = backend.connections[key].data.decode() if key in backend.connections else ""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while position < len(data):
        document, position = decoder.raw_decode(data, position)
        documents.append(document)
    return documents


def offers_to(connection_id: str) -> list[dict[str, Any]]:
    return [d for d in pushed(connection_id) if d.get("type") == "offer"]


def create_agent(
    client: Client,
    agent_id: str,
    capacity: int = 1,
    presence: str = "Available",
    channels: tuple[str, ...] = ("webchat",),
    **extra: Any,
) -> None:
    body = {
        "agent_id": agent_id,
        "name": agent_id.title(),
        "max_per_channel": {channel: capacity for channel in channels},
        "presence": presence,
    }
    response = client.http.post("/agents", headers=as_admin(), body=json.dumps({**body, **extra}))
    assert response.status_code == 201, response.body


# --- reading what was stored -----------------------------------------------------------------


def all_items(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = aws.client("dynamodb").scan(**kwargs)
        items.extend(from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def data_items() -> list[dict[str, Any]]:
    return all_items(get_settings().data_table)


def routing_items() -> list[dict[str, Any]]:
    return all_items(get_settings().routing_table)


def stored_messages() -> list[dict[str, Any]]:
    return [i for i in data_items() if i.get("type") == "message"]


def iter_contacts() -> Iterator[dict[str, Any]]:
    return (i for i in all_items(get_settings().routing_table) if i["sk"] == "CONTACT")


# --- failures at the AWS boundary ------------------------------------------------------------


@contextmanager
def fails_once(service: str, operation: str) -> Iterator[list[str]]:
    """The next ``operation`` on ``service`` raises a connection error, as if the Lambda lost AWS just then;
    later calls go through. Yields the list the failure is recorded in (empty if it never fired)."""
    with _connection_lost_once(service, operation, "before-call") as fired:
        yield fired


@contextmanager
def answer_lost_once(service: str, operation: str) -> Iterator[list[str]]:
    """The next ``operation`` on ``service`` happens, then its answer is lost (a read timeout, a Lambda dying
    before it learned the result): the request took effect, the caller sees a connection error."""
    with _connection_lost_once(service, operation, "after-call") as fired:
        yield fired


@contextmanager
def _connection_lost_once(service: str, operation: str, moment: str) -> Iterator[list[str]]:
    """A connection error once, ``before-call`` (the request never went) or ``after-call`` (its answer is lost)."""
    fired: list[str] = []

    def explode(**_: Any) -> None:
        if not fired:
            fired.append(operation)
            raise EndpointConnectionError(endpoint_url=f"https://{service}.{REGION}.amazonaws.com")

    client = aws.client(service)
    event_name = f"{moment}.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register_first(event_name, explode)
    try:
        yield fired
    finally:
        client.meta.events.unregister(event_name, explode)


def visitor_conversation(client: Client, n: int) -> str:
    """Web-chat visitor ``v<n>`` writes message ``m<n>``; returns the conversation id."""
    return post_webchat(client, webchat_payload(visitor=f"v{n}", message=f"m{n}")).json_body["conversation_id"]


def disconnect(client: Client, connection_id: str) -> None:
    """The WebSocket closes, as API Gateway reports it ($disconnect)."""
    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", connection_id))


# --- the routing table's stream (the supervisor's live view) --------------------------------------------------

_stream_positions: dict[str, dict[str, str | None]] = {}  # stream ARN -> shard -> next iterator


def matches_pattern(pattern: Any, value: Any) -> bool:
    """Lambda's event filtering, for the rule shapes ``STREAM_FILTERS`` uses: nested keys, a list of allowed
    values, ``{"prefix": ...}``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(p, value[k]) for k, p in pattern.items())
    return any(
        (isinstance(rule, dict) and isinstance(value, str) and value.startswith(rule["prefix"])) or rule == value
        for rule in pattern
    )


def routing_stream_arn() -> str:
    """The routing table's stream, as the stack's event source mapping names it."""
    table = aws.client("dynamodb").describe_table(TableName=get_settings().routing_table)["Table"]
    return str(table["LatestStreamArn"])


def stream_records(arn: str | None = None) -> list[dict[str, Any]]:
    """The routing table's stream records written since the last call (all of them on the first call of a test),
    as Lambda hands them over, keeping only those the event source mapping's filters let through. ``arn``: the
    stream's (``routing_stream_arn()``; read again when not given)."""
    from chalicelib.local.streams import streams_client
    from chalicelib.store.supervisor_feed import STREAM_FILTERS

    arn = arn or routing_stream_arn()
    streams = streams_client(REGION, None)
    positions = _stream_positions.setdefault(arn, {})
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        if shard["ShardId"] not in positions:
            positions[shard["ShardId"]] = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
    records: list[dict[str, Any]] = []
    for shard_id, iterator in positions.items():
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            records += [{**r, "eventSourceARN": arn} for r in page["Records"]]
            iterator = page.get("NextShardIterator")
        positions[shard_id] = iterator
    return [r for r in records if any(matches_pattern(f, r) for f in STREAM_FILTERS)]


def deliver_stream(client: Client, arn: str | None = None) -> dict[str, Any] | None:
    """Hand the stream's new (filtered) records to ``on_routing_change`` in one batch, as Lambda's mapping does;
    its answer, or None when nothing passed the filters (Lambda would not invoke it)."""
    records = stream_records(arn)
    if not records:
        return None
    return dict(client.lambda_.invoke("on_routing_change", {"Records": records}).payload)
