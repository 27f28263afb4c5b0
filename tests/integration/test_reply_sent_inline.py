"""An agent's reply is sent from the request that makes it; the outbox queue and the sweeper are its fallbacks.

``POST /conversations/{id}/messages`` (and the console's WebSocket reply, which calls the same service) records
the reply already leased to itself (``outbox.REQUEST_LEASE_SECONDS``, longer than the API functions live) and
still marked pending-send, calls the provider, and records it sent: no outbox job, no outbox Lambda, no claim.
When the provider fails, the lease is released and the job queued (the outbox Lambda retries with backoff); when
the request dies, the message is still pending and the sweeper queues it once the lease is over. Only providers
that report statuses (Twilio, Meta) get an ``OUTBOUND`` lookup item; an e-mail gets one thread item, for the
Message-ID SES gives it. The providers are the loopback fakes (SES is moto); faults are botocore hooks.
"""

# ruff: noqa: F811 (the fixtures imported from test_outbound are used as arguments)
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import clock
from chalicelib.outbound import outbox
from chalicelib.settings import outbox_queue_name
from chalicelib.store import aws, outbound
from chalicelib.store import routing as routing_store
from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import (  # noqa: F401 (fixtures)
    Pumped,
    _outbound,
    app,
    email_from,
    fake,
    pump,
    queue_depth,
    sms_from,
)
from tests.support import (
    agent_says,
    as_agent,
    connect_agent,
    create_agent,
    data_items,
    drain,
    lambda_service_sqs,
    post_webchat,
    record_aws_requests,
    webchat_payload,
)

LATER = 120  # seconds: the sweeper's pass after the grace and the request's lease


class Died(BaseException):
    """The Lambda stopped right there (its timeout, the sandbox gone): nothing after runs, nothing is caught."""


@contextmanager
def dies_at(operation: str, nth: int = 1, moment: str = "after-call") -> Iterator[list[str]]:
    """The request dies at the ``nth`` DynamoDB ``operation``, after it took effect (or before, ``before-call``)."""
    seen: list[str] = []

    def die(**_: Any) -> None:
        seen.append(operation)
        if len(seen) == nth:
            raise Died(operation)

    client = aws.client("dynamodb")
    event = f"{moment}.dynamodb.{operation}"
    client.meta.events.register_first(event, die)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, die)


def _assigned(app: Client, channel: str) -> str:
    create_agent(app, "ada", capacity=3, channels=(channel,))
    connection = connect_agent(app, "ada")
    if channel == "sms":
        conversation = sms_from(app)["conversation_id"]
    elif channel == "email":
        conversation = email_from(app)["conversation_id"]
    else:
        conversation = post_webchat(app, webchat_payload()).json_body["conversation_id"]
    drain(app)
    assert agent_says(app, connection, action="accept", contact_id=conversation)["type"] == "accepted"
    return str(conversation)


def _reply(app: Client, conversation: str, text: str = "Your order ships today.", key: str | None = None) -> Any:
    body: dict[str, Any] = {"text": text, **({"client_message_id": key} if key else {})}
    return app.http.post(f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps(body))


def _sweep_and_send_later() -> int:
    """The sweeper a couple of minutes on, and the outbox Lambda handling what it queued then."""
    later = clock.plus_seconds(clock.now_iso(), LATER)
    queued = outbox.requeue_pending(later)
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            outbox.handle_outbox_record(m["Body"], later, attempt=1)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return queued


def test_an_sms_reply_is_sent_from_its_request_without_the_outbox_queue(app, fake):
    conversation = _assigned(app, "sms")
    requests = record_aws_requests()
    answer = _reply(app, conversation)

    assert answer.status_code == 202, answer.body
    [request] = fake.sent(TWILIO)
    body = answer.json_body
    assert body["status"] == "sent" and body["provider_message_id"] == request.answer["sid"]
    assert "lease_until" not in body and "pending_send" not in body
    assert not any(r.startswith("sqs.") for r in requests), "no outbox job: nothing for the outbox Lambda to do"
    assert [r for r in requests if r.startswith("dynamodb.") and "Item" in r and not r.endswith("GetItem")] == [
        "dynamodb.PutItem",  # the reply, leased to this request and pending (the sweeper's if it dies)
        "dynamodb.PutItem",  # its OUTBOUND record, for Twilio's status callbacks
        "dynamodb.UpdateItem",  # sent: the commit, last
        "dynamodb.UpdateItem",  # the first response on the contact record (conditional, idempotent)
        "dynamodb.PutItem",  # and on the contact (versioned)
    ]
    [message] = _outbound()
    assert message["status"] == "sent" and message["provider_message_id"] == request.answer["sid"]
    assert not {"pending_send", "pending_since", "lease_until"} & message.keys()
    assert (outbound.get_status("twilio", request.answer["sid"]) or {}).get("message_id") == message["message_id"]
    assert queue_depth(outbox_queue_name()) == 0 and _sweep_and_send_later() == 0
    assert len(fake.sent(TWILIO)) == 1


