"""POST /webhooks/webchat: bad input is refused with a JSON error naming the problem, and nothing is stored."""

from __future__ import annotations

import json

import pytest

from chalicelib.channels.signing import sign_sha256
from tests.support import (
    WEBCHAT_SECRET,
    data_items,
    drain,
    iter_contacts,
    post_webchat,
    queued_message_count,
    signed,
    stored_messages,
    webchat_payload,
)


def _post(client, body: bytes, headers: dict[str, str]):
    return client.http.post("/webhooks/webchat", headers=headers, body=body)


def _assert_nothing_stored():
    assert data_items() == []
    assert queued_message_count() == 0


def test_accepted_message_is_stored_and_queued_for_routing(client):
    response = post_webchat(client, webchat_payload(email="Ada@Example.COM", language="en-GB", metadata={"page": "/o"}))

    assert response.status_code == 200
    body = response.json_body
    assert body["status"] == "accepted"
    [message] = stored_messages()
    assert message["text"] == "Where is my order?"
    assert message["conversation_id"] == body["conversation_id"]
    assert message["channel"] == "webchat"
    assert message["metadata"] == {"page": "/o"}
    kinds = {i["sk"] for i in data_items()}
    assert {"IDENTITY", "PROFILE", "META", "INBOUND"} <= kinds
    profile = next(i for i in data_items() if i["sk"] == "PROFILE")
    assert profile["email"] == "ada@example.com"
    assert profile["open_conversation_id"] == body["conversation_id"]
    assert queued_message_count() == 1


BAD_REQUESTS = {
    "not json": (b"{not json", 400, "invalid_json", None),
    "json array": (b"[1, 2]", 422, "invalid_payload", None),
    "missing text": (json.dumps({"site": "s", "visitor_id": "v", "message_id": "m"}).encode(), 422, None, "text"),
    "text is a number": (json.dumps(webchat_payload(text=42)).encode(), 422, None, "text"),
    "blank text": (json.dumps(webchat_payload(text="   ")).encode(), 422, None, "text"),
    "visitor id wrongly typed": (
        json.dumps({**webchat_payload(), "visitor_id": ["v"]}).encode(),
        422,
        None,
        "visitor_id",
    ),
    "bad email": (json.dumps(webchat_payload(email="not-an-email")).encode(), 422, None, "email"),
    "nested metadata": (json.dumps(webchat_payload(metadata={"cart": {"id": 1}})).encode(), 422, None, "metadata"),
    "unknown field": (json.dumps({**webchat_payload(), "txt": "typo"}).encode(), 422, None, "txt"),
    "bad sent_at": (json.dumps(webchat_payload(sent_at="yesterday")).encode(), 422, None, "sent_at"),
    "over 64 KB": (
        json.dumps(webchat_payload(text="x" * 4000, metadata={"pad": "y"})).encode() + b" " * 65536,
        413,
        "payload_too_large",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_body_is_refused_naming_the_problem_and_nothing_is_stored(client, case):
    body, status, code, field = BAD_REQUESTS[case]
    response = _post(client, body, signed(body))

    assert response.status_code == status, response.body
    error = response.json_body
    assert error["message"]
    if code:
        assert error["error"] == code
    if field:
        assert field in [d["field"] for d in error["details"]], error
    _assert_nothing_stored()


def test_missing_signature_is_401_and_nothing_is_stored(client):
    body = json.dumps(webchat_payload()).encode()
    response = _post(client, body, {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert "X-Switchboard-Signature" in response.json_body["message"]
    _assert_nothing_stored()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body: sign_sha256("another-secret", body), id="wrong secret"),
        pytest.param(lambda body: sign_sha256(WEBCHAT_SECRET, body + b" "), id="signature of another body"),
        pytest.param(lambda body: sign_sha256(WEBCHAT_SECRET, body).replace("sha256=", "sha1="), id="wrong scheme"),
        pytest.param(lambda body: "sha256=" + "0" * 64, id="zeros"),
    ],
)
def test_forged_signature_is_401_and_nothing_is_stored(client, forge):
    body = json.dumps(webchat_payload()).encode()
    response = _post(client, body, {"Content-Type": "application/json", "X-Switchboard-Signature": forge(body)})
    assert response.status_code == 401
    assert response.json_body["error"] == "invalid_signature"
    _assert_nothing_stored()


def test_one_changed_byte_after_signing_is_401(client):
    body = json.dumps(webchat_payload()).encode()
    headers = signed(body)
    tampered = body.replace(b"Where", b"where")
    response = _post(client, tampered, headers)
    assert response.status_code == 401
    _assert_nothing_stored()


def test_other_content_type_is_415(client):
    body = json.dumps(webchat_payload()).encode()
    response = _post(client, body, {**signed(body), "Content-Type": "text/plain"})
    assert response.status_code == 415
    _assert_nothing_stored()


def test_same_message_three_times_is_stored_once_and_offered_once(client):
    from tests.support import connect_agent, create_agent, offers_to

    create_agent(client, "ada")
    connection = connect_agent(client, "ada")
    payload = webchat_payload()

    statuses = [post_webchat(client, payload).json_body["status"] for _ in range(3)]
    drain(client)

    assert statuses == ["accepted", "duplicate", "duplicate"]
    assert len(stored_messages()) == 1
    assert len({o["offer_id"] for o in offers_to(connection)}) == 1
    [contact] = list(iter_contacts())
    assert contact["offer_count"] == 1


def test_follow_up_joins_the_open_conversation_and_close_ends_it(client):
    from tests.support import agent_says, connect_agent, create_agent

    create_agent(client, "ada")
    connection = connect_agent(client, "ada")
    first = post_webchat(client, webchat_payload(message="m_1")).json_body
    second = post_webchat(client, webchat_payload(message="m_2", text="Order 1234")).json_body
    assert second["conversation_id"] == first["conversation_id"]

    drain(client)
    conversation = first["conversation_id"]
    assert agent_says(client, connection, action="accept", contact_id=conversation)["type"] == "accepted"
    assert agent_says(client, connection, action="close", contact_id=conversation)["type"] == "closed"

    third = post_webchat(client, webchat_payload(message="m_3", text="One more thing")).json_body
    assert third["conversation_id"] != conversation
    assert third["customer_id"] == first["customer_id"]
    meta = {i["conversation_id"]: i for i in data_items() if i["sk"] == "META"}
    assert meta[conversation]["status"] == "closed"
    assert [m["conversation_id"] for m in stored_messages()] == [conversation, conversation, third["conversation_id"]]
    assert meta[conversation]["agent_id"] == "ada"
    assert meta[third["conversation_id"]]["status"] == "open"
