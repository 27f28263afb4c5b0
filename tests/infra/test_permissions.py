"""Least privilege must still be enough: every AWS call each function makes during a whole flow is allowed
by that function's role in the synthesized template, on that resource.

The flow runs through the Lambda handlers against moto (as the integration tests do) while every botocore
call is recorded with the handler it was made under (found on the call stack: app.py's handler functions;
any other frame of app.py is the REST API's handler). Each call becomes the IAM action it needs, on the
table, index, queue or parameter it touched, mapped to the template's resource for the same role.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from chalicelib.auth import issue_dev_token
from chalicelib.settings import get_settings, outbox_queue_name, reload_settings, routing_queue_name, timer_queue_name
from tests.fakes.providers import TWILIO, fake_providers  # noqa: F401 (a fixture)
from tests.infra.template import actions_of, ref, resources
from tests.support import (
    REGION,
    agent_says,
    as_agent,
    bearer,
    connect_agent,
    create_agent,
    deliver_stream,
    drain,
    fixture,
    lambda_service_sqs,
    offers_to,
    post_mailgun,
    post_twilio,
    post_webchat,
    sqs_event,
    webchat_payload,
    ws_event,
)

pytestmark = pytest.mark.timeout(900)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HANDLERS = {
    "ws_connect": "WebsocketConnect",
    "ws_message": "WebsocketMessage",
    "ws_disconnect": "WebsocketDisconnect",
    "on_routing_event": "OnRoutingEvent",
    "on_timer": "OnTimer",
    "on_outbox": "OnOutbox",
    "sweep_offers": "SweepOffers",
    "on_routing_change": "OnRoutingChange",
}
TEST_PARAMETER = "/switchboard/test/routing-config"
Call = tuple[str, str, str | None]  # function, action, resource key ("table:x", "index:x", "queue:x", ...)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.sent: dict[str, list[str]] = {}  # queue name -> message bodies the app sent


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        function = _calling_function()
        if function:
            service = self.meta.service_model.service_name
            recorder.calls.extend((function, action, key) for action, key in _needs(service, operation, params))
            if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
                queue = params["QueueUrl"].rsplit("/", 1)[1]
                entries = params.get("Entries") or [params]
                recorder.sent.setdefault(queue, []).extend(e["MessageBody"] for e in entries)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return recorder


def _calling_function() -> str | None:
    names = [frame.function for frame in inspect.stack(context=0) if frame.filename == APP]
    if not names:
        return None  # the test itself, setting up or looking
    return next((HANDLERS[n] for n in names if n in HANDLERS), "APIHandler")


def _needs(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str | None]]:
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            return [
                (f"dynamodb:{kinds[kind]}", f"table:{spec['TableName']}")
                for item in params["TransactItems"]
                for kind, spec in item.items()
            ]
        if operation == "BatchGetItem":
            return [("dynamodb:BatchGetItem", f"table:{table}") for table in params["RequestItems"]]
        where = f"index:{params['TableName']}" if params.get("IndexName") else f"table:{params['TableName']}"
        return [(f"dynamodb:{operation}", where)]
    if service == "sqs":
        name = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[1]
        action = "SendMessage" if operation == "SendMessageBatch" else operation
        return [(f"sqs:{action}", f"queue:{name}")]
    if service == "ssm":
        return [(f"ssm:{operation}", f"parameter:{params['Name']}")]
    if service == "apigatewaymanagementapi":
        return [("execute-api:ManageConnections", "websocket")]
    if service == "sesv2":
        return [("ses:SendEmail", None)]
    return [(f"{service}:{operation}", None)]


def _allowed(template: dict[str, Any], function: str, action: str, key: str | None) -> bool:
    roles = resources(template, "AWS::IAM::Role")
    role = roles[str(ref(resources(template, "AWS::Serverless::Function")[function]["Properties"]["Role"]))]
    granted = actions_of(role).get(action)
    if not granted:
        return False
    if key is None:
        return True
    kind, _, name = key.partition(":")
    texts = [json.dumps(r) for r in granted]
    if kind in ("table", "index"):
        logical = _template_table(template, name)
        wanted = (
            [r for r in granted if ref(r) == logical]
            if kind == "table"
            else [t for t in texts if logical in t and "/index/*" in t]
        )
        return bool(wanted)
    if kind == "queue":
        return any(ref(r) == _template_queue(template, name) for r in granted)
    if kind == "parameter":
        deployed = name.replace("/switchboard/test", "/switchboard/dev")
        return any(
            deployed in t or ("/switchboard/dev/*" in t and deployed.startswith("/switchboard/dev/")) for t in texts
        )
    if kind == "websocket":
        return any("${WebsocketAPI}" in t and "@connections" in t for t in texts)
    raise AssertionError(key)


def _template_table(template: dict[str, Any], test_name: str) -> str:
    """The template's table playing the role the test's table plays (data or routing)."""
    settings = get_settings()
    role = {settings.data_table: "SWITCHBOARD_DATA_TABLE", settings.routing_table: "SWITCHBOARD_ROUTING_TABLE"}[
        test_name
    ]
    env = resources(template, "AWS::Serverless::Function")["APIHandler"]["Properties"]["Environment"]["Variables"]
    (logical,) = [
        n for n, t in resources(template, "AWS::DynamoDB::Table").items() if t["Properties"]["TableName"] == env[role]
    ]
    return logical


def _template_queue(template: dict[str, Any], test_name: str) -> str:
    variable = {
        routing_queue_name(): "SWITCHBOARD_ROUTING_QUEUE",
        timer_queue_name(): "SWITCHBOARD_TIMER_QUEUE",
        outbox_queue_name(): "SWITCHBOARD_OUTBOX_QUEUE",
    }[test_name]
    env = resources(template, "AWS::Serverless::Function")["APIHandler"]["Properties"]["Environment"]["Variables"]
    (logical,) = [
        n for n, q in resources(template, "AWS::SQS::Queue").items() if q["Properties"]["QueueName"] == env[variable]
    ]
    return logical


def _deliver(client: Any, handler: str, queue: str, bodies: list[str]) -> Any:
    """What Lambda's event source does: receive the queue's messages and invoke the handler with them."""
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    assert messages, f"nothing on {queue}"
    event = sqs_event(messages, f"arn:aws:sqs:{REGION}:123456789012:{queue}")
    return client.lambda_.invoke(handler, event).payload


def test_every_call_of_a_whole_flow_is_allowed_by_its_functions_role(client, templates, recorded, monkeypatch):
    template = templates["dev"]
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", TEST_PARAMETER)
    reload_settings()

    create_agent(client, "ada", capacity=2, channels=("webchat", "sms"))
    connection = connect_agent(client, "ada")
    webchat = post_webchat(client, webchat_payload(text="Where is my order?")).json_body["conversation_id"]
    assert post_twilio(client, "/webhooks/twilio/messaging", fixture("twilio/inbound_sms.txt")).status_code == 200
    assert drain(client) >= 2
    offered = {o["contact_id"] for o in offers_to(connection)}
    assert webchat in offered and len(offered) == 2
    assert agent_says(client, connection, action="accept", contact_id=webchat)["type"] == "accepted"

    # The other offer's timeout: the timer the router queued, delivered as SQS delivers it once its delay is up.
    timers = recorded.sent.get(timer_queue_name(), [])
    assert timers, "the router armed no timer"
    assert _deliver(client, "on_timer", timer_queue_name(), timers) == {"batchItemFailures": []}

    reply = client.http.post(
        f"/conversations/{webchat}/messages", headers=as_agent("ada"), body=json.dumps({"text": "On its way."})
    )
    assert reply.status_code == 202, reply.body  # sent from the request (APIHandler); the outbox sees it again:
    job = {k: reply.json_body[k] for k in ("message_id", "conversation_id", "customer_id", "channel", "kind")}
    job["received_at"] = reply.json_body["received_at"]  # a job delivered twice, as SQS may: claimed in vain
    assert _deliver(client, "on_outbox", outbox_queue_name(), [json.dumps(job)]) == {"batchItemFailures": []}

    assert client.http.get("/supervisor", headers=bearer("sue", "supervisor")).status_code == 200
    # The supervisor's live view: watched on the WebSocket, fed by the routing table's stream.
    create_agent(client, "sue", presence="Offline")
    sue = issue_dev_token("sue", ["supervisor"])
    watcher = "sue-console="
    client.lambda_.invoke("ws_connect", ws_event("$connect", watcher, query={"token": sue}))
    assert agent_says(client, watcher, action="watch_supervisor", token=sue)["type"] == "watching"
    assert deliver_stream(client) == {"delivered": 1}
    published = client.http.put(
        "/admin/routing",
        headers={**bearer("root", "admin"), "Content-Type": "application/yaml"},
        body=fixture("routing/engine_test.yaml").decode(),
    )
    assert published.status_code == 200, published.body
    tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    client.lambda_.invoke("sweep_offers", tick)
    closed = client.http.post(
        f"/conversations/{webchat}/close", headers=as_agent("ada"), body=json.dumps({"wrap_up": "answered"})
    )
    assert closed.status_code == 200, closed.body
    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", connection))

    calls = sorted(set(recorded.calls), key=str)
    assert {function for function, _, _ in calls} == {"APIHandler", *HANDLERS.values()}
    denied = [call for call in calls if not _allowed(template, *call)]
    assert denied == [], denied


SUPPORT = "support@acme-shop.example"


def test_replies_through_providers_and_their_retries_are_allowed_too(
    client,
    templates,
    recorded,
    fake_providers,  # noqa: F811
    monkeypatch,
):
    """The outbox's other paths: a provider failing (backoff by ChangeMessageVisibility) and e-mail by SES."""
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity="acme-shop.example")
    monkeypatch.setenv("EMAIL_FROM_ADDRESS", SUPPORT)
    reload_settings()
    create_agent(client, "ada", capacity=2, channels=("sms", "email"))
    connection = connect_agent(client, "ada")
    assert post_twilio(client, "/webhooks/twilio/messaging", fixture("twilio/inbound_sms.txt")).status_code == 200
    mail = {
        "recipient": SUPPORT,
        "sender": "ada.lovelace@example.com",
        "from": "Ada Lovelace <ada.lovelace@example.com>",
        "subject": "Order 4417",
        "body-plain": "Where is order 4417?\r\n",
        "Message-Id": "<CAF3kX9m2Q+order4417@mail.gmail.com>",
    }
    assert post_mailgun(client, mail).status_code == 200
    drain(client)
    conversations = [o["contact_id"] for o in offers_to(connection)]
    assert len(conversations) == 2
    for conversation in conversations:
        assert agent_says(client, connection, action="accept", contact_id=conversation)["type"] == "accepted"

    fake_providers.fail_next(2, status=503, api=TWILIO)  # the send from the request, then the outbox's retry
    for conversation in conversations:
        reply = client.http.post(
            f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps({"text": "On it."})
        )
        assert reply.status_code == 202, reply.body
    answer = _deliver(client, "on_outbox", outbox_queue_name(), [])
    assert len(answer["batchItemFailures"]) == 1  # Twilio's 503: that reply waits for its backoff

    calls = sorted(set(recorded.calls), key=str)
    outbox_actions = {action for function, action, _ in calls if function == "OnOutbox"}
    assert "sqs:ChangeMessageVisibility" in outbox_actions
    assert "ses:SendEmail" in {action for function, action, _ in calls if function == "APIHandler"}  # sent inline
    denied = [call for call in calls if not _allowed(templates["dev"], *call)]
    assert denied == [], denied


def test_a_call_outside_the_role_is_reported(templates):
    template = templates["dev"]
    assert not _allowed(template, "OnTimer", "dynamodb:Scan", "table:" + get_settings().routing_table)
    # Nothing scans the routing table any more: the agents are listed from the index, a page at a time.
    assert not _allowed(template, "APIHandler", "dynamodb:Scan", "table:" + get_settings().routing_table)
    assert not _allowed(template, "WebsocketConnect", "sqs:ReceiveMessage", "queue:" + routing_queue_name())
    assert not _allowed(template, "OnRoutingEvent", "ses:SendEmail", None)
    assert _allowed(template, "OnOutbox", "ses:SendEmail", None)
    assert _allowed(template, "APIHandler", "ses:SendEmail", None)
