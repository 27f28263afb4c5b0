"""An agent's reply reaches the customer once, whatever fails between the click and the provider.

The reply API takes a client idempotency key (``client_message_id``: the console makes one per
composed message and sends it again when it retries). The message, its pending-send mark and the
key's record are one DynamoDB transaction; the request then sends it itself, and when that fails
the outbox queue retries it; the queue send may fail too, because the sweeper queues whatever
stayed pending (the transactional outbox). Faults are injected at the AWS
boundary with botocore hooks; the customer's phone is the fake Twilio server.
"""

# ruff: noqa: F811 (the fixtures imported from test_outbound are used as arguments)
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import clock
from chalicelib.outbound import outbox
from chalicelib.settings import outbox_queue_name
from chalicelib.store import aws
from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import (  # noqa: F401 (fixtures)
    Pumped,
    _outbound,
    app,
    fake,
    pump,
    queue_depth,
    sms_from,
)
from tests.support import (
    agent_says,
    answer_lost_once,
    as_agent,
    connect_agent,
    create_agent,
    drain,
    fails_once,
    lambda_service_sqs,
)

LATER = 120  # seconds: the sweeper's next pass, when a message left pending is old enough to be picked up


def _assigned_sms(app: Client) -> str:
    create_agent(app, "ada", channels=("sms",))
    connection = connect_agent(app, "ada")
    conversation = sms_from(app)["conversation_id"]
    drain(app)
    assert agent_says(app, connection, action="accept", contact_id=conversation)["type"] == "accepted"
    return str(conversation)


def _reply(app: Client, conversation: str, text: str, key: str | None) -> Any:
    body: dict[str, Any] = {"text": text}
    if key is not None:
        body["client_message_id"] = key
    return app.http.post(f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps(body))


def _sweep_later() -> int:
    return outbox.requeue_pending(clock.plus_seconds(clock.now_iso(), LATER))


def _outbox_later(seconds: float) -> int:
    """Every job on the outbox queue handled ``seconds`` from now (leases and backoffs over), then deleted."""
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    later, handled = clock.plus_seconds(clock.now_iso(), seconds), 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            try:
                outbox.handle_outbox_record(m["Body"], later, attempt=2)
            except Exception:  # back on the queue, as SQS redelivers a failed record
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
                raise
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handled += 1
    return handled


def test_the_write_succeeded_but_its_answer_was_lost_and_the_agents_retry_sends_it_once(app, fake):
    conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    aws.client("dynamodb")
    with answer_lost_once("dynamodb", "TransactWriteItems") as fired:
        first = _reply(app, conversation, "Your order ships today.", key)
    assert fired and first.status_code == 500  # the agent saw an error: the console retries with the same key
    assert fake.sent(TWILIO) == [], "the request failed with its record: it sent nothing"

    retry = _reply(app, conversation, "Your order ships today.", key)
    assert retry.status_code == 202, retry.body
    [message] = _outbound()
    assert retry.json_body["message_id"] == message["message_id"]
    assert retry.json_body["client_message_id"] == key

    # The first request leased the message as it recorded it: the job the retry queued waits for that lease
    # (the first request might still be sending), then sends it.
    with pytest.raises(outbox.SendInProgress):
        _outbox_later(1)
    assert _outbox_later(outbox.REQUEST_LEASE_SECONDS + 1) == 1
    _sweep_later()
    while pump(app).received:
        pass
    assert [r.form["Body"] for r in fake.sent(TWILIO)] == ["Your order ships today."]
    [message] = _outbound()
    assert message["status"] == "sent"


def test_a_retry_after_success_answers_the_first_replys_result(app, fake):
    conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    first = _reply(app, conversation, "Ships today.", key)
    again = _reply(app, conversation, "Ships today.", key)
    assert first.status_code == again.status_code == 202
    assert again.json_body["message_id"] == first.json_body["message_id"]
    pump(app)
    assert len(_outbound()) == 1 and len(fake.sent(TWILIO)) == 1


