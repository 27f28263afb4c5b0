"""One person writes by e-mail, then SMS, then WhatsApp: one customer, one timeline in order, the same agent.

Everything goes through the real webhook routes with payloads signed the
way Mailgun, Twilio and Meta sign them; the e-mail and the phone are linked
with the admin endpoint, as support staff would when the customer says
"it's me on the phone too".
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from tests.support import (
    agent_says,
    as_admin,
    connect_agent,
    create_agent,
    drain,
    fixture,
    offers_to,
    post_mailgun,
    post_meta,
    post_twilio,
    pushed,
)

PHONE = "+447700900123"  # the WhatsApp Cloud fixture's sender (wa_id 447700900123)


def _email() -> dict[str, str]:
    return {
        "recipient": "support@acme-shop.example",
        "sender": "ada.lovelace@example.com",
        "from": "Ada Lovelace <Ada.Lovelace@example.com>",
        "subject": "Order 4417 has not arrived",
        "body-plain": "Hello, my order 4417 has not arrived. Can you help?\r\n",
        "stripped-text": "Hello, my order 4417 has not arrived. Can you help?",
        "Message-Id": "<CAF3kX9m2Q+order4417@mail.gmail.com>",
        "Date": "Mon, 23 Nov 2026 09:00:00 +0000",
    }


def test_email_then_sms_then_whatsapp_is_one_customer_one_timeline_one_agent(client):
    create_agent(client, "ada", capacity=3, channels=("email", "sms", "whatsapp"))
    create_agent(client, "bob", capacity=3, channels=("email", "sms", "whatsapp"), presence="Away")
    connection = connect_agent(client, "ada")

    by_email = post_mailgun(client, _email())
    assert by_email.status_code == 200, by_email.body
    drain(client)
    [offer] = offers_to(connection)
    conversation = offer["contact_id"]
    assert agent_says(client, connection, action="accept", contact_id=conversation)["type"] == "accepted"
    client.http.put("/agents/bob/presence", headers=as_admin(), body='{"presence": "Available"}')

    link = {"identities": [{"kind": "email", "value": "ada.lovelace@example.com"}, {"kind": "phone", "value": PHONE}]}
    linked = client.http.post("/admin/identities/link", headers=as_admin(), body=json.dumps(link))
    assert linked.status_code == 200, linked.body
    customer = linked.json_body["customer_id"]

    sms = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    sms.update(From=PHONE, Body="Any news on 4417? Writing by text now.")
    assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(sms).encode()).status_code == 200
    drain(client)
    assert post_meta(client, fixture("meta/whatsapp_text.json")).status_code == 200
    drain(client)

    view = client.http.get(f"/customers/{customer}", headers=as_admin()).json_body
    timeline = view["timeline"]
    assert [m["channel"] for m in timeline] == ["email", "sms", "whatsapp"]
    assert {m["conversation_id"] for m in timeline} == {conversation}
    assert [m["received_at"] for m in timeline] == sorted(m["received_at"] for m in timeline)
    assert sorted(view["customer"]["identities"]) == ["email#ada.lovelace@example.com", f"phone#{PHONE}"]

    contact = client.http.get(f"/contacts/{conversation}", headers=as_admin()).json_body
    assert contact["assigned_to"] == "ada" and contact["offer_count"] == 1
    told = [p["message_id"] for p in pushed(connection) if p.get("type") == "message"]
    assert told == [m["message_id"] for m in timeline[1:]], "the agent hears of each follow-up, on whatever channel"


def test_mailgun_replayed_token_is_refused_over_http_and_a_retry_is_stored_once(client):
    import hashlib
    import hmac
    import time

    from tests.support import CHANNEL_SECRETS, stored_messages

    timestamp, token = str(int(time.time())), "a" * 50
    key = CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"].encode()
    signature = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = urlencode({**_email(), "timestamp": timestamp, "token": token, "signature": signature}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    assert client.http.post("/webhooks/email/mailgun", headers=headers, body=body).status_code == 200
    replay = client.http.post("/webhooks/email/mailgun", headers=headers, body=body)
    assert replay.status_code == 401 and "token" in replay.json_body["message"]
    assert post_mailgun(client, _email()).status_code == 200  # Mailgun's own retry: a fresh token
    assert len(stored_messages()) == 1
    assert post_mailgun(client, _email(), age=400).status_code == 401
