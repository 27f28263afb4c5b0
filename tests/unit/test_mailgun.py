"""Mailgun inbound e-mail (a route's ``forward()``): signature, freshness, one-time tokens, and the parsed fields.

Bodies are built here the way Mailgun posts them (urlencoded, or
multipart/form-data when the e-mail has attachments) and signed with an
HMAC written out independently of the adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels import mailgun
from chalicelib.channels.base import WebhookRequest
from chalicelib.conversations import inbox
from chalicelib.conversations.models import Attachment, Identity
from chalicelib.errors import SwitchboardError, Unauthenticated
from tests.support import CHANNEL_SECRETS

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "e6f2c1d0a9b84c7d8e5f4a3b2c1d0e9f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
# Binary, with CRLF, LF, a lone CR and a boundary-looking line: the size must come out exact.
PDF = (
    b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    b"\x00\x01\x02\rlone-cr\r\n--not-a-boundary\r\n%%EOF\n"
)


def _signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def _signed_fields(key: str = KEY, age: float = 0, token: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() - age))
    token = token or (uuid.uuid4().hex + uuid.uuid4().hex)[:50]
    return {"timestamp": timestamp, "token": token, "signature": _signature(key, timestamp, token)}


def _email_fields(**overrides: Any) -> dict[str, str]:
    """What Mailgun posts for a reply from Ada, quotes already stripped by Mailgun."""
    headers = [
        ["X-Mailgun-Incoming", "Yes"],
        ["Mime-Version", "1.0"],
        ["From", "Ada Lovelace <Ada.Lovelace@example.com>"],
        ["Date", "Tue, 4 Nov 2025 08:15:40 +0100"],
        ["Message-Id", "<CAF3kX9nR7+reply2@mail.gmail.com>"],
        ["In-Reply-To", "<0100019a4f2b-agent-reply-1@email.amazonses.com>"],
        ["References", "<CAF3kX9m2Q+order1234@mail.gmail.com> <0100019a4f2b-agent-reply-1@email.amazonses.com>"],
        ["Subject", "Re: Order 1234 has not arrived"],
        ["To", "Acme Support <support@acme-shop.example>"],
        ["Content-Type", 'multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"'],
    ]
    fields = {
        "recipient": "Support@acme-shop.example",
        "sender": "ada.lovelace@example.com",
        "from": "Ada Lovelace <Ada.Lovelace@example.com>",
        "subject": "Re: Order 1234 has not arrived",
        "body-plain": (
            "Thanks! The tracking number works now.\r\n\r\nOn Mon, 3 Nov 2025 at 17:02, Acme Support "
            "<support@acme-shop.example> wrote:\r\n\r\n> Your bike left our warehouse today.\r\n"
        ),
        "stripped-text": "Thanks! The tracking number works now.",
        "stripped-signature": "",
        "body-html": '<div dir="ltr">Thanks! The tracking number works now.</div>',
        "stripped-html": '<div dir="ltr">Thanks! The tracking number works now.</div>',
        "message-headers": json.dumps(headers),
        "Message-Id": "<CAF3kX9nR7+reply2@mail.gmail.com>",
        "In-Reply-To": "<0100019a4f2b-agent-reply-1@email.amazonses.com>",
        "References": "<CAF3kX9m2Q+order1234@mail.gmail.com> <0100019a4f2b-agent-reply-1@email.amazonses.com>",
        "Date": "Tue, 4 Nov 2025 08:15:40 +0100",
        "X-Mailgun-Incoming": "Yes",
    }
    fields.update(overrides)
    return {name: value for name, value in fields.items() if value is not None}


def _urlencoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def _multipart(fields: dict[str, str], files: list[tuple[str, str, str, bytes]]) -> bytes:
    """multipart/form-data as Mailgun sends it: text fields, then ``attachment-N`` files."""
    out = b""
    for name, value in fields.items():
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    for name, filename, content_type, data in files:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


def _parse(body: bytes, content_type: str = URLENCODED, key: str = KEY) -> Any:
    return mailgun.parse(body, content_type, key, time.time())


# --- a genuine delivery -------------------------------------------------------------------


def test_an_urlencoded_forward_becomes_one_email_message_with_a_one_time_token():
    signed = _signed_fields()
    body = _urlencoded({**_email_fields(), **signed})
    webhook = _parse(body)
    [message] = webhook.messages
    assert (message.channel, message.provider) == ("email", "mailgun")
    assert message.provider_message_id == "<CAF3kX9nR7+reply2@mail.gmail.com>"
    assert message.extra_dedupe_keys == ("email-message-id#<CAF3kX9nR7+reply2@mail.gmail.com>",)
    assert message.identity == Identity("email", "ada.lovelace@example.com")
    assert message.name == "Ada Lovelace"
    assert message.subject == "Re: Order 1234 has not arrived"
    assert message.text == "Thanks! The tracking number works now."  # Mailgun's stripped-text
    assert message.thread is not None
    assert message.thread.in_reply_to == "<0100019a4f2b-agent-reply-1@email.amazonses.com>"
    assert message.thread.references[0] == "<CAF3kX9m2Q+order1234@mail.gmail.com>"
    assert message.sent_at == "2025-11-04T07:15:40.000000Z"
    assert message.metadata == {"spam": False, "recipient": "support@acme-shop.example"}
    claim = webhook.context["replay_token"]
    assert (claim.namespace, claim.token, claim.expires_epoch) == (
        "mailgun",
        signed["token"],
        int(signed["timestamp"]) + 360,
    )
    assert claim.fingerprint == hashlib.sha256(body).hexdigest()


def test_a_multipart_forward_lists_its_attachments_with_their_sizes():
    fields = {**_email_fields(**{"attachment-count": "2", "stripped-text": "Zo\u00eb here: invoice attached."})}
    files = [
        ("attachment-1", "invoice-9012.pdf", "application/pdf", PDF),
        ("attachment-2", "photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4),
    ]
    webhook = _parse(_multipart({**fields, **_signed_fields()}, files), MULTIPART)
    [message] = webhook.messages
    assert message.text == "Zo\u00eb here: invoice attached."  # UTF-8 form field without a charset of its own
    assert message.attachments == (
        Attachment("application/pdf", size=len(PDF), filename="invoice-9012.pdf"),
        Attachment("image/jpeg", size=4 + 1024, filename="photo.jpg"),
    )
    assert message.identity == Identity("email", "ada.lovelace@example.com")


def test_without_stripped_text_the_plain_body_is_stripped_here():
    webhook = _parse(_urlencoded({**_email_fields(**{"stripped-text": None}), **_signed_fields()}))
    assert webhook.messages[0].text == "Thanks! The tracking number works now."


def test_threading_headers_missing_as_fields_are_read_from_message_headers():
    fields = _email_fields(**{"Message-Id": None, "In-Reply-To": None, "References": None, "Date": None})
    [message] = _parse(_urlencoded({**fields, **_signed_fields()})).messages
    assert message.provider_message_id == "<CAF3kX9nR7+reply2@mail.gmail.com>"
    assert message.thread is not None and message.thread.in_reply_to is not None
    assert message.sent_at == "2025-11-04T07:15:40.000000Z"


def test_an_email_without_message_id_gets_the_same_id_on_every_retry():
    headers = json.dumps([["From", "ada@example.com"], ["Subject", "Hi"]])
    fields = _email_fields(**{"Message-Id": None, "message-headers": headers})
    first = _parse(_urlencoded({**fields, **_signed_fields()})).messages[0]
    retry = _parse(_urlencoded({**fields, **_signed_fields()})).messages[0]  # new timestamp and token
    assert first.provider_message_id == retry.provider_message_id
    assert first.provider_message_id.startswith("sha256:")
    assert first.extra_dedupe_keys == ()


def test_mailguns_spam_flag_is_kept():
    [message] = _parse(_urlencoded({**_email_fields(**{"X-Mailgun-Sflag": "Yes"}), **_signed_fields()})).messages
    assert message.metadata["spam"] is True


def test_without_a_from_address_the_envelope_sender_is_used():
    fields = _email_fields(**{"from": "undisclosed-recipients:;", "message-headers": "[]"})
    [message] = _parse(_urlencoded({**fields, **_signed_fields()})).messages
    assert message.identity == Identity("email", "ada.lovelace@example.com")


def test_a_genuine_delivery_without_any_sender_address_is_406_so_mailgun_stops_retrying():
    fields = _email_fields(**{"from": "undisclosed-recipients:;", "sender": "", "message-headers": "[]"})
    with pytest.raises(mailgun.NotAcceptable) as raised:
        _parse(_urlencoded({**fields, **_signed_fields()}))
    assert raised.value.status == 406
    assert raised.value.to_body()["error"] == "not_acceptable"


def test_the_same_delivery_unsigned_is_401_not_406():
    fields = _email_fields(**{"from": "", "sender": "", "message-headers": "[]"})
    with pytest.raises(Unauthenticated):
        _parse(_urlencoded({**fields, **_signed_fields(key="someone-elses-key")}))


# --- verification --------------------------------------------------------------------------


def _with(signed: dict[str, str], **changes: str) -> bytes:
    return _urlencoded({**_email_fields(), **signed, **changes})


def test_a_forged_signature_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        _parse(_with(_signed_fields(), signature=hashlib.sha256(b"forged").hexdigest()))


def test_a_signature_made_with_another_key_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        _parse(_with(_signed_fields(key="key-someone-else")))


@pytest.mark.parametrize("field", ["timestamp", "token", "signature"])
def test_one_changed_byte_is_unauthenticated(field):
    signed = _signed_fields()
    value = signed[field]
    changed = value[:-1] + ("1" if value[-1] != "1" else "2")
    with pytest.raises(Unauthenticated):
        _parse(_with(signed, **{field: changed}))


@pytest.mark.parametrize("field", ["timestamp", "token", "signature"])
def test_a_missing_signing_field_is_unauthenticated(field):
    signed = _signed_fields()
    del signed[field]
    with pytest.raises(Unauthenticated):
        _parse(_with(signed))


@pytest.mark.parametrize("age", [6 * 60, -6 * 60])
def test_a_timestamp_six_minutes_away_either_way_is_stale(age):
    with pytest.raises(Unauthenticated, match="stale"):
        _parse(_with(_signed_fields(age=age)))


def test_a_timestamp_four_minutes_old_is_accepted():
    assert _parse(_with(_signed_fields(age=4 * 60))).messages


def test_a_body_above_the_limit_is_refused_before_parsing():
    with pytest.raises(SwitchboardError) as raised:
        _parse(b"x" * (mailgun.MAX_BODY_BYTES + 1))
    assert raised.value.status == 413


# --- through the platform: the secret from settings, and a token good only once ----------------


def _request(body: bytes, content_type: str = URLENCODED) -> WebhookRequest:
    return WebhookRequest(
        "POST",
        mailgun.ADAPTER.path,
        {"Content-Type": content_type},
        {},
        body,
        "https://hooks.example.com/api/webhooks/email/mailgun",
    )


def test_a_replayed_token_is_refused_and_stores_nothing_new(aws):
    body = _with(_signed_fields(key=CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"]))
    reply = inbox.deliver(mailgun.ADAPTER, _request(body))
    assert (reply.status, isinstance(reply.body, dict) and reply.body["status"]) == (200, "accepted")
    with pytest.raises(Unauthenticated):
        inbox.deliver(mailgun.ADAPTER, _request(body))


def test_mailguns_retry_with_a_fresh_token_is_a_duplicate_not_a_second_message(aws):
    key = CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"]
    first = inbox.deliver(mailgun.ADAPTER, _request(_with(_signed_fields(key=key))))
    retry = inbox.deliver(mailgun.ADAPTER, _request(_with(_signed_fields(key=key))))
    assert isinstance(first.body, dict) and isinstance(retry.body, dict)
    assert retry.body["status"] == "duplicate"
    assert retry.body["message_ids"] == first.body["message_ids"]


# --- nothing but a SwitchboardError, whatever arrives ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from([URLENCODED, MULTIPART]))
def test_arbitrary_bytes_after_a_valid_signature_raise_only_switchboard_errors(tail, content_type):
    signed = _signed_fields()
    if content_type == URLENCODED:
        body = _urlencoded(signed) + b"&" + tail
    else:
        body = _multipart(signed, []).removesuffix(f"--{BOUNDARY}--\r\n".encode()) + tail
    try:
        _parse(body, content_type)
    except SwitchboardError as error:
        assert 400 <= error.status < 500


_MAILGUN_FIELDS = ("from", "sender", "subject", "body-plain", "stripped-text", "body-html", "message-headers")
_HEADER_FIELDS = ("Message-Id", "In-Reply-To", "References", "Date", "recipient", "X-Mailgun-Sflag")
_FIELD_NAMES = st.sampled_from(_MAILGUN_FIELDS + _HEADER_FIELDS)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(_FIELD_NAMES | st.text(max_size=20), st.text(max_size=300), max_size=12),
    st.lists(st.tuples(st.text(max_size=30), st.binary(max_size=200)), max_size=3),
    st.booleans(),
)
def test_arbitrary_signed_forms_raise_only_switchboard_errors(fields, files, as_multipart):
    signed = _signed_fields()
    try:
        if as_multipart:
            attachments = [
                (f"attachment-{i + 1}", name.replace('"', "").replace("\r", "").replace("\n", ""), "x/y", data)
                for i, (name, data) in enumerate(files)
            ]
            clean = {k.replace('"', "").replace("\r", "").replace("\n", ""): v for k, v in fields.items()}
            webhook = _parse(_multipart({**clean, **signed}, attachments), MULTIPART)
        else:
            webhook = _parse(_urlencoded({**fields, **signed}))
    except SwitchboardError as error:
        assert 400 <= error.status < 500
    else:
        assert all(m.identity.kind == "email" for m in webhook.messages)
