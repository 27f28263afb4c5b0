"""A fault at every AWS call of the whole flow, one at a time, ends where the flow without faults ends.

The flow: a customer's SMS (Twilio webhook) is routed and offered to Ada; a second customer's SMS
waits (Ada is full) and is told their place in the queue; Ada accepts the first, replies, closes;
the second is offered to her. Every AWS call the app makes on the way is recorded in a run without
faults (``FLOW_SITES`` below names the 60 call sites: handler, the path through our functions,
operation; see ``tests/faults.py``). Then, for each site in turn, the flow runs again from a clean
moto state with the site's first call failing *before* the request (it never happened) or *after*
it (it took effect, its answer was lost), and everyone retries as they do in life:

- the provider posts the webhook again after a 5xx;
- SQS redelivers a failed record (FIFO: the rest of its group waits; a failed outbox job comes back
  after its backoff, and after its lease if its claim is held);
- the agent retries a failed REST call, a reply with the same idempotency key;
- the sweeper runs a minute later and again after that.

The end state must equal the fault-free one: each customer message stored once, one offer per
contact, one assignment, each reply and position message delivered once at the provider, nothing
left ``queued``/``sending`` or pending. The one documented exception (README, Guarantees): when the
provider took a message and the outbox died before recording it (``outbox._commit``'s
``outbound.record_sent`` failing before its request), the message is sent again: at least once,
asserted for those sites only.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from chalice.test import Client

from chalicelib import clock
from chalicelib.outbound import outbox
from chalicelib.routing import engine
from chalicelib.settings import outbox_queue_name
from chalicelib.store import routing as routing_store
from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.faults import AFTER, BEFORE, Faults
from tests.integration.test_outbound import app, fake, queue_depth  # noqa: F401 (fixtures)
from tests.support import (
    as_agent,
    connect_agent,
    create_agent,
    data_items,
    deliver_once,
    fixture,
    lambda_service_sqs,
    offers_to,
    post_twilio,
    queued_message_count,
    sqs_event,
)

pytestmark = pytest.mark.timeout(300)

FIRST = ("+14155550123", "SM9f2e4d6c8b0a1f3e5d7c9b1a3f5e7d9c")
SECOND = ("+14155550177", "SM00000000000000000000000000000177")
REPLY = "Your order ships today."
# The documented at-least-once window: the provider took the message, the outbox died before recording it.
# The commit is plain writes, the message's own update last: a fault at any write before it (or the lookup's answer
# lost) leaves the message leased and pending, so it is sent again after its lease. (site, call, when)
AT_LEAST_ONCE = {
    ("outbound.record_sent", "dynamodb.PutItem", BEFORE),
    ("outbound.record_sent", "dynamodb.PutItem", AFTER),
    ("outbound.record_sent", "dynamodb.UpdateItem", BEFORE),
}
_ATTEMPTS = 4  # how often a provider, an agent or SQS tries one thing before the test calls it stuck

# Every call site of the flow in the order the fault-free run first reaches it (handler > our functions on the
# way > operation; see tests/faults.py). Each is failed at its first call, before and after the request.
# test_the_flow_without_faults_makes_exactly_these_calls keeps this list true: when the flow's calls change,
# it prints the new list to paste here.
FLOW_SITES = [
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._plan > conversations.customers_of > conversations._batch_get > dynamodb.GetItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._write_customer > conversations._claim_identity > dynamodb.PutItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._write_customer > conversations._write_profile > dynamodb.PutItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._write_conversation > dynamodb.UpdateItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._claim > dynamodb.PutItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > conversations.ingest > retry.on_conflict > conversations.store_once > conversations._store_message > dynamodb.PutItem",  # noqa: E501
    "webhook_twilio_messaging > inbox.deliver > inbox.receive > queue.publish > sqs.SendMessage",
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router_store.get_contact > routing.get_contact > dynamodb.GetItem",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._classify > router_store.get_customer > conversations.get_customer > dynamodb.GetItem",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._open_contact > router._create > retry.or_else > retry.on_conflict > router.offered > router.plan_offer > router._pool > router_store.pool > routing.pool > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._open_contact > router._create > retry.or_else > retry.on_conflict > router.offered > router_store.create_contact > routing.create_contact > routing.save > dynamodb.TransactWriteItems",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._announce > queue.schedule > queue.publish_timer > queue._queue_url > sqs.GetQueueUrl",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._announce > queue.schedule > queue.publish_timer > sqs.SendMessage",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._announce > engine.to_agent > push.to_agent > routing.connections_of > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._announce > engine.to_agent > push.to_agent > push.to_connection > connections.post > apigatewaymanagementapi.PostToConnection",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router._open_contact > router._create > router_store.create_contact > routing.create_contact > routing.save > dynamodb.TransactWriteItems",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router.acknowledge > router_store.place_in_queue > routing.place_in_queue > routing._queue_items > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router.acknowledge > router_store.place_in_queue > routing.place_in_queue > routing._position > routing._band_keys > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router.acknowledge > router._mark_acknowledged > router_store.save > routing.save > dynamodb.TransactWriteItems",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router.acknowledge > router._mark_acknowledged > engine.dispatch > system_messages.dispatch > outbox.dispatch > queue.send_to_outbox > queue._queue_url > sqs.GetQueueUrl",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_conversation_message > router.acknowledge > router._mark_acknowledged > engine.dispatch > system_messages.dispatch > outbox.dispatch > queue.send_to_outbox > sqs.SendMessage",  # noqa: E501
    "on_outbox > outbox.process_record > outbox.handle_outbox_record > outbox._claim > outbound.claim > dynamodb.UpdateItem",  # noqa: E501
    "on_outbox > outbox.process_record > outbox.handle_outbox_record > outbox._destination > destinations.for_message > destinations.resolve > conversations.get_customer > dynamodb.GetItem",  # noqa: E501
    "on_outbox > outbox.process_record > outbox.handle_outbox_record > outbox._destination > destinations.for_message > destinations.resolve > destinations.newest > destinations._items > destinations._fetch > conversations.inbound_page > dynamodb.Query",  # noqa: E501
    "on_outbox > outbox.process_record > outbox.handle_outbox_record > outbox._commit > outbound.record_sent > dynamodb.PutItem",  # noqa: E501
    "on_outbox > outbox.process_record > outbox.handle_outbox_record > outbox._commit > outbound.record_sent > dynamodb.UpdateItem",  # noqa: E501
    "accept > service.accept > router.accept > router._retrying > retry.on_conflict > router.step > router._contact > router_store.get_contact > routing.get_contact > dynamodb.GetItem",  # noqa: E501
    "accept > service.accept > router.accept > router._retrying > retry.on_conflict > router.step > router_store.save > routing.save > dynamodb.PutItem",  # noqa: E501
    "accept > service.accept > router.accept > router._retrying > retry.on_conflict > router.step > router_store.save > router_store.apply_after_save > routing.record_assignment > dynamodb.UpdateItem",  # noqa: E501
    "accept > service.accept > router.accept > router._retrying > retry.on_conflict > router.step > router_store.save > router_store.apply_after_save > routing.record_once > dynamodb.UpdateItem",  # noqa: E501
    "accept > service.accept > router.accept > router_store.record_started > routing.record_started > routing._count_stats > dynamodb.UpdateItem",  # noqa: E501
    "reply > work.reply > work._contact_of > routing.get_contact > dynamodb.GetItem",
    "reply > work.reply > outbox.queue_reply > outbox._earlier_reply > outbound.reply_of_key > dynamodb.GetItem",
    "reply > work.reply > outbox.queue_reply > conversations.get_conversation > dynamodb.GetItem",
    "reply > work.reply > outbox.queue_reply > outbox._surviving_customer > conversations.get_customer > dynamodb.GetItem",  # noqa: E501
    "reply > work.reply > outbox.queue_reply > destinations.resolve > destinations.newest > destinations._items > destinations._fetch > conversations.inbound_page > dynamodb.Query",  # noqa: E501
    "reply > work.reply > outbox.queue_reply > outbound.record_reply > dynamodb.TransactWriteItems",
    "reply > work.reply > outbox.queue_reply > outbox.send_recorded > outbox._commit > outbound.record_sent > dynamodb.PutItem",  # noqa: E501
    "reply > work.reply > outbox.queue_reply > outbox.send_recorded > outbox._commit > outbound.record_sent > dynamodb.UpdateItem",  # noqa: E501
    "reply > work.reply > work._first_response > retry.or_else > retry.on_conflict > work.mark > routing.record_first_response > dynamodb.UpdateItem",  # noqa: E501
    "reply > work.reply > work._first_response > retry.or_else > retry.on_conflict > work.mark > routing.record_first_response > dynamodb.PutItem",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router._contact > router_store.get_contact > routing.get_contact > dynamodb.GetItem",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router._agent > router_store.get_agent > routing.get_agent > dynamodb.GetItem",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router_store.customer_of_conversation > conversations.get_conversation > dynamodb.GetItem",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router_store.save > routing.save > dynamodb.TransactWriteItems",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router_store.save > router_store.apply_after_save > routing.record_closing > dynamodb.UpdateItem",  # noqa: E501
    "close > service.close > router.close > router._retrying > retry.on_conflict > router.step > router_store.save > router_store.apply_after_save > routing.record_once > dynamodb.UpdateItem",  # noqa: E501
    "close > service.close > router.close > router_store.record_handled > routing.record_handled > routing.queue_stats > dynamodb.GetItem",  # noqa: E501
    "close > service.close > router.close > router_store.record_handled > routing.record_handled > dynamodb.UpdateItem",
    "close > service.close > router.close > router._may_have_work > router.has_work_for > router._rank_for_agent > router_store.contacts_needing > routing.contacts_needing > routing._index_page > dynamodb.Query",  # noqa: E501
    "close > service.close > router.close > queue.publish > queue.publish > sqs.SendMessage",
    "on_routing_event > engine.handle > router.handle > router.on_agent_freed > retry.or_else > retry.on_conflict > router.step > router.plan_for_agent > router._rank_for_agent > router_store.contacts_needing > routing.contacts_needing > routing._index_page > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_agent_freed > retry.or_else > retry.on_conflict > router.step > router.commit_offer > router_store.save > routing.save > dynamodb.TransactWriteItems",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_agent_freed > router._announce > queue.schedule > queue.publish_timer > sqs.SendMessage",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_agent_freed > router._announce > engine.to_agent > push.to_agent > routing.connections_of > dynamodb.Query",  # noqa: E501
    "on_routing_event > engine.handle > router.handle > router.on_agent_freed > router._announce > engine.to_agent > push.to_agent > push.to_connection > connections.post > apigatewaymanagementapi.PostToConnection",  # noqa: E501
    "sweep_offers > outbox.requeue_pending > outbound.pending_messages > dynamodb.Query",
    "sweep_offers > engine.sweep > router.sweep > router_store.expired_offers > routing.expired_offers > routing._index_before > dynamodb.Query",  # noqa: E501
    "sweep_offers > engine.sweep > router.sweep > router_store.disconnected_before > routing.disconnected_before > routing._index_before > dynamodb.Query",  # noqa: E501
    "sweep_offers > engine.sweep > router.sweep > router_store.waiting_contacts > routing.waiting_contacts > routing._index_page > dynamodb.Query",  # noqa: E501
]


class Stuck(AssertionError):
    """Someone retried as people and SQS do, and it still did not go through."""


class Flow:
    """The people and the AWS services around the app, retrying as they do."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.connection = ""
        self.faults = Faults()

    # -- before the flow: Ada signs in (not part of what is faulted) --
    def set_up(self) -> None:
        create_agent(self.client, "ada", capacity=1, channels=("sms",))
        self.connection = connect_agent(self.client, "ada")
        self.router()

    # -- the flow --
    def run(self) -> None:
        self.customer_texts(*FIRST, "Hi, where is my order #1042?")
        self.router()
        self.customer_texts(*SECOND, "Hello, is anyone there?")
        self.router()
        self.outbox()
        first = self.offered()
        self.agent("POST", f"/conversations/{first}/accept", None)
        self.agent("POST", f"/conversations/{first}/messages", {"text": REPLY, "client_message_id": str(uuid.uuid4())})
        self.outbox()
        self.agent("POST", f"/conversations/{first}/close", {"wrap_up": "resolved"})
        self.router()
        self.sweeper()
        self.outbox()
        self.router()

    # -- the actors --
    def customer_texts(self, number: str, sid: str, text: str) -> None:
        """Twilio posts the SMS; after a 5xx (or no answer) it posts the same one again."""
        form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
        form.update(From=number, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=text)
        body = urlencode(form).encode()
        for _ in range(_ATTEMPTS):
            if post_twilio(self.client, "/webhooks/twilio/messaging", body).status_code < 500:
                return
        raise Stuck(f"the webhook for {sid} never answered 2xx")

    def agent(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """The agent's console: a 5xx is retried with the same request (a reply keeps its idempotency key)."""
        for _ in range(_ATTEMPTS):
            answer = self.client.http.request(
                method=method, path=path, headers=as_agent("ada"), body=json.dumps(body or {}).encode()
            )
            if answer.status_code < 500:
                assert answer.status_code < 300, (path, answer.status_code, answer.body)
                return dict(answer.json_body)
        raise Stuck(f"{method} {path} kept failing")

    def router(self) -> None:
        """The routing queue into on_routing_event, failed records visible again at once (FIFO: group order)."""
        for _ in range(12 * _ATTEMPTS):
            if deliver_once(self.client)[0] == 0:
                return
        raise Stuck("the routing queue never drained")

    def outbox(self) -> None:
        """The outbox queue into on_outbox; a failed job comes back after its backoff (and its claim's lease)."""
        sqs = lambda_service_sqs()
        url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for _ in range(12 * _ATTEMPTS):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return
            try:
                answer = self.client.lambda_.invoke("on_outbox", sqs_event(messages, arn)).payload
                failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            except Exception:
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] in failed and not self._after_the_lease(m):
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        raise Stuck("the outbox queue never drained")

    def _after_the_lease(self, message: dict[str, Any]) -> bool:
        """A job that failed because an earlier attempt holds the claim: delivered again once the lease is over,
        as SQS does after the backoff it was given. True when that delivery went through."""
        later = clock.plus_seconds(clock.now_iso(), outbox.LEASE_SECONDS + 1)
        attempt = int(message["Attributes"]["ApproximateReceiveCount"]) + 1
        try:
            with self.faults.acting_as("on_outbox"):
                outbox.handle_outbox_record(message["Body"], later, attempt)
        except Exception:
            return False
        return True

    def sweeper(self) -> None:
        """The scheduled sweep, a minute or two later; if it fails, it runs again the next minute."""
        for _ in range(_ATTEMPTS):
            try:
                # What app.py's sweep_offers runs, a minute or two after the messages were recorded.
                with self.faults.acting_as("sweep_offers"):
                    outbox.requeue_pending(clock.plus_seconds(clock.now_iso(), 2 * outbox.PENDING_GRACE_SECONDS))
                    engine.sweep(clock.now_iso())
            except Exception:
                continue
            return
        raise Stuck("the sweeper kept failing")

    # -- what the agent sees --
    def offered(self) -> str:
        """The conversation the agent was offered (the first customer's: the second waits)."""
        offered = {o["contact_id"] for o in offers_to(self.connection)}
        assert len(offered) == 1, f"the agent sees {len(offered)} offers"
        return offered.pop()