@pytest.mark.parametrize("channel", ["webchat", "email"])
def test_web_chat_and_email_replies_write_no_status_lookup_and_email_one_thread_item(app, fake, channel):
    conversation = _assigned(app, channel)
    sent = _reply(app, conversation).json_body
    assert sent["status"] == "sent"

    items = data_items()
    assert [i["pk"] for i in items if i["pk"].startswith("OUTBOUND#")] == [], "nobody reports on these: no lookup"
    threads = sorted(i["pk"] for i in items if i["pk"].startswith("EMAILTHREAD#"))
    if channel == "email":
        # The customer's own e-mail (written as it came in) and the Message-ID SES gave ours (us-east-1's form).
        assert threads == [
            "EMAILTHREAD#<CAF3kX9m2Q+order4417@mail.gmail.com>",
            f"EMAILTHREAD#<{sent['provider_message_id']}@email.amazonses.com>",
        ]
    else:
        assert threads == []


def test_a_provider_outage_during_the_request_hands_the_reply_to_the_outbox(app, fake):
    conversation = _assigned(app, "sms")
    fake.fail_next(1, status=503, api=TWILIO)

    answer = _reply(app, conversation)
    assert answer.status_code == 202, answer.body
    assert answer.json_body["status"] == "sending"
    [message] = _outbound()
    assert "lease_until" not in message and "20500" in message["last_error"] and message["pending_send"]
    assert queue_depth(outbox_queue_name()) == 1

    assert pump(app) == Pumped(1, [])
    assert len(fake.sent(TWILIO)) == 1 and len(fake.requests) == 2
    [message] = _outbound()
    assert message["status"] == "sent" and "pending_send" not in message


def test_a_final_rejection_during_the_request_fails_the_reply_at_once(app, fake):
    conversation = _assigned(app, "sms")
    fake.fail_next(1, status=400, api=TWILIO)

    answer = _reply(app, conversation)
    assert answer.status_code == 202, answer.body
    assert answer.json_body["status"] == "failed" and answer.json_body["error"].startswith("21211")
    [message] = _outbound()
    assert message["status"] == "failed" and not {"pending_send", "lease_until"} & message.keys()
    assert queue_depth(outbox_queue_name()) == 0 and _sweep_and_send_later() == 0
    assert len(fake.requests) == 1


def test_a_request_that_dies_after_recording_the_reply_leaves_it_to_the_sweeper_sent_once(app, fake):
    conversation = _assigned(app, "sms")
    with dies_at("PutItem") as seen, pytest.raises(Died):
        _reply(app, conversation)
    assert seen and fake.sent(TWILIO) == []
    [message] = _outbound()
    assert message["status"] == "sending" and message["pending_send"] and message["lease_until"]

    assert outbox.requeue_pending(clock.now_iso()) == 0, "too young: the request may still be sending it"
    assert _sweep_and_send_later() == 1
    assert len(fake.sent(TWILIO)) == 1
    [message] = _outbound()
    assert message["status"] == "sent" and "pending_send" not in message
    assert _sweep_and_send_later() == 0


def test_a_request_that_dies_between_the_send_and_its_record_is_sent_again_as_documented(app, fake):
    conversation = _assigned(app, "sms")
    with dies_at("PutItem", nth=2, moment="before-call"), pytest.raises(Died):  # the OUTBOUND record
        _reply(app, conversation)
    assert len(fake.sent(TWILIO)) == 1

    assert _sweep_and_send_later() == 1  # the lease is over: Twilio takes no idempotency key, so twice
    first, second = fake.sent(TWILIO)
    assert first.form == second.form
    [message] = _outbound()
    assert message["status"] == "sent" and message["provider_message_id"] == second.answer["sid"]


def test_the_first_reply_marks_the_first_response_once_and_a_retry_with_its_key_repairs_it(app, fake):
    conversation = _assigned(app, "sms")
    key = str(uuid.uuid4())
    # The reply is recorded and sent, then its request dies before the first response is marked.
    with dies_at("UpdateItem", nth=2, moment="before-call"), pytest.raises(Died):
        _reply(app, conversation, key=key)
    assert routing_store.get_contact(conversation).first_response_at is None  # type: ignore[union-attr]

    again = _reply(app, conversation, key=key)  # the console's retry: the same reply, now marked
    assert again.status_code == 202 and again.json_body["status"] == "sent"
    assert _reply(app, conversation, "Anything else?").status_code == 202
    contact = routing_store.get_contact(conversation)
    assert contact is not None and contact.first_response_at is not None
    [record] = routing_store.records_of(conversation)
    firsts = [e for e in record["events"] if e["kind"] == "first_response"]
    assert len(firsts) == 1 and record["first_response_at"] == contact.first_response_at
    assert len(fake.sent(TWILIO)) == 2, "the retry sent nothing again"


def test_the_requests_lease_outlives_the_functions_that_send_from_a_request() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
    from switchboard_infra.functions import API_TIMEOUT

    assert outbox.REQUEST_LEASE_SECONDS > API_TIMEOUT
    assert outbox.PENDING_GRACE_SECONDS >= outbox.REQUEST_LEASE_SECONDS
