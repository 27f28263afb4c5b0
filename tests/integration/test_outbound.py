"""Replies reach customers on their channel, once, and what the providers say about them reaches the timeline.

Every conversation is made the real way first: a signed inbound webhook through the app's routes.
Replies are queued with ``outbox.queue_reply`` and the outbox queue is pumped into the outbox
Lambda as SQS's event source would (``on_outbox`` once app.py wires it; until then its record
handler through Powertools' ``BatchProcessor``, which is all ``on_outbox`` runs). Twilio, Meta and
Telegram are the loopback fakes in ``tests/fakes/providers.py``, which check credentials and
request shapes as the real APIs do; SES is moto, whose backend keeps every raw e-mail sent.
Failures are injected at the boundaries: the fake providers' answers, or a botocore hook.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.exceptions import EndpointConnectionError
from chalice.test import Client
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sqs.models import sqs_backends

from chalicelib import clock
from chalicelib.conversations import identity
from chalicelib.errors import Conflict, Forbidden, InvalidPayload
from chalicelib.outbound import outbox
from chalicelib.settings import outbox_queue_name, reload_settings
from chalicelib.store import conversations, outbound, system_messages
from chalicelib.store.resources import MAX_RECEIVES, dead_letter_queue_name
from tests.fakes.providers import (
    ACCOUNT_SID,
    MESSAGING,
    META_ACCESS_TOKEN,
    TELEGRAM,
    TELEGRAM_BOT_TOKEN,
    TWILIO,
    WHATSAPP,
    FakeProviders,
    fake_providers,  # noqa: F401 (a fixture)
)
from tests.support import (
    PUBLIC_BASE_URL,
    REGION,
    agent_says,
    connect_agent,
    create_agent,
    drain,
    fails_once,
    fixture,
    lambda_service_sqs,
    post_mailgun,
    post_meta,
    post_telegram,
    post_twilio,
    record_aws_requests,
    sqs_event,
    stored_messages,
)

SUPPORT = "support@acme-shop.example"
OUR_NUMBER = "+14155550100"  # the To of the Twilio fixtures
CUSTOMER_NUMBER = "+14155550123"  # their From
CLOUD_CUSTOMER = "+447700900123"  # the WhatsApp Cloud fixture's sender
PHONE_NUMBER_ID = "106540352242922"  # the WhatsApp Cloud fixture's business number
PAGE_ID = "109876543210987"
PSID = "7034928461927365"
IGSID = "1184503262783104"
TELEGRAM_CHAT = 5193624807


@pytest.fixture
def app(client: Client, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Client:  # noqa: F811
    """The app with the providers faked and SES set up as ops would: the sending domain verified."""
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity="acme-shop.example")
    monkeypatch.setenv("EMAIL_FROM_ADDRESS", SUPPORT)
    reload_settings()
    return client


@pytest.fixture
def fake(fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811
    return fake_providers


# --- the outbox queue, pumped into the outbox Lambda -------------------------------------------------


@dataclass
class Pumped:
    received: int
    failed: list[dict[str, Any]]  # still on the queue, hidden for their backoff


def _outbox_url() -> str:
    return str(lambda_service_sqs().get_queue_url(QueueName=outbox_queue_name())["QueueUrl"])


def _outbox_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A Lambda SQS event for messages from the standard outbox queue."""
    return sqs_event(messages, f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{outbox_queue_name()}")


def pump(client: Client) -> Pumped:
    """One batch from the outbox queue into the outbox Lambda, honouring partial batch failures."""
    sqs = lambda_service_sqs()
    messages = sqs.receive_message(
        QueueUrl=_outbox_url(),
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        VisibilityTimeout=30,
    ).get("Messages", [])
    if not messages:
        return Pumped(0, [])
    event = _outbox_event(messages)
    from app import app as chalice_app

    try:
        if "on_outbox" in chalice_app.handler_map:
            response = client.lambda_.invoke("on_outbox", event).payload
        else:
            processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            response = process_partial_response(event=event, record_handler=outbox.process_record, processor=processor)
        failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    except Exception:  # an invocation error: Lambda returns the whole batch to the queue
        failed_ids = {m["MessageId"] for m in messages}
    for m in messages:
        if m["MessageId"] not in failed_ids:
            sqs.delete_message(QueueUrl=_outbox_url(), ReceiptHandle=m["ReceiptHandle"])
    return Pumped(len(messages), [m for m in messages if m["MessageId"] in failed_ids])


def backoff_passes(failed: list[dict[str, Any]]) -> None:
    """As if each failed message's backoff had run out."""
    for m in failed:
        lambda_service_sqs().change_message_visibility(
            QueueUrl=_outbox_url(), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )


def hidden_for(queue_message_id: str) -> float:
    """Seconds until the queue shows the message again (from moto's queue)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[outbox_queue_name()]
    [message] = [m for m in queue._messages if m.id == queue_message_id]
    return (message.visible_at - time.time() * 1000) / 1000


def queue_depth(name: str) -> int:
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


# --- conversations made through the real webhooks -------------------------------------------------------


def _last_inbound() -> dict[str, Any]:
    inbound = [m for m in stored_messages() if m["direction"] == "inbound"]
    return max(inbound, key=lambda m: m["received_at"])


def _outbound() -> list[dict[str, Any]]:
    return sorted((m for m in stored_messages() if m["direction"] == "outbound"), key=lambda m: m["sk"])


def _message(message_id: str) -> dict[str, Any]:
    [found] = [m for m in stored_messages() if m["message_id"] == message_id]
    return found


def _twilio_inbound(client: Client, name: str, **changes: str) -> dict[str, Any]:
    form = dict(parse_qsl(fixture(f"twilio/{name}").decode()))
    form.update(changes)
    assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    return _last_inbound()


def sms_from(client: Client, number: str = CUSTOMER_NUMBER, sid: str = "SM9f2e4d6c8b0a1f3e5d7c9b1a3f5e7d9c") -> Any:
    return _twilio_inbound(client, "inbound_sms.txt", From=number, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)


def twilio_whatsapp_from(client: Client) -> dict[str, Any]:
    return _twilio_inbound(client, "inbound_whatsapp_profile_name.txt")


def cloud_whatsapp_from(
    client: Client, wamid: str = "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggNEJDRjk2QjM2NTlCMjZCRDVBNTcxRDdGMkRBODUzNTkA"
) -> Any:
    """The Cloud API fixture, sent now (its own timestamp would put it outside the 24-hour window)."""
    document = json.loads(fixture("meta/whatsapp_text.json"))
    [message] = document["entry"][0]["changes"][0]["value"]["messages"]
    message.update(timestamp=str(int(time.time())), id=wamid)
    assert post_meta(client, json.dumps(document).encode()).status_code == 200
    return _last_inbound()


def meta_sent(name: str, at: float | None = None) -> bytes:
    """A Messenger or Instagram fixture, sent at ``at`` (default now: its own timestamp is outside the window)."""
    document = json.loads(fixture(f"meta/{name}"))
    [event] = document["entry"][0]["messaging"]
    event["timestamp"] = int((time.time() if at is None else at) * 1000)
    return json.dumps(document).encode()


def email_from(client: Client, **changes: str) -> dict[str, Any]:
    fields = {
        "recipient": SUPPORT,
        "sender": "ada.lovelace@example.com",
        "from": "Ada Lovelace <Ada.Lovelace@example.com>",
        "subject": "Order 4417 has not arrived",
        "body-plain": "Hello, my order 4417 has not arrived. Can you help?\r\n",
        "stripped-text": "Hello, my order 4417 has not arrived. Can you help?",
        "Message-Id": "<CAF3kX9m2Q+order4417@mail.gmail.com>",
        "Date": "Mon, 23 Nov 2026 09:00:00 +0000",
        **changes,
    }
    response = post_mailgun(client, fields)
    assert response.status_code == 200, response.body
    return _last_inbound()


def sent_emails() -> list[EmailMessage]:
    """Every raw e-mail SES (moto) was given, parsed."""
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    parsed = [message_from_bytes(m.raw_data.encode(), policy=policy.default) for m in backend.sent_messages]
    return [m for m in parsed if isinstance(m, EmailMessage)]


# --- one reply on every channel ------------------------------------------------------------------------


def test_sms_reply_goes_from_the_number_the_customer_texted_with_our_status_callback(app, fake):
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Your order ships today.", None, clock.now_iso())
    assert (
        queued["status"] == "queued" and queued["author"] == "ada" and queued["identity"] == f"phone#{CUSTOMER_NUMBER}"
    )

    assert pump(app) == Pumped(1, [])
    [request] = fake.sent(TWILIO)
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": CUSTOMER_NUMBER,
        "From": OUR_NUMBER,
        "Body": "Your order ships today.",
        "StatusCallback": f"{PUBLIC_BASE_URL}/webhooks/twilio/status",
    }
    sent = _message(queued["message_id"])
    assert sent["status"] == "sent" and sent["provider"] == "twilio"
    assert sent["provider_message_id"] == request.answer["sid"] and sent["sent_from"] == OUR_NUMBER
    record = outbound.get_status("twilio", request.answer["sid"])
    assert record is not None and record["status"] == "sent" and record["message_id"] == queued["message_id"]


def test_whatsapp_reply_through_twilio_keeps_the_whatsapp_prefixes(app, fake):
    inbound = twilio_whatsapp_from(app)
    outbox.queue_reply(inbound["conversation_id"], "ada", "Sim, claro! Qual é o novo endereço?", None, clock.now_iso())

    pump(app)
    [request] = fake.sent(TWILIO)
    assert request.form["To"] == f"whatsapp:{CUSTOMER_NUMBER}" and request.form["From"] == f"whatsapp:{OUR_NUMBER}"
    assert request.form["Body"] == "Sim, claro! Qual é o novo endereço?"


def test_whatsapp_cloud_reply_goes_to_the_business_number_the_customer_wrote_to(app, fake):
    inbound = cloud_whatsapp_from(app)
    queued = outbox.queue_reply(
        inbound["conversation_id"], "ada", "It left our warehouse today.", None, clock.now_iso()
    )

    pump(app)
    [request] = fake.sent(WHATSAPP)
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {META_ACCESS_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CLOUD_CUSTOMER.removeprefix("+"),
        "type": "text",
        "text": {"preview_url": False, "body": "It left our warehouse today."},
    }
    wamid = request.answer["messages"][0]["id"]
    assert _message(queued["message_id"])["provider_message_id"] == wamid
    assert outbound.get_status("whatsapp", wamid) is not None


def test_messenger_reply_goes_through_the_page_the_customer_wrote_to(app, fake):
    assert post_meta(app, meta_sent("messenger_text.json")).status_code == 200
    queued = outbox.queue_reply(_last_inbound()["conversation_id"], "ada", "Yes, send it over.", None, clock.now_iso())

    pump(app)
    [request] = fake.sent(MESSAGING)
    assert request.path == f"/v21.0/{PAGE_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {META_ACCESS_TOKEN}"
    assert request.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Yes, send it over."},
    }
    sent = _message(queued["message_id"])
    assert sent["provider"] == "messenger" and sent["provider_message_id"] == request.answer["message_id"]


def test_instagram_reply_goes_to_the_instagram_scoped_id(app, fake):
    assert post_meta(app, meta_sent("instagram_text.json")).status_code == 200
    queued = outbox.queue_reply(
        _last_inbound()["conversation_id"], "ada", "In stock in M and L.", None, clock.now_iso()
    )

    pump(app)
    [request] = fake.sent(MESSAGING)
    assert request.path == "/v21.0/me/messages"
    assert request.json["recipient"] == {"id": IGSID} and request.json["message"] == {"text": "In stock in M and L."}
    assert _message(queued["message_id"])["provider"] == "instagram"


def test_telegram_reply_goes_to_the_chat_with_the_bot_token(app, fake):
    assert post_telegram(app, fixture("telegram/message_text.json")).status_code == 200
    queued = outbox.queue_reply(
        _last_inbound()["conversation_id"], "ada", "Sorry! Checking now.", None, clock.now_iso()
    )

    pump(app)
    [request] = fake.sent(TELEGRAM)
    assert request.path == f"/bot{TELEGRAM_BOT_TOKEN}/sendMessage"
    assert request.json == {"chat_id": TELEGRAM_CHAT, "text": "Sorry! Checking now."}
    sent = _message(queued["message_id"])
    assert sent["provider_message_id"] == f"{TELEGRAM_CHAT}:{request.answer['result']['message_id']}"


def test_web_chat_reply_is_stored_sent_for_the_widget_and_calls_no_provider(app, fake):
    body = json.dumps({"site": "acme-shop", "visitor_id": "v_1", "message_id": "m_1", "text": "Hello?"}).encode()
    from tests.support import signed

    assert app.http.post("/webhooks/webchat", headers=signed(body), body=body).status_code == 200
    queued = outbox.queue_reply(_last_inbound()["conversation_id"], "ada", "Hi! How can I help?", None, clock.now_iso())

    pump(app)
    sent = _message(queued["message_id"])
    assert sent["status"] == "sent" and sent["provider"] == "webchat" and sent["identity"] == "webchat#acme-shop/v_1"
    assert fake.requests == []


def test_email_reply_threads_under_the_customers_email_and_their_answer_reopens_the_conversation(app, fake):
    create_agent(app, "ada", capacity=3, channels=("email",))
    connection = connect_agent(app, "ada")
    first = email_from(app)
    drain(app)
    conversation = first["conversation_id"]
    assert agent_says(app, connection, action="accept", contact_id=conversation)["type"] == "accepted"

    outbox.queue_reply(conversation, "ada", "We are sorry! A new parcel leaves today.", None, clock.now_iso())
    pump(app)
    [reply] = sent_emails()
    assert reply["From"] == SUPPORT and reply["To"] == "ada.lovelace@example.com"
    assert reply["Subject"] == "Re: Order 4417 has not arrived"
    assert reply["In-Reply-To"] == "<CAF3kX9m2Q+order4417@mail.gmail.com>"
    assert reply["References"] == "<CAF3kX9m2Q+order4417@mail.gmail.com>"
    assert reply.get_content().strip() == "We are sorry! A new parcel leaves today."
    our_id = reply["Message-ID"]
    assert our_id.endswith("@acme-shop.example>")
    assert agent_says(app, connection, action="close", contact_id=conversation)["type"] == "closed"

    # The customer answers our e-mail after the conversation closed: the thread brings it back.
    answer = email_from(
        app,
        **{
            "Message-Id": "<CAF3kX9m2Q+thanks@mail.gmail.com>",
            "In-Reply-To": our_id,
            "References": f"<CAF3kX9m2Q+order4417@mail.gmail.com> {our_id}",
            "subject": "Re: Order 4417 has not arrived",
            "stripped-text": "Thank you, it arrived!",
        },
    )
    assert answer["conversation_id"] == conversation

    # The next reply answers that e-mail and lists the whole thread, ours included.
    outbox.queue_reply(conversation, "ada", "Glad to hear it!", None, clock.now_iso())
    pump(app)
    second = sent_emails()[-1]
    assert second["In-Reply-To"] == "<CAF3kX9m2Q+thanks@mail.gmail.com>"
    assert second["References"].split() == [
        "<CAF3kX9m2Q+order4417@mail.gmail.com>",
        our_id,
        "<CAF3kX9m2Q+thanks@mail.gmail.com>",
    ]
    assert second["Subject"] == "Re: Order 4417 has not arrived"


def test_an_answer_naming_the_message_id_ses_gave_our_email_threads_back_too(app, fake):
    first = email_from(app)
    queued = outbox.queue_reply(first["conversation_id"], "ada", "Looking into it.", None, clock.now_iso())
    pump(app)
    ses_id = _message(queued["message_id"])["provider_message_id"]
    conversations.forget_open_conversation(first["customer_id"], first["conversation_id"])
    answer = email_from(
        app,
        **{
            "Message-Id": "<reply-to-ses@mail.gmail.com>",
            "In-Reply-To": f"<{ses_id}@email.amazonses.com>",
            "stripped-text": "Any news?",
        },
    )
    assert answer["conversation_id"] == first["conversation_id"]


# --- statuses -----------------------------------------------------------------------------------------------


def _delivered_status(sid: str) -> dict[str, str]:
    """The form of Twilio's status callback saying the message ``sid`` was delivered."""
    form = dict(parse_qsl(fixture("twilio/message_status_delivered_sms.txt").decode()))
    form.update(MessageSid=sid, SmsSid=sid, To=CUSTOMER_NUMBER, From=OUR_NUMBER)
    return form


def test_twilio_status_callback_moves_the_timeline_message_forward(app, fake):
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Your order ships today.", None, clock.now_iso())
    pump(app)
    sid = fake.sent(TWILIO)[0].answer["sid"]

    assert post_twilio(app, "/webhooks/twilio/status", urlencode(_delivered_status(sid)).encode()).status_code == 200
    assert (outbound.get_status("twilio", sid) or {}).get("status") == "delivered"
    assert _message(queued["message_id"])["status"] == "delivered"


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_a_reply_reads_the_profile_once_and_is_sent_without_reading_the_timeline_again(app, fake, channel):
    inbound = sms_from(app) if channel == "sms" else email_from(app)
    requests = record_aws_requests()
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Your order ships today.", None, clock.now_iso())
    reads = [r for r in requests if r in ("dynamodb.GetItem", "dynamodb.Query")]
    # The conversation, the customer's profile (merged?), their newest inbound messages (where it goes); an
    # e-mail also its conversation's Message-IDs (References).
    assert reads == ["dynamodb.GetItem", "dynamodb.GetItem", "dynamodb.Query"] + ["dynamodb.Query"] * (
        channel == "email"
    )
    requests.clear()
    assert pump(app).received == 1
    assert [r for r in requests if r.startswith("dynamodb.")] == [
        "dynamodb.UpdateItem",  # the claim
        "dynamodb.PutItem",  # an SMS: its OUTBOUND record (status callbacks); an e-mail: its thread item
        "dynamodb.UpdateItem",  # sent, last
    ], "the job carries where the reply goes: neither the profile nor the timeline is read to send it"
    sent = _message(queued["message_id"])
    assert sent["status"] == "sent"
    if channel == "sms":
        [request] = fake.sent(TWILIO)
        assert (request.form["To"], request.form["From"]) == (CUSTOMER_NUMBER, OUR_NUMBER)
    else:
        assert sent["sent_to"] == "ada.lovelace@example.com" and sent["subject"] == "Re: Order 4417 has not arrived"


def test_a_twilio_status_is_applied_with_one_update_and_a_late_sent_touches_nothing(app, fake):
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Your order ships today.", None, clock.now_iso())
    pump(app)
    sid = fake.sent(TWILIO)[0].answer["sid"]
    form = _delivered_status(sid)

    requests = record_aws_requests()
    assert post_twilio(app, "/webhooks/twilio/status", urlencode(form).encode()).status_code == 200
    # The record's forward-only update returns where its timeline message is: nothing is read to apply it.
    assert [r for r in requests if r.startswith("dynamodb.")] == [
        "dynamodb.UpdateItem",  # the OUTBOUND record, conditioned on its rank
        "dynamodb.UpdateItem",  # its timeline message, likewise
        "dynamodb.GetItem",  # the conversation: whose agent to tell (none has it here)
    ]
    requests.clear()
    for late in ("sent", "queued", "sending"):
        answer = post_twilio(app, "/webhooks/twilio/status", urlencode({**form, "MessageStatus": late}).encode())
        assert answer.status_code == 200
    assert requests == [], "a status the outbox already recorded (sent) or an earlier one is answered at once"
    assert (outbound.get_status("twilio", sid) or {}).get("status") == "delivered"
    assert _message(queued["message_id"])["status"] == "delivered"
    requests.clear()
    failed = {**form, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert post_twilio(app, "/webhooks/twilio/status", urlencode(failed).encode()).status_code == 200
    assert requests == ["dynamodb.UpdateItem"], "a late failure after delivery: one failed conditional update"
    assert _message(queued["message_id"])["status"] == "delivered"
    unknown = {**form, "MessageSid": "SM" + "0" * 32, "SmsSid": "SM" + "0" * 32}
    assert post_twilio(app, "/webhooks/twilio/status", urlencode(unknown).encode()).status_code == 200
    assert outbound.get_status("twilio", "SM" + "0" * 32) is None, "a callback for a message we never sent"


def test_whatsapp_statuses_move_the_timeline_message_forward_and_never_back(app, fake):
    inbound = cloud_whatsapp_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "On its way.", None, clock.now_iso())
    pump(app)
    wamid = fake.sent(WHATSAPP)[0].answer["messages"][0]["id"]
    document = json.loads(fixture("meta/whatsapp_statuses.json"))
    statuses = document["entry"][0]["changes"][0]["value"]["statuses"]
    read, delivered = copy.deepcopy(statuses[2]), copy.deepcopy(statuses[1])
    for status in (read, delivered):
        status["id"] = wamid
    document["entry"][0]["changes"][0]["value"]["statuses"] = [read, delivered]  # out of order, as Meta may

    assert post_meta(app, json.dumps(document).encode()).status_code == 200
    assert _message(queued["message_id"])["status"] == "read"


def test_apply_status_updates_the_timeline_forward_only(app, fake):
    from chalicelib.channels.base import StatusUpdate

    inbound = cloud_whatsapp_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "On its way.", None, clock.now_iso())
    pump(app)
    wamid = fake.sent(WHATSAPP)[0].answer["messages"][0]["id"]

    assert outbox.apply_status(StatusUpdate("whatsapp", wamid, "read"), clock.now_iso())
    assert not outbox.apply_status(StatusUpdate("whatsapp", wamid, "delivered"), clock.now_iso())
    assert _message(queued["message_id"])["status"] == "read"
    failed = StatusUpdate("twilio", "SMunknown", "failed", error="30003: Unreachable")
    assert not outbox.apply_status(failed, clock.now_iso()), "a status for a message we never sent changes nothing"


