"""A follow-up on a contact its agent has accepted is pushed to that agent by the webhook itself, no routing event.

The router would only push it (``Router.on_conversation_message``, an assigned contact): skipping the routing
queue saves an invocation and three FIFO requests per follow-up. What must stay true: the agent sees every
message however the webhook's Lambda is interrupted. The message is stored before anything is pushed; a push
that fails falls back to the routing queue (SQS redelivers until the router has pushed it); a webhook that fails
anyway answers 5xx, and the provider's retry finds the message stored and queues its routing event. The matrix
below fails each AWS call of the follow-up's webhook in turn, before and after its request, and checks the end:
the message stored once, the agent told, nothing left queued.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from chalice.test import Client

from tests.faults import AFTER, BEFORE, Faults
from tests.support import (
    agent_says,
    connect_agent,
    create_agent,
    drain,
    fixture,
    offers_to,
    post_twilio,
    pushed,
    queued_message_count,
    record_aws_requests,
    stored_messages,
)

NUMBER = "+14155550123"
_ATTEMPTS = 4  # how often Twilio posts one message before the test calls it stuck


def _form(sid: str, text: str) -> bytes:
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    form.update(From=NUMBER, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=text)
    return urlencode(form).encode()


def _texts(client: Client, sid: str, text: str) -> Any:
    """Twilio posts the SMS; after a 5xx it posts the same one again."""
    for _ in range(_ATTEMPTS):
        answer = post_twilio(client, "/webhooks/twilio/messaging", _form(sid, text))
        if answer.status_code < 500:
            return answer
    raise AssertionError(f"the webhook for {sid} never answered 2xx")


def _assigned(client: Client) -> tuple[str, str]:
    """Ada accepted the customer's first SMS: (her connection, the conversation)."""
    create_agent(client, "ada", capacity=2, channels=("sms",))
    connection = connect_agent(client, "ada")
    _texts(client, "SM" + "1" * 32, "Hi, where is my order?")
    drain(client)
    [offer] = offers_to(connection)
    assert agent_says(client, connection, action="accept", contact_id=offer["contact_id"])["type"] == "accepted"
    drain(client)
    return connection, offer["contact_id"]


def _told(connection: str, message_id: str) -> list[dict[str, Any]]:
    return [p for p in pushed(connection) if p.get("type") == "message" and p.get("message_id") == message_id]


def test_a_follow_up_on_an_assigned_contact_is_pushed_by_the_webhook_without_a_routing_event(client):
    connection, conversation = _assigned(client)
    sent = record_aws_requests()
    answer = _texts(client, "SM" + "2" * 32, "It was order 1042")
    assert answer.status_code == 200

    [message] = [m for m in stored_messages() if m["text"] == "It was order 1042"]
    assert queued_message_count() == 0, "no routing event: the webhook told the agent itself"
    assert "sqs.SendMessage" not in sent and "dynamodb.TransactWriteItems" not in sent
    assert _told(connection, message["message_id"]) == [
        {
            "type": "message",
            "contact_id": conversation,
            "message_id": message["message_id"],
            "channel": "sms",
            "text": "It was order 1042",
            "received_at": message["received_at"],
        }
    ]


def test_the_webhook_pushes_the_frame_the_router_pushes(client):
    """Twilio's retry of the same follow-up goes through the routing queue (a retry always does); the router's
    frame for the assigned contact is the webhook's, field for field."""
    connection, _ = _assigned(client)
    sid = "SM" + "3" * 32
    _texts(client, sid, "Any news?")
    [message] = [m for m in stored_messages() if m["text"] == "Any news?"]
    assert queued_message_count() == 0

    assert post_twilio(client, "/webhooks/twilio/messaging", _form(sid, "Any news?")).status_code == 200
    assert queued_message_count() == 1, "a retried delivery queues its routing event"
    drain(client)
    by_webhook, by_router = _told(connection, message["message_id"])
    assert by_webhook == by_router
    assert len([m for m in stored_messages() if m["text"] == "Any news?"]) == 1


def test_a_follow_up_on_an_offered_contact_needs_no_routing_event_and_a_queued_one_goes_to_the_router(client):
    """Offered: the router would do nothing (the agent reads the conversation on accepting). Queued: the router
    tries to offer it again and tells the customer their place, so its event is queued."""
    create_agent(client, "ada", capacity=1, channels=("sms",))
    connection = connect_agent(client, "ada")
    _texts(client, "SM" + "4" * 32, "Hello?")
    drain(client)
    [offer] = offers_to(connection)
    _texts(client, "SM" + "5" * 32, "Anyone there?")
    assert queued_message_count() == 0, "offered, not accepted: nothing for the router to do"

    assert agent_says(client, connection, action="accept", contact_id=offer["contact_id"])["type"] == "accepted"
    drain(client)
    texts = [m["text"] for m in stored_messages()]
    assert texts.count("Anyone there?") == 1

    # A second customer waits (Ada is full): their follow-up goes through the router.
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    for sid, text in (("SM" + "8" * 32, "Hi"), ("SM" + "9" * 32, "Still waiting")):
        form.update(From="+14155550177", MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=text)
        assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
        if text == "Hi":
            drain(client)
    assert queued_message_count() == 1, "queued: the router decides"
    drain(client)
    assert len(offers_to(connection)) == 1


