"""The local stack against a tiny Chalice app: real HTTP, real WebSocket clients, real boto3, moto behind it.

Every wait polls a condition with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest
import requests
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
    EventBridgeModel,
    SqsModel,
)
from chalice import Chalice, Response
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from chalicelib.local import LocalStack

PROBE_QUEUE = "probe.fifo"
PROBE_DLQ = "probe-dlq.fifo"
MAX_RECEIVES = 3
T = TypeVar("T")


class Recorder:
    """What the handlers saw, safe to read from the test thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, Any]] = []

    def add(self, kind: str, value: Any) -> None:
        with self._lock:
            self._items.append((kind, value))

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [value for item_kind, value in self._items if item_kind == kind]

    def deliveries(self, body: str) -> list[dict[str, Any]]:
        """The SQS records carrying ``body``, one per delivery, in order."""
        return [r for event in self.of("sqs-event") for r in event["Records"] if r["body"] == body]

    def batches_with(self, body: str) -> list[list[str]]:
        """For each delivery of ``body``, the bodies of the whole batch it came in."""
        return [
            [r["body"] for r in event["Records"]]
            for event in self.of("sqs-event")
            if any(r["body"] == body for r in event["Records"])
        ]


seen = Recorder()
app = Chalice(app_name="localstack-test")
app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.route("/ping")
def ping() -> dict[str, Any]:
    request = app.current_request
    assert request is not None
    return {"pong": True, "query": request.query_params or {}}


@app.on_sqs_message(queue=PROBE_QUEUE, batch_size=10)
def probe(event: Any) -> dict[str, Any]:
    raw = event.to_dict()
    seen.add("sqs-event", raw)
    seen.add("sqs-context", event.context)
    failures = []
    for record in raw["Records"]:
        body = record["body"]
        first_time = len(seen.deliveries(body)) == 1
        if body.startswith("explode-once") and first_time:
            raise RuntimeError("probe handler exploded")
        if (body.startswith("fail-once") and first_time) or body.startswith("always-fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


@app.schedule("rate(1 minute)")
def tick(event: Any) -> None:
    seen.add("tick", event.to_dict())


def _management() -> Any:
    # Read at call time, the way the app's own client reads its settings.
    return boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["WEBSOCKET_MANAGEMENT_ENDPOINT"])


@app.on_ws_connect()
def ws_connect(event: Any) -> Response:
    raw = event.to_dict()
    seen.add("connect", raw)
    if (raw.get("queryStringParameters") or {}).get("token") == "bad":
        return Response(body="forbidden", status_code=403)
    return Response(body="", status_code=200)


@app.on_ws_message()
def ws_message(event: Any) -> None:
    seen.add("message", event.to_dict())
    if event.body == "boom":
        raise RuntimeError("message handler exploded")
    reply = event.connection_id if event.body == "whoami" else f"echo:{event.body}"
    _management().post_to_connection(ConnectionId=event.connection_id, Data=reply.encode())


@app.on_ws_disconnect()
def ws_disconnect(event: Any) -> None:
    seen.add("disconnect", event.to_dict())


def _create_probe_queues() -> None:
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=PROBE_DLQ, Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(
        QueueName=PROBE_QUEUE,
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(
        app,
        api_port=0,
        ws_port=0,
        management_port=0,
        moto_port=0,
        retry_delay_seconds=1,
        schedule_interval_seconds=0.5,
        setup=_create_probe_queues,
    ) as running:
        yield running


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def send_batch(bodies: list[str], groups: list[str]) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=PROBE_QUEUE)["QueueUrl"]
    entries = [
        {"Id": str(i), "MessageBody": body, "MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex}
        for i, (body, group) in enumerate(zip(bodies, groups, strict=True))
    ]
    assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def management_client(stack: LocalStack, endpoint: str | None = None) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint or stack.management_url)


# --- REST ---------------------------------------------------------------------------


def test_rest_route_answers_over_http(stack: LocalStack) -> None:
    response = requests.get(f"{stack.api_url}/ping", params={"who": "me"}, timeout=5)

    assert response.status_code == 200
    assert response.json() == {"pong": True, "query": {"who": "me"}}


