"""An agent's reply sent as a command on the console's WebSocket (``{"action": "reply", ...}``).

It calls the same reply service as ``POST /conversations/{id}/messages`` (``agents.work.reply``): the same
validation, idempotency key and errors, answered on the socket instead of in an HTTP response. The customer's
phone is the fake Twilio server; the outbox queue is pumped into its Lambda as the event source would.
"""

# ruff: noqa: F811 (the fixtures imported from test_outbound are used as arguments)
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from chalice.test import Client

from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import _outbound, app, fake, pump, sms_from  # noqa: F401 (fixtures)
from tests.integration.test_reply_sent_inline import _sweep_and_send_later
from tests.support import (
    agent_says,
    answer_lost_once,
    as_agent,
    connect_agent,
    create_agent,
    drain,
    pushed,
    ws_event,
)

TEXT = "Your order ships today."


def _assigned_sms(app: Client) -> tuple[str, str]:
    """Ada's console connected, an SMS conversation accepted by her: (connection id, conversation id)."""
    create_agent(app, "ada", channels=("sms",))
    connection = connect_agent(app, "ada")
    conversation = str(sms_from(app)["conversation_id"])
    drain(app)
    assert agent_says(app, connection, action="accept", contact_id=conversation)["type"] == "accepted"
    return connection, conversation


def _reply(app: Client, connection: str, conversation: str, text: Any = TEXT, **fields: Any) -> dict[str, Any]:
    return agent_says(app, connection, action="reply", conversation_id=conversation, text=text, **fields)


def _delivered(app: Client, fake: FakeProviders) -> list[str]:
    """What Twilio received once the outbox queue is empty."""
    while pump(app).received:
        pass
    return [r.form["Body"] for r in fake.sent(TWILIO)]


def test_a_reply_on_the_socket_is_stored_once_sent_once_and_answered_on_the_socket(app, fake):
    connection, conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    answer = _reply(app, connection, conversation, client_message_id=key)
    assert answer["type"] == "replied", answer
    assert answer["conversation_id"] == conversation and answer["client_message_id"] == key
    [message] = _outbound()
    assert answer["message"]["message_id"] == message["message_id"]
    assert (message["text"], message["author"], message["channel"]) == (TEXT, "ada", "sms")
    assert _delivered(app, fake) == [TEXT]
    [message] = _outbound()
    assert message["status"] == "sent"


def test_the_socket_answer_is_the_rest_routes_answer(app, fake):
    """One reply service: what the socket answers in ``message`` is what the REST route answers as its body."""
    connection, conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    over_socket = _reply(app, connection, conversation, client_message_id=key)["message"]
    body = json.dumps({"text": TEXT, "client_message_id": key})
    over_rest = app.http.post(f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=body)
    assert over_rest.status_code == 202
    assert over_rest.json_body == over_socket, "a REST retry of a socket reply answers the first reply"
    assert _delivered(app, fake) == [TEXT]


def test_a_retried_reply_with_the_same_key_is_not_sent_twice(app, fake):
    connection, conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    first = _reply(app, connection, conversation, client_message_id=key)
    again = _reply(app, connection, conversation, client_message_id=key)
    assert first["type"] == again["type"] == "replied"
    assert again["message"]["message_id"] == first["message"]["message_id"]
    assert len(_outbound()) == 1
    assert _delivered(app, fake) == [TEXT]


def test_a_reply_whose_write_answer_was_lost_is_answered_with_an_error_and_its_retry_sends_it_once(app, fake):
    connection, conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    before = len(pushed(connection))
    command = json.dumps({"action": "reply", "conversation_id": conversation, "text": TEXT, "client_message_id": key})
    with answer_lost_once("dynamodb", "TransactWriteItems") as fired, pytest.raises(Exception):  # noqa: B017
        app.lambda_.invoke("ws_message", ws_event("$default", connection, body=command))
    assert fired
    [error] = pushed(connection)[before:]
    assert error["type"] == "error" and error["error"] == "internal_error" and error["status"] == 500
    assert error["action"] == "reply" and error["client_message_id"] == key, "the console knows which one to retry"

    retry = _reply(app, connection, conversation, client_message_id=key)
    assert retry["type"] == "replied", retry
    [message] = _outbound()
    assert retry["message"]["message_id"] == message["message_id"]
    # The reply was recorded leased to the request that died: the retry answers it, and the sweeper sends it once
    # the lease is over (the retry cannot tell a dead request from one still sending).
    assert _delivered(app, fake) == []
    assert _sweep_and_send_later() == 1
    assert _delivered(app, fake) == [TEXT]