# The end of the flow without faults: what every faulted run must end with too.
EXPECTED: dict[str, Any] = {
    "inbound stored": {FIRST[1]: 1, SECOND[1]: 1},
    "outbound stored": [(f"phone#{FIRST[0]}", "reply", "sent"), (f"phone#{SECOND[0]}", "queue_position", "sent")],
    "contacts": {f"phone#{FIRST[0]}": ("closed", "ada", "ada", 1), f"phone#{SECOND[0]}": ("offered", "ada", None, 1)},
    "distinct offers per customer": {f"phone#{FIRST[0]}": 1, f"phone#{SECOND[0]}": 1},
    "agent load": {"sms": 1},
    "conversations": {f"phone#{FIRST[0]}": ("closed", "ada"), f"phone#{SECOND[0]}": ("open", None)},
    "customers' open conversations": [f"phone#{SECOND[0]}"],
    "served by": {f"phone#{FIRST[0]}": "ada"},
    "contact records": {
        f"phone#{FIRST[0]}": ["arrived", "queued", "offered", "accepted", "first_response", "closed"],
        f"phone#{SECOND[0]}": ["arrived", "queued", "offered"],
    },
    "delivered": [((FIRST[0], "reply"), 1), ((SECOND[0], "queue_position"), 1)],
    "first responses": {f"phone#{FIRST[0]}": 1, f"phone#{SECOND[0]}": 0},
    "pending": [],
    "routing events left": 0,
    "outbox jobs left": 0,
}