def test_a_failed_send_and_a_failed_queue_send_still_answer_202_and_the_sweeper_sends_the_message(app, fake):
    conversation = _assigned_sms(app)
    fake.fail_next(1, status=503, api=TWILIO)  # the send from the request fails: its job would retry it
    aws.client("sqs")
    with fails_once("sqs", "SendMessage") as fired:  # and the job is lost too
        answer = _reply(app, conversation, "Ships today.", str(uuid.uuid4()))
    assert fired and answer.status_code == 202, answer.body
    assert queue_depth(outbox_queue_name()) == 0
    [message] = _outbound()
    assert message["status"] == "sending" and message["pending_send"] and "lease_until" not in message

    assert outbox.requeue_pending(clock.now_iso()) == 0, "too young: its own send may still be on the way"
    assert _sweep_later() == 1
    assert pump(app) == Pumped(1, [])
    assert [r.form["Body"] for r in fake.sent(TWILIO)] == ["Ships today."]
    [message] = _outbound()
    assert message["status"] == "sent" and "pending_send" not in message
    assert _sweep_later() == 0, "a sent message is no longer pending"


def test_the_sweeper_queueing_a_message_whose_job_also_arrives_sends_it_once(app, fake):
    conversation = _assigned_sms(app)
    fake.fail_next(1, status=503, api=TWILIO)  # not sent from the request: its job is queued
    assert _reply(app, conversation, "Ships today.", None).status_code == 202
    assert _sweep_later() == 1  # the message's own job has not been handled yet: queued twice now
    assert pump(app).received == 2
    assert len(fake.sent(TWILIO)) == 1


def test_the_same_key_with_another_text_is_refused_and_nothing_more_is_sent(app, fake):
    conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    assert _reply(app, conversation, "Ships today.", key).status_code == 202
    reused = _reply(app, conversation, "Ships tomorrow.", key)
    assert reused.status_code == 409
    assert reused.json_body["error"] == "idempotency_key_reused"
    assert [m["text"] for m in _outbound()] == ["Ships today."]


@pytest.mark.parametrize("key", ["", "short", "has spaces in it!", "x" * 129, 42])
def test_a_malformed_key_is_422_and_nothing_is_stored(app, fake, key):
    conversation = _assigned_sms(app)
    answer = app.http.post(
        f"/conversations/{conversation}/messages",
        headers=as_agent("ada"),
        body=json.dumps({"text": "Ships today.", "client_message_id": key}),
    )
    assert answer.status_code == 422 and "client_message_id" in answer.body.decode()
    assert _outbound() == []


def test_two_composed_messages_with_their_own_keys_are_two_replies(app, fake: FakeProviders):
    conversation = _assigned_sms(app)
    one = _reply(app, conversation, "Ships today.", str(uuid.uuid4()))
    two = _reply(app, conversation, "Ships today.", str(uuid.uuid4()))
    assert one.json_body["message_id"] != two.json_body["message_id"]
    pump(app)
    assert len(fake.sent(TWILIO)) == 2


def test_the_keys_record_expires_long_after_any_retry_could_come(app, fake, monkeypatch):
    """The key's record carries the table's TTL: kept past every console retry, SQS redelivery and the sweeper's
    passes (SWITCHBOARD_IDEMPOTENCY_RETENTION_DAYS, 30 days by default), then dropped instead of kept forever."""
    from chalicelib.settings import reload_settings
    from tests.support import data_items

    monkeypatch.setenv("SWITCHBOARD_IDEMPOTENCY_RETENTION_DAYS", "45")
    reload_settings()
    conversation = _assigned_sms(app)
    assert _reply(app, conversation, "Ships today.", str(uuid.uuid4())).status_code == 202

    [record] = [item for item in data_items() if item["sk"] == "REPLYKEY"]
    created = clock.parse_iso(record["created_at"]).timestamp()
    assert int(record["expires_at"]) == int(created) + 45 * 86400


def test_the_status_lookup_of_a_sent_message_expires_with_the_same_retention(app, fake, monkeypatch):
    """``OUTBOUND#`` (what a provider's status callbacks find) is kept as long as a callback may come, then dropped."""
    from chalicelib.settings import reload_settings
    from tests.support import data_items

    monkeypatch.setenv("SWITCHBOARD_IDEMPOTENCY_RETENTION_DAYS", "45")
    reload_settings()
    conversation = _assigned_sms(app)
    assert _reply(app, conversation, "Ships today.", str(uuid.uuid4())).status_code == 202

    lookups = [item for item in data_items() if item["sk"] == "OUTBOUND"]
    assert lookups, "the SMS was sent and its status lookup written"
    for lookup in lookups:
        assert int(lookup["expires_at"]) == int(clock.parse_iso(lookup["created_at"]).timestamp()) + 45 * 86400
