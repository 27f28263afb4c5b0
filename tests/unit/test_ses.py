"""SES inbound e-mail over SNS: signature verification as AWS documents it, then the SES receipt notification.

The test plays SNS: it makes its own RSA key and self-signed certificate,
signs the string to sign the way SNS does (written out here, independently
of the adapter), and serves the PEM at an SNS-looking URL through
``responses``, so nothing leaves the machine. ConfirmSubscription goes to
moto and is observed with a botocore event hook on the adapter's client.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from chalicelib.channels import ses
from chalicelib.channels.base import WebhookRequest
from chalicelib.conversations import inbox
from chalicelib.conversations.models import Identity
from chalicelib.errors import Forbidden, InvalidPayload, SwitchboardError, Unauthenticated
from chalicelib.settings import reload_settings
from chalicelib.store import aws as aws_clients
from tests.support import CHANNEL_SECRETS, SNS_TOPIC_ARN

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
TOPICS = (SNS_TOPIC_ARN,)

SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate_pem(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


SNS_PEM = _certificate_pem(SNS_KEY)


def _string_to_sign(message: dict[str, Any]) -> bytes:
    # Written from the AWS guide, not from the adapter: "Name\nvalue\n" per field, in byte order of the names.
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", *(["Subject"] if "Subject" in message else []), "Timestamp", "TopicArn"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
    return "".join(f"{name}\n{message[name]}\n" for name in [*names, "Type"]).encode()


def _signed(
    message: dict[str, Any],
    version: str = "1",
    key: rsa.RSAPrivateKey = SNS_KEY,
    url: str = CERT_URL,
    sent: datetime | None = None,
) -> dict[str, Any]:
    moment = sent or datetime.now(UTC)
    message = {
        **message,
        "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "SignatureVersion": version,
        "SigningCertURL": url,
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(_string_to_sign(message), padding.PKCS1v15(), algorithm)).decode()
    return message


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "sns" / name).read_text())


def _ses_notification(**changes: Any) -> dict[str, Any]:
    """The fixture's SNS Notification with its SES notification changed (dot paths: ``receipt.virusVerdict``)."""
    envelope = _fixture("notification_ses_received.json")
    notification = json.loads(envelope["Message"])
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = notification
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    envelope["Message"] = json.dumps(notification)
    return envelope


