"""Inbound e-mail through Amazon SES: a receipt rule's SNS action, delivered to us by an SNS HTTPS subscription.

``POST /webhooks/email/ses`` receives the SNS message JSON, sent by default
as ``Content-Type: text/plain; charset=UTF-8`` (``application/json`` when
the subscription's delivery policy says so). Every message is verified
before anything else is read:

* ``TopicArn`` must be one of the ``SNS_TOPIC_ARNS`` setting (else 403);
* ``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com/....pem``
  (or ``.amazonaws.com.cn`` for a ``cn-`` region), checked before any fetch;
* the certificate is fetched over HTTPS (cached per URL), and its RSA key
  must verify ``Signature`` over the string to sign (SHA1withRSA for
  ``SignatureVersion`` 1, SHA256withRSA for 2), else 401;
* ``Timestamp`` must be less than SNS's longest retry period (one hour) old.

Then, by ``Type``: ``SubscriptionConfirmation`` is confirmed through the
SNS ``ConfirmSubscription`` API of the topic's own region (never by fetching ``SubscribeURL``);
``UnsubscribeConfirmation`` is acknowledged; a ``Notification`` carrying an
SES ``Received`` notification with the raw e-mail becomes one inbound
message. Anything else authentic (bounces, complaints, notifications of
other receipt actions, which carry no e-mail) is answered 200 and dropped.

The subscription must not use raw message delivery: that drops the
envelope and its signature, and every such POST is refused (401).

An e-mail SES found infected is dropped; one it judged spam is stored with
``metadata["spam"] = True`` so people and routing rules decide, because a
false positive silently lost is worse than a spam message an agent closes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from aws_lambda_powertools import Logger
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib import clock
from chalicelib.channels import mime
from chalicelib.channels.base import Reply, Webhook, WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.conversations.models import Identity, InboundMessage, StoredMessage
from chalicelib.errors import Forbidden, InvalidJson, InvalidPayload, PayloadTooLarge, SwitchboardError, Unauthenticated
from chalicelib.settings import get_settings
from chalicelib.store import subscriptions

logger = Logger(service="switchboard", child=True)

CHANNEL = "email"
PROVIDER = "ses"
# SES publishes e-mails of up to 150 KB through SNS, whose messages may be 256 KiB; the JSON envelope then
# escapes that Message again (every quote and backslash of the SES JSON inside gains a backslash). 512 KiB
# admits everything SNS can deliver; the shared webhook limit (64 KiB) would turn away ordinary e-mails.
MAX_BODY_BYTES = 512 * 1024
CERT_FETCH_TIMEOUT_SECONDS = 3
MAX_CERT_BYTES = 64 * 1024
CERT_CACHE_SIZE = 8  # SNS signs with one certificate per region at a time; a few cover rotations
# SNS stops retrying an HTTP/S delivery after 3,600 s; an older message is a replay. Plus clock skew.
MAX_MESSAGE_AGE = timedelta(seconds=3600 + 300)
MAX_CLOCK_SKEW = timedelta(seconds=300)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
# The string to sign: these fields, in this order, each as "Name\nvalue\n"; Subject only when present.
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# Regional SNS endpoints only (as AWS's own SNS message validators allow): commercial, GovCloud, and China.
_CERT_HOST = re.compile(
    r"sns\.[a-z]{2}(-gov)?-[a-z]+-\d{1,2}\.amazonaws\.com|sns\.cn-[a-z]+-\d{1,2}\.amazonaws\.com\.cn"
)

_certificates: dict[str, x509.Certificate] = {}


class SigningCertificateUnavailable(SwitchboardError):
    """SNS's certificate could not be fetched just now: 503, so SNS retries the delivery."""

    status = 503
    code = "signing_certificate_unavailable"


@dataclass(frozen=True)
class SnsMessage:
    """An SNS message whose signature, certificate, topic and age have been checked."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    token: str | None = None


# --- SNS: verification ----------------------------------------------------------------


def verify_sns_message(body: bytes, allowed_topics: Collection[str], now: datetime) -> SnsMessage:
    """Check an SNS HTTP/S delivery as AWS documents it; raises ``Forbidden``, ``Unauthenticated`` or a 4xx."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    document = load_json(body)
    if not isinstance(document, dict):
        raise InvalidJson("body must be a JSON object")
    kind = document.get("Type")
    if kind not in SIGNED_FIELDS:
        raise Unauthenticated(f"Type {str(kind)[:40]!r} is not an SNS message type")
    required = [f for f in SIGNED_FIELDS[kind] if f != "Subject"] + ["SignatureVersion", "Signature", "SigningCertURL"]
    missing = [f for f in required if not isinstance(document.get(f), str)]
    if missing:
        raise Unauthenticated(f"SNS message lacks {', '.join(missing)}")
    if document["TopicArn"] not in allowed_topics:
        raise Forbidden("messages from this SNS topic are not accepted (see SNS_TOPIC_ARNS)")
    hash_type = _HASHES.get(document["SignatureVersion"])
    if hash_type is None:
        raise Unauthenticated("SignatureVersion must be 1 or 2")
    certificate = signing_certificate(document["SigningCertURL"])
    _verify_signature(certificate, document["Signature"], string_to_sign(document), hash_type(), now)
    _check_age(document["Timestamp"], now)
    return SnsMessage(
        type=kind,
        message_id=document["MessageId"],
        topic_arn=document["TopicArn"],
        message=document["Message"],
        timestamp=document["Timestamp"],
        token=document.get("Token"),
    )


