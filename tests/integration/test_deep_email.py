"""E-mail nesting its MIME parts 1,000 deep, through the app as the providers post it.

SES delivers through SNS and cannot be refused: such a mail answered 500 on
every delivery (RecursionError), so SNS retried it for hours. It is now
stored once, with its text and a note that its structure was cut. Mailgun's
multipart/form-data forward is parsed by the same stdlib parser: its deep
parts are cut the same way, so a genuine forward is stored and a forged one
is refused (401), as any other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

from chalicelib.channels import mime
from tests.support import CHANNEL_SECRETS, stored_messages
from tests.unit.test_email_nesting import nested_multiparts
from tests.unit.test_ses import _fresh_certificate_cache, _ses_notification, _signed, sns_certificates

__all__ = ["_fresh_certificate_cache", "sns_certificates"]  # fixtures, used by name


def post_sns(client, message: dict) -> object:
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": message["Type"]}
    return client.http.post("/webhooks/email/ses", headers=headers, body=json.dumps(message).encode())


def signed_raw_mail(raw: bytes, ses_mail_id: str, message_id: str) -> dict:
    """A signed SNS notification of SES receiving the raw e-mail ``raw`` (base64, as the SNS action sends it)."""
    envelope = _ses_notification(
        **{
            "content": base64.b64encode(raw).decode(),
            "receipt.action.encoding": "BASE64",
            "mail.messageId": ses_mail_id,
            "mail.commonHeaders.messageId": message_id,
        }
    )
    envelope["MessageId"] = str(uuid.uuid4())
    return _signed(envelope)


def test_a_signed_ses_mail_nesting_1000_deep_is_stored_once_with_a_note_that_it_was_cut(client, sns_certificates):
    notification = signed_raw_mail(nested_multiparts(1_000), "deep-ses-mail-1", "<nested-1000@example.com>")

    first = post_sns(client, notification)
    again = post_sns(client, notification)  # SNS retries until it gets a 2xx

    assert first.status_code == 200, first.body
    assert first.json_body["status"] == "accepted"
    assert again.status_code == 200 and again.json_body["status"] == "duplicate"
    [stored] = stored_messages()
    assert stored["text"] == "Hello from the bottom"
    assert stored["metadata"]["truncated"] is True
    assert stored["metadata"]["truncated_note"] == mime.CUT_NOTE


def test_an_ordinary_ses_mail_carries_no_truncation_mark(client, sns_certificates):
    response = post_sns(client, _signed(_ses_notification()))
    assert response.status_code == 200, response.body
    [stored] = stored_messages()
    assert "truncated" not in stored["metadata"]


def _signed_form_fields(key: str = CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"]) -> dict[str, str]:
    timestamp, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "from": "Mallory <mallory@example.com>",
        "subject": "Forwarded",
        "body-plain": "See the attached mail.",
        "Message-Id": "<deep-form-1@example.com>",
    }


def _deep_mailgun_form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Mailgun's multipart/form-data forward whose attached .eml nests 1,000 deep."""
    boundary = "mailgun-form-boundary"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    deep_eml = nested_multiparts(1_000).split(b"MIME-Version: 1.0\r\n", 1)[1]
    body = (
        parts
        + f'--{boundary}\r\nContent-Disposition: form-data; name="attachment-1"; filename="x.eml"\r\n'.encode()
        + deep_eml
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_genuine_mailgun_forward_with_an_attachment_nesting_1000_deep_is_stored(client):
    body, headers = _deep_mailgun_form(_signed_form_fields())

    response = client.http.post("/webhooks/email/mailgun", headers=headers, body=body)

    assert response.status_code == 200, response.body
    [stored] = stored_messages()
    assert stored["text"] == "See the attached mail."


def test_a_forged_mailgun_forward_nesting_1000_deep_is_401_and_stores_nothing(client):
    body, headers = _deep_mailgun_form(_signed_form_fields(key="not-the-signing-key"))

    response = client.http.post("/webhooks/email/mailgun", headers=headers, body=body)

    assert response.status_code == 401, response.body
    assert response.json_body["error"] == "invalid_signature"
    assert stored_messages() == []