# --- failures and retries ---------------------------------------------------------------------------------------


def test_a_provider_outage_is_retried_with_backoff_and_sent_once_it_recovers(app, fake):
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Ships today.", None, clock.now_iso())
    fake.fail_next(2, status=503, api=TWILIO)

    first = pump(app)
    [message] = first.failed
    assert 8 < hidden_for(message["MessageId"]) <= 10  # 2**1 * 5 seconds
    stored = _message(queued["message_id"])
    assert stored["status"] == "sending" and "20500" in stored["last_error"] and "lease_until" not in stored
    backoff_passes(first.failed)

    second = pump(app)
    assert 18 < hidden_for(second.failed[0]["MessageId"]) <= 20  # 2**2 * 5
    backoff_passes(second.failed)

    assert pump(app) == Pumped(1, [])
    assert len(fake.sent(TWILIO)) == 1 and len(fake.requests) == 3
    assert _message(queued["message_id"])["status"] == "sent"
    assert queue_depth(outbox_queue_name()) == 0


def test_rate_limits_and_dropped_connections_are_retried_too(app, fake):
    assert post_telegram(app, fixture("telegram/message_text.json")).status_code == 200
    queued = outbox.queue_reply(_last_inbound()["conversation_id"], "ada", "Checking.", None, clock.now_iso())
    fake.fail_next(1, status=429, api=TELEGRAM)
    fake.fail_next(1, drop=True, api=TELEGRAM)

    for _ in range(2):
        pumped = pump(app)
        assert len(pumped.failed) == 1
        backoff_passes(pumped.failed)
    assert pump(app) == Pumped(1, [])
    assert len(fake.sent(TELEGRAM)) == 1 and _message(queued["message_id"])["status"] == "sent"