def _body(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(autouse=True)
def _fresh_certificate_cache() -> Iterator[None]:
    ses.forget_certificates()
    yield
    ses.forget_certificates()


@pytest.fixture
def sns_certificates() -> Iterator[responses.RequestsMock]:
    """The certificate host, as SNS serves it; any other URL would fail to connect."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(CERT_URL, body=SNS_PEM, content_type="application/x-x509-ca-cert")
        yield mock


# --- signature verification -------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_notification_signed_by_sns_verifies(sns_certificates, version):
    message = _signed(_fixture("notification_ses_received.json"), version)
    verified = ses.verify_sns_message(_body(message), TOPICS, _now())
    assert verified.type == "Notification"
    assert verified.message_id == "9b2e4a7c-51d3-5f0e-8a6b-2c4d6e8f0a1b"
    assert verified.topic_arn == SNS_TOPIC_ARN
    assert json.loads(verified.message)["notificationType"] == "Received"


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_subscription_confirmation_signed_by_sns_verifies(sns_certificates, version):
    message = _signed(_fixture("subscription_confirmation.json"), version)
    verified = ses.verify_sns_message(_body(message), TOPICS, _now())
    assert (verified.type, verified.token) == ("SubscriptionConfirmation", message["Token"])


def test_a_notification_without_subject_signs_without_it(sns_certificates):
    unsigned = _fixture("notification_ses_received.json")
    del unsigned["Subject"]
    ses.verify_sns_message(_body(_signed(unsigned)), TOPICS, _now())


@pytest.mark.parametrize("version", ["1", "2"])
def test_one_changed_byte_in_the_message_fails(sns_certificates, version):
    message = _signed(_fixture("notification_ses_received.json"), version)
    message["Message"] = message["Message"].replace("Thanks!", "Thanks?", 1)
    with pytest.raises(Unauthenticated):
        ses.verify_sns_message(_body(message), TOPICS, _now())


def test_a_signature_by_another_key_fails(sns_certificates):
    message = _signed(_fixture("notification_ses_received.json"), key=OTHER_KEY)
    with pytest.raises(Unauthenticated):
        ses.verify_sns_message(_body(message), TOPICS, _now())


@pytest.mark.parametrize(
    "field", ["Signature", "SigningCertURL", "SignatureVersion", "MessageId", "Timestamp", "TopicArn"]
)
def test_a_missing_signing_field_fails(sns_certificates, field):
    message = _signed(_fixture("notification_ses_received.json"))
    del message[field]
    with pytest.raises(Unauthenticated):
        ses.verify_sns_message(_body(message), TOPICS, _now())


def test_an_unknown_signature_version_fails(sns_certificates):
    message = {**_signed(_fixture("notification_ses_received.json")), "SignatureVersion": "3"}
    with pytest.raises(Unauthenticated):
        ses.verify_sns_message(_body(message), TOPICS, _now())


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-0123.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.txt",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem?x=.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0123.pem",
        "https://evil.com@sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://s3.amazonaws.com/sns.us-east-1/SimpleNotificationService-0123.pem",
        "https://sns.evil.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-0123.pem",  # .cn is for cn- regions
    ],
)
def test_a_certificate_url_not_on_sns_is_rejected_without_fetching(sns_certificates, url):
    # Signed with the right key, so only the URL can be what fails.
    message = _signed(_fixture("notification_ses_received.json"), url=url)
    with pytest.raises(Unauthenticated):
        ses.verify_sns_message(_body(message), TOPICS, _now())
    assert len(sns_certificates.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a1.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-a1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a1.pem",
        "https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-a1.pem",
    ],
)
def test_regional_sns_certificate_urls_are_accepted(url):
    assert ses.is_sns_certificate_url(url)


def test_a_topic_not_configured_is_forbidden_before_any_fetch(sns_certificates):
    message = _signed({**_fixture("notification_ses_received.json"), "TopicArn": "arn:aws:sns:us-east-1:9:other"})
    with pytest.raises(Forbidden) as raised:
        ses.verify_sns_message(_body(message), TOPICS, _now())
    assert raised.value.status == 403
    assert len(sns_certificates.calls) == 0


def test_the_certificate_is_fetched_once_for_two_messages(sns_certificates):
    first = _signed(_fixture("notification_ses_received.json"))
    second = _signed({**_fixture("notification_ses_received.json"), "MessageId": str(uuid.uuid4())}, version="2")
    ses.verify_sns_message(_body(first), TOPICS, _now())
    ses.verify_sns_message(_body(second), TOPICS, _now())
    assert [call.request.url for call in sns_certificates.calls] == [CERT_URL]


@pytest.mark.parametrize("age", [timedelta(hours=2), timedelta(minutes=-10)])
def test_a_message_outside_the_delivery_window_is_refused(sns_certificates, age):
    message = _signed(_fixture("notification_ses_received.json"), sent=_now() - age)
    with pytest.raises(Unauthenticated, match="stale"):
        ses.verify_sns_message(_body(message), TOPICS, _now())


def test_a_certificate_host_that_cannot_be_reached_asks_sns_to_retry():
    message = _signed(_fixture("notification_ses_received.json"))
    with responses.RequestsMock() as mock:
        mock.get(CERT_URL, body=requests.ConnectTimeout("timed out"))
        with pytest.raises(ses.SigningCertificateUnavailable) as raised:
            ses.verify_sns_message(_body(message), TOPICS, _now())
    assert raised.value.status == 503


def test_a_missing_certificate_is_unauthenticated():
    message = _signed(_fixture("notification_ses_received.json"))
    with responses.RequestsMock() as mock:
        mock.get(CERT_URL, status=404, body="<Error><Code>NoSuchKey</Code></Error>")
        with pytest.raises(Unauthenticated):
            ses.verify_sns_message(_body(message), TOPICS, _now())


def test_a_body_above_the_limit_is_refused_before_parsing():
    with pytest.raises(SwitchboardError) as raised:
        ses.verify_sns_message(b"{" + b" " * ses.MAX_BODY_BYTES + b"}", TOPICS, _now())
    assert raised.value.status == 413


# --- the SES receipt notification --------------------------------------------------------


def _parsed(envelope: dict[str, Any]) -> Any:
    message = _signed(envelope)
    return ses.parse_notification(ses.verify_sns_message(_body(message), TOPICS, _now()))


def test_a_received_notification_becomes_one_email_message(sns_certificates):
    webhook = _parsed(_fixture("notification_ses_received.json"))
    assert webhook.immediate is None
    [message] = webhook.messages
    assert (message.channel, message.provider) == ("email", "ses")
    assert message.provider_message_id == "9b2e4a7c-51d3-5f0e-8a6b-2c4d6e8f0a1b"  # the SNS MessageId
    assert message.identity == Identity("email", "ada.lovelace@example.com")
    assert message.name == "Ada Lovelace"
    assert message.subject == "Re: Order 1234 has not arrived"
    assert message.text.startswith("Thanks! The tracking number works now.\n\nOne more question: can I change")
    assert "warehouse" not in message.text  # the quoted agent reply is gone
    assert message.thread is not None
    assert message.thread.in_reply_to == "<0100019a4f2b-agent-reply-1@email.amazonses.com>"
    assert message.sent_at == "2025-11-04T07:15:40.000000Z"
    assert message.extra_dedupe_keys == (
        "ses-mail#6h0sd3v0t8qjgm1b2c3d4e5f6g7h8i9j0k1l2m3",
        "email-message-id#<CAF3kX9nR7+reply2@mail.gmail.com>",
    )
    assert message.metadata == {
        "spam": False,
        "spf": "PASS",
        "dkim": "PASS",
        "dmarc": "PASS",
        "recipient": "support@acme-shop.example",
    }


def test_base64_encoded_content_is_decoded_to_the_same_message(sns_certificates):
    envelope = _fixture("notification_ses_received.json")
    notification = json.loads(envelope["Message"])
    utf8 = _parsed(envelope).messages[0]
    notification["content"] = base64.b64encode(notification["content"].encode()).decode()
    notification["receipt"]["action"]["encoding"] = "BASE64"
    base64_message = _parsed({**envelope, "Message": json.dumps(notification)}).messages[0]
    assert (base64_message.text, base64_message.thread) == (utf8.text, utf8.thread)


def test_content_that_is_not_base64_when_it_says_so_is_invalid(sns_certificates):
    with pytest.raises(InvalidPayload):
        _parsed(_ses_notification(**{"content": "%%% not base64 %%%", "receipt.action.encoding": "BASE64"}))


def test_a_virus_is_dropped_with_200_and_nothing_stored(sns_certificates):
    webhook = _parsed(_ses_notification(**{"receipt.virusVerdict": {"status": "FAIL"}}))
    assert webhook.messages == ()
    assert webhook.immediate is not None
    assert webhook.immediate.status == 200


def test_spam_is_stored_and_marked(sns_certificates):
    [message] = _parsed(_ses_notification(**{"receipt.spamVerdict": {"status": "FAIL"}})).messages
    assert message.metadata["spam"] is True


@pytest.mark.parametrize("kind", ["Bounce", "Complaint", "AmazonSnsSubscriptionSucceeded"])
def test_other_notifications_are_answered_200_and_not_stored(sns_certificates, kind):
    webhook = _parsed(_ses_notification(notificationType=kind))
    assert webhook.messages == ()
    assert webhook.immediate is not None and webhook.immediate.status == 200


def test_a_received_notification_of_another_action_has_no_content_and_is_not_stored(sns_certificates):
    envelope = _fixture("notification_ses_received.json")
    notification = json.loads(envelope["Message"])
    del notification["content"]
    notification["receipt"]["action"] = {"type": "S3", "bucketName": "inbound", "objectKey": "x"}
    webhook = _parsed({**envelope, "Message": json.dumps(notification)})
    assert webhook.messages == () and webhook.immediate is not None


def test_a_sender_missing_from_the_mime_falls_back_to_ses_common_headers(sns_certificates):
    envelope = _fixture("notification_ses_received.json")
    notification = json.loads(envelope["Message"])
    notification["content"] = notification["content"].replace("From: Ada Lovelace <ada.lovelace@example.com>\r\n", "")
    [message] = _parsed({**envelope, "Message": json.dumps(notification)}).messages
    assert message.identity == Identity("email", "ada.lovelace@example.com")


# --- the adapter: subscription handshakes, and storing through the platform ---------------


@pytest.fixture
def sns_in_moto(env: None) -> Iterator[list[dict[str, Any]]]:
    """The configured topic in moto, and the ConfirmSubscription calls the adapter's own SNS client makes."""
    calls: list[dict[str, Any]] = []
    with mock_aws():
        boto3.client("sns", region_name="us-east-1").create_topic(Name=SNS_TOPIC_ARN.rsplit(":", 1)[1])
        aws_clients.client("sns").meta.events.register(
            "provide-client-params.sns.ConfirmSubscription", lambda params, **_: calls.append(dict(params))
        )
        yield calls
    aws_clients.reset()


def _request(message: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path=ses.ADAPTER.path,
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": message["Type"]},
        query={},
        body=_body(message),
        public_url="https://hooks.example.com/api/webhooks/email/ses",
    )


def test_a_subscription_confirmation_is_confirmed_through_the_sns_api(sns_in_moto, sns_certificates):
    message = _signed(_fixture("subscription_confirmation.json"))
    webhook = ses.ADAPTER.handle(_request(message))
    assert webhook.messages == ()
    assert webhook.immediate is not None and webhook.immediate.status == 200
    assert sns_in_moto == [{"TopicArn": SNS_TOPIC_ARN, "Token": message["Token"], "AuthenticateOnUnsubscribe": "true"}]
    # The SubscribeURL was never fetched: the only HTTP call was for the certificate.
    assert [call.request.url for call in sns_certificates.calls] == [CERT_URL]


IRELAND_TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:switchboard-inbound-email-ireland"
IRELAND_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-fedcba9876543210fedcba9876543210.pem"


def test_a_topic_in_another_region_is_confirmed_through_that_regions_sns(sns_in_moto, monkeypatch):
    """SES receives mail in a few regions only, and its topic must be in the receiving region: not ours."""
    monkeypatch.setenv("SNS_TOPIC_ARNS", f"{SNS_TOPIC_ARN},{IRELAND_TOPIC_ARN}")
    reload_settings()
    boto3.client("sns", region_name="eu-west-1").create_topic(Name=IRELAND_TOPIC_ARN.rsplit(":", 1)[1])
    confirmation = _fixture("subscription_confirmation.json")
    confirmation = {
        **confirmation,
        "TopicArn": IRELAND_TOPIC_ARN,
        "SubscribeURL": confirmation["SubscribeURL"]
        .replace("us-east-1", "eu-west-1")
        .replace(SNS_TOPIC_ARN, IRELAND_TOPIC_ARN),
    }
    message = _signed(confirmation, url=IRELAND_CERT_URL)
    with responses.RequestsMock() as certificates:
        certificates.get(IRELAND_CERT_URL, body=SNS_PEM, content_type="application/x-x509-ca-cert")
        webhook = ses.ADAPTER.handle(_request(message))

    assert webhook.immediate is not None and webhook.immediate.status == 200
    assert sns_in_moto == [], "not through this deployment's region (us-east-1), where the topic does not exist"
    regions = [c.meta.region_name for c in aws_clients.created_clients() if c.meta.service_model.service_name == "sns"]
    assert regions == ["us-east-1", "eu-west-1"]


def test_an_unsubscribe_confirmation_is_acknowledged_and_nothing_else(sns_in_moto, sns_certificates):
    message = _signed({**_fixture("subscription_confirmation.json"), "Type": "UnsubscribeConfirmation"})
    webhook = ses.ADAPTER.handle(_request(message))
    assert webhook.immediate is not None and webhook.immediate.status == 200
    assert sns_in_moto == []


def test_a_forged_confirmation_confirms_nothing(sns_in_moto, sns_certificates):
    message = _signed(_fixture("subscription_confirmation.json"), key=OTHER_KEY)
    with pytest.raises(Unauthenticated):
        ses.ADAPTER.handle(_request(message))
    assert sns_in_moto == []


def test_sns_retries_and_the_same_email_again_are_stored_once(aws, sns_certificates):
    first = _signed(_fixture("notification_ses_received.json"))
    reply = inbox.deliver(ses.ADAPTER, _request(first))
    assert reply.status == 200 and isinstance(reply.body, dict) and reply.body["status"] == "accepted"

    retry = inbox.deliver(ses.ADAPTER, _request(first))
    assert isinstance(retry.body, dict) and retry.body["status"] == "duplicate"

    # The same e-mail again under a new SNS MessageId and SES messageId (a second receipt rule, say):
    # its Message-ID makes it the same message.
    again = _ses_notification(**{"mail.messageId": "another-ses-id"})
    again["MessageId"] = str(uuid.uuid4())
    repeat = inbox.deliver(ses.ADAPTER, _request(_signed(again)))
    assert isinstance(repeat.body, dict) and repeat.body["status"] == "duplicate"
    assert repeat.body["message_ids"] == reply.body["message_ids"]


def test_the_same_email_through_mailgun_after_ses_is_stored_once(aws, sns_certificates, monkeypatch):
    import hashlib
    import hmac
    import time
    from urllib.parse import urlencode

    from chalicelib.channels import mailgun

    stored = inbox.deliver(ses.ADAPTER, _request(_signed(_fixture("notification_ses_received.json"))))
    timestamp, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(
        CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"].encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    form = {
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "from": "Ada Lovelace <ada.lovelace@example.com>",
        "subject": "Re: Order 1234 has not arrived",
        "body-plain": "Thanks! The tracking number works now.",
        "Message-Id": "<CAF3kX9nR7+reply2@mail.gmail.com>",
    }
    request = WebhookRequest(
        "POST",
        mailgun.ADAPTER.path,
        {"Content-Type": "application/x-www-form-urlencoded"},
        {},
        urlencode(form).encode(),
        "https://hooks.example.com/api/webhooks/email/mailgun",
    )
    through_mailgun = inbox.deliver(mailgun.ADAPTER, request)
    assert isinstance(through_mailgun.body, dict) and isinstance(stored.body, dict)
    assert through_mailgun.body["status"] == "duplicate"
    assert through_mailgun.body["message_ids"] == stored.body["message_ids"]


# --- nothing but a SwitchboardError, whatever arrives ---------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_as_an_sns_body_raise_only_switchboard_errors(body):
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        try:
            ses.verify_sns_message(body, TOPICS, _now())
        except SwitchboardError as error:
            assert 400 <= error.status < 600
        else:
            raise AssertionError("arbitrary bytes verified as an SNS message")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=3000), encoding=st.sampled_from(["UTF8", "BASE64"]))
def test_signed_notifications_with_arbitrary_email_content_raise_only_switchboard_errors(
    sns_certificates, content, encoding
):
    text = base64.b64encode(content).decode() if encoding == "BASE64" else content.decode("latin-1")
    envelope = _ses_notification(**{"content": text, "receipt.action.encoding": encoding})
    try:
        webhook = _parsed(envelope)
    except SwitchboardError as error:
        assert 400 <= error.status < 500
    else:
        assert all(m.identity.kind == "email" for m in webhook.messages)