def test_the_same_key_with_another_text_is_refused_on_the_socket_and_nothing_more_is_sent(app, fake):
    connection, conversation = _assigned_sms(app)
    key = str(uuid.uuid4())
    assert _reply(app, connection, conversation, client_message_id=key)["type"] == "replied"
    reused = _reply(app, connection, conversation, text="Ships tomorrow.", client_message_id=key)
    assert reused["type"] == "error" and reused["error"] == "idempotency_key_reused" and reused["status"] == 409
    assert reused["client_message_id"] == key
    assert _delivered(app, fake) == [TEXT]


@pytest.mark.parametrize(
    ("fields", "status", "error", "names"),
    [
        ({"text": ""}, 422, "invalid_payload", "text"),
        ({"text": "   "}, 422, "invalid_payload", "text"),
        ({"text": "x" * 4001}, 422, "invalid_payload", "text"),
        ({"text": 42}, 422, "invalid_payload", "text"),
        ({"text": None}, 422, "invalid_payload", "text"),
        ({"text": TEXT, "client_message_id": "short"}, 422, "invalid_payload", "client_message_id"),
        ({"text": TEXT, "client_message_id": "has spaces in it!"}, 422, "invalid_payload", "client_message_id"),
        ({"text": TEXT, "colour": "red"}, 422, "invalid_payload", "colour"),
        ({"text": TEXT, "identity": "email#someone-else@example.com"}, 403, "forbidden", "identity"),
        ({"text": "x" * 1601}, 422, "invalid_payload", "1600"),
    ],
    ids=["empty", "blank", "too long", "not text", "null", "short key", "bad key", "unknown", "not theirs", "sms"],
)
def test_bad_input_gets_a_clear_error_on_the_socket_and_nothing_is_stored(app, fake, fields, status, error, names):
    connection, conversation = _assigned_sms(app)
    answer = agent_says(app, connection, action="reply", conversation_id=conversation, **fields)
    assert answer["type"] == "error" and answer["status"] == status and answer["error"] == error, answer
    assert names in answer["message"] or names in json.dumps(answer.get("details", [])), answer
    assert answer["action"] == "reply" and answer["conversation_id"] == conversation
    assert _outbound() == []
    assert _delivered(app, fake) == []


@pytest.mark.parametrize(
    "command",
    [
        {"action": "reply", "text": TEXT},
        {"action": "reply", "conversation_id": 7, "text": TEXT},
        {"action": "reply", "conversation_id": "", "text": TEXT},
    ],
    ids=["no conversation", "not a string", "empty"],
)
def test_a_reply_naming_no_conversation_is_refused_naming_the_field(app, fake, command):
    connection, _ = _assigned_sms(app)
    answer = agent_says(app, connection, **command)
    assert answer["type"] == "error" and answer["status"] == 422 and "conversation_id" in answer["message"], answer
    assert _outbound() == []


def test_only_the_assigned_agent_replies_on_the_socket(app, fake):
    connection, conversation = _assigned_sms(app)
    create_agent(app, "eve", channels=("sms",))
    eve = connect_agent(app, "eve")
    refused = _reply(app, eve, conversation)
    assert refused["type"] == "error" and refused["status"] == 403 and refused["error"] == "forbidden"
    unknown = _reply(app, connection, "conv_nosuchthing")
    assert unknown["type"] == "error" and unknown["status"] == 404
    assert _outbound() == []


def test_a_reply_before_the_accept_is_a_conflict_on_the_socket(app, fake):
    create_agent(app, "ada", channels=("sms",))
    connection = connect_agent(app, "ada")
    conversation = str(sms_from(app)["conversation_id"])
    drain(app)  # offered to ada, not accepted
    answer = _reply(app, connection, conversation)
    assert answer["type"] == "error" and answer["status"] == 409 and "accept" in answer["message"]
    assert _outbound() == []


@pytest.mark.parametrize("wrap_up", [{"code": "resolved"}, "Not A Code!", 7])
def test_a_close_on_the_socket_with_a_bad_wrap_up_is_refused_and_nothing_changes(app, fake, wrap_up):
    """The close command takes the REST close's wrap-up code (``[a-z0-9_-]{1,40}``), or none."""
    connection, conversation = _assigned_sms(app)
    answer = agent_says(app, connection, action="close", contact_id=conversation, wrap_up=wrap_up)
    assert answer["type"] == "error" and answer["status"] == 422 and "wrap_up" in answer["message"], answer
    view = app.http.get(f"/conversations/{conversation}", headers=as_agent("ada")).json_body
    assert view["state"] == "assigned"
