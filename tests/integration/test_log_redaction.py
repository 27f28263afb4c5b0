"""Nothing a customer wrote, no phone number, e-mail address, token or secret ever reaches a log line.

A whole flow runs through the Lambda handlers (two channels, routing, accept, a reply, the outbox,
the sweeper, a forged webhook, a bad token) while everything logged is captured twice: the
Powertools JSON lines as printed (``capsys``) and every ``logging`` record at DEBUG (``caplog``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from chalice.test import Client

import tests.support as support
from chalicelib.settings import outbox_queue_name
from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.support import (
    CHANNEL_SECRETS,
    DEV_SIGNING_KEY,
    REGION,
    WEBCHAT_SECRET,
    agent_says,
    as_agent,
    connect_agent,
    create_agent,
    drain,
    fixture,
    lambda_service_sqs,
    offers_to,
    post_twilio,
    post_webchat,
    sqs_event,
    stored_messages,
    twilio_headers,
    webchat_payload,
)

SMS_TEXT = "Hi, where is my order #1042? It said Tuesday & it's Thursday."
CUSTOMER_NUMBER, OUR_NUMBER = "+14155550123", "+14155550100"  # the fixture's From and To
EMAIL = "ada.secret@example.com"
WEBCHAT_TEXT = "my card ends 4242 SECRET-BODY"
REPLY_TEXT = "Your parcel REPLY-BODY-7731 left the depot today"
BAD_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.forged-signature-QX7Z"


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every sign-in token the test helpers issue (agents' bearer headers, WebSocket ?token=)."""
    tokens: list[str] = []
    issue = support.issue_dev_token

    def recording(*args: Any, **kwargs: Any) -> str:
        token = issue(*args, **kwargs)
        tokens.append(token)
        return token

    monkeypatch.setattr(support, "issue_dev_token", recording)
    return tokens


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """DEBUG on the root logger and on every Powertools logger; Powertools prints into ``capsys``.

    Loggers the app set a level on itself (the AWS SDK's, whose DEBUG lines are wire dumps) keep it.
    """
    caplog.set_level(logging.DEBUG)
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("switchboard", "aws_lambda_powertools")]
    for name in ["switchboard", *names]:
        caplog.set_level(logging.DEBUG, logger=name)
    handler = logging.getLogger("switchboard").powertools_handler  # type: ignore[attr-defined]
    stream, handler.stream = handler.stream, _Stdout()
    try:
        yield
    finally:
        handler.stream = stream


