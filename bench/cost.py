"""Section 1, cost: AWS requests, DynamoDB request units and modelled dollars per flow and per conversation.

Every flow runs through the app's real handlers on moto (HTTP routes through ``chalice.test.Client``, the
queues pumped into their Lambda handlers as the event sources would); the meter's botocore hooks count what
the app asks AWS for. What the AWS services do for us around that (API Gateway taking the request, Lambda
invocations, the Lambda poller receiving and deleting SQS messages, X-Ray, log ingestion) is counted from how
the flow was driven and priced with ``bench/prices.json`` and its stated assumptions. The share of them X-Ray
records is the prod stage's own setting (``SWITCHBOARD_TRACE_PERCENT`` in `.chalice/config.json`,
``chalicelib.stages.traced_fractions``), not a number of the bench's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bench.meter import UNITS_SOURCE, Meter, Tally
from chalicelib import stages

PRICES_FILE = Path(__file__).with_name("prices.json")
# The stage whose settings the model prices (its X-Ray sampling).
PRICED_STAGE = "prod"
CHANNELS = ("webchat", "sms", "email")
# The typical conversation of the issue: 4 customer messages, 3 agent replies, accept, close.
TYPICAL = {
    "first message": 1,
    "follow-up": 3,
    "accept": 1,
    "offer timer": 1,
    "reply": 3,
    "status callback": 3,
    "close": 1,
    # Web chat only: the visitor's widget opens its WebSocket twice (at the first message and once more after a
    # drop or the gateway's idle timeout), reading what it missed each time; replies and the close are pushed.
    "widget connect": 2,
    "widget catch-up read": 2,
    "widget disconnect": 2,
}
INBOUND_PER_CONVERSATION = 4
# The supervisor's live view: one batch of the routing table's stream for on_routing_change, after each run of a
# flow that changed a queue's counts or an agent; in a conversation as often as its flows gave one (measured).
LIVE_VIEW = "supervisor live view (one watching)"
POLL_SECONDS_BEFORE = 2  # the widget before issue 12: one read every 2 s while its panel was open


def load_prices() -> dict[str, Any]:
    return dict(json.loads(PRICES_FILE.read_text()))


@dataclass
class Usage:
    """One flow's bill: the app's metered AWS calls plus what the services around it did."""

    tally: Tally = field(default_factory=Tally)
    rest_requests: int = 0
    # Of the HTTP requests (rest_requests), those posted to /webhooks/... (messages, status callbacks), which come
    # in through the webhooks' HTTP API; the rest through the REST API and WAF.
    webhook_requests: int = 0
    websocket_in: int = 0  # messages agents send (accept, reply, close)
    invocations: Counter[str] = field(default_factory=Counter)  # Lambda invocations per function
    sqs_records: Counter[str] = field(default_factory=Counter)  # records Lambda's poller took off each queue
    traces: int = 0  # REST requests: API Gateway's sampling rule decides (SQS carries it to the queues' functions)
    direct_traces: int = 0  # WebSocket messages and schedule runs: no sampler in front, the function's mode decides
    log_bytes: int = 0
    seconds: float = 0.0

    def add(self, other: Usage, times: float = 1.0) -> None:
        self.tally.add(_scaled_tally(other.tally, times))
        self.rest_requests += other.rest_requests * times  # type: ignore[assignment]
        self.webhook_requests += other.webhook_requests * times  # type: ignore[assignment]
        self.websocket_in += other.websocket_in * times  # type: ignore[assignment]
        for name, count in other.invocations.items():
            self.invocations[name] += count * times  # type: ignore[assignment]
        for name, count in other.sqs_records.items():
            self.sqs_records[name] += count * times  # type: ignore[assignment]
        self.traces += other.traces * times  # type: ignore[assignment]
        self.direct_traces += other.direct_traces * times  # type: ignore[assignment]
        self.log_bytes += other.log_bytes * times  # type: ignore[assignment]


def _scaled_tally(tally: Tally, times: float) -> Tally:
    scaled = Tally()
    scaled.requests = Counter({k: v * times for k, v in tally.requests.items()})
    for name in ("wru", "rru", "items_read", "items_written", "moto_reported_units", "sqs_chunks", "sqs_fifo_chunks"):
        setattr(scaled, name, getattr(tally, name) * times)
    scaled.websocket_messages = tally.websocket_messages * times  # type: ignore[assignment]
    return scaled


def dollars(usage: Usage, prices: dict[str, Any]) -> dict[str, float]:
    """The modelled bill of ``usage``, per service."""
    p = {name: entry["usd"] / entry["per"] for name, entry in prices["prices"].items()}
    a = prices["assumptions"]
    traced = stages.traced_fractions(PRICED_STAGE)
    invocations = sum(usage.invocations.values())
    fifo_records = usage.sqs_records.get("routing", 0)
    standard_records = sum(n for q, n in usage.sqs_records.items() if q != "routing")
    # The app's own SQS requests (sends) and the poller's receive + delete for each invocation it made.
    app_sqs = usage.tally.sqs_chunks
    poller_fifo = 2 * fifo_records * a["lambda_invocations_per_sqs_record"]
    poller_standard = 2 * standard_records * a["lambda_invocations_per_sqs_record"]
    sends_fifo = usage.tally.sqs_fifo_chunks
    gb_seconds = invocations * a["lambda_memory_mb"] / 1024 * a["lambda_duration_ms"] / 1000
    platform_log_bytes = a["lambda_platform_log_bytes"][stages.system_log_level(PRICED_STAGE)]
    log_gb = (usage.log_bytes + invocations * platform_log_bytes) / 1e9
    bill = {
        "dynamodb": usage.tally.wru * p["dynamodb_wru"] + usage.tally.rru * p["dynamodb_rru"],
        "sqs": (app_sqs - sends_fifo) * p["sqs_standard_request"]
        + sends_fifo * p["sqs_fifo_request"]
        + poller_fifo * p["sqs_fifo_request"]
        + poller_standard * p["sqs_standard_request"],
        # Providers' webhooks come in through the HTTP API (infra/switchboard_infra/webhooks.py), the rest through
        # the REST API, whose every request WAF inspects.
        "api_gateway": (usage.rest_requests - usage.webhook_requests) * p["apigw_rest_request"]
        + usage.webhook_requests * p["apigw_http_request"]
        + (usage.websocket_in + usage.tally.websocket_messages) * p["apigw_websocket_message"],
        "waf": (usage.rest_requests - usage.webhook_requests) * p["waf_request"],
        "lambda": invocations * p["lambda_request"] + gb_seconds * p["lambda_gb_second"],
        "xray": (usage.traces * traced["rest"] + usage.direct_traces * traced["direct"]) * p["xray_trace_recorded"],
        "cloudwatch_logs": log_gb * p["cloudwatch_logs_ingestion_gb"],
    }
    bill["total"] = sum(bill.values())
    return {k: round(v, 9) for k, v in bill.items()}


def usage_row(usage: Usage, prices: dict[str, Any]) -> dict[str, Any]:
    tally = usage.tally.as_dict()
    return {
        "aws_requests": tally["requests"],
        "dynamodb_requests": tally["dynamodb_requests"],
        "wru": tally["wru"],
        "rru": tally["rru"],
        "items_read": tally["items_read"],
        "items_written": tally["items_written"],
        "moto_reported_units": tally["moto_reported_units"],
        "sqs_requests_app": tally["sqs_chunks"],
        "websocket_messages_out": tally["websocket_messages"],
        "websocket_messages_in": usage.websocket_in,
        "rest_requests": usage.rest_requests,
        "webhook_requests": usage.webhook_requests,
        "lambda_invocations": dict(usage.invocations),
        "log_bytes": usage.log_bytes,
        "by_operation": tally["by_operation"],
        "usd": dollars(usage, prices),
    }


# --- driving the app -------------------------------------------------------------------------------------


class Conversations:
    """Drives one agent, Ada, through conversations on each channel, measuring every step."""

    def __init__(self, running: Any) -> None:
        from chalicelib.store import aws
        from tests.support import connect_agent, create_agent, routing_stream_arn

        self.client, self.providers = running.client, running.providers
        self._aws = aws
        self.meter = Meter()
        create_agent(self.client, "ada", capacity=3, channels=CHANNELS)
        self.connection = connect_agent(self.client, "ada")
        # A supervisor watches the live view all day: the routing table's stream reaches on_routing_change, which
        # pushes what changed to her (its reads, pushes and invocations are in every flow that changes a queue's
        # counts or an agent).
        self._stream_arn = routing_stream_arn()
        self._watch_supervisors()
        self.flows: dict[tuple[str, str], list[Usage]] = {}
        self.feeds: Counter[tuple[str, str]] = Counter()  # runs of each flow that gave the live view a batch
        self._serial = 0

    @contextmanager
    def step(self, flow: str, channel: str, measured: bool = True) -> Iterator[Usage]:
        """Count what runs inside as one run of ``flow`` on ``channel`` (kept only if ``measured``)."""
        from bench.harness import LogBytes

        self.meter.hook(self._aws.created_clients())
        usage, logs = Usage(), LogBytes()
        started = time.perf_counter()
        with self.meter.measure() as tally, logs.counting():
            yield usage
        usage.seconds = time.perf_counter() - started
        usage.tally, usage.log_bytes = tally, logs.bytes
        feed = self._feed_supervisors()
        if measured:
            self.flows.setdefault((flow, channel), []).append(usage)
            if feed is not None:
                self.flows.setdefault((LIVE_VIEW, channel), []).append(feed)
                self.feeds[(flow, channel)] += 1

    # --- the pumps: what the Lambda service does ------------------------------------------------------------

    def _watch_supervisors(self) -> None:
        from chalicelib.auth import issue_dev_token
        from tests.support import agent_says, create_agent, deliver_stream, ws_event

        create_agent(self.client, "sue", presence="Offline")
        token = issue_dev_token("sue", ["supervisor"])
        self.client.lambda_.invoke("ws_connect", ws_event("$connect", "sue-console=", query={"token": token}))
        watching = agent_says(self.client, "sue-console=", action="watch_supervisor", token=token)
        assert watching.get("type") == "watching", watching
        deliver_stream(self.client, self._stream_arn)  # what setting up wrote: not a flow's

    def _feed_supervisors(self) -> Usage | None:
        """The stream's records of one step as one batch (the mapping's window is a second; a step takes less):
        what ``on_routing_change`` did with them, or None when no record passed the filters (no invocation)."""
        from bench.harness import LogBytes
        from tests.support import stream_records

        records = stream_records(self._stream_arn)  # Lambda's poller reads the stream: not billed to the account
        if not records:
            return None
        usage, logs = Usage(), LogBytes()
        with self.meter.measure() as tally, logs.counting():
            self.client.lambda_.invoke("on_routing_change", {"Records": records})
        usage.tally, usage.log_bytes = tally, logs.bytes
        usage.invocations["on_routing_change"] += 1
        return usage

    def _drain_routing(self, usage: Usage) -> None:
        from tests.support import deliver_once

        while True:
            delivered, _failed = deliver_once(self.client)
            if not delivered:
                return
            usage.invocations["on_routing_event"] += delivered
            usage.sqs_records["routing"] += delivered

    def _pump_outbox(self, usage: Usage) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        from chalicelib.settings import outbox_queue_name
        from tests.support import REGION, lambda_service_sqs, sqs_event

        sqs = lambda_service_sqs()
        url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return
            event = sqs_event(messages, f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{outbox_queue_name()}")
            self.client.lambda_.invoke("on_outbox", event)
            usage.invocations["on_outbox"] += len(messages)
            usage.sqs_records["outbox"] += len(messages)
            for m in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def _fire_timers(self, usage: Usage, after_seconds: float = 31) -> None:
        """The timer queue's delayed messages, delivered when due: the app's clock is moved on by
        ``after_seconds`` (past the 30 s offer timeout) while the timer Lambda runs."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        from chalicelib import clock
        from chalicelib.settings import timer_queue_name
        from tests.support import REGION, sqs_event

        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[timer_queue_name()]
        now_ms = str(int(time.time() * 1000))
        messages = [
            {
                "MessageId": m.id,
                "ReceiptHandle": uuid.uuid4().hex,
                "Body": m.body,
                "MD5OfBody": m.body_md5,
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
            }
            for m in list(queue._messages)
        ]
        queue._messages.clear()  # taken off the queue, as the poller's delete would
        if messages:
            arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{timer_queue_name()}"
            real_now = clock.now_iso
            clock.now_iso = lambda: clock.plus_seconds(real_now(), after_seconds)
            try:
                self.client.lambda_.invoke("on_timer", sqs_event(messages, arn))
            finally:
                clock.now_iso = real_now
            usage.invocations["on_timer"] += len(messages)
            usage.sqs_records["timer"] += len(messages)

    # --- customers -----------------------------------------------------------------------------------------

    def customer_writes(self, channel: str, who: str, usage: Usage) -> None:
        """One inbound message on ``channel`` from customer ``who``, through the webhook and the router."""
        from tests.support import fixture, post_mailgun, post_twilio, post_webchat, webchat_payload

        self._serial += 1
        serial = f"{self._serial:06d}"
        if channel == "webchat":
            response = post_webchat(
                self.client, webchat_payload(visitor=f"v_{who}", message=f"m_{serial}", text="Where is my order?")
            )
        elif channel == "sms":
            form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
            sid = f"SM{uuid.uuid4().hex}"
            number = "+1415555" + str(abs(hash(who)) % 10000).zfill(4)
            form.update(From=number, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body="Where is my order?")
            response = post_twilio(self.client, "/webhooks/twilio/messaging", urlencode(form).encode())
        else:
            fields = {
                "recipient": "support@acme-shop.example",
                "sender": f"{who}@example.com",
                "from": f"Customer <{who}@example.com>",
                "subject": "Order 4417 has not arrived",
                "body-plain": "Hello, my order 4417 has not arrived. Can you help?\r\n",
                "stripped-text": "Hello, my order 4417 has not arrived. Can you help?",
                "Message-Id": f"<{serial}.{who}@mail.example.com>",
                "Date": "Mon, 23 Nov 2026 09:00:00 +0000",
            }
            response = post_mailgun(self.client, fields)
        assert response.status_code == 200, response.body
        usage.rest_requests += 1
        usage.webhook_requests += 1  # all three post to /webhooks/... (web chat signed by the site's server)
        usage.invocations["api_handler"] += 1
        usage.traces += 1
        self._drain_routing(usage)

    # --- the agent ------------------------------------------------------------------------------------------

    def last_offer(self) -> dict[str, Any]:
        from tests.support import offers_to

        return offers_to(self.connection)[-1]

    def agent_action(self, usage: Usage, **command: Any) -> dict[str, Any]:
        from tests.support import agent_says

        reply = agent_says(self.client, self.connection, **command)
        usage.websocket_in += 1
        usage.invocations["websocket_message"] += 1
        usage.direct_traces += 1
        self._drain_routing(usage)
        return reply

    def agent_replies(self, conversation: str, usage: Usage) -> None:
        """The console's reply: a command on its WebSocket (one message in, its answer pushed back: metered)."""
        answer = self.agent_action(usage, action="reply", conversation_id=conversation, text="Your order ships today.")
        assert answer["type"] == "replied", answer
        self._pump_outbox(usage)

    def provider_reports(self, usage: Usage) -> None:
        """Twilio's status callback for the last SMS sent (delivered)."""
        from tests.fakes.providers import TWILIO
        from tests.support import fixture, post_twilio

        sid = self.providers.sent(TWILIO)[-1].answer["sid"]
        form = dict(parse_qsl(fixture("twilio/message_status_delivered_sms.txt").decode()))
        form.update(MessageSid=sid, SmsSid=sid)
        response = post_twilio(self.client, "/webhooks/twilio/status", urlencode(form).encode())
        assert response.status_code == 200, response.body
        usage.rest_requests += 1
        usage.webhook_requests += 1
        usage.invocations["api_handler"] += 1
        usage.traces += 1

    def set_presence(self, presence: str, usage: Usage) -> None:
        from tests.support import as_agent

        body = json.dumps({"presence": presence})
        response = self.client.http.put("/agents/ada/presence", headers=as_agent("ada"), body=body)
        assert response.status_code == 200, response.body
        usage.rest_requests += 1
        usage.invocations["api_handler"] += 1
        usage.traces += 1
        self._drain_routing(usage)

    # --- whole conversations -----------------------------------------------------------------------------------

    def conversation(self, channel: str, measured: bool = True) -> None:
        """4 customer messages, accept, 3 replies (each with its status callback on SMS), close."""
        who = f"c{uuid.uuid4().hex[:10]}"
        with self.step("first message", channel, measured) as usage:
            self.customer_writes(channel, who, usage)
        offer = self.last_offer()
        conversation = offer["contact_id"]
        if channel == "webchat":
            self.widget_listens(who, conversation, measured)
        with self.step("accept", channel, measured) as usage:
            self.agent_action(usage, action="accept", contact_id=conversation, offer_id=offer["offer_id"])
        with self.step("offer timer", channel, measured) as usage:
            self._fire_timers(usage)  # the offer's timeout, arriving after the accept: a no-op by design
        for _ in range(3):
            with self.step("follow-up", channel, measured) as usage:
                self.customer_writes(channel, who, usage)
            with self.step("reply", channel, measured) as usage:
                self.agent_replies(conversation, usage)
            if channel == "sms":
                with self.step("status callback", channel, measured) as usage:
                    self.provider_reports(usage)
        with self.step("close", channel, measured) as usage:
            self.agent_action(usage, action="close", contact_id=conversation, wrap_up="resolved")
        if channel == "webchat":
            from tests.support import ws_event

            with self.step("widget disconnect", channel, measured) as usage:
                self.client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", self._widget))
                usage.invocations["websocket_disconnect"] += 1
                usage.traces += 1

    def widget_listens(self, who: str, conversation: str, measured: bool) -> None:
        """The visitor's widget opens its WebSocket (pushes reach it from now on) and reads what it missed, once."""
        from tests.support import ws_event

        self._widget = f"w{uuid.uuid4().hex[:11]}="
        query = {"site": "acme-shop", "visitor_id": f"v_{who}", "conversation_id": conversation}
        with self.step("widget connect", "webchat", measured) as usage:
            answer = self.client.lambda_.invoke("ws_connect", ws_event("$connect", self._widget, query=query))
            assert answer.payload["statusCode"] == 200, answer.payload
            usage.invocations["websocket_connect"] += 1
            usage.traces += 1
        with self.step("widget catch-up read", "webchat", measured) as usage:
            read = self.client.http.get(f"/widget/conversations/{conversation}/messages?{urlencode(query)}&after=")
            assert read.status_code == 200, read.body
            usage.rest_requests += 1
            usage.invocations["api_handler"] += 1
            usage.traces += 1

    def queue_position(self, channel: str, measured: bool = True) -> None:
        """A first message while nobody is free: queued, and told their place in the queue (then cleaned up)."""
        with self.step("setup", channel, measured=False) as usage:
            self.set_presence("Away", usage)
        who = f"q{uuid.uuid4().hex[:10]}"
        with self.step("first message, queued (queue position)", channel, measured) as usage:
            self.customer_writes(channel, who, usage)
            self._pump_outbox(usage)  # the queue-position message goes out through the outbox queue
        with self.step("agent available, offered", channel, measured) as usage:
            self.set_presence("Available", usage)
        offer = self.last_offer()
        with self.step("setup", channel, measured=False) as usage:
            self.agent_action(usage, action="accept", contact_id=offer["contact_id"], offer_id=offer["offer_id"])
            self._fire_timers(usage)
            self.agent_action(usage, action="close", contact_id=offer["contact_id"], wrap_up="resolved")

    def sweep(self) -> None:
        tick = self.client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        with self.step("sweep (idle, one run)", "-") as usage:
            self.client.lambda_.invoke("sweep_offers", tick)
            usage.invocations["sweep_offers"] += 1
            usage.direct_traces += 1


