"""POST /webhooks/api: our signed channel for apps, in-store systems and voice assistants."""

from __future__ import annotations

import json
import time

import pytest

from tests.support import (
    api_channel_headers,
    data_items,
    post_api_channel,
    queued_message_count,
    stored_messages,
)


def _message(**overrides):
    return {
        "source": "pos-store-12",
        "kind": "in_store",
        "message_id": "tx-000193",
        "user": {"id": "u-42", "name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 7700 900123"},
        "text": "Asked at the counter about a refund",
        "attachments": [
            {"content_type": "image/jpeg", "url": "https://cdn.example.com/r.jpg", "size": 48213, "filename": "r.jpg"}
        ],
        **overrides,
    }


def _nothing_stored():
    assert data_items() == [] and queued_message_count() == 0


def test_signed_message_is_stored_with_its_identities_and_attachment(client):
    response = post_api_channel(client, _message())
    assert response.status_code == 200, response.body
    [message] = stored_messages()
    assert message["channel"] == "in_store"
    assert message["attachments"] == [
        {"content_type": "image/jpeg", "url": "https://cdn.example.com/r.jpg", "size": 48213, "filename": "r.jpg"}
    ]
    identities = {i["pk"] for i in data_items() if i["sk"] == "IDENTITY"}
    assert identities == {
        "IDENTITY#api#pos-store-12/u-42",
        "IDENTITY#email#ada@example.com",
        "IDENTITY#phone#+447700900123",
    }
    assert queued_message_count() == 1


def test_retry_is_stored_once(client):
    statuses = [post_api_channel(client, _message()).json_body["status"] for _ in range(3)]
    assert statuses == ["accepted", "duplicate", "duplicate"]
    assert len(stored_messages()) == 1


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp_is_refused(client, skew):
    response = post_api_channel(client, _message(), timestamp=int(time.time()) + skew)
    assert response.status_code == 401
    assert "X-Switchboard-Timestamp" in response.json_body["message"]
    _nothing_stored()


def test_signature_binds_the_timestamp(client):
    body = json.dumps(_message()).encode()
    headers = api_channel_headers(body)
    headers["X-Switchboard-Timestamp"] = str(int(headers["X-Switchboard-Timestamp"]) - 1)
    assert client.http.post("/webhooks/api", headers=headers, body=body).status_code == 401
    _nothing_stored()


def test_wrong_secret_changed_byte_and_missing_headers_are_refused(client):
    body = json.dumps(_message()).encode()
    assert (
        client.http.post("/webhooks/api", headers=api_channel_headers(body, secret="nope"), body=body).status_code
        == 401
    )
    tampered = body.replace(b"refund", b"Refund")
    assert client.http.post("/webhooks/api", headers=api_channel_headers(body), body=tampered).status_code == 401
    bare = client.http.post("/webhooks/api", headers={"Content-Type": "application/json"}, body=body)
    assert bare.status_code == 401
    _nothing_stored()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user": {"name": "no id"}}, "user.id"),
        ({"text": None, "attachments": []}, "(body)"),
        ({"kind": "fax"}, "kind"),
        ({"attachments": [{"content_type": "image/jpeg", "url": "http://insecure"}]}, "attachments.0.url"),
        ({"user": {"id": "u-1", "phone": "not a phone"}}, None),
    ],
)
def test_bad_fields_are_named(client, overrides, field):
    response = post_api_channel(client, _message(**overrides))
    assert response.status_code == 422, response.body
    if field:
        assert field in [d["field"] for d in response.json_body["details"]], response.json_body
    _nothing_stored()