def end_state(flow: Flow, providers: FakeProviders) -> dict[str, Any]:
    """What must be the same however the flow was interrupted (ids aside)."""
    items = data_items()
    messages = [i for i in items if i.get("type") == "message"]
    outbound = [m for m in messages if m["direction"] == "outbound"]
    phone_of = {m["conversation_id"]: m["identity"] for m in messages if m["direction"] == "inbound"}
    contacts = {
        phone_of[c.contact_id]: (c.state.value, c.offered_to, c.assigned_to, c.offer_count)
        for c in (routing_store.get_contact(cid) for cid in set(phone_of))
        if c is not None
    }
    kind_of = {m["text"]: m["kind"] for m in outbound}
    sent = providers.sent(TWILIO)
    offers = Counter(o["contact_id"] for o in {o["offer_id"]: o for o in offers_to(flow.connection)}.values())
    return {
        "inbound stored": dict(Counter(m["provider_message_id"] for m in messages if m["direction"] == "inbound")),
        "outbound stored": sorted((phone_of.get(m["conversation_id"]), m["kind"], m["status"]) for m in outbound),
        "contacts": contacts,
        "distinct offers per customer": {phone_of[c]: n for c, n in offers.items()},
        "agent load": routing_store.get_agent("ada").load,  # type: ignore[union-attr]
        # Written after the accept's and the close's saves: a retry writes them again.
        "conversations": {
            phone_of[i["conversation_id"]]: (i["status"], i.get("agent_id"))
            for i in items
            if i["sk"] == "META" and i.get("conversation_id") in phone_of
        },
        "customers' open conversations": sorted(
            phone_of[i["open_conversation_id"]]
            for i in items
            if i["sk"] == "PROFILE" and i.get("open_conversation_id") in phone_of
        ),
        "contact records": {
            phone_of[c]: [e["kind"] for r in routing_store.records_of(c) for e in r["events"]] for c in phone_of
        },
        "served by": {
            phone_of[c]: i["last_agent_id"]
            for i in items
            if i["sk"] == "PROFILE" and i.get("last_agent_id")
            for c in phone_of
            if any(m["conversation_id"] == c and m["customer_id"] == i["customer_id"] for m in messages)
        },
        "delivered": sorted(Counter((r.form["To"], kind_of.get(r.form["Body"])) for r in sent).items()),
        "first responses": {phone_of[cid]: _first_responses(cid) for cid in set(phone_of)},
        "pending": [i["message_id"] for i in items if i.get("pending_send")],
        "routing events left": queued_message_count(),
        "outbox jobs left": queue_depth(outbox_queue_name()),
    }