def _mean(usages: list[Usage]) -> Usage:
    total = Usage()
    for usage in usages:
        total.add(usage, 1 / len(usages))
    return total


def _widget_before_after(
    flows: dict[tuple[str, str], list[Usage]], prices: dict[str, Any], per_1000: float, minutes_usd: float
) -> dict[str, Any]:
    """What the widget costs per 1,000 web-chat messages: polling every 2 s while open (before issue 12) against
    pushes on its WebSocket (after). A poll was the very request of the catch-up read (``?after=`` the cursor)."""
    if ("widget catch-up read", "webchat") not in flows:
        return {}
    open_minutes = prices["assumptions"]["widget_open_minutes_per_conversation"]
    read = dollars(_mean(flows[("widget catch-up read", "webchat")]), prices)["total"]
    polls = open_minutes * 60 / POLL_SECONDS_BEFORE
    socket = sum(
        TYPICAL[name] * dollars(_mean(flows[(name, "webchat")]), prices)["total"]
        for name in ("widget connect", "widget catch-up read", "widget disconnect")
    )
    # Each reply and the close: one consistent Query of the conversation's connections (1 RRU: the items are tiny)
    # and one WebSocket message per open connection.
    p = {name: entry["usd"] / entry["per"] for name, entry in prices["prices"].items()}
    pushes = (TYPICAL["reply"] + TYPICAL["close"]) * (p["dynamodb_rru"] + p["apigw_websocket_message"])
    after = socket + pushes + minutes_usd
    return {
        "open_minutes_per_conversation": open_minutes,
        "polls_per_conversation_before": polls,
        "usd_per_1000_webchat_messages_before": round(polls * read * per_1000, 6),
        "usd_per_1000_webchat_messages_after": round(after * per_1000, 6),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from bench.harness import app_on_moto

    prices = load_prices()
    with app_on_moto(fake_providers=True) as running:
        conversations = Conversations(running)
        # Warm, as a Lambda that has run before: the clients made, the queue URLs and the routing config cached.
        conversations.conversation("webchat", measured=False)
        conversations.queue_position("webchat", measured=False)  # replies no longer warm the outbox queue's URL
        for _ in range(1 if quick else 2):
            for channel in CHANNELS:
                conversations.conversation(channel)
        conversations.queue_position("webchat")
        conversations.sweep()
        flows = dict(conversations.flows)

    rows = []
    for (flow, channel), usages in sorted(flows.items()):
        rows.append({"flow": flow, "channel": channel, "runs": len(usages), **usage_row(_mean(usages), prices)})

    per_channel: dict[str, Usage] = {}
    live_view_batches: dict[str, float] = {}
    for channel in CHANNELS:
        conversation = Usage()
        batches = 0.0
        for flow, times in TYPICAL.items():
            if (flow, channel) in flows:
                conversation.add(_mean(flows[(flow, channel)]), times)
                batches += times * conversations.feeds[(flow, channel)] / len(flows[(flow, channel)])
        if (LIVE_VIEW, channel) in flows:
            conversation.add(_mean(flows[(LIVE_VIEW, channel)]), batches)
        live_view_batches[channel] = round(batches, 2)
        per_channel[channel] = conversation
    mixed = Usage()
    for usage in per_channel.values():
        mixed.add(usage, 1 / len(per_channel))
    minutes = prices["assumptions"]["websocket_connection_minutes_per_conversation"]
    minute_price = prices["prices"]["apigw_websocket_connection_minute"]
    connection_usd = minutes * minute_price["usd"] / minute_price["per"]
    # The visitor's widget is connected while its panel is open: web chat's own connection minutes.
    widget_minutes = prices["assumptions"]["widget_open_minutes_per_conversation"]
    widget_minutes_usd = widget_minutes * minute_price["usd"] / minute_price["per"]
    extra_minutes = {"webchat": widget_minutes_usd, "mixed (1/3 each)": widget_minutes_usd / len(per_channel)}

    def conversation_row(name: str, usage: Usage, per: float) -> dict[str, Any]:
        row = usage_row(usage, prices)
        minutes_usd = connection_usd + extra_minutes.get(name, 0.0)
        row["usd"]["api_gateway"] = round(row["usd"]["api_gateway"] + minutes_usd, 9)
        row["usd"]["total"] = round(row["usd"]["total"] + minutes_usd, 9)
        scaled = {
            "aws_requests": round(row["aws_requests"] * per, 1),
            "wru": round(row["wru"] * per, 1),
            "rru": round(row["rru"] * per, 1),
            "usd": {k: round(v * per, 6) for k, v in row["usd"].items()},
        }
        return {"conversation": name, "per_conversation": row, "per_1000_inbound": scaled}

    per_1000 = 1000 / INBOUND_PER_CONVERSATION
    typical = [conversation_row(channel, usage, per_1000) for channel, usage in per_channel.items()]
    typical.append(conversation_row("mixed (1/3 each)", mixed, per_1000))

    sweep_rows = [r for r in rows if r["flow"].startswith("sweep")]
    a = prices["assumptions"]
    fifo, standard = prices["prices"]["sqs_fifo_request"], prices["prices"]["sqs_standard_request"]
    idle_requests_per_queue_month = a["sqs_idle_pollers_per_queue"] * 3 * 60 * 24 * 30
    fixed = {
        "sweep_usd_per_month": round(sweep_rows[0]["usd"]["total"] * a["sweep_runs_per_day"] * 30, 4)
        if sweep_rows
        else None,
        "idle_sqs_polling_usd_per_month": round(
            idle_requests_per_queue_month * (fifo["usd"] / fifo["per"] + 2 * standard["usd"] / standard["per"]), 4
        ),
    }
    return {
        "front_door": front_door(typical[-1], prices),
        "units_source": UNITS_SOURCE,
        "typical_conversation": TYPICAL,
        "live_view_batches_per_conversation": live_view_batches,
        "widget": _widget_before_after(flows, prices, per_1000, widget_minutes_usd),
        "flows": rows,
        "conversations": typical,
        "fixed_monthly": fixed,
        "assumptions": {
            **prices["assumptions"],
            "xray_traced_fraction": stages.traced_fractions(PRICED_STAGE),
            "xray_traced_fraction_source": f".chalice/config.json, stage {PRICED_STAGE}: SWITCHBOARD_TRACE_PERCENT",
            "lambda_system_log_level": stages.system_log_level(PRICED_STAGE),
        },
        "prices_file": "bench/prices.json",
    }


FRONT_DOORS = (
    # (name, who carries provider webhooks, who carries the rest, what it keeps and loses)
    (
        "everything on the REST API + WAF (before)",
        ("apigw_rest_request", "waf_request"),
        ("apigw_rest_request", "waf_request"),
        "WAF (managed rules, per-IP rate rules), per-route throttling, access logs",
    ),
    (
        "providers' webhooks on an HTTP API, the rest on REST + WAF (deployed)",
        ("apigw_http_request",),
        ("apigw_rest_request", "waf_request"),
        "webhooks: throttling and access logs, no WAF (none exists for HTTP APIs); the signature check is their gate",
    ),
    (
        "everything on an HTTP API",
        ("apigw_http_request",),
        ("apigw_http_request",),
        "no WAF anywhere: the widget's per-IP rate rule and the managed rules are gone",
    ),
    (
        "CloudFront + WAF + Lambda function URLs",
        ("cloudfront_https_request", "waf_request"),
        ("cloudfront_https_request", "waf_request"),
        "WAF stays, but the function URLs are public (CloudFront's origin access control cannot sign a "
        "provider's POST), so WAF can be walked around; no API throttling, only reserved concurrency",
    ),
)


def front_door(mixed: dict[str, Any], prices: dict[str, Any]) -> list[dict[str, Any]]:
    """What the typical conversation's HTTP requests would cost at each front door, per 1,000 inbound messages."""
    p = {name: entry["usd"] / entry["per"] for name, entry in prices["prices"].items()}
    per = 1000 / INBOUND_PER_CONVERSATION
    rest = mixed["per_conversation"]["rest_requests"] * per
    webhooks = mixed["per_conversation"]["webhook_requests"] * per
    rows = []
    for name, for_webhooks, for_the_rest, protections in FRONT_DOORS:
        usd = webhooks * sum(p[k] for k in for_webhooks) + (rest - webhooks) * sum(p[k] for k in for_the_rest)
        rows.append({"front_door": name, "usd_per_1000_inbound": round(usd, 6), "protections": protections})
    everything_rest = rows[0]["usd_per_1000_inbound"]
    for row in rows:
        row["saving_vs_rest"] = round(everything_rest - row["usd_per_1000_inbound"], 6)
    return [{"requests_per_1000_inbound": round(rest, 1), "webhooks_per_1000_inbound": round(webhooks, 1)}, *rows]