def test_after_the_last_attempt_the_job_lands_in_the_dead_letter_queue_and_a_redrive_sends_it(app, fake):
    inbound = cloud_whatsapp_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "On its way.", None, clock.now_iso())
    fake.fail_next(MAX_RECEIVES, status=500, api=WHATSAPP)

    for attempt in range(1, MAX_RECEIVES + 1):
        pumped = pump(app)
        assert len(pumped.failed) == 1, attempt
        assert pumped.failed[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        backoff_passes(pumped.failed)
    assert pump(app) == Pumped(0, []), "SQS moves it to the dead-letter queue instead of a sixth delivery"
    assert queue_depth(outbox_queue_name()) == 0 and queue_depth(dead_letter_queue_name(outbox_queue_name())) == 1
    gave_up = _message(queued["message_id"])
    assert gave_up["status"] == "failed" and gave_up["error"].startswith(f"gave up after {MAX_RECEIVES} attempts")
    assert fake.sent(WHATSAPP) == []

    # Ops redrive the dead letters once Meta is back: the message is claimed again and sent.
    sqs = lambda_service_sqs()
    dlq = sqs.get_queue_url(QueueName=dead_letter_queue_name(outbox_queue_name()))["QueueUrl"]
    [dead] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    sqs.send_message(QueueUrl=_outbox_url(), MessageBody=dead["Body"])
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=dead["ReceiptHandle"])
    assert pump(app) == Pumped(1, [])
    assert len(fake.sent(WHATSAPP)) == 1 and _message(queued["message_id"])["status"] == "sent"


