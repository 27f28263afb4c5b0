"""Messenger and Instagram replies outside Meta's 24-hour standard messaging window: refused before queueing.

Meta's rule (Messenger Platform and Instagram Messaging policy): a business may answer a person's message
within 24 hours of it. After that only a message tag may be sent; the one for a contact centre is
``HUMAN_AGENT``, a human agent's reply within 7 days of the person's last message, for apps Meta granted
the Human Agent permission. So a reply outside 24 hours is refused at once (409, nothing stored or queued),
saying what the agent can do; with ``META_HUMAN_AGENT_TAG=1`` an agent's reply within 7 days goes out tagged.
The Graph API is the loopback fake in ``tests/fakes/providers.py``, which checks the tag as Meta does.
"""

from __future__ import annotations

import json
import time

import pytest

from chalicelib import clock
from chalicelib.errors import Conflict
from chalicelib.outbound import outbox
from chalicelib.settings import outbox_queue_name, reload_settings
from tests.fakes.providers import MESSAGING, fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import (  # noqa: F401 (app and fake are fixtures)
    IGSID,
    PAGE_ID,
    PSID,
    _last_inbound,
    _message,
    _outbound,
    app,
    fake,
    meta_sent,
    pump,
    queue_depth,
)
from tests.support import post_meta

HOUR = 3600


def wrote(app, name: str, hours_ago: float) -> str:  # noqa: F811
    assert post_meta(app, meta_sent(name, time.time() - hours_ago * HOUR)).status_code == 200
    return str(_last_inbound()["conversation_id"])


@pytest.mark.parametrize("name", ["messenger_text.json", "instagram_text.json"])
def test_a_reply_after_24_hours_is_refused_before_queueing_saying_what_the_agent_can_do(app, fake, name):  # noqa: F811
    conversation = wrote(app, name, hours_ago=25)

    with pytest.raises(Conflict) as refused:
        outbox.queue_reply(conversation, "ada", "Are you still there?", None, clock.now_iso())

    message = refused.value.message
    assert "24-hour standard messaging window" in message
    assert "HUMAN_AGENT" in message and "7 days" in message and "META_HUMAN_AGENT_TAG" in message
    assert "another of the customer's channels" in message
    assert _outbound() == [] and queue_depth(outbox_queue_name()) == 0
    assert fake.sent(MESSAGING) == []


def test_within_24_hours_the_reply_goes_as_a_response(app, fake):  # noqa: F811
    conversation = wrote(app, "messenger_text.json", hours_ago=23)

    outbox.queue_reply(conversation, "ada", "Yes, we can.", None, clock.now_iso())
    pump(app)

    [request] = fake.sent(MESSAGING)
    assert request.json["messaging_type"] == "RESPONSE" and "tag" not in request.json


@pytest.fixture
def human_agent_tag(monkeypatch):
    monkeypatch.setenv("META_HUMAN_AGENT_TAG", "1")
    reload_settings()


@pytest.mark.parametrize(
    ("name", "path", "recipient"),
    [
        ("messenger_text.json", f"/v21.0/{PAGE_ID}/messages", PSID),
        ("instagram_text.json", "/v21.0/me/messages", IGSID),
    ],
)
def test_an_agents_reply_within_7_days_goes_tagged_human_agent(app, fake, human_agent_tag, name, path, recipient):  # noqa: F811
    conversation = wrote(app, name, hours_ago=3 * 24)

    queued = outbox.queue_reply(conversation, "ada", "Sorry for the wait: it shipped today.", None, clock.now_iso())
    pump(app)

    [request] = fake.sent(MESSAGING)
    assert request.path == path
    assert request.json == {
        "recipient": {"id": recipient},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry for the wait: it shipped today."},
    }
    assert _message(queued["message_id"])["status"] == "sent"


def test_beyond_7_days_even_the_human_agent_tag_cannot_be_used(app, fake, human_agent_tag):  # noqa: F811
    conversation = wrote(app, "messenger_text.json", hours_ago=8 * 24)

    with pytest.raises(Conflict, match=r"more than 7 days.*another of the customer's channels"):
        outbox.queue_reply(conversation, "ada", "Hello?", None, clock.now_iso())
    assert _outbound() == [] and fake.sent(MESSAGING) == []


def test_a_reply_queued_in_the_window_but_sent_after_it_fails_without_a_provider_call(app, fake):  # noqa: F811
    """A send that comes too late (an outage past the window's end) is marked failed, not sent to be refused."""
    conversation = wrote(app, "messenger_text.json", hours_ago=25)
    queued_then = clock.plus_seconds(clock.now_iso(), -2 * HOUR)  # queued while the window was still open
    queued = outbox.queue_reply(conversation, "ada", "Here is your tracking link.", None, queued_then)

    pump(app)

    failed = _message(queued["message_id"])
    assert failed["status"] == "failed" and "24-hour standard messaging window" in failed["error"]
    assert fake.sent(MESSAGING) == []


def test_a_late_reply_goes_out_when_the_customer_wrote_again_after_it_was_queued(app, fake):  # noqa: F811
    """The job carries where the reply goes as it was resolved when queued; outside the window by then, it is
    resolved again from the timeline, where the customer's newer message opens the window anew."""
    conversation = wrote(app, "messenger_text.json", hours_ago=25)
    queued_then = clock.plus_seconds(clock.now_iso(), -2 * HOUR)  # queued while the window was still open
    queued = outbox.queue_reply(conversation, "ada", "Here is your tracking link.", None, queued_then)
    document = json.loads(meta_sent("messenger_text.json"))
    document["entry"][0]["messaging"][0]["message"]["mid"] += "-again"
    assert post_meta(app, json.dumps(document).encode()).status_code == 200  # they write again, now

    pump(app)

    assert _message(queued["message_id"])["status"] == "sent"
    assert len(fake.sent(MESSAGING)) == 1
