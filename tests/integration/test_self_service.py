"""Self-service answers first on web chat: a confident match is answered by the bot and held back from routing;
"Yes" closes it solved, "Talk to a person", "no" or a second question hands it over to be routed as today, the
SLA clock starting at the hand-over, the bot's exchange in the timeline. Off where routing.yaml does not set it."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest

from chalicelib.routing.config import forget_current_config
from chalicelib.settings import reload_settings
from chalicelib.store import conversations
from chalicelib.store import routing as routing_store
from tests.conftest import REGION, ROUTING_PARAMETER
from tests.fakes.providers import fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import app, fake  # noqa: F401 (fixtures)
from tests.support import (
    connect_agent,
    create_agent,
    drain,
    fixture,
    offers_to,
    post_twilio,
    post_webchat,
    stored_messages,
    webchat_payload,
)

ON = """
queues:
  default:
    self_service: {channels: [webchat, sms], languages: [en, de]}
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


def _text(client, text: str, sid: str, number: str = "+14155550123") -> str:
    """The customer texts us (Twilio's signed webhook); returns the conversation."""
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    form.update(From=number, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=text)
    assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    drain(client)
    [conversation] = {m["conversation_id"] for m in stored_messages()}
    return str(conversation)


@pytest.fixture
def sam(client):
    create_agent(client, "sam", capacity=2, channels=("sms",))
    connection = connect_agent(client, "sam")
    drain(client)
    return connection


def test_on_sms_the_bot_sends_the_short_answer_and_1_means_solved(client, sam, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _text(client, "Wann habt ihr geöffnet?", "SM" + "a1" * 16)

    [bot] = _bot_messages()
    assert bot["channel"] == "sms" and "choices" not in bot
    assert bot["text"].endswith("Antworten Sie 1, wenn das geholfen hat, oder 2 für eine Person.")
    assert len(bot["text"]) <= 560
    assert routing_store.get_contact(conversation) is None and offers_to(sam) == []

    _text(client, "1", "SM" + "a2" * 16)
    assert routing_store.get_contact(conversation) is None
    assert (conversations.get_conversation(conversation) or {}).get("status") == "closed"


def test_on_sms_2_hands_over(client, sam, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _text(client, "What are your opening hours?", "SM" + "b1" * 16)
    assert _bot_messages()[0]["text"].endswith("Reply 1 if this solved it, 2 to talk to a person.")
    _text(client, "2", "SM" + "b2" * 16)
    assert routing_store.get_contact(conversation) is not None
    assert [o["conversation_id"] for o in offers_to(sam)] == [conversation]


def test_the_bots_sms_reaches_the_customer_once_through_twilio(app, fake, monkeypatch):  # noqa: F811
    from tests.fakes.providers import TWILIO
    from tests.integration.test_fault_matrix import FIRST, Flow

    _use(monkeypatch, ON)
    flow = Flow(app)
    flow.customer_texts(*FIRST, "What are your opening hours?")
    flow.router()
    flow.router()  # a redelivery sends nothing more
    flow.outbox()
    [bot] = _bot_messages()
    assert [(r.form["To"], r.form["Body"]) for r in fake.sent(TWILIO)] == [(FIRST[0], bot["text"])]
    assert {m["message_id"]: m["status"] for m in stored_messages() if m["direction"] == "outbound"} == {
        bot["message_id"]: "sent"
    }


def _counted(out: str, name: str) -> list[tuple[str, str]]:
    """(article, channel) of each count of ``name`` in the EMF documents written."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            found += [(document.get("article"), document.get("channel"))] * len(document.get(name, []))
    return found


def test_answered_solved_and_handed_over_are_counted_per_article_and_channel(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON)
    _say(client, "What are your opening hours?", "m_1")
    _say(client, "What are your opening hours?", "m_1")  # the same message again: counted once
    _say(client, "Yes", "m_2")
    _say(client, "What are your opening hours?", "m_3", visitor="v_2")
    _say(client, "Talk to a person", "m_4", visitor="v_2")

    out = capsys.readouterr().out
    [article] = {m["article_id"] for m in _bot_messages()}
    assert _counted(out, "SelfServiceAnswered") == [(article, "webchat")] * 2
    assert _counted(out, "SelfServiceSolved") == [(article, "webchat")]
    assert _counted(out, "SelfServiceHandedOver") == [(article, "webchat")]