def test_a_final_rejection_marks_the_message_failed_with_the_providers_words_and_is_not_retried(app, fake):
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Ships today.", None, clock.now_iso())
    fake.fail_next(1, status=400, api=TWILIO)

    assert pump(app) == Pumped(1, []), "nothing to retry: the job is done"
    failed = _message(queued["message_id"])
    assert failed["status"] == "failed" and failed["error"].startswith("21211: The 'To' number")
    assert queue_depth(outbox_queue_name()) == 0 and len(fake.requests) == 1


def test_a_customer_who_blocked_the_bot_fails_at_once(app, fake):
    assert post_telegram(app, fixture("telegram/message_text.json")).status_code == 200
    queued = outbox.queue_reply(_last_inbound()["conversation_id"], "ada", "Checking.", None, clock.now_iso())
    fake.fail_next(1, status=403, api=TELEGRAM)

    assert pump(app) == Pumped(1, [])
    assert _message(queued["message_id"])["error"] == "Forbidden: bot was blocked by the user"


def test_wrong_credentials_are_retried_not_failed_so_the_messages_wait_for_ops(app, fake, monkeypatch):
    inbound = cloud_whatsapp_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "On its way.", None, clock.now_iso())
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAexpired")

    pumped = pump(app)
    assert len(pumped.failed) == 1 and fake.requests[0].status == 401
    assert "190" in _message(queued["message_id"])["last_error"]