# --- WebSocket -------------------------------------------------------------------------


def test_websocket_message_echoes_through_management_api(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    with connect(f"{stack.ws_url}/?tag={tag}", open_timeout=5) as ws:
        ws.send(f"hello-{tag}")
        assert ws.recv(timeout=5) == f"echo:hello-{tag}"

    connect_event = next(e for e in seen.of("connect") if (e.get("queryStringParameters") or {}).get("tag") == tag)
    parsed = APIGatewayWebSocketConnectEventModel.model_validate(connect_event)
    assert parsed.request_context.route_key == "$connect"
    assert connect_event["multiValueQueryStringParameters"] == {"tag": [tag]}
    connection_id = connect_event["requestContext"]["connectionId"]
    assert len(connection_id) == 16 and connection_id.endswith("=")

    message_event = next(e for e in seen.of("message") if e["body"] == f"hello-{tag}")
    parsed_message = APIGatewayWebSocketMessageEventModel.model_validate(message_event)
    assert parsed_message.request_context.connection_id == connection_id
    assert parsed_message.request_context.event_type == "MESSAGE"


def test_connect_rejected_with_the_handlers_status(stack: LocalStack) -> None:
    before = set(stack.gateway.connection_ids())
    with pytest.raises(InvalidStatus) as rejected:
        connect(f"{stack.ws_url}/?token=bad", open_timeout=5)

    assert rejected.value.response.status_code == 403
    assert set(stack.gateway.connection_ids()) <= before


def test_disconnect_handler_runs_on_close_and_the_connection_is_gone(stack: LocalStack) -> None:
    with connect(stack.ws_url, open_timeout=5) as ws:
        ws.send("whoami")
        connection_id = ws.recv(timeout=5)
        assert connection_id in stack.gateway.connection_ids()

    event = wait_for(
        lambda: next((e for e in seen.of("disconnect") if e["requestContext"]["connectionId"] == connection_id), None),
        what="$disconnect",
    )
    parsed = APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    assert parsed.request_context.disconnect_status_code == 1000
    client = management_client(stack)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"anyone there?")


def test_management_api_get_delete_and_gone_for_unknown_ids(stack: LocalStack) -> None:
    client = management_client(stack)
    for call in (
        lambda: client.post_to_connection(ConnectionId="bm90LWEtY29ubg=", Data=b"x"),
        lambda: client.get_connection(ConnectionId="bm90LWEtY29ubg="),
        lambda: client.delete_connection(ConnectionId="bm90LWEtY29ubg="),
    ):
        with pytest.raises(client.exceptions.GoneException):
            call()

    with connect(stack.ws_url, open_timeout=5, user_agent_header="probe-agent/1.0") as ws:
        ws.send("whoami")
        connection_id = ws.recv(timeout=5)
        # Without the stage segment too: API Gateway's URL has it, but boto3 users may leave it off.
        bare = management_client(stack, stack.management_url.rsplit("/", 1)[0])
        described = bare.get_connection(ConnectionId=connection_id)
        assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "probe-agent/1.0"}
        assert described["ConnectedAt"] <= described["LastActiveAt"]

        client.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)

    wait_for(
        lambda: any(e["requestContext"]["connectionId"] == connection_id for e in seen.of("disconnect")),
        what="$disconnect after DeleteConnection",
    )


def test_handler_exception_is_reported_to_the_client_and_the_gateway_lives_on(stack: LocalStack) -> None:
    with connect(stack.ws_url, open_timeout=5) as ws:
        ws.send("boom")
        error = json.loads(ws.recv(timeout=5))
        assert error["message"] == "Internal server error"
        assert error["connectionId"] in stack.gateway.connection_ids()

        ws.send("still-there")
        assert ws.recv(timeout=5) == "echo:still-there"


def test_binary_frames_close_the_connection_with_1003(stack: LocalStack) -> None:
    with connect(stack.ws_url, open_timeout=5) as ws:
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


# --- SQS ------------------------------------------------------------------------------


