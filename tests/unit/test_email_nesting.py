"""E-mail whose MIME parts nest absurdly deep: parsed with the structure cut at ``mime.MAX_DEPTH``, never a crash.

The stdlib parser recurses once per level (and so do ``get_body`` and
``as_bytes``): a mail nesting 1,000 deep raised RecursionError on every SES
delivery. SES cannot be told to stop, so such a mail is stored, with what
text it has and a mark that its structure was cut.
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels import mime


def _depth(message: Message) -> int:
    """How many multipart and message/* levels the stdlib's parse of a message nests."""
    deepest, stack = 0, [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list):  # a multipart, or a message/* holding its message
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return deepest


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
HEAD = (
    b"From: Mallory <mallory@example.com>\r\nTo: support@acme-shop.example\r\nSubject: Nested\r\n"
    b"Message-ID: <nested-1000@example.com>\r\nDate: Tue, 04 Nov 2025 07:15:40 +0000\r\nMIME-Version: 1.0\r\n"
)
BOTTOM = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello from the bottom\r\n"


def nested_multiparts(depth: int, leaf: bytes = BOTTOM, subtype: str = "mixed") -> bytes:
    """``depth`` multipart levels, each holding the next; the innermost holds ``leaf``."""
    body = leaf
    for level in reversed(range(depth)):
        boundary = f"b{level}".encode()
        body = (
            b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + boundary + b'"\r\n\r\n'
            b"--" + boundary + b"\r\n" + body + b"\r\n--" + boundary + b"--\r\n"
        )
    return HEAD + body


def nested_forwards(depth: int) -> bytes:
    """``depth`` forwarded e-mails (message/rfc822), each forwarding the next."""
    body = b"From: someone@example.com\r\n" + BOTTOM
    for _ in range(depth):
        body = b"Content-Type: message/rfc822\r\n\r\n" + body
    return HEAD + body


@pytest.mark.parametrize("depth", [1_000, 5_000])
def test_a_mail_nesting_thousands_of_multiparts_keeps_its_text_and_is_marked_cut(depth):
    email = mime.parse(nested_multiparts(depth))
    assert email.truncated
    assert email.text == "Hello from the bottom"  # the deep parts are flattened, not lost
    assert (email.subject, email.thread.message_id) == ("Nested", "<nested-1000@example.com>")
    assert email.sender is not None and email.sender.value == "mallory@example.com"


def test_a_chain_of_a_thousand_forwarded_mails_parses_with_its_structure_cut():
    email = mime.parse(nested_forwards(1_000))
    assert email.truncated
    assert email.subject == "Nested"


def test_deep_nesting_keeps_the_attachments_above_the_cut():
    pdf = (
        b'Content-Type: application/pdf; name="invoice.pdf"\r\nContent-Disposition: attachment; '
        b'filename="invoice.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n'
    )
    deep = nested_multiparts(2_000).split(b"MIME-Version: 1.0\r\n", 1)[1]
    raw = HEAD + (
        b'Content-Type: multipart/mixed; boundary="top"\r\n\r\n--top\r\n'
        b"Content-Type: text/plain\r\n\r\nPlease see the invoice.\r\n--top\r\n"
        + pdf
        + b"--top\r\n"
        + deep
        + b"--top--\r\n"
    )
    email = mime.parse(raw)
    assert email.truncated and email.text == "Please see the invoice."
    assert [a.filename for a in email.attachments] == ["invoice.pdf"]


@pytest.mark.parametrize("subtype", ["mixed", "alternative", "related", "digest"])
def test_ordinary_nesting_is_parsed_exactly_as_before(subtype):
    raw = nested_multiparts(mime.MAX_DEPTH - 1, subtype=subtype)
    assert not mime.limit_nesting(raw).cut
    assert mime.limit_nesting(raw).raw is raw  # untouched bytes: nothing changes for real mail
    if subtype != "digest":  # a digest's parts are forwarded mails, not a body
        assert mime.parse(raw).text == "Hello from the bottom"
    assert not mime.parse(raw).truncated


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_real_mail_is_not_cut(name):
    raw = (FIXTURES / name).read_bytes()
    assert not mime.parse(raw).truncated
    assert mime.limit_nesting(raw).raw is raw


_LINES = [
    b'Content-Type: multipart/mixed; boundary="a"\r\n',
    b'Content-Type: multipart/digest; boundary="b"\r\n',
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain\r\n",
    b"Subject: x\r\n",
    b"\r\n",
    b"--a\r\n",
    b"--a--\r\n",
    b"--b\r\n",
    b"--b--  \r\n",
    b"words\r\n",
    b" folded\r\n",
    b'Content-Type: multipart/alternative; boundary="c"\r\n\r\n--c\r\n',
    b"--c\r\n",
    b"--c--\r\n",
    b"Content-Type: message/rfc822\r\n\r\n" * 3,
    b"Content-Type: multipart/mixed; boundary=c junk\r\n",  # read by policy.default, not the quick way
    b"Content-Type: multipart/mixed; boundary*=utf-8''b\r\n",
    b"Content-Type: message/delivery-status\r\n",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=150), st.integers(min_value=2, max_value=6))
def test_any_jumble_of_headers_and_boundaries_limits_and_parses(lines, max_depth):
    raw = b"".join(lines)
    limited = mime.limit_nesting(raw, max_depth=max_depth)
    assert limited.cut or limited.raw is raw
    # What the stdlib reads from the bytes kept nests no deeper than the limit, cut or not.
    assert _depth(BytesParser(policy=policy.default).parsebytes(limited.raw)) <= max_depth
    email = mime.parse(raw)
    assert isinstance(email.text, str)
