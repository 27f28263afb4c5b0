"""Self-service answers first on web chat: a confident match is answered by the bot and held back from routing;
"Yes" closes it solved, "Talk to a person", "no" or a second question hands it over to be routed as today, the
SLA clock starting at the hand-over, the bot's exchange in the timeline. Off where routing.yaml does not set it."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.routing.config import forget_current_config
from chalicelib.settings import reload_settings
from chalicelib.store import conversations
from chalicelib.store import routing as routing_store
from tests.conftest import REGION, ROUTING_PARAMETER
from tests.support import connect_agent, create_agent, drain, offers_to, post_webchat, stored_messages, webchat_payload

ON = """
queues:
  default:
    self_service: {channels: webchat, languages: [en, de]}
rules:
  - name: everything
    queue: default
"""
OFF = "queues:\n  default: {}\nrules:\n  - name: everything\n    queue: default\n"


def _use(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=ROUTING_PARAMETER, Value=text, Type="String", Tier="Advanced", Overwrite=True
    )
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", ROUTING_PARAMETER)
    reload_settings()
    forget_current_config()


@pytest.fixture
def ada(client):
    create_agent(client, "ada", capacity=2)
    connection = connect_agent(client, "ada")
    drain(client)
    return connection


def _say(client, text: str, message: str, visitor: str = "v_1") -> str:
    answer = post_webchat(client, webchat_payload(visitor=visitor, message=message, text=text))
    assert answer.status_code == 200, answer.body
    drain(client)
    return str(answer.json_body["conversation_id"])


def _bot_messages() -> list[dict]:
    return [m for m in stored_messages() if m["direction"] == "outbound" and m.get("author") == "bot"]


def test_a_confident_first_message_is_answered_by_the_bot_and_not_routed(client, ada, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")

    [bot] = _bot_messages()
    assert bot["kind"] == "self_service_answer" and bot["channel"] == "webchat"
    assert "opening hours" in bot["text"].lower() and "Did this solve it?" in bot["text"]
    assert bot["choices"] == ["Yes", "Talk to a person"]
    assert routing_store.get_contact(conversation) is None, "held back: no contact, no SLA clock"
    assert offers_to(ada) == []

    query = "site=acme-shop&visitor_id=v_1"
    seen = client.http.get(f"/widget/conversations/{conversation}/messages?{query}").json_body["messages"]
    assert [(m["from"], m.get("choices")) for m in seen] == [("visitor", None), ("bot", ["Yes", "Talk to a person"])]

    drain(client)  # a redelivered routing event answers nothing twice
    post_webchat(client, webchat_payload(message="m_1", text="What are your opening hours?"))
    drain(client)
    assert len(_bot_messages()) == 1


def test_yes_closes_it_as_solved_by_self_service(client, ada, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")
    _say(client, "Yes", "m_2")

    assert routing_store.get_contact(conversation) is None
    assert offers_to(ada) == []
    meta = conversations.get_conversation(conversation) or {}
    assert (meta.get("status"), meta.get("wrap_up")) == ("closed", "self_service")


@pytest.mark.parametrize("reply", ["Talk to a person", "no", "And can I pay by invoice with Klarna?"])
def test_a_hand_over_routes_the_contact_with_the_bot_exchange_and_the_clock_from_the_hand_over(
    client, ada, monkeypatch, reply
):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")
    _say(client, reply, "m_2")

    contact = routing_store.get_contact(conversation)
    assert contact is not None, "handed over: routed"
    [offer] = offers_to(ada)
    assert offer["conversation_id"] == conversation
    inbound = [m for m in stored_messages() if m["direction"] == "inbound"]
    handed_over_at = max(m["received_at"] for m in inbound)
    assert contact.enqueued_at == handed_over_at, "the SLA clock starts at the hand-over"
    texts = [m["text"] for m in sorted(stored_messages(), key=lambda m: m["received_at"])]
    assert texts[0] == "What are your opening hours?" and texts[-1] == reply
    assert any("Did this solve it?" in text for text in texts), "the agent sees the bot's answer"


def test_a_question_no_article_answers_is_routed_at_once(client, ada, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _say(client, "My parcel arrived but the cat ate the receipt, what now?", "m_1")
    assert _bot_messages() == []
    assert routing_store.get_contact(conversation) is not None
    assert len(offers_to(ada)) == 1


def test_where_self_service_is_off_a_confident_question_routes_directly(client, ada, monkeypatch):
    _use(monkeypatch, OFF)
    conversation = _say(client, "What are your opening hours?", "m_1")
    assert _bot_messages() == []
    assert routing_store.get_contact(conversation) is not None
    assert len(offers_to(ada)) == 1