# --- sent once ----------------------------------------------------------------------------------------------------


def test_a_redelivered_job_sends_nothing_twice(app, fake):
    inbound = sms_from(app)
    outbox.queue_reply(inbound["conversation_id"], "ada", "Ships today.", None, clock.now_iso())
    sqs = lambda_service_sqs()
    [job] = sqs.receive_message(QueueUrl=_outbox_url(), MaxNumberOfMessages=10)["Messages"]
    backoff_passes([job])
    sqs.send_message(QueueUrl=_outbox_url(), MessageBody=job["Body"])  # SQS standard queues deliver twice, rarely

    assert pump(app).received == 2
    assert pump(app) == Pumped(0, [])
    outbox.handle_outbox_record(job["Body"], clock.now_iso(), attempt=3)  # and once more, much later
    assert len(fake.sent(TWILIO)) == 1 and len(fake.requests) == 1


def test_losing_aws_before_the_send_costs_a_retry_and_nothing_more(app, fake):
    inbound = sms_from(app)
    # A system message: its job carries no destination (an agent's reply does), so it is resolved after the claim.
    queued = outbox.enqueue(
        inbound["conversation_id"], inbound["customer_id"], "sms", "Ships today.", "queue_position", clock.now_iso()
    )

    with fails_once("dynamodb", "Query") as fired:  # reading where to send, after the claim
        pumped = pump(app)
    assert fired and len(pumped.failed) == 1 and fake.requests == []
    backoff_passes(pumped.failed)
    assert pump(app) == Pumped(1, []), "the failed attempt released its claim"
    assert len(fake.sent(TWILIO)) == 1 and _message(queued["message_id"])["status"] == "sent"