def string_to_sign(document: dict[str, Any]) -> str:
    """The canonical string SNS signs for this message's ``Type``."""
    fields = SIGNED_FIELDS.get(str(document.get("Type")), ())
    present = [f for f in fields if isinstance(document.get(f), str)]
    return "".join(f"{field}\n{document[field]}\n" for field in present)


def is_sns_certificate_url(url: str) -> bool:
    """True for ``https://sns.<region>.amazonaws.com[.cn]/<name>.pem`` and nothing else."""
    if not url.isascii() or any(c.isspace() or c == "\\" for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.netloc == parts.hostname  # no port, no user:password@, no upper case
        and bool(_CERT_HOST.fullmatch(parts.netloc))
        and parts.path.endswith(".pem")
        and not parts.query
        and not parts.fragment
    )


def signing_certificate(url: str) -> x509.Certificate:
    """The X.509 certificate at an SNS ``SigningCertURL``: checked URL, fetched once per container."""
    if not is_sns_certificate_url(url):
        raise Unauthenticated("SigningCertURL is not an Amazon SNS certificate URL")
    cached = _certificates.get(url)
    if cached is not None:
        return cached
    try:
        response = requests.get(url, timeout=CERT_FETCH_TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        logger.warning("SNS signing certificate fetch failed", extra={"url": url, "error": type(exc).__name__})
        raise SigningCertificateUnavailable("the SNS signing certificate could not be fetched") from None
    if response.status_code >= 500:
        raise SigningCertificateUnavailable(f"the SNS certificate host answered {response.status_code}")
    if response.status_code != 200 or len(response.content) > MAX_CERT_BYTES:
        raise Unauthenticated("SigningCertURL does not serve a certificate")
    try:
        certificate = x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise Unauthenticated("SigningCertURL does not serve a PEM X.509 certificate") from None
    while len(_certificates) >= CERT_CACHE_SIZE:
        del _certificates[next(iter(_certificates))]  # the oldest
    _certificates[url] = certificate
    return certificate


def forget_certificates() -> None:
    """Empty the certificate cache (tests)."""
    _certificates.clear()


def _verify_signature(
    certificate: x509.Certificate, signature_b64: str, signed: str, algorithm: hashes.HashAlgorithm, now: datetime
) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Unauthenticated("the SNS signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthenticated("the SNS signing certificate does not hold an RSA key")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("Signature is not base64") from None
    try:
        key.verify(signature, signed.encode("utf-8", errors="surrogatepass"), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        raise Unauthenticated("Signature does not match the message") from None


def _check_age(timestamp: str, now: datetime) -> None:
    try:
        sent = clock.parse_iso(timestamp)
    except ValueError:
        raise Unauthenticated("Timestamp is not an ISO-8601 time") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if sent < now - MAX_MESSAGE_AGE or sent > now + MAX_CLOCK_SKEW:
        raise Unauthenticated("stale SNS message: Timestamp is outside the delivery window")


# --- SES: the receipt notification ------------------------------------------------------


def parse_notification(sns: SnsMessage) -> Webhook:
    """A verified SNS ``Notification`` as a webhook: the e-mail of an SES ``Received`` notification, or nothing."""
    try:
        notification = load_json(sns.message)
    except InvalidJson:
        return _ignored("not an SES notification")
    if not isinstance(notification, dict):
        return _ignored("not an SES notification")
    kind = notification.get("notificationType") or notification.get("eventType")
    if kind != "Received":
        return _ignored(f"SES {str(kind)[:40]} notification")
    mail = _object(notification.get("mail"))
    receipt = _object(notification.get("receipt"))
    ses_mail_id = _string(mail.get("messageId"))
    if _verdict(receipt, "virusVerdict") == "FAIL":
        # Dropped unread; the log names it, and never its content.
        logger.warning("e-mail dropped: SES virus verdict FAIL", extra={"ses_mail_id": ses_mail_id})
        return _ignored("virus")
    content = notification.get("content")
    if not isinstance(content, str):
        # Only the SNS action carries the e-mail; other actions' notifications just say one arrived.
        return _ignored("no e-mail content (the receipt rule action is not SNS)")
    email = mime.parse(_raw_email(content, _object(receipt.get("action")).get("encoding")))
    common = _object(mail.get("commonHeaders"))
    sender, name = email.sender, email.name
    if sender is None:
        sender, name = _first_address(common.get("from"), _string(mail.get("source")))
    if sender is None:
        raise InvalidPayload("the e-mail has no sender address")
    thread = email.thread
    if thread.message_id is None and isinstance(common.get("messageId"), str):
        thread = mime.thread(common["messageId"], thread.in_reply_to, " ".join(thread.references))
    message = InboundMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        provider_message_id=sns.message_id,
        identity=sender,
        text=email.text,
        attachments=email.attachments,
        sent_at=email.sent_at or _iso(mail.get("timestamp")),
        name=name,
        subject=email.subject or _string(common.get("subject")),
        thread=thread,
        metadata={**_metadata(receipt), **_cut(email), **_automatic(email)},
        extra_dedupe_keys=(
            *((f"ses-mail#{ses_mail_id}",) if ses_mail_id else ()),
            *mime.message_id_key(thread.message_id),
        ),
    )
    return Webhook(messages=(message,))


def _automatic(email: mime.ParsedEmail) -> dict[str, Any]:
    """The mark on a mail a machine sent on its own (kept, routed nowhere: ``conversations.inbox``)."""
    return {"auto_submitted": email.automatic} if email.automatic else {}


def _cut(email: mime.ParsedEmail) -> dict[str, Any]:
    """The mark on a mail whose structure was cut (SES cannot be refused, so it is stored as far as it reads)."""
    return {"truncated": True, "truncated_note": mime.CUT_NOTE} if email.truncated else {}


def _raw_email(content: str, encoding: Any) -> bytes:
    if str(encoding).upper().replace("-", "") == "BASE64":
        try:
            return base64.b64decode("".join(content.split()), validate=True)  # line breaks, if any, are not data
        except (binascii.Error, ValueError):
            raise InvalidPayload("content is not base64 although the SNS action's encoding says BASE64") from None
    return content.encode("utf-8", errors="replace")  # UTF8, the default


def _first_address(from_headers: Any, source: str | None) -> tuple[Identity | None, str | None]:
    candidates = [v for v in from_headers if isinstance(v, str)] if isinstance(from_headers, list) else []
    for value in [*candidates, source or ""]:
        who, name = mime.address(value)
        if who is not None:
            return who, name
    return None, None


def _metadata(receipt: dict[str, Any]) -> dict[str, Any]:
    # SPF/DKIM/DMARC tell an agent how far to trust the From address (a FAIL may be a spoofed customer).
    metadata: dict[str, Any] = {"spam": _verdict(receipt, "spamVerdict") == "FAIL"}
    for name in ("spf", "dkim", "dmarc"):
        verdict = _verdict(receipt, f"{name}Verdict")
        if verdict:
            metadata[name] = verdict
    recipients = receipt.get("recipients")
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], str):
        metadata["recipient"] = recipients[0].strip().casefold()  # which of our addresses was written to
    return metadata


