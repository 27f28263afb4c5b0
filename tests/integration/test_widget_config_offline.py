"""The widget before a chat: its greeting and limits from routing.yaml's ``widget:``, whether web chat is open by
the hours of its queue, and the offline form, which becomes an e-mail-channel contact as an e-mail would.

The offline form is an unsigned endpoint anyone may post to: bad input is a 4xx naming the field and stores
nothing; a retry (same ``message_id``) is stored once; the answer never says whose address that is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.console.widget_api import web_chat_hours
from chalicelib.routing.config import ConfigError, forget_current_config, parse_config
from chalicelib.settings import get_settings, reload_settings
from tests.support import all_items, as_admin, drain, stored_messages

JSON = {"Content-Type": "application/json"}


def _closed_now() -> str:
    """Hours open all week except yesterday, today and tomorrow (UTC): closed now, open in two days."""
    today = datetime.now(UTC).date()
    days = ", ".join(str(today + timedelta(days=n)) for n in (-1, 0, 1))
    return f"hours:\n      timezone: UTC\n      weekly: {{mon-sun: '00:00-24:00'}}\n      holidays: [{days}]\n"


def _document(chat_queue: str = "      {}\n", widget: str = "") -> str:
    return (
        "queues:\n  default: {}\n  chat:\n" + chat_queue + "rules:\n"
        "  - {name: web chat, when: {channel: [webchat, email]}, queue: chat}\n"
        "  - {name: all, queue: default}\n" + widget
    )


@pytest.fixture
def client(client: Client, monkeypatch: pytest.MonkeyPatch) -> Client:
    """The app with an SSM parameter for the routing config, which PUT /admin/routing publishes to."""
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", "/switchboard/test/routing-config")
    reload_settings()
    forget_current_config()
    return client


def _publish(client: Client, text: str) -> None:
    answer = client.http.put("/admin/routing", headers={**as_admin(), "Content-Type": "application/yaml"}, body=text)
    assert answer.status_code == 200, answer.body
    forget_current_config()


def _config(client: Client, **query: str) -> Any:
    from urllib.parse import urlencode

    return client.http.get("/widget/config?" + urlencode({"site": "acme", **query}))


def _offline(client: Client, **fields: Any) -> Any:
    body = {
        "site": "acme",
        "message_id": "off_1",
        "name": "Grace Hopper",
        "email": "Grace@Example.com",
        "message": "Do you ship to Norway?",
        **fields,
    }
    return client.http.post("/widget/offline", headers=JSON, body=json.dumps(body).encode())


# --- the config -------------------------------------------------------------------------------------------


def test_the_config_greets_in_the_visitors_language_and_says_what_may_be_attached(client):
    _publish(
        client,
        _document(
            widget="widget:\n  greeting: {en: Hello there, de: Guten Tag}\n  pre_chat_form: true\n"
            "  attachments: {max_size: 2MB, types: [image/*, application/pdf]}\n"
        ),
    )
    german = _config(client, lang="de-CH")
    assert german.status_code == 200, german.body
    assert german.json_body["greeting"] == "Guten Tag"
    assert german.json_body["pre_chat_form"] is True
    assert german.json_body["attachments"] == {
        "enabled": True,
        "max_bytes": 2 * 1024 * 1024,
        "types": ["image/*", "application/pdf"],
    }
    assert german.json_body["open"] is True
    assert _config(client, lang="fr").json_body["greeting"] == "Hello there"  # no French: English
    assert _config(client).json_body["greeting"] == "Hello there"


def test_without_a_widget_section_the_widget_gets_the_defaults(client):
    _publish(client, _document())
    answer = _config(client).json_body
    assert answer["greeting"] == "Hi! How can we help you today?"
    assert answer["pre_chat_form"] is False
    assert answer["attachments"]["max_bytes"] == 10 * 1024 * 1024
    assert "application/pdf" in answer["attachments"]["types"]


def test_the_widget_is_offline_while_its_queue_is_closed_and_says_when_it_opens(client):
    _publish(client, _document("    " + _closed_now().replace("\n      ", "\n      ")))
    answer = _config(client).json_body
    assert answer["open"] is False
    assert answer["opens_at"] == f"{datetime.now(UTC).date() + timedelta(days=2)}T00:00:00.000000Z"


def test_widget_queue_names_the_queue_whose_hours_count(client):
    config = parse_config(_document("    " + _closed_now(), widget="widget:\n  queue: default\n"))
    assert web_chat_hours(config, datetime.now(UTC))["open"] is True
    config = parse_config(_document("    " + _closed_now()))
    assert web_chat_hours(config, datetime.now(UTC)) | {"opens_at": None} == {
        "open": False,
        "opens_at": None,
        "queue": "chat",
    }


@pytest.mark.parametrize(
    ("widget", "where", "problem"),
    [
        ("widget:\n  queue: nowhere\n", "widget.queue", "unknown queue 'nowhere'"),
        ("widget:\n  attachments: {max_size: 10 GB}\n", "widget.attachments.max_size", "KB or MB"),
        ("widget:\n  attachments: {max_size: 100MB}\n", "widget.attachments.max_size", "less than or equal"),
        ("widget:\n  greeting: {english: Hi}\n", "widget.greeting", "pattern"),
        ("widget:\n  colour: red\n", "widget.colour", "unknown key"),
    ],
)
def test_a_bad_widget_section_is_a_config_error_at_its_line(widget, where, problem):
    text = _document(widget=widget)
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    line = len(_document().splitlines()) + 2  # the line after "widget:"
    assert f"routing.yaml:{line}: {where}" in str(raised.value)
    assert problem in str(raised.value)


def test_a_config_without_a_good_site_is_a_422_naming_it(client):
    answer = client.http.get("/widget/config?site=%3Cscript%3E")
    assert answer.status_code == 422
    assert [d["field"] for d in answer.json_body["details"]] == ["site"]
    assert client.http.get("/widget/config").status_code == 422


# --- the offline form -------------------------------------------------------------------------------------


def test_an_offline_message_becomes_an_email_contact_that_waits_for_the_queue_to_open(client):
    _publish(client, _document("    " + _closed_now()))
    answer = _offline(client, visitor_id="v_grace")
    assert answer.status_code == 202, answer.body
    assert answer.json_body == {"status": "received", "message_id": "off_1"}
    drain(client)

    (message,) = stored_messages()
    assert message["channel"] == "email"
    assert message["identity"] == "email#grace@example.com"
    assert message["text"] == "Do you ship to Norway?"
    assert message["subject"] == "Message left on the web chat of acme"
    conversation = next(
        i for i in all_items(get_settings().data_table) if i.get("conversation_id") == message["conversation_id"]
    )
    assert conversation["customer_id"] == message["customer_id"]
    (contact,) = [i for i in all_items(get_settings().routing_table) if i["sk"] == "CONTACT"]
    assert contact["channel"] == "email"
    assert contact["queues"] == ["chat"]
    assert contact["state"] == "queued"  # the queue is closed: it waits for it to open, as an e-mail would
    customer = next(i for i in all_items(get_settings().data_table) if i.get("sk") == "PROFILE")
    assert customer.get("name") == "Grace Hopper"


def test_an_offline_retry_is_stored_once(client):
    assert _offline(client).status_code == 202
    again = _offline(client)
    assert again.status_code == 202
    assert again.json_body["status"] == "duplicate"
    assert len(stored_messages()) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 4001}, "message"),
        ({"name": ""}, "name"),
        ({"message_id": "has spaces"}, "message_id"),
        ({"site": 42}, "site"),
        ({"customer_id": "cus_someone"}, "customer_id"),
    ],
)
def test_a_bad_offline_form_is_a_422_naming_the_field_and_stores_nothing(client, fields, field):
    answer = _offline(client, **fields)
    assert answer.status_code == 422, answer.body
    assert field in [d["field"] for d in answer.json_body["details"]]
    assert stored_messages() == []


def test_an_offline_form_that_is_not_json_is_a_400(client):
    answer = client.http.post("/widget/offline", headers=JSON, body=b"{not json")
    assert answer.status_code == 400
    assert answer.json_body["error"]
    assert stored_messages() == []