def test_the_at_least_once_window_a_crash_between_the_send_and_its_record(app, fake):
    """The documented window: the provider took it, we died before the commit; the lease holds, then it resends."""
    inbound = sms_from(app)
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Ships today.", None, clock.now_iso())
    [job] = lambda_service_sqs().receive_message(QueueUrl=_outbox_url())["Messages"]
    start = clock.now_iso()

    with fails_once("dynamodb", "PutItem"), pytest.raises(EndpointConnectionError):  # the commit's first write
        outbox.handle_outbox_record(job["Body"], start, attempt=1)
    assert len(fake.sent(TWILIO)) == 1
    with pytest.raises(outbox.SendInProgress):  # an early redelivery waits for the lease
        outbox.handle_outbox_record(job["Body"], clock.plus_seconds(start, 5), attempt=2)
    assert len(fake.sent(TWILIO)) == 1

    outbox.handle_outbox_record(job["Body"], clock.plus_seconds(start, outbox.LEASE_SECONDS + 1), attempt=3)
    first, second = fake.sent(TWILIO)
    assert first.form == second.form, "sent again: Twilio takes no idempotency key"
    assert _message(queued["message_id"])["provider_message_id"] == second.answer["sid"]


def test_an_answer_lost_on_the_way_back_is_sent_again_as_documented(app, fake):
    inbound = sms_from(app)
    outbox.queue_reply(inbound["conversation_id"], "ada", "Ships today.", None, clock.now_iso())
    fake.fail_next(1, api=TWILIO, drop=True, after_taking=True)

    pumped = pump(app)
    backoff_passes(pumped.failed)
    pump(app)
    assert len(fake.sent(TWILIO)) == 2