def test_partial_batch_failure_redelivers_only_the_failed_record(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    ok_a, failing, ok_c = f"ok-a-{tag}", f"fail-once-{tag}", f"ok-c-{tag}"
    stack.pump.pause()
    send_batch([ok_a, failing, ok_c], [f"a-{tag}", f"b-{tag}", f"c-{tag}"])
    stack.pump.resume()
    stack.pump.drain(timeout=20)
    # drain() can report empty a moment before moto shows the retried FIFO record again; wait for it, bounded.
    deadline = time.monotonic() + 20
    while len(seen.deliveries(failing)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)

    assert sorted(seen.batches_with(failing)[0]) == sorted([ok_a, failing, ok_c])
    assert len(seen.deliveries(ok_a)) == 1
    assert len(seen.deliveries(ok_c)) == 1
    redelivered = seen.deliveries(failing)
    assert [r["attributes"]["ApproximateReceiveCount"] for r in redelivered] == ["1", "2"]
    assert seen.batches_with(failing)[1] == [failing]


def test_handler_exception_redelivers_the_whole_batch(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    exploding, peer = f"explode-once-{tag}", f"peer-{tag}"
    stack.pump.pause()
    send_batch([exploding, peer], [f"g-{tag}", f"g-{tag}"])
    stack.pump.resume()
    stack.pump.drain(timeout=20)

    assert seen.batches_with(exploding)[0] == [exploding, peer]
    assert len(seen.deliveries(exploding)) == 2
    assert len(seen.deliveries(peer)) == 2
    assert seen.deliveries(peer)[1]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_message_that_always_fails_ends_in_the_dlq(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    doomed = f"always-fail-{tag}"
    send_batch([doomed], [f"d-{tag}"])
    stack.pump.drain(timeout=30)

    assert len(seen.deliveries(doomed)) == MAX_RECEIVES
    sqs = boto3.client("sqs")
    dlq_url = sqs.get_queue_url(QueueName=PROBE_DLQ)["QueueUrl"]
    in_dlq = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert doomed in [m["Body"] for m in in_dlq]


def test_sqs_event_and_context_look_like_lambdas(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    send_batch([f"ok-shape-{tag}"], [f"s-{tag}"])
    stack.pump.drain(timeout=20)

    event = next(e for e in seen.of("sqs-event") if e["Records"][0]["body"] == f"ok-shape-{tag}")
    record = SqsModel.model_validate(event).Records[0]
    assert record.eventSource == "aws:sqs"
    assert record.eventSourceARN.endswith(f":{PROBE_QUEUE}")
    assert record.attributes.MessageGroupId == f"s-{tag}"
    assert record.attributes.SequenceNumber
    contexts = seen.of("sqs-context")
    context = contexts[-1]
    assert context.function_name == "localstack-test-dev-probe"
    assert context.invoked_function_arn.endswith(":function:localstack-test-dev-probe")
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert build_lambda_context_model(context).function_request_id == context.aws_request_id
    assert len({c.aws_request_id for c in contexts}) == len(contexts)


def test_wait_idle_returns_once_the_queue_was_polled_empty(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    send_batch([f"ok-idle-{tag}"], [f"i-{tag}"])

    assert stack.pump.wait_idle(timeout=10)
    assert len(seen.deliveries(f"ok-idle-{tag}")) == 1


# --- schedules --------------------------------------------------------------------------


def test_scheduled_handler_fires_with_an_eventbridge_payload(stack: LocalStack) -> None:
    wait_for(lambda: len(seen.of("tick")) >= 2, what="two ticks")
    ticks = seen.of("tick")

    parsed = EventBridgeModel.model_validate(ticks[0])
    assert parsed.detail_type == "Scheduled Event"
    assert parsed.source == "aws.events"
    assert ticks[0]["resources"][0].endswith(":rule/localstack-test-dev-tick")
    assert ticks[0]["id"] != ticks[1]["id"]


def test_fire_schedules_invokes_the_handler_now(stack: LocalStack) -> None:
    before = len(seen.of("tick"))

    assert stack.pump.fire_schedules("tick") == 1
    assert len(seen.of("tick")) > before
    assert stack.pump.fire_schedules("no-such-handler") == 0
