"""Each provider sender on its own: the request it makes, and which failures are final and which are retried.

The providers are the loopback fakes of ``tests/fakes/providers.py`` (no AWS is involved); the
e-mail is built and checked without sending it.
"""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from chalicelib.outbound import meta, ses, telegram, twilio
from chalicelib.outbound.destinations import Destination, reply_subject, subject_from_text
from chalicelib.outbound.outbox import backoff_seconds
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable, final_by_status
from tests.fakes.providers import (
    ACCOUNT_SID,
    MESSAGING,
    TELEGRAM,
    TWILIO,
    WHATSAPP,
    FakeProviders,
    fake_providers,  # noqa: F401 (a fixture)
)

SMS = Destination("sms", "twilio", "phone#+14155550123", "+14155550123", sender="+14155550100")
CLOUD = Destination("whatsapp", "whatsapp", "phone#+447700900123", "447700900123", sender="106540352242922")
MESSENGER = Destination("messenger", "messenger", "messenger#7034928461927365", "7034928461927365")
TELEGRAM_CHAT = Destination("telegram", "telegram", "telegram#5193624807", "5193624807")


@pytest.fixture
def fake(fake_providers: FakeProviders) -> FakeProviders:  # noqa: F811
    return fake_providers


# --- backoff and the HTTP view of failures ------------------------------------------------------


def test_backoff_doubles_from_ten_seconds_up_to_fifteen_minutes():
    assert [backoff_seconds(attempt) for attempt in range(1, 9)] == [10, 20, 40, 80, 160, 320, 640, 900]


def test_backoff_waits_as_long_as_the_provider_asked_within_the_limit():
    assert backoff_seconds(1, at_least=30) == 30
    assert backoff_seconds(3, at_least=7) == 40
    assert backoff_seconds(1, at_least=5000) == 900


@pytest.mark.parametrize(("status", "final"), [(400, True), (404, True), (422, True), (401, False), (403, False)])
def test_a_4xx_is_final_unless_it_means_later_or_credentials(status, final):
    assert final_by_status(status) is final
    assert final_by_status(429) is False and final_by_status(500) is False and final_by_status(503) is False


# --- Twilio -----------------------------------------------------------------------------------------


def test_twilio_posts_the_form_with_basic_auth_and_returns_the_sid(fake):
    result = twilio.send(SMS, "Ships today.", "out_1")

    [request] = fake.sent(TWILIO)
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.form["From"] == "+14155550100" and request.form["To"] == "+14155550123"
    assert result.provider == "twilio" and result.provider_message_id == request.answer["sid"]
    assert result.provider_message_id.startswith("SM")


def test_twilio_sends_through_a_messaging_service_when_that_is_the_sender(fake):
    twilio.send(Destination("sms", "twilio", "phone#+14155550123", "+14155550123", sender="MG" + "a" * 32), "Hi", "o")
    [request] = fake.sent(TWILIO)
    assert request.form["MessagingServiceSid"] == "MG" + "a" * 32 and "From" not in request.form


def test_twilio_bad_number_is_final_outage_and_rate_limit_are_not(fake):
    fake.fail_next(1, status=400, api=TWILIO)
    with pytest.raises(ProviderRejected, match="21211"):
        twilio.send(SMS, "Hi", "out_1")
    for status in (500, 503, 429):
        fake.fail_next(1, status=status, api=TWILIO)
        with pytest.raises(ProviderUnavailable):
            twilio.send(SMS, "Hi", "out_1")


def test_twilio_wrong_token_waits_for_ops_instead_of_failing_the_message(fake, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
    with pytest.raises(ProviderUnavailable, match="20003: Authenticate"):
        twilio.send(SMS, "Hi", "out_1")


def test_no_answer_at_all_is_retried(fake):
    fake.fail_next(1, drop=True)
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        twilio.send(SMS, "Hi", "out_1")


# --- Meta ------------------------------------------------------------------------------------------------


def test_whatsapp_cloud_returns_the_wamid(fake):
    result = meta.send(CLOUD, "On its way.", "out_1")
    [request] = fake.sent(WHATSAPP)
    assert request.path == "/v21.0/106540352242922/messages"
    assert result.provider == "whatsapp" and result.provider_message_id.startswith("wamid.")


def test_messenger_without_a_known_page_uses_me(fake):
    result = meta.send(MESSENGER, "Yes.", "out_1")
    [request] = fake.sent(MESSAGING)
    assert request.path == "/v21.0/me/messages" and result.provider_message_id.startswith("m_")


def test_graph_errors_are_judged_by_their_code_not_only_the_http_status(fake):
    fake.fail_next(1, status=400, api=WHATSAPP)  # 131030: recipient not allowed
    with pytest.raises(ProviderRejected, match="131030"):
        meta.send(CLOUD, "Hi", "out_1")
    throughput = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}}
    fake.fail_next(1, status=400, api=WHATSAPP, body=throughput)  # Graph reports rate limits with a 400
    with pytest.raises(ProviderUnavailable, match="130429"):
        meta.send(CLOUD, "Hi", "out_1")
    fake.fail_next(1, status=500, api=WHATSAPP)
    with pytest.raises(ProviderUnavailable):
        meta.send(CLOUD, "Hi", "out_1")
    fake.fail_next(1, status=400, api=MESSAGING)  # 100/2018001: no matching user
    with pytest.raises(ProviderRejected, match="No matching user"):
        meta.send(MESSENGER, "Hi", "out_1")


