"""Mailgun's one-time token, claimed by one conditional write before anything is stored.

Mailgun signs only ``timestamp + token``, not the e-mail: whoever captures one
genuine forward can post other e-mails under its signature for five minutes.
The token is therefore claimed, bound to a fingerprint of the request's body,
with a single conditional ``PutItem`` that only one request can win.

The concurrent test calls the webhook's entry point (``inbox.deliver``, what
the Chalice view calls) from ten threads: Chalice's ``current_request`` is one
attribute per app, so its test client cannot serve threads. moto in-process
is not atomic per request (a conditional put reads, then writes; transactions
deep-copy tables), so the ``atomic_moto`` fixture serialises its requests, as
DynamoDB's own requests are atomic.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import BotocoreStubber

from chalicelib.channels import mailgun
from chalicelib.channels.base import WebhookRequest
from chalicelib.conversations import inbox
from chalicelib.errors import Unauthenticated
from tests.support import CHANNEL_SECRETS, PUBLIC_BASE_URL, fails_once, stored_messages

CONTENT_TYPE = "application/x-www-form-urlencoded"


def email(n: int) -> dict[str, str]:
    return {
        "recipient": "support@acme-shop.example",
        "sender": f"customer{n}@example.com",
        "from": f"Customer {n} <customer{n}@example.com>",
        "subject": f"Order 44{n:02d}",
        "body-plain": f"Where is order 44{n:02d}?\r\n",
        "Message-Id": f"<order44{n:02d}@mail.example.com>",
        "Date": "Mon, 23 Nov 2026 09:00:00 +0000",
    }


def signed(fields: dict[str, str], timestamp: str, token: str) -> bytes:
    """The form as Mailgun posts it: the fields plus timestamp, token and their HMAC-SHA256."""
    key = CHANNEL_SECRETS["MAILGUN_SIGNING_KEY"].encode()
    signature = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "timestamp": timestamp, "token": token, "signature": signature}).encode()


def request(body: bytes) -> WebhookRequest:
    path = mailgun.ADAPTER.path
    return WebhookRequest("POST", path, {"Content-Type": CONTENT_TYPE}, {}, body, PUBLIC_BASE_URL + path)


@pytest.fixture
def atomic_moto(aws, monkeypatch) -> Iterator[None]:
    """Each AWS request runs alone, as DynamoDB's requests are atomic (moto's are not across threads)."""
    lock = threading.Lock()
    dispatch = BotocoreStubber.__call__

    def one_at_a_time(self, event_name, request, **kwargs):
        with lock:
            return dispatch(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)
    yield


def test_ten_concurrent_posts_with_one_genuine_token_store_one_email(atomic_moto):
    timestamp, token = str(int(time.time())), "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
    bodies = [signed(email(n), timestamp, token) for n in range(10)]  # one genuine, nine forged under its token
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> int:
        start.wait()
        try:
            return inbox.deliver(mailgun.ADAPTER, request(body)).status
        except Unauthenticated:
            return 401

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(post, bodies))

    assert sorted(statuses) == [200] + [401] * 9
    [stored] = stored_messages()
    winner = statuses.index(200)
    assert stored["text"] == f"Where is order 44{winner:02d}?"


def test_a_used_token_is_refused_even_for_the_very_same_request(atomic_moto):
    timestamp, token = str(int(time.time())), "f" * 50
    body = signed(email(1), timestamp, token)

    assert inbox.deliver(mailgun.ADAPTER, request(body)).status == 200
    for later in (body, signed(email(2), timestamp, token)):
        with pytest.raises(Unauthenticated, match="already used"):
            inbox.deliver(mailgun.ADAPTER, request(later))
    assert len(stored_messages()) == 1


def test_a_delivery_that_crashed_after_its_claim_is_stored_when_retried(atomic_moto):
    """The claim is written before the e-mail: a first attempt that died in between must not burn the token."""
    timestamp, token = str(int(time.time())), "c" * 50
    body = signed(email(3), timestamp, token)

    # The first UpdateItem is the new conversation's, written before the message's claim and the message.
    with fails_once("dynamodb", "UpdateItem") as fired, pytest.raises(EndpointConnectionError):
        inbox.deliver(mailgun.ADAPTER, request(body))
    assert fired and stored_messages() == []

    # A forgery under the half-used token is still refused; the same request, retried, is stored once.
    with pytest.raises(Unauthenticated, match="already used"):
        inbox.deliver(mailgun.ADAPTER, request(signed(email(4), timestamp, token)))
    assert inbox.deliver(mailgun.ADAPTER, request(body)).status == 200
    assert [m["text"] for m in stored_messages()] == ["Where is order 4403?"]
    with pytest.raises(Unauthenticated, match="already used"):
        inbox.deliver(mailgun.ADAPTER, request(body))


def test_a_retry_of_a_delivery_stored_but_never_routed_is_routed_and_then_refused(atomic_moto):
    """The token's item is written once (no "used" update): the very same request again is admitted as far as the
    e-mail's own dedupe, which stores nothing twice; its routing event is queued again (the first attempt died
    before queueing it), and the request is refused as used."""
    from tests.support import queued_message_count

    timestamp, token = str(int(time.time())), "d" * 50
    body = signed(email(5), timestamp, token)

    with fails_once("sqs", "SendMessage") as fired, pytest.raises(EndpointConnectionError):
        inbox.deliver(mailgun.ADAPTER, request(body))
    assert fired and len(stored_messages()) == 1 and queued_message_count() == 0

    with pytest.raises(Unauthenticated, match="already used"):
        inbox.deliver(mailgun.ADAPTER, request(body))
    assert len(stored_messages()) == 1
    assert queued_message_count() == 1, "the retry queued the routing event the first attempt never sent"
