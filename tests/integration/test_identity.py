"""One person, one customer: identities resolve, link and merge; histories are kept; conversations follow."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.channels.base import StatusUpdate
from chalicelib.conversations import inbox
from chalicelib.conversations.identity import email, phone
from chalicelib.conversations.models import EmailThread, Identity, InboundMessage
from chalicelib.store import conversations, outbound
from tests.support import (
    agent_says,
    as_admin,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_api_channel,
    post_webchat,
    pushed,
    webchat_payload,
)

JSON = {"Content-Type": "application/json"}


def _message(identity: Identity, provider_id: str, text: str = "hello", **extra) -> InboundMessage:
    return InboundMessage(
        channel=extra.pop("channel", "sms"),
        provider=extra.pop("provider", "test"),
        provider_message_id=provider_id,
        identity=identity,
        text=text,
        **extra,
    )


def _link(client, *identities: dict) -> dict:
    response = client.http.post(
        "/admin/identities/link", headers=as_admin(), body=json.dumps({"identities": identities})
    )
    assert response.status_code == 200, response.body
    return response.json_body


def test_phone_is_one_identity_across_sms_and_whatsapp(client):
    sms = inbox.receive(_message(phone("+44 7700 900123"), "SM1", channel="sms"))
    whatsapp = inbox.receive(_message(phone("whatsapp:+447700900123"), "wamid.1", channel="whatsapp"))
    assert sms.customer_id == whatsapp.customer_id
    assert sms.conversation_id == whatsapp.conversation_id
    assert conversations.get_conversation(sms.conversation_id)["channel"] == "whatsapp"


def test_claimed_email_links_web_chat_to_the_known_customer(client):
    first = post_webchat(client, webchat_payload(visitor="v1", message="m1", email="ada@example.com")).json_body
    by_api = post_api_channel(
        client,
        {"source": "app", "message_id": "a1", "user": {"id": "u1", "email": "ADA@example.com"}, "text": "hi again"},
    ).json_body
    assert by_api["customer_id"] == first["customer_id"]
    assert by_api["conversation_id"] == first["conversation_id"]


def test_link_endpoint_attaches_an_unknown_identity_and_is_idempotent(client):
    known = inbox.receive(_message(email("ada@example.com"), "e1", channel="email"))
    linked = _link(client, {"kind": "email", "value": "Ada@Example.com"}, {"kind": "phone", "value": "+447700900123"})
    assert linked == {"customer_id": known.customer_id, "merged": [], "linked": ["phone#+447700900123"]}
    again = _link(client, {"kind": "email", "value": "ada@example.com"}, {"kind": "phone", "value": "+447700900123"})
    assert again == {"customer_id": known.customer_id, "merged": [], "linked": []}

    sms = inbox.receive(_message(phone("+447700900123"), "SM9"))
    assert sms.customer_id == known.customer_id


def test_linking_two_customers_merges_them_keeping_both_histories(client):
    by_email = inbox.receive(_message(email("ada@example.com"), "e1", text="from e-mail", channel="email"))
    by_phone = inbox.receive(_message(phone("+447700900123"), "SM1", text="from sms"))
    assert by_email.customer_id != by_phone.customer_id

    result = _link(client, {"kind": "email", "value": "ada@example.com"}, {"kind": "phone", "value": "+447700900123"})
    assert result["customer_id"] == by_email.customer_id and result["merged"] == [by_phone.customer_id]
    assert (
        _link(client, {"kind": "phone", "value": "+447700900123"}, {"kind": "email", "value": "ada@example.com"})[
            "merged"
        ]
        == []
    )

    later = inbox.receive(_message(phone("+447700900123"), "SM2", text="later sms"))
    assert later.customer_id == by_email.customer_id
    view = client.http.get(f"/customers/{by_email.customer_id}", headers=as_admin()).json_body
    assert [m["text"] for m in view["timeline"]] == ["from e-mail", "from sms", "later sms"]
    assert view["customer"]["merged_from"] == [by_phone.customer_id]
    merged_view = client.http.get(f"/customers/{by_phone.customer_id}", headers=as_admin()).json_body
    assert merged_view["customer"]["customer_id"] == by_email.customer_id


def test_merge_endpoint_is_idempotent_and_refuses_nonsense(client):
    a = inbox.receive(_message(email("a@example.com"), "e1"))
    b = inbox.receive(_message(email("b@example.com"), "e2"))
    body = json.dumps({"source": b.customer_id, "target": a.customer_id})
    first = client.http.post("/admin/customers/merge", headers=as_admin(), body=body).json_body
    second = client.http.post("/admin/customers/merge", headers=as_admin(), body=body).json_body
    assert first["changed"] is True and second["changed"] is False
    self_merge = json.dumps({"source": a.customer_id, "target": a.customer_id})
    assert client.http.post("/admin/customers/merge", headers=as_admin(), body=self_merge).status_code == 422
    reverse = json.dumps({"source": a.customer_id, "target": b.customer_id})
    assert client.http.post("/admin/customers/merge", headers=as_admin(), body=reverse).status_code == 409
    unknown = json.dumps({"source": "cus_" + "0" * 20, "target": a.customer_id})
    assert client.http.post("/admin/customers/merge", headers=as_admin(), body=unknown).status_code == 404
    nobody = {"identities": [{"kind": "email", "value": "x@example.com"}, {"kind": "phone", "value": "+15005550006"}]}
    assert client.http.post("/admin/identities/link", headers=as_admin(), body=json.dumps(nobody)).status_code == 404
    bad = {"identities": [{"kind": "phone", "value": "twelve"}, {"kind": "email", "value": "a@example.com"}]}
    assert client.http.post("/admin/identities/link", headers=as_admin(), body=json.dumps(bad)).status_code == 422


def test_follow_up_on_another_channel_reaches_the_same_agent(client):
    create_agent(client, "ada", capacity=2, channels=("sms", "whatsapp", "email"))
    connection = connect_agent(client, "ada")
    first = inbox.receive(_message(phone("+447700900123"), "SM1", channel="sms"))
    drain(client)
    agent_says(client, connection, action="accept", contact_id=first.conversation_id)

    follow_up = inbox.receive(_message(phone("+447700900123"), "wamid.X", channel="whatsapp"))
    drain(client)

    assert follow_up.conversation_id == first.conversation_id
    assert len(offers_to(connection)) == 1, "no second contact for the same conversation"
    [note] = [p for p in pushed(connection) if p.get("type") == "message"]
    assert (note["contact_id"], note["message_id"]) == (first.conversation_id, follow_up.message_id)
    assert (note["channel"], note["text"]) == ("whatsapp", "hello"), "the agent sees the new message itself"


def test_stale_open_conversation_pointer_opens_a_new_conversation(client):
    first = inbox.receive(_message(email("ada@example.com"), "e1"))
    # A close that died before clearing the customer's pointer leaves it pointing at a closed conversation.
    from chalicelib.store import aws
    from chalicelib.store.dynamo import key, to_values

    aws.client("dynamodb").update_item(
        TableName="switchboard-data",
        Key=key(f"CONVERSATION#{first.conversation_id}", "META"),
        UpdateExpression="SET #s = :closed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_values({":closed": "closed"}),
    )
    second = inbox.receive(_message(email("ada@example.com"), "e2"))
    assert second.conversation_id != first.conversation_id
    assert conversations.get_customer(first.customer_id)["open_conversation_id"] == second.conversation_id


def test_email_reply_to_a_closed_thread_reopens_that_conversation(client):
    create_agent(client, "ada", capacity=2, channels=("sms", "whatsapp", "email"))
    connection = connect_agent(client, "ada")
    original = inbox.receive(
        _message(email("ada@example.com"), "ses-1", channel="email", thread=EmailThread(message_id="<m1@example.com>"))
    )
    drain(client)
    agent_says(client, connection, action="accept", contact_id=original.conversation_id)
    agent_says(client, connection, action="close", contact_id=original.conversation_id)
    drain(client)

    reply = inbox.receive(
        _message(
            email("ada@example.com"),
            "ses-2",
            channel="email",
            thread=EmailThread("<m2@example.com>", "<m1@example.com>", ("<m1@example.com>",)),
        )
    )
    drain(client)

    assert reply.conversation_id == original.conversation_id
    assert conversations.get_conversation(original.conversation_id)["status"] == "open"
    assert [o["contact_id"] for o in offers_to(connection)] == [original.conversation_id] * 2
    unrelated = inbox.receive(
        _message(
            email("bob@example.com"),
            "ses-3",
            channel="email",
            thread=EmailThread("<m3@example.com>", "<m1@example.com>"),
        )
    )
    assert unrelated.conversation_id != original.conversation_id, "a thread never crosses to another customer"


def test_statuses_only_move_forward(client):
    now = clock.now_iso()
    outbound.record("whatsapp", "wamid.OUT1", "conv_x", "sent", now)
    for status in ("read", "delivered", "sent", "failed"):
        outbound.apply(StatusUpdate("whatsapp", "wamid.OUT1", status), now)
    assert outbound.get_status("whatsapp", "wamid.OUT1")["status"] == "read"

    outbound.record("twilio", "SM_OUT", "conv_x", "queued", now)
    assert outbound.apply(StatusUpdate("twilio", "SM_OUT", "failed", error="30008"), now)
    assert outbound.get_status("twilio", "SM_OUT")["error"] == "30008"
    assert not outbound.apply(StatusUpdate("twilio", "SM_UNKNOWN", "delivered"), now)
    assert outbound.get_status("twilio", "SM_UNKNOWN") is None