class _Stdout:
    """Whatever ``sys.stdout`` is when a line is written (capsys swaps it between test phases)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _pump_outbox(client: Client) -> int:
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if messages:
        event = sqs_event(messages, f"arn:aws:sqs:{REGION}:123456789012:{outbox_queue_name()}")
        response = client.lambda_.invoke("on_outbox", event).payload
        assert response == {"batchItemFailures": []}, response
    return len(messages)


def _record_line(record: logging.LogRecord) -> str:
    """A log record with everything it carries: message, arguments, extra keys, exception text."""
    return json.dumps({**record.__dict__, "message": record.getMessage()}, default=str)


def _forbidden(tokens: list[str]) -> dict[str, str]:
    forbidden = {
        "sms text": SMS_TEXT,
        "sms text (form-encoded)": quote_plus(SMS_TEXT),
        "sms text (fragment)": "where is my order",
        "webchat text": WEBCHAT_TEXT,
        "webchat text (fragment)": "SECRET-BODY",
        "reply text": REPLY_TEXT,
        "reply text (fragment)": "REPLY-BODY-7731",
        "e-mail": EMAIL,
        "e-mail (local part)": "ada.secret",
        "e-mail (form-encoded)": quote_plus(EMAIL),
        "dev signing key": DEV_SIGNING_KEY.strip(),
        "bad token": BAD_TOKEN,
        "bad token (signature)": BAD_TOKEN.rsplit(".", 1)[1],
        "webchat secret": WEBCHAT_SECRET,
        **{f"secret {name}": value for name, value in CHANNEL_SECRETS.items()},
    }
    for number in (CUSTOMER_NUMBER, OUR_NUMBER):
        forbidden[f"phone {number}"] = number
        forbidden[f"phone {number} (form-encoded)"] = quote_plus(number)
        forbidden[f"phone {number} (national digits)"] = number[2:]  # inside +1..., 1..., (415) 555-...
        forbidden[f"phone {number} (formatted)"] = f"555-{number[-4:]}"
    for line_number, line in enumerate(DEV_SIGNING_KEY.splitlines()):
        if len(line) >= 16 and not line.startswith("-----"):
            forbidden[f"dev signing key line {line_number}"] = line
    for index, token in enumerate(tokens):
        forbidden[f"token {index}"] = token
        for part, segment in zip(("claims", "signature"), token.split(".")[1:], strict=True):
            forbidden[f"token {index} {part}"] = segment
    return forbidden


def test_a_whole_flow_logs_no_message_text_number_address_token_or_secret(
    client: Client,
    issued_tokens: list[str],
    captured: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    fake_providers: FakeProviders,  # noqa: F811
) -> None:
    sms_body = fixture("twilio/inbound_sms.txt")
    assert unquote_plus(sms_body.decode()).count(SMS_TEXT) == 1 and CUSTOMER_NUMBER in unquote_plus(sms_body.decode())

    create_agent(client, "ada", capacity=2, channels=("webchat", "sms"))
    connection = connect_agent(client, "ada")

    response = post_twilio(client, "/webhooks/twilio/messaging", sms_body)
    assert response.status_code == 200, response.body
    response = post_webchat(client, webchat_payload(email=EMAIL, text=WEBCHAT_TEXT))
    assert response.status_code == 200, response.body
    webchat_conversation = response.json_body["conversation_id"]
    sms_conversation = next(m["conversation_id"] for m in stored_messages() if m["channel"] == "sms")

    assert drain(client) >= 2
    offered = {offer["contact_id"] for offer in offers_to(connection)}
    assert offered == {webchat_conversation, sms_conversation}
    for conversation_id in sorted(offered):
        reply = agent_says(client, connection, action="accept", contact_id=conversation_id)
        assert reply == {"type": "accepted", "contact_id": conversation_id}

    response = client.http.post(
        f"/conversations/{webchat_conversation}/messages",
        headers=as_agent("ada"),
        body=json.dumps({"text": REPLY_TEXT}),
    )
    assert response.status_code == 202, response.body  # sent from the request, to the widget
    fake_providers.fail_next(1, status=503, api=TWILIO)  # the SMS reply's own send fails: the outbox Lambda's turn
    response = client.http.post(
        f"/conversations/{sms_conversation}/messages", headers=as_agent("ada"), body=json.dumps({"text": REPLY_TEXT})
    )
    assert response.status_code == 202, response.body
    assert _pump_outbox(client) == 1
    assert [r.form["Body"] for r in fake_providers.sent(TWILIO)] == [REPLY_TEXT]
    tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    assert client.lambda_.invoke("sweep_offers", tick).payload == {"offers": 0, "outbox_requeued": 0}

    headers = twilio_headers("/webhooks/twilio/messaging", sms_body)  # signed for another body
    forged = client.http.post("/webhooks/twilio/messaging", headers=headers, body=sms_body.replace(b"Thu", b"Fri"))
    assert forged.status_code == 401, forged.body
    forged = client.http.post(
        "/webhooks/webchat",
        headers={"Content-Type": "application/json", "X-Switchboard-Signature": "sha256=" + "0" * 64},
        body=json.dumps(webchat_payload(message="m_2", email=EMAIL, text=WEBCHAT_TEXT)).encode(),
    )
    assert forged.status_code == 401, forged.body
    rejected = client.http.get("/me", headers={"Authorization": f"Bearer {BAD_TOKEN}"})
    assert rejected.status_code == 401, rejected.body

    output = capsys.readouterr()
    printed = [line for line in (output.out + output.err).splitlines() if line.strip()]
    recorded = [_record_line(record) for record in caplog.records]

    # Logs were captured, as JSON with the Lambda context and the conversation as correlation id ...
    documents = [json.loads(line) for line in printed if line.startswith("{")]
    inbound = [d for d in documents if d.get("message") == "inbound message"]
    assert {d.get("conversation_id") for d in inbound} == {webchat_conversation, sms_conversation}
    assert all(d.get("function_request_id") for d in inbound)  # not the service: the log group names it
    routed = [d for d in documents if d.get("message") in ("queued", "offered")]
    assert routed and all(d.get("conversation_id") in offered for d in routed)
    # ... and cleared per invocation: the bad token's line comes after them and names no conversation.
    token_rejected = [d for d in documents if d.get("message") == "sign-in token rejected"]
    assert token_rejected and "conversation_id" not in token_rejected[-1]
    assert any("inbound message" in line for line in recorded)

    # ... and none of them carries what must stay out of logs.
    assert len(issued_tokens) >= 3
    leaks = [
        (what, line[:300])
        for what, value in _forbidden(issued_tokens).items()
        for line in printed + recorded
        if value in line
    ]
    assert not leaks, leaks