def _follow_up_sites(client: Client) -> list[str]:
    """Every AWS call site of the follow-up's webhook, in the order a fault-free run reaches them."""
    faults = Faults()
    with faults.installed():
        _texts(client, "SM" + "6" * 32, "It was order 1042")
    sites = [c.label for c in faults.calls if c.handler.startswith("webhook_")]
    assert sites, "the follow-up made no AWS call"
    return list(dict.fromkeys(sites))


# identity, profile, the conversation it joins, the claim, the message; the contact, the connections, the push
FOLLOW_UP_SITES = (
    "conversations.customers_of > conversations._batch_get > dynamodb.GetItem",
    "conversations._plan > conversations.get_customer > dynamodb.GetItem",
    "conversations._plan > conversations.get_conversation > dynamodb.GetItem",
    "conversations._claim > dynamodb.PutItem",
    "conversations._store_message > dynamodb.PutItem",
    "inbox._handled_here > routing.get_contact > dynamodb.GetItem",
    "push.to_agent > routing.connections_of > dynamodb.Query",
    "connections.post > apigatewaymanagementapi.PostToConnection",
)


def test_the_follow_up_webhook_makes_exactly_these_calls(client):
    """The matrix below fails each of these: when the follow-up's calls change, it must change too."""
    _assigned(client)
    sites = _follow_up_sites(client)
    assert len(sites) == len(FOLLOW_UP_SITES)
    for site, expected in zip(sites, FOLLOW_UP_SITES, strict=True):
        assert site.endswith(expected), (site, expected)


@pytest.mark.parametrize("when", [BEFORE, AFTER])
@pytest.mark.parametrize("site", FOLLOW_UP_SITES, ids=lambda s: s.rsplit(" > ", 2)[-2])
def test_a_fault_anywhere_in_the_follow_up_ends_with_the_agent_told_and_the_message_stored_once(client, site, when):
    connection, _ = _assigned(client)
    faults = Faults(fail=lambda call: call.handler.startswith("webhook_") and site in call.label, when=when)
    with faults.installed():
        _texts(client, "SM" + "7" * 32, "It was order 1042")
        drain(client)  # whatever fell back to the routing queue, delivered (and redelivered) by SQS
    assert faults.fired, f"{site} was never called"

    [message] = [m for m in stored_messages() if m["text"] == "It was order 1042"]
    assert _told(connection, message["message_id"]), "the agent was never told"
    assert queued_message_count() == 0


def test_a_follow_up_writes_its_conversation_only_when_the_customer_switched_channel(aws):
    """Replies go to the channel the customer wrote on last (the conversation's ``channel``): a follow-up on the
    same channel leaves the conversation unwritten, one on another channel moves it, with one plain update."""
    from chalicelib.conversations.models import Identity, InboundMessage
    from chalicelib.store import conversations as conversation_store

    def sms(n: int, channel: str = "sms") -> InboundMessage:
        return InboundMessage(channel, "twilio", f"SM{n:032d}", Identity("phone", NUMBER), text=f"text {n}")

    first = conversation_store.ingest(sms(1), "2026-11-24T10:00:00.000000Z")
    sent = record_aws_requests()
    same = conversation_store.ingest(sms(2), "2026-11-24T10:01:00.000000Z")
    assert "dynamodb.UpdateItem" not in sent and sent.count("dynamodb.PutItem") == 2  # the claim, the message
    sent.clear()
    switched = conversation_store.ingest(sms(3, "whatsapp"), "2026-11-24T10:02:00.000000Z")
    assert sent.count("dynamodb.UpdateItem") == 1
    assert first.conversation_id == same.conversation_id == switched.conversation_id
    assert (conversation_store.get_conversation(first.conversation_id) or {})["channel"] == "whatsapp"
    assert "message_count" not in (conversation_store.get_conversation(first.conversation_id) or {})

    sent.clear()
    retried = conversation_store.ingest(sms(2), "2026-11-24T10:03:00.000000Z")  # Twilio's late retry of an SMS
    assert retried.duplicate and "dynamodb.UpdateItem" not in sent
    assert (conversation_store.get_conversation(first.conversation_id) or {})["channel"] == "whatsapp"
