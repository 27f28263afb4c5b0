"""Web-chat verification and parsing, on raw bytes, without AWS."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels import webchat
from chalicelib.errors import InvalidJson, InvalidPayload, PayloadTooLarge, SwitchboardError, Unauthenticated

SECRET = "s3cret"
LIMIT = 64 * 1024


def _signed(body: bytes) -> dict[str, str]:
    # Written out independently of chalicelib.channels.signing, as a widget backend would.
    return {"X-Switchboard-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def _body(**overrides) -> bytes:
    return json.dumps({"site": "acme", "visitor_id": "v1", "message_id": "m1", "text": "hi", **overrides}).encode()


def test_parses_to_an_inbound_message_scoped_by_site():
    message = webchat.parse(
        _body(name="Ada", email="ADA@Example.com", language="en-GB"),
        _signed(_body(name="Ada", email="ADA@Example.com", language="en-GB")),
        SECRET,
        LIMIT,
    )
    assert message.channel == "webchat"
    assert message.identity.key == "webchat#acme/v1"
    assert message.provider_message_id == "acme/m1"
    assert message.email == "ada@example.com"
    assert message.language == "en-GB"


def test_same_message_id_on_another_site_is_another_message():
    a = webchat.parse(_body(), _signed(_body()), SECRET, LIMIT)
    other = _body(site="other")
    b = webchat.parse(other, _signed(other), SECRET, LIMIT)
    assert a.message_id != b.message_id
    assert a.message_id == webchat.parse(_body(), _signed(_body()), SECRET, LIMIT).message_id


def test_size_is_checked_before_the_signature():
    body = b"x" * (LIMIT + 1)
    with pytest.raises(PayloadTooLarge):
        webchat.parse(body, {}, SECRET, LIMIT)


def test_signature_is_checked_before_parsing():
    with pytest.raises(Unauthenticated):
        webchat.parse(b"{not json", {"X-Switchboard-Signature": "sha256=00"}, SECRET, LIMIT)
    with pytest.raises(InvalidJson):
        webchat.parse(b"{not json", _signed(b"{not json"), SECRET, LIMIT)


def test_errors_name_every_bad_field():
    body = _body(text=1, language="english!", visitor_id="")
    with pytest.raises(InvalidPayload) as raised:
        webchat.parse(body, _signed(body), SECRET, LIMIT)
    fields = {d["field"] for d in raised.value.details}
    assert fields == {"text", "language", "visitor_id"}


@given(st.binary(max_size=2048))
def test_arbitrary_signed_bytes_give_a_client_error_or_a_message(body):
    try:
        message = webchat.parse(body, _signed(body), SECRET, LIMIT)
    except SwitchboardError as error:
        assert 400 <= error.status < 500
        assert error.to_body()["message"]
    else:
        assert message.text.strip()


@pytest.mark.parametrize(
    "body",
    [b'{"text": NaN}', b'{"site": ' + b"1" * 5000 + b"}", b"[" * 100_000, b"\xff\xfe"],
    ids=["NaN", "5000-digit number", "deep nesting", "not UTF-8"],
)
def test_signed_but_hostile_json_is_a_client_error(body):
    with pytest.raises(InvalidJson):
        webchat.parse(body, _signed(body), SECRET, 200_000)


def test_every_json_channel_refuses_hostile_json_as_a_client_error():
    """One guard for all: NaN, a 5000-digit number and deep nesting are 400s, never a 5xx."""
    from chalicelib.channels.fields import load_json

    for body in (b'{"a": NaN}', b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100_000):
        with pytest.raises(InvalidJson):
            load_json(body)
