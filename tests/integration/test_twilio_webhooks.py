"""Twilio through the HTTP routes: SMS, MMS, WhatsApp, calls held in a queue, status callbacks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode

from chalicelib import clock
from chalicelib.store import outbound
from tests.support import (
    data_items,
    drain,
    fixture,
    iter_contacts,
    post_twilio,
    queued_message_count,
    stored_messages,
    twilio_headers,
)

MESSAGING, VOICE, STATUS = "/webhooks/twilio/messaging", "/webhooks/twilio/voice", "/webhooks/twilio/status"


def test_sms_posted_three_times_is_stored_once_and_routed_once(client):
    body = fixture("twilio/inbound_sms.txt")
    responses = [post_twilio(client, MESSAGING, body) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[0].headers["Content-Type"].startswith("text/xml")
    assert ET.fromstring(responses[0].body).tag == "Response"
    [message] = stored_messages()
    assert message["channel"] == "sms" and message["identity"] == "phone#+14155550123"
    assert message["text"].startswith("Hi, where is my order #1042?")
    drain(client)
    assert len(list(iter_contacts())) == 1


def test_mms_media_are_attachments(client):
    post_twilio(client, MESSAGING, fixture("twilio/inbound_mms_two_photos.txt"))
    [message] = stored_messages()
    assert len(message["attachments"]) == 2
    assert all(a["url"].startswith("https://api.twilio.com/") for a in message["attachments"])


def test_whatsapp_through_twilio_is_the_same_person_as_their_sms(client):
    sms = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    whatsapp = dict(parse_qsl(fixture("twilio/inbound_whatsapp_profile_name.txt").decode()))
    number = whatsapp["From"].removeprefix("whatsapp:")
    sms["From"] = number
    post_twilio(client, MESSAGING, urlencode(sms).encode())
    post_twilio(client, MESSAGING, fixture("twilio/inbound_whatsapp_profile_name.txt"))

    messages = stored_messages()
    assert {m["channel"] for m in messages} == {"sms", "whatsapp"}
    assert len({m["customer_id"] for m in messages}) == 1
    assert len({m["conversation_id"] for m in messages}) == 1


def test_incoming_call_is_held_in_a_queue_named_after_its_conversation(client):
    body = fixture("twilio/incoming_call.txt")
    first = post_twilio(client, VOICE, body)
    again = post_twilio(client, VOICE, body)

    twiml = ET.fromstring(first.body)
    enqueue = twiml.find("Enqueue")
    [message] = stored_messages()
    assert enqueue is not None and enqueue.text == message["conversation_id"]
    assert again.body == first.body
    assert message["channel"] == "voice"
    drain(client)
    [contact] = list(iter_contacts())
    assert contact["channel"] == "voice" and contact["state"] == "queued"


def test_status_callbacks_update_our_message_and_never_create_a_contact(client):
    read = dict(parse_qsl(fixture("twilio/message_status_read_whatsapp.txt").decode()))
    outbound.record("twilio", read["MessageSid"], "conv_1", "sent", clock.now_iso())
    delivered = {**read, "MessageStatus": "delivered"}

    post_twilio(client, STATUS, urlencode(read).encode())
    late = post_twilio(client, STATUS, urlencode(delivered).encode())

    assert late.status_code == 200
    assert outbound.get_status("twilio", read["MessageSid"])["status"] == "read"
    assert stored_messages() == [] and queued_message_count() == 0


def test_forged_twilio_request_is_refused_and_nothing_stored(client):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(MESSAGING, body)
    tampered = body.replace(b"Tuesday", b"Monday")
    assert client.http.post(MESSAGING, headers=headers, body=tampered).status_code == 401
    other_path = twilio_headers(VOICE, body)  # signed for another URL
    assert client.http.post(MESSAGING, headers=other_path, body=body).status_code == 401
    assert data_items() == [] and queued_message_count() == 0


def test_call_status_callback_updates_the_call_we_hold(client):
    incoming = fixture("twilio/incoming_call.txt")
    post_twilio(client, VOICE, incoming)
    call_sid = dict(parse_qsl(incoming.decode()))["CallSid"]
    assert outbound.get_status("twilio", call_sid, kind="call")["status"] == "ringing"

    completed = dict(parse_qsl(fixture("twilio/call_status_completed.txt").decode()))
    completed["CallSid"] = call_sid
    assert post_twilio(client, STATUS, urlencode(completed).encode()).status_code == 200
    assert outbound.get_status("twilio", call_sid, kind="call")["status"] == "completed"
    assert len(stored_messages()) == 1, "a status callback never creates a message"


def _outbox_jobs() -> list[dict]:
    """The jobs waiting on the outbox queue (received and left to reappear; the test ends before they do)."""
    import json

    from chalicelib.settings import outbox_queue_name
    from tests.support import lambda_service_sqs

    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_waiting_caller_is_sent_no_text_while_a_waiting_texter_hears_their_position(client):
    # No agent exists: the call and the SMS both stay queued, and each would be told its place.
    post_twilio(client, VOICE, fixture("twilio/incoming_call.txt"))
    sms = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    sms["From"] = "+14155550199"  # another customer
    post_twilio(client, MESSAGING, urlencode(sms).encode())
    drain(client)

    contacts = {c["channel"]: c for c in iter_contacts()}
    assert {c["state"] for c in contacts.values()} == {"queued"}
    [job] = _outbox_jobs()
    assert (job["channel"], job["kind"]) == ("sms", "queue_position")
    assert job["conversation_id"] == contacts["sms"]["contact_id"]
    caller_timeline = [m for m in data_items() if m.get("customer_id") == contacts["voice"]["customer_id"]]
    assert [m for m in caller_timeline if m.get("direction") == "outbound"] == [], "nothing sent, nothing failed"
    assert "acknowledged_at" not in contacts["voice"], "a caller was not told anything in writing"
