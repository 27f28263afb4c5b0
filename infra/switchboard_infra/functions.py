"""The Lambda functions `chalice package` makes of app.py, and what each one may do in AWS.

Every function gets its own role. What they all need: their own log group, X-Ray, item-level DynamoDB actions
on the two tables, reading the stage's SSM parameters, sending to the three queues (`store/queue.py`), and
pushing to agents' WebSocket connections. The rest is per function, below.
"""

from __future__ import annotations

from dataclasses import dataclass

# Item-level actions every function uses (`store/*`); a transaction needs the actions of its parts.
ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
)
SEND_ACTIONS = ("sqs:GetQueueUrl", "sqs:SendMessage")
# What Lambda's event source mapping does with the queue it reads, and the outbox's backoff (ChangeMessageVisibility).
CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")


@dataclass(frozen=True)
class Function:
    """One function: its name in app.py and Chalice's config, its logical id in the packaged template."""

    name: str
    logical_id: str
    timeout: int
    # The queue (routing, timers, outbox) whose messages invoke it.
    consumes: str | None = None
    # PUT /admin/routing writes the routing override parameter.
    writes_routing_config: bool = False
    # POST /webhooks/email/ses confirms the SNS subscription of the topics the operator named.
    confirms_sns: bool = False
    # Sends e-mail replies through SES: the outbox, and the functions an agent's reply is sent from (its request).
    sends_email: bool = False
    # Invoked by the routing table's stream (the supervisor's live view, chalicelib/agents/live.py).
    reads_routing_stream: bool = False


API_TIMEOUT = 29  # API Gateway gives up on an integration after 29 s
WORKER_TIMEOUT = 30
# AWS asks for a visibility timeout of six times the consumer's timeout, so a throttled retry never overlaps.
VISIBILITY_TIMEOUT = 6 * WORKER_TIMEOUT

FUNCTIONS = (
    Function(
        "api_handler",
        "APIHandler",
        API_TIMEOUT,
        writes_routing_config=True,
        confirms_sns=True,
        sends_email=True,
    ),
    Function("websocket_connect", "WebsocketConnect", API_TIMEOUT),
    Function("websocket_message", "WebsocketMessage", API_TIMEOUT, sends_email=True),
    Function("websocket_disconnect", "WebsocketDisconnect", API_TIMEOUT),
    Function("on_routing_event", "OnRoutingEvent", WORKER_TIMEOUT, consumes="routing"),
    Function("on_timer", "OnTimer", WORKER_TIMEOUT, consumes="timers"),
    Function("on_outbox", "OnOutbox", WORKER_TIMEOUT, consumes="outbox", sends_email=True),
    Function("on_routing_change", "OnRoutingChange", WORKER_TIMEOUT, reads_routing_stream=True),
    Function("sweep_offers", "SweepOffers", WORKER_TIMEOUT),
)

# The SQS event source Chalice names in each consuming function's Events.
EVENT_SOURCES = {f.logical_id: f"{f.logical_id}SqsEventSource" for f in FUNCTIONS if f.consumes}
# The DynamoDB stream event source Chalice names in the stream-fed function's Events.
STREAM_EVENT_SOURCES = {f.logical_id: f"{f.logical_id}DynamodbEventSource" for f in FUNCTIONS if f.reads_routing_stream}
# What Lambda's event source mapping does with the stream it reads.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")
