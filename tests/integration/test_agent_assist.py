"""Agent assist: the knowledge base's best articles for the open conversation, canned responses rendered for it,
who may read them, and routing.yaml's canned responses checked with line and field; ``mode: suggest``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.routing.config import ConfigError, parse_config
from chalicelib.routing.config.loading import DEFAULT_FILE
from chalicelib.store import routing as routing_store
from tests.integration.test_self_service import _bot_messages, _use
from tests.support import as_admin, as_agent, bearer, connect_agent, create_agent, drain, post_webchat, webchat_payload

PARCEL = "Where is my parcel? Order 12345"


def _assigned(client, text: str = PARCEL, **customer) -> str:
    create_agent(client, "ada", capacity=2)
    connect_agent(client, "ada")
    answer = post_webchat(client, webchat_payload(text=text, **customer))
    assert answer.status_code == 200, answer.body
    drain(client)
    conversation = str(answer.json_body["conversation_id"])
    accepted = client.http.post(f"/conversations/{conversation}/accept", headers=as_agent("ada"))
    assert accepted.status_code == 200, accepted.body
    return conversation


def test_the_assigned_agent_gets_the_delivery_article_with_the_text_to_insert(client):
    conversation = _assigned(client, name="Grace Hopper", language="en-GB")

    response = client.http.get(f"/conversations/{conversation}/suggestions", headers=as_agent("ada"))

    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["language"] == "en" and body["channel"] == "webchat"
    first = body["suggestions"][0]
    assert first["article_id"] == "order-tracking" and first["title"] == "Track your order"
    assert first["score"] > 0 and 0 < len(first["excerpt"]) <= 161
    assert "**" not in first["excerpt"]
    assert first["insert_form"] == "body" and first["insert_text"].startswith("When your parcel leaves our warehouse")
    assert 1 <= len(body["suggestions"]) <= 3
    assert len({s["article_id"] for s in body["suggestions"]}) == len(body["suggestions"])


def test_the_latest_question_comes_first(client):
    conversation = _assigned(client, text="Which countries do you deliver to?")
    more = post_webchat(client, webchat_payload(message="m_2", text="And what are your opening hours?"))
    assert more.status_code == 200
    drain(client)

    ranked = client.http.get(f"/conversations/{conversation}/suggestions", headers=as_agent("ada")).json_body
    ids = [s["article_id"] for s in ranked["suggestions"]]
    assert ids[0] == "opening-hours"


def test_a_supervisor_may_read_them_another_agent_may_not_and_an_unknown_conversation_is_404(client):
    conversation = _assigned(client)
    create_agent(client, "bob")
    for path in (f"/conversations/{conversation}/suggestions", f"/canned-responses?conversation_id={conversation}"):
        assert client.http.get(path, headers=as_agent("bob")).status_code == 403
        assert client.http.get(path, headers=bearer("sue", "supervisor")).status_code == 200
        assert client.http.get(path).status_code == 401
    assert client.http.get("/conversations/wc_nope/suggestions", headers=as_agent("ada")).status_code == 404
    unknown = client.http.get("/canned-responses?conversation_id=wc_nope", headers=as_agent("ada"))
    assert unknown.status_code == 404 and unknown.json_body["error"]


def test_canned_responses_need_a_conversation(client):
    response = client.http.get("/canned-responses", headers=as_agent("ada"))
    assert 400 <= response.status_code < 500
    assert "conversation_id" in response.json_body["message"]


def test_canned_responses_are_rendered_with_the_customers_name_the_agent_and_the_order_number(client):
    conversation = _assigned(client, name="Grace Hopper", language="en")

    response = client.http.get(f"/canned-responses?conversation_id={conversation}", headers=as_agent("ada"))

    assert response.status_code == 200, response.body
    rendered = {r["id"]: r for r in response.json_body["canned_responses"]}
    assert set(rendered) == {"greeting", "order-status", "returns", "closing"}, "English only, for English"
    assert rendered["greeting"]["text"].startswith("Hi Grace, this is Ada from customer service.")
    assert "order 12345 for you" in rendered["order-status"]["text"]
    assert all(r["missing"] == [] for r in rendered.values())


def test_a_variable_without_a_value_is_left_out_and_flagged(client):
    conversation = _assigned(client, text="Hallo, wie lange dauert die Lieferung?", language="de")

    rendered = {
        r["id"]: r
        for r in client.http.get(
            f"/canned-responses?conversation_id={conversation}", headers=as_agent("ada")
        ).json_body["canned_responses"]
    }

    assert set(rendered) == {"begruessung", "bestellstatus", "abschluss"}
    assert rendered["begruessung"]["text"].startswith("Hallo, hier ist Ada vom Kundenservice.")
    assert rendered["begruessung"]["missing"] == ["customer.first_name"]
    assert rendered["bestellstatus"]["missing"] == ["order_number"]
    assert "{" not in rendered["bestellstatus"]["text"] and "Bestellung geprüft" in rendered["bestellstatus"]["text"]
    assert rendered["abschluss"]["text"] == "Kann ich sonst noch etwas für Sie tun? Einen schönen Tag noch!"


def test_an_unknown_variable_is_a_config_error_naming_line_and_field(client):
    text = Path(DEFAULT_FILE).read_text().replace("order {order_number} for you", "order {order.id} for you")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "{order.id}" in row)

    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    where = f"routing.yaml:{line}: canned_responses.responses[1].text"
    assert f"{where}: unknown variable {{order.id}}" in str(raised.value)

    response = client.http.put("/admin/routing", headers={**as_admin(), "Content-Type": "application/yaml"}, body=text)
    assert 400 <= response.status_code < 500
    assert "unknown variable {order.id}" in json.dumps(response.json_body)
    assert f":{line}" in json.dumps(response.json_body)


def test_a_bad_order_number_pattern_and_a_repeated_id_are_config_errors():
    base = "queues:\n  default: {}\nrules:\n  - name: all\n    queue: default\n"
    with pytest.raises(ConfigError, match="order_number is not a regular expression"):
        parse_config(base + "canned_responses:\n  order_number: '(unclosed'\n")
    twice = "  - {id: hi, title: Hi, text: Hello}\n"
    with pytest.raises(ConfigError, match="'hi' is used twice"):
        parse_config(base + "canned_responses:\n" + twice + twice)
    plain = parse_config(base + "canned_responses:\n" + twice)
    assert [r.response_id for r in plain.canned.responses] == ["hi"]


SUGGEST = """
queues:
  default:
    self_service: {channels: [webchat], mode: suggest}
rules:
  - name: everything
    queue: default
"""


def test_mode_suggest_routes_at_once_and_puts_the_rules_article_first(client, monkeypatch):
    _use(monkeypatch, SUGGEST)
    conversation = _assigned(client, text="What are your opening hours?")

    assert _bot_messages() == [], "no bot answer"
    assert routing_store.get_contact(conversation).state.value == "assigned"
    first = client.http.get(f"/conversations/{conversation}/suggestions", headers=as_agent("ada")).json_body[
        "suggestions"
    ][0]
    assert first["article_id"] == "opening-hours" and first["suggested_by_rule"] is True


def test_without_mode_suggest_no_article_is_marked_as_the_rules(client):
    conversation = _assigned(client, text="What are your opening hours?")
    suggestions = client.http.get(f"/conversations/{conversation}/suggestions", headers=as_agent("ada")).json_body
    assert suggestions["suggestions"][0]["article_id"] == "opening-hours"
    assert not any(s.get("suggested_by_rule") for s in suggestions["suggestions"])
