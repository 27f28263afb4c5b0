"""Self-service measures what it solved (issue 14 §5): a customer whose bot exchange ended solved or unconfirmed
and who writes again on any channel within 72 hours is a recontact, counted once per article and channel; a bot
answer the customer never replies to closes the conversation after ``self_service.close_after`` (unconfirmed);
today's counts per article and channel are in the supervisor view."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib import clock
from chalicelib.settings import get_settings, timer_queue_name
from chalicelib.store import aws, conversations
from chalicelib.store import routing as routing_store
from chalicelib.store import self_service as sessions
from tests.conftest import REGION
from tests.integration.test_self_service import ON, _bot_messages, _counted, _say, _use
from tests.integration.test_voice_callback import _timers
from tests.support import (
    as_admin,
    bearer,
    connect_agent,
    create_agent,
    drain,
    fails_once,
    fixture,
    offers_to,
    post_twilio,
    post_webchat,
    sqs_event,
    stored_messages,
    webchat_payload,
)

PHONE = "+14155550123"
CLOSE_DUE = "SelfServiceCloseDue"


@pytest.fixture
def ada(client):
    create_agent(client, "ada", capacity=2)
    connection = connect_agent(client, "ada")
    drain(client)
    return connection


@pytest.fixture
def sam(client):
    create_agent(client, "sam", capacity=2, channels=("sms",))
    connection = connect_agent(client, "sam")
    drain(client)
    return connection


def _timer_fires(client, timer: dict, on_time: bool = True) -> dict:
    """SQS delivers the timer to the timer Lambda (``on_time``: its delay is up, it is due now; else early)."""
    body = json.dumps({**timer, "due_at": clock.now_iso()} if on_time else timer)
    message = {
        "MessageId": "3b1c2d4e-5f60-4718-9a2b-3c4d5e6f7a8b",
        "ReceiptHandle": "AQEB" + "y" * 40,
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # what SQS sends
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "ApproximateFirstReceiveTimestamp": "1"},
    }
    arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{timer_queue_name()}"
    return dict(client.lambda_.invoke("on_timer", sqs_event([message], arn)).payload)


def _sms(client, text: str, sid: str) -> None:
    """The customer texts us from ``PHONE`` (Twilio's signed webhook), and the router handles it."""
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    form.update(From=PHONE, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=text)
    assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    drain(client)


@contextmanager
def _timer_send_fails_once() -> Iterator[list[str]]:
    """The first send of a ``SelfServiceCloseDue`` timer raises a connection error (others go through)."""
    fired: list[str] = []

    def explode(params: dict, **_: object) -> None:
        if not fired and CLOSE_DUE in str(params.get("body", "")):
            fired.append(CLOSE_DUE)
            raise EndpointConnectionError(endpoint_url=f"https://sqs.{REGION}.amazonaws.com")

    sqs = aws.client("sqs")
    sqs.meta.events.register_first("before-call.sqs.SendMessage", explode)
    try:
        yield fired
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessage", explode)


def _customer_of(conversation: str) -> str:
    return str((conversations.get_conversation(conversation) or {})["customer_id"])


def _solved_on_webchat(client, visitor: str = "v_1") -> str:
    conversation = _say(client, "What are your opening hours?", f"{visitor}-q", visitor=visitor)
    _say(client, "Yes", f"{visitor}-yes", visitor=visitor)
    assert (conversations.get_conversation(conversation) or {}).get("wrap_up") == "self_service"
    return conversation


def _supervisor_counts(client) -> dict:
    view = client.http.get("/supervisor", headers=bearer("sue", "supervisor"))
    assert view.status_code == 200, view.body
    return view.json_body["self_service"]


def _row(counts: dict, article: str, channel: str) -> dict:
    [row] = [r for r in counts["rows"] if (r["article_id"], r["channel"]) == (article, channel)]
    return row


# --- recontact within 72 hours ------------------------------------------------------------------------------


def test_writing_again_on_the_same_channel_after_a_solved_answer_is_one_recontact(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON)
    first = _solved_on_webchat(client)
    [article] = {m["article_id"] for m in _bot_messages()}

    with fails_once("dynamodb", "TransactWriteItems") as fired:  # the new contact's save: the event comes again
        second = _say(client, "My parcel arrived but the cat ate the receipt, what now?", "v_1-again")
    drain(client)
    assert fired, "the routing event was delivered twice"
    assert second != first, "a new conversation"
    assert routing_store.get_contact(second) is not None, "routed to a person"

    out = capsys.readouterr().out
    assert _counted(out, "SelfServiceRecontact") == [(article, "webchat")], "counted once, for the answer's article"
    last = (conversations.get_customer(_customer_of(first)) or {})["self_service_last"]
    [again] = [m["message_id"] for m in stored_messages() if m["conversation_id"] == second]
    assert (last["conversation_id"], last["outcome"], last["recontact_by"]) == (first, "solved", again)
    assert _row(_supervisor_counts(client), article, "webchat")["recontact"] == 1


def test_writing_again_on_another_channel_is_a_recontact_of_the_answers_channel(client, ada, sam, monkeypatch, capsys):
    _use(monkeypatch, ON)
    first = _solved_on_webchat(client)
    link = {"identities": [{"kind": "webchat", "value": "acme-shop/v_1"}, {"kind": "phone", "value": PHONE}]}
    assert client.http.post("/admin/identities/link", headers=as_admin(), body=json.dumps(link)).status_code == 200
    [article] = {m["article_id"] for m in _bot_messages()}

    _sms(client, "Hello, my order number is 4711 and it has not arrived", "SM" + "c1" * 16)

    out = capsys.readouterr().out
    assert _counted(out, "SelfServiceRecontact") == [(article, "webchat")]
    last = (conversations.get_customer(_customer_of(first)) or {})["self_service_last"]
    assert last["recontact_channel"] == "sms"


def test_writing_again_after_72_hours_is_no_recontact(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON)
    first = _solved_on_webchat(client)
    customer = _customer_of(first)
    long_ago = clock.plus_seconds(clock.now_iso(), -(72 * 3600 + 60))
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=get_settings().data_table,
        Key={"pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET self_service_last.ended_at = :then",
        ExpressionAttributeValues={":then": {"S": long_ago}},
    )

    _say(client, "My parcel arrived but the cat ate the receipt, what now?", "v_1-later")

    assert _counted(capsys.readouterr().out, "SelfServiceRecontact") == []
    assert "recontact_at" not in (conversations.get_customer(customer) or {})["self_service_last"]


def test_a_hand_over_is_no_self_service_outcome_to_recontact(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON)
    first = _say(client, "What are your opening hours?", "m_1")
    _say(client, "Talk to a person", "m_2")
    assert "self_service_last" not in (conversations.get_customer(_customer_of(first)) or {})
    assert _counted(capsys.readouterr().out, "SelfServiceRecontact") == []


# --- an unanswered bot answer ends ----------------------------------------------------------------------------


def test_an_answer_never_replied_to_closes_unconfirmed_after_close_after_once(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON.replace("languages: [en, de]}", "languages: [en, de], close_after: 10m}"))
    conversation = _say(client, "What are your opening hours?", "m_1")
    [bot] = _bot_messages()
    [timer] = _timers(CLOSE_DUE)
    [question] = [m["message_id"] for m in stored_messages() if m["direction"] == "inbound"]
    assert timer["conversation_id"] == conversation and timer["question_id"] == question
    assert clock.seconds_between(bot["received_at"], timer["due_at"]) == pytest.approx(600, abs=1)

    assert _timer_fires(client, timer) == {"batchItemFailures": []}
    assert _timer_fires(client, timer) == {"batchItemFailures": []}  # delivered again: acts once

    meta = conversations.get_conversation(conversation) or {}
    assert (meta.get("status"), meta.get("wrap_up")) == ("closed", "self_service_unconfirmed")
    assert (sessions.get_session(conversation) or {})["state"] == "unconfirmed"
    customer = conversations.get_customer(_customer_of(conversation)) or {}
    assert "open_conversation_id" not in customer, "the next message opens a new conversation"
    assert customer["self_service_last"]["outcome"] == "unconfirmed"
    assert routing_store.get_contact(conversation) is None and offers_to(ada) == []
    out = capsys.readouterr().out
    assert _counted(out, "SelfServiceUnconfirmed") == [(bot["article_id"], "webchat")]
    row = _row(_supervisor_counts(client), bot["article_id"], "webchat")
    assert {k: row[k] for k in ("answered", "solved", "handed_over", "unconfirmed", "recontact")} == {
        "answered": 1,
        "solved": 0,
        "handed_over": 0,
        "unconfirmed": 1,
        "recontact": 0,
    }

    _say(client, "And can I pay by invoice with Klarna?", "m_3")  # unconfirmed counts as answered: a recontact
    assert _counted(capsys.readouterr().out, "SelfServiceRecontact") == [(bot["article_id"], "webchat")]


def test_a_reply_before_the_timer_keeps_the_conversation(client, ada, monkeypatch, capsys):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")
    [timer] = _timers(CLOSE_DUE)
    _say(client, "Talk to a person", "m_2")

    assert _timer_fires(client, timer) == {"batchItemFailures": []}

    assert (conversations.get_conversation(conversation) or {}).get("status") == "open"
    assert routing_store.get_contact(conversation) is not None
    assert len(offers_to(ada)) == 1
    assert _counted(capsys.readouterr().out, "SelfServiceUnconfirmed") == []


def test_a_reply_stored_but_not_yet_routed_when_the_timer_fires_keeps_the_conversation(client, ada, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")
    [timer] = _timers(CLOSE_DUE)
    reply = post_webchat(client, webchat_payload(message="m_2", text="Talk to a person"))
    assert reply.status_code == 200

    assert _timer_fires(client, timer) == {"batchItemFailures": []}  # before the router has seen the reply
    assert (sessions.get_session(conversation) or {})["state"] == "waiting"
    drain(client)

    assert (conversations.get_conversation(conversation) or {}).get("status") == "open"
    assert [o["conversation_id"] for o in offers_to(ada)] == [conversation], "handed over as usual"


def test_an_early_timer_is_armed_again_for_its_due_time(client, ada, monkeypatch):
    _use(monkeypatch, ON)
    conversation = _say(client, "What are your opening hours?", "m_1")
    [timer] = _timers(CLOSE_DUE)
    # Due in 30 minutes; SQS delays a message 15 minutes at most, so it comes early.
    assert _timer_fires(client, timer, on_time=False) == {"batchItemFailures": []}

    assert (conversations.get_conversation(conversation) or {}).get("status") == "open"
    assert [t["due_at"] for t in _timers(CLOSE_DUE)] == [timer["due_at"]] * 2


# --- today's counts in the supervisor view ---------------------------------------------------------------------


def test_the_supervisor_view_counts_today_per_article_and_channel(client, ada, sam, monkeypatch):
    _use(monkeypatch, ON)
    _solved_on_webchat(client, visitor="v_1")
    _say(client, "What are your opening hours?", "v_2-q", visitor="v_2")
    _say(client, "no", "v_2-no", visitor="v_2")
    _sms(client, "What are your opening hours?", "SM" + "d1" * 16)
    [article] = {m["article_id"] for m in _bot_messages()}

    assert client.http.get("/supervisor", headers=bearer("ada", "agent")).status_code == 403
    counts = _supervisor_counts(client)
    assert counts["day"] == clock.now_iso()[:10]
    chat, sms = _row(counts, article, "webchat"), _row(counts, article, "sms")
    assert (chat["answered"], chat["solved"], chat["handed_over"], chat["unconfirmed"]) == (2, 1, 1, 0)
    assert (sms["answered"], sms["solved"], sms["handed_over"]) == (1, 0, 0)
    assert counts["by_channel"]["webchat"]["answered"] == 2 and counts["by_channel"]["sms"]["answered"] == 1
    assert counts["by_article"][article]["answered"] == 3
    assert counts["by_article"][article]["title"], "the article's title, for the table"


def test_a_close_timer_lost_with_the_answer_is_armed_by_the_redelivery_and_closes_once(
    client, ada, monkeypatch, capsys
):
    _use(monkeypatch, ON)
    posted = post_webchat(client, webchat_payload(message="m_1", text="What are your opening hours?"))
    conversation = str(posted.json_body["conversation_id"])
    with _timer_send_fails_once() as fired:  # the Lambda lost SQS just then: the routing event comes again
        drain(client)
    assert fired and len(_bot_messages()) == 1, "answered once"
    timers = _timers(CLOSE_DUE)
    assert [t["conversation_id"] for t in timers] == [conversation], "the lost timer armed by the redelivery"

    for timer in timers + timers:
        assert _timer_fires(client, timer) == {"batchItemFailures": []}

    assert (conversations.get_conversation(conversation) or {}).get("wrap_up") == "self_service_unconfirmed"
    assert len(_counted(capsys.readouterr().out, "SelfServiceUnconfirmed")) == 1