# --- the WhatsApp window, other identities, refusals --------------------------------------------------------------


def test_whatsapp_free_form_reply_after_24_hours_is_refused_and_nothing_is_stored(app, fake):
    inbound = cloud_whatsapp_from(app)
    later = clock.plus_seconds(clock.now_iso(), 25 * 3600)

    with pytest.raises(Conflict, match=r"24-hour customer service window.*use a template"):
        outbox.queue_reply(inbound["conversation_id"], "ada", "Are you still there?", None, later)
    assert _outbound() == [] and queue_depth(outbox_queue_name()) == 0

    within = clock.plus_seconds(clock.now_iso(), 23 * 3600)
    assert outbox.queue_reply(inbound["conversation_id"], "ada", "Are you still there?", None, within)


def test_whatsapp_through_twilio_has_the_same_window(app, fake):
    inbound = twilio_whatsapp_from(app)
    later = clock.plus_seconds(clock.now_iso(), 24 * 3600 + 60)
    with pytest.raises(Conflict):
        outbox.queue_reply(inbound["conversation_id"], "ada", "Hello?", None, later)
    assert _outbound() == []


def test_reply_by_sms_or_email_to_a_customer_whose_conversation_is_on_whatsapp(app, fake):
    sms_from(app, CLOUD_CUSTOMER)  # the same person texted our Twilio number earlier
    inbound = cloud_whatsapp_from(app)
    conversation = inbound["conversation_id"]
    # Support staff link her e-mail to her phone (what POST /admin/identities/link does).
    linked = conversations.link_identities(
        [identity.phone(CLOUD_CUSTOMER), identity.email("ada@example.com")], clock.now_iso()
    )
    assert linked["customer_id"] == inbound["customer_id"]

    by_sms = outbox.queue_reply(
        conversation, "ada", "Texting you the tracking link.", "phone#+44 7700 900123", clock.now_iso()
    )
    by_email = outbox.queue_reply(
        conversation, "ada", "Your invoice is attached below.\nThanks!", "email#Ada@Example.com", clock.now_iso()
    )
    by_default = outbox.queue_reply(conversation, "ada", "And here on WhatsApp.", None, clock.now_iso())
    assert (by_sms["channel"], by_email["channel"], by_default["channel"]) == ("sms", "email", "whatsapp")

    pump(app)
    [sms] = fake.sent(TWILIO)
    assert sms.form["To"] == CLOUD_CUSTOMER and sms.form["From"] == OUR_NUMBER
    [email] = sent_emails()
    assert email["To"] == "ada@example.com" and email["Subject"] == "Your invoice is attached below."
    assert email["In-Reply-To"] is None, "no e-mail of theirs in this conversation to answer"
    [whatsapp] = fake.sent(WHATSAPP)
    assert whatsapp.json["to"] == CLOUD_CUSTOMER.removeprefix("+")
    assert {m["conversation_id"] for m in _outbound()} == {conversation}


def test_sms_to_a_customer_who_never_texted_goes_through_the_messaging_service_they_know(app, fake):
    inbound = twilio_whatsapp_from(app)
    outbox.queue_reply(inbound["conversation_id"], "ada", "Texting you.", None, clock.now_iso(), channel="sms")

    pump(app)
    [request] = fake.sent(TWILIO)
    assert request.form["To"] == CUSTOMER_NUMBER
    assert request.form["MessagingServiceSid"] == "MG3e9d1c7b5a4f2e0d8c6b4a2f1e3d5c7b" and "From" not in request.form


def test_an_identity_of_another_customer_is_forbidden_and_a_malformed_one_invalid(app, fake):
    mine = sms_from(app)
    sms_from(app, "+14155550199", sid="SM00000000000000000000000000000199")  # someone else

    with pytest.raises(Forbidden):
        outbox.queue_reply(mine["conversation_id"], "ada", "Hi", "phone#+14155550199", clock.now_iso())
    with pytest.raises(Forbidden):
        outbox.queue_reply(mine["conversation_id"], "ada", "Hi", "email#nobody@example.com", clock.now_iso())
    with pytest.raises(InvalidPayload):
        outbox.queue_reply(mine["conversation_id"], "ada", "Hi", "phone#not-a-number", clock.now_iso())
    with pytest.raises(InvalidPayload):
        outbox.queue_reply(mine["conversation_id"], "ada", "   ", None, clock.now_iso())
    with pytest.raises(InvalidPayload, match="1600"):
        outbox.queue_reply(mine["conversation_id"], "ada", "x" * 1601, None, clock.now_iso())
    assert _outbound() == []


# --- Switchboard's own messages go the same way ----------------------------------------------------------------