# --- Telegram --------------------------------------------------------------------------------------------


def test_telegram_message_id_is_scoped_by_chat(fake):
    result = telegram.send(TELEGRAM_CHAT, "Checking.", "out_1")
    [request] = fake.sent(TELEGRAM)
    assert request.json == {"chat_id": 5193624807, "text": "Checking."}
    assert result.provider_message_id == f"5193624807:{request.answer['result']['message_id']}"


def test_telegram_group_chats_have_negative_ids(fake):
    group = Destination("telegram", "telegram", "telegram#42", "-1001234567890")
    telegram.send(group, "Hello group", "out_1")
    assert fake.sent(TELEGRAM)[0].json["chat_id"] == -1001234567890


def test_telegram_failures(fake, monkeypatch):
    fake.fail_next(1, status=429, api=TELEGRAM)
    with pytest.raises(ProviderUnavailable) as limited:
        telegram.send(TELEGRAM_CHAT, "Hi", "out_1")
    assert limited.value.retry_after == 7
    fake.fail_next(1, status=403, api=TELEGRAM)
    with pytest.raises(ProviderRejected, match="blocked"):
        telegram.send(TELEGRAM_CHAT, "Hi", "out_1")
    fake.fail_next(1, status=400, api=TELEGRAM)
    with pytest.raises(ProviderRejected, match="chat not found"):
        telegram.send(TELEGRAM_CHAT, "Hi", "out_1")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:wrong")
    with pytest.raises(ProviderUnavailable, match="Unauthorized") as wrong:
        telegram.send(TELEGRAM_CHAT, "Hi", "out_1")
    assert "123:wrong" not in str(wrong.value), "the token is in the URL: it never reaches an error"


# --- e-mail ----------------------------------------------------------------------------------------------


def test_the_email_threads_under_the_message_it_answers():
    destination = Destination(
        "email",
        "ses",
        "email#ada@example.com",
        "ada@example.com",
        sender="support@acme-shop.example",
        subject="Re: Order 4417",
        in_reply_to="<b@mail.example.com>",
        references=("<a@mail.example.com>", "<b@mail.example.com>"),
    )
    raw = ses.build(destination, "A new parcel leaves today.", "out_abc").as_bytes(policy=policy.SMTP)
    message = message_from_bytes(raw, policy=policy.default)
    assert message["From"] == "support@acme-shop.example" and message["To"] == "ada@example.com"
    assert message["Subject"] == "Re: Order 4417"
    assert message["Message-ID"] == "<out_abc@acme-shop.example>"
    assert message["In-Reply-To"] == "<b@mail.example.com>"
    assert message["References"] == "<a@mail.example.com> <b@mail.example.com>"
    assert b"\r\n" in raw, "SMTP line endings"


def test_a_header_that_cannot_be_written_is_a_final_failure_not_a_crash():
    broken = Destination("email", "ses", "email#a@b.c", "a@b.c", sender="s@x.example", subject="Hi\r\nBcc: all@x")
    with pytest.raises(ProviderRejected, match="cannot write the e-mail"):
        ses.send(broken, "text", "out_1")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Order 4417", "Re: Order 4417"), ("Re: Order 4417", "Re: Order 4417"), ("RE:  two  spaces", "RE: two spaces")],
)
def test_reply_subject(subject, expected):
    assert reply_subject(subject) == expected


def test_a_new_thread_is_named_by_its_first_line():
    assert subject_from_text("\n  Your invoice  \nThanks") == "Your invoice"
    assert subject_from_text("x" * 100).endswith("…") and len(subject_from_text("x" * 100)) == 60