def _verdict(receipt: dict[str, Any], name: str) -> str | None:
    status = _object(receipt.get(name)).get("status")
    return status.upper() if isinstance(status, str) else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = clock.parse_iso(value)
        return clock.to_iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        return None


def _ignored(reason: str) -> Webhook:
    return Webhook(immediate=Reply(200, {"status": "ignored", "reason": reason}))


# --- the adapter ------------------------------------------------------------------------------


class SesAdapter:
    """``POST /webhooks/email/ses``: SNS deliveries of SES receipt notifications."""

    name = "email_ses"
    path = "/webhooks/email/ses"
    methods = ("POST",)
    content_types = ("text/plain", "application/json")

    def handle(self, request: WebhookRequest) -> Webhook:
        sns = verify_sns_message(request.body, get_settings().sns_topic_arns, datetime.now(UTC))
        if sns.type == SUBSCRIPTION_CONFIRMATION:
            confirm_subscription(sns)
            return Webhook(immediate=Reply(200, {"status": "subscription_confirmed"}))
        if sns.type == UNSUBSCRIBE_CONFIRMATION:
            logger.info("SNS unsubscribe confirmation", extra={"topic_arn": sns.topic_arn})
            return Webhook(immediate=Reply(200, {"status": "ok"}))
        return parse_notification(sns)

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return Reply(
            200,
            {
                "status": "duplicate" if all(s.duplicate for s in stored) else "accepted",
                "message_ids": [s.message_id for s in stored],
            },
        )


def confirm_subscription(sns: SnsMessage) -> None:
    """Confirm through the SNS API; unsubscribing then needs AWS credentials, not just the message's link.

    An AWS error propagates (500), so SNS delivers the confirmation again. The call goes to the SNS of the
    topic's own region (from its ARN, one of ``SNS_TOPIC_ARNS``): SES needs the topic in its receiving region,
    which need not be this deployment's.
    """
    token = str(sns.token)  # signed, so present: verify_sns_message requires it of a SubscriptionConfirmation
    subscriptions.confirm(sns.topic_arn, token, topic_region(sns.topic_arn))
    logger.info("SNS subscription confirmed", extra={"topic_arn": sns.topic_arn})


def topic_region(topic_arn: str) -> str:
    """The region of ``arn:aws:sns:<region>:<account>:<name>``."""
    parts = topic_arn.split(":")
    if len(parts) != 6 or parts[2] != "sns" or not parts[3]:
        raise InvalidPayload(f"TopicArn is not an SNS topic ARN: {topic_arn}")
    return parts[3]


ADAPTER = SesAdapter()