def test_a_queue_position_message_from_the_router_is_sent_like_a_reply(app, fake):
    inbound = sms_from(app)
    system_messages.send(
        inbound["conversation_id"],
        inbound["customer_id"],
        "sms",
        "You are number 2 in the queue.",
        "queue_position",
        clock.now_iso(),
    )

    assert pump(app) == Pumped(1, [])
    [request] = fake.sent(TWILIO)
    assert request.form["Body"] == "You are number 2 in the queue." and request.form["To"] == CUSTOMER_NUMBER
    [message] = _outbound()
    assert message["status"] == "sent" and message["author"] == "system"


def test_a_message_on_a_channel_without_a_way_back_fails_without_a_retry(app, fake):
    inbound = sms_from(app)
    system_messages.send(
        inbound["conversation_id"], inbound["customer_id"], "voice", "Please hold.", "queue_position", clock.now_iso()
    )

    assert pump(app) == Pumped(1, [])
    [message] = _outbound()
    assert message["status"] == "failed" and "voice" in message["error"] and fake.requests == []


def test_the_agent_sees_their_replys_delivery_status_live(app, fake):
    from tests.support import agent_says, connect_agent, create_agent, drain, pushed

    create_agent(app, "ada", channels=("sms",))
    connection = connect_agent(app, "ada")
    inbound = sms_from(app)
    drain(app)
    agent_says(app, connection, action="accept", contact_id=inbound["conversation_id"])
    queued = outbox.queue_reply(inbound["conversation_id"], "ada", "Shipped today.", None, clock.now_iso())
    pump(app)
    sid = fake.sent(TWILIO)[0].answer["sid"]

    post_twilio(app, "/webhooks/twilio/status", urlencode(_delivered_status(sid)).encode())

    [status] = [p for p in pushed(connection) if p.get("type") == "message_status"]
    assert (status["message_id"], status["status"]) == (queued["message_id"], "delivered")


def test_after_a_transfer_a_replys_delivery_status_goes_to_whoever_has_the_conversation_now(app, fake):
    """The status is pushed to the agent the conversation is assigned to now: not to the agent who wrote the reply
    and transferred it away (their console no longer shows it), and to the colleague once they accept it."""
    from tests.support import agent_says, as_agent, connect_agent, create_agent, drain, pushed

    create_agent(app, "ada", channels=("sms",))
    create_agent(app, "bea", channels=("sms",), presence="Offline")
    ada, bea = connect_agent(app, "ada"), connect_agent(app, "bea")
    inbound = sms_from(app)
    conversation = inbound["conversation_id"]
    drain(app)
    agent_says(app, ada, action="accept", contact_id=conversation)
    outbox.queue_reply(conversation, "ada", "Passing you to our returns team.", None, clock.now_iso())
    pump(app)
    first_sid = fake.sent(TWILIO)[0].answer["sid"]
    moved = app.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent("ada"), body=json.dumps({"agent_id": "bea"})
    )
    assert moved.status_code == 200, moved.body
    drain(app)

    post_twilio(app, "/webhooks/twilio/status", urlencode(_delivered_status(first_sid)).encode())
    assert not [p for p in pushed(ada) if p.get("type") == "message_status"], "ada has handed it over"

    app.http.put("/agents/bea/presence", headers=as_agent("bea"), body=json.dumps({"presence": "Available"}))
    drain(app)
    offer = [p for p in pushed(bea) if p.get("type") == "offer"][-1]
    assert agent_says(app, bea, action="accept", contact_id=conversation, offer_id=offer["offer_id"])["type"] != "error"
    outbox.queue_reply(conversation, "bea", "Hi, Bea from returns here.", None, clock.now_iso())
    pump(app)
    [bea_sid] = [r.answer["sid"] for r in fake.sent(TWILIO) if "Bea from returns" in r.form.get("Body", "")]
    post_twilio(app, "/webhooks/twilio/status", urlencode(_delivered_status(bea_sid)).encode())
    [status] = [p for p in pushed(bea) if p.get("type") == "message_status"]
    assert (status["conversation_id"], status["status"]) == (conversation, "delivered")
    assert not [p for p in pushed(ada) if p.get("type") == "message_status"]


def test_with_an_api_key_set_twilio_requests_authenticate_with_it_not_the_auth_token(app, fake, monkeypatch):
    """Twilio takes either ``AccountSid:AuthToken`` or ``ApiKeySid:ApiKeySecret`` as Basic auth; with a key set, the
    key is used (it can be revoked alone); the account stays in the path."""
    import base64

    from chalicelib.settings import reload_settings
    from tests.fakes.twilio_voice import API_KEY_SECRET, API_KEY_SID

    monkeypatch.setenv("TWILIO_API_KEY_SID", API_KEY_SID)
    monkeypatch.setenv("TWILIO_API_KEY_SECRET", API_KEY_SECRET)
    reload_settings()
    inbound = sms_from(app)
    outbox.queue_reply(inbound["conversation_id"], "ada", "Your order ships today.", None, clock.now_iso())

    assert pump(app) == Pumped(1, [])
    [request] = fake.sent(TWILIO)
    assert request.status == 201 and request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()
    )