def _first_responses(contact_id: str) -> int:
    """How many first responses the contact's records tell of (a reply marks one, once)."""
    return [e["kind"] for r in routing_store.records_of(contact_id) for e in r["events"]].count("first_response")


@pytest.fixture
def flow(app: Client) -> Flow:  # noqa: F811
    flow = Flow(app)
    flow.set_up()
    return flow


def _fault_free(flow: Flow) -> Faults:
    with flow.faults.installed() as faults:
        flow.run()
    return faults


def test_the_flow_without_faults_makes_exactly_these_calls(flow, fake):  # noqa: F811
    faults = _fault_free(flow)
    sites = list(dict.fromkeys(c.label for c in faults.calls))
    assert sites == FLOW_SITES, "the flow's AWS call sites changed; FLOW_SITES = " + json.dumps(sites, indent=4)
    assert end_state(flow, fake) == EXPECTED
    assert len(FLOW_SITES) == 60


def _case_id(index: int, site: str, when: str) -> str:
    handler, *_, function, operation = site.split(" > ")
    return f"{index:02d}-{when}-{handler}-{function.split('.')[-1]}-{operation.split('.')[1]}"


@pytest.mark.parametrize(
    ("site", "when"),
    [
        pytest.param(site, when, id=_case_id(index, site, when))
        for index, site in enumerate(FLOW_SITES)
        for when in (BEFORE, AFTER)
    ],
)
def test_a_fault_at_one_call_ends_where_the_flow_without_faults_ends(flow, fake, site, when):  # noqa: F811
    flow.faults = Faults(fail=f"{site} #1", when=when)
    with flow.faults.installed():
        flow.run()
    assert flow.faults.fired, f"{site} was never called: FLOW_SITES is out of date"

    state = end_state(flow, fake)
    expected = dict(EXPECTED)
    if any(
        site.endswith(f"{function} > {operation}") and when == moment for function, operation, moment in AT_LEAST_ONCE
    ):
        # The provider took the message and we never recorded it: sent again, so at least once.
        delivered, expected_delivered = dict(state.pop("delivered")), dict(expected.pop("delivered"))
        assert delivered.keys() == expected_delivered.keys()
        assert all(delivered[k] >= 1 for k in delivered) and sum(delivered.values()) <= len(delivered) + 1
    assert state == expected
