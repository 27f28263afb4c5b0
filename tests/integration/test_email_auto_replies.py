"""Automatic e-mail (out-of-office replies, autoresponders, bounces) is kept, but answered by no one.

RFC 3834: a message whose ``Auto-Submitted`` is anything but ``no`` must not be answered automatically, and an
automatic answer says ``Auto-Submitted: auto-replied``. Without both, the self-service bot and a customer's
out-of-office reply answer each other for ever (and a forged autoresponder address could be made to). Such an
e-mail is stored in the customer's history, shown to the agent who has the conversation, and opens no contact,
gets no bot answer and no place-in-queue message. Mailgun forwards are signed as Mailgun signs them, SES's
arrive as signed SNS notifications.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.store import routing as routing_store
from tests.fakes.providers import fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_deep_email import post_sns, signed_raw_mail
from tests.integration.test_outbound import app, email_from, fake, pump, sent_emails  # noqa: F401 (fixtures)
from tests.integration.test_self_service import _use
from tests.integration.test_self_service_channels import ON, QUOTE
from tests.support import agent_says, as_agent, connect_agent, create_agent, drain, offers_to, pushed, stored_messages
from tests.unit.test_ses import _fresh_certificate_cache, sns_certificates

__all__ = ["_fresh_certificate_cache", "sns_certificates"]  # fixtures, used by name

OUT_OF_OFFICE = "I am out of the office until 14 December with limited access to e-mail."


def _headers(*pairs: tuple[str, str]) -> str:
    """Mailgun's ``message-headers``: every header of the e-mail, as a JSON list of [name, value]."""
    return json.dumps([["Received", "by mail.example.com"], *[[n, v] for n, v in pairs]])


def _out_of_office(n: int, in_reply_to: str, *headers: tuple[str, str]) -> dict[str, str]:
    return {
        "subject": "Automatic reply: Re: Opening hours",
        "stripped-text": OUT_OF_OFFICE,
        "body-plain": OUT_OF_OFFICE + "\r\n",
        "Message-Id": f"<ooo-{n}@mail.example.com>",
        "In-Reply-To": in_reply_to,
        "message-headers": _headers(*headers),
    }


def _conversation() -> str:
    return str(max(stored_messages(), key=lambda m: m["received_at"])["conversation_id"])


def _asked_the_bot(client: Any, monkeypatch: Any) -> str:
    """Self-service answers e-mail first; Ada (an agent, connected: her connection) is there; the customer asks
    about opening hours and the bot's answer is sent."""
    _use(monkeypatch, ON)
    create_agent(client, "ada", channels=("email",))
    ada = connect_agent(client, "ada")
    email_from(client, subject="Opening hours", **{"stripped-text": "When are you open on Saturdays?"})
    drain(client)
    pump(client)
    return ada


def test_an_out_of_office_reply_to_the_bots_answer_is_kept_and_answered_by_no_one(app, fake, monkeypatch):  # noqa: F811
    ada = _asked_the_bot(app, monkeypatch)
    [answer] = sent_emails()
    # Ours says it is automatic, so a well-behaved responder stays quiet (Exchange's own header too).
    assert answer["Auto-Submitted"] == "auto-replied" and answer["X-Auto-Response-Suppress"] == "All"

    ooo = _out_of_office(1, answer["Message-ID"], ("Auto-Submitted", "auto-replied"))
    email_from(app, **ooo)
    drain(app)
    pump(app)

    [stored] = [m for m in stored_messages() if m.get("text") == OUT_OF_OFFICE]
    assert stored["direction"] == "inbound" and stored["metadata"]["auto_submitted"] == "Auto-Submitted: auto-replied"
    assert len(sent_emails()) == 1, "the bot does not answer an out-of-office reply"
    assert routing_store.get_contact(_conversation()) is None, "not handed over to a person either"
    assert offers_to(ada) == []


def test_a_customers_own_answer_after_an_auto_reply_is_still_heard(app, fake, monkeypatch):  # noqa: F811
    ada = _asked_the_bot(app, monkeypatch)
    our_id = sent_emails()[0]["Message-ID"]
    email_from(app, **_out_of_office(1, our_id, ("X-Autoreply", "yes")))
    drain(app)

    reply = "No, I meant the warehouse pick-up counter, is that open on Saturdays too?" + QUOTE
    email_from(
        app,
        subject="Re: Opening hours",
        **{"Message-Id": "<ada-2@mail.gmail.com>", "In-Reply-To": our_id, "stripped-text": "", "body-plain": reply},
    )
    drain(app)

    [offer] = offers_to(ada)
    assert offer["contact_id"] == _conversation()


def test_an_autoresponders_first_email_opens_no_contact_and_gets_no_answer(app, fake):  # noqa: F811
    create_agent(app, "ada", channels=("email",))
    ada = connect_agent(app, "ada")
    for n, header in enumerate(
        [
            ("Precedence", "bulk"),
            ("Auto-Submitted", "auto-generated; owner-email=it@example.org"),
            ("X-Autorespond", "x"),
        ]
    ):
        email_from(
            app,
            sender=f"noreply{n}@example.org",
            **{"from": f"Robot <noreply{n}@example.org>", **_out_of_office(10 + n, "<none@example.org>", header)},
        )
    drain(app)
    pump(app)

    automatic = [m for m in stored_messages() if m.get("text") == OUT_OF_OFFICE]
    assert len(automatic) == 3 and all(m["metadata"].get("auto_submitted") for m in automatic)
    assert all(routing_store.get_contact(m["conversation_id"]) is None for m in automatic)
    assert offers_to(ada) == [] and sent_emails() == []


def test_an_auto_submitted_no_is_a_person_writing(app, fake):  # noqa: F811
    create_agent(app, "ada", channels=("email",))
    ada = connect_agent(app, "ada")
    email_from(app, **{"message-headers": _headers(("Auto-Submitted", "no"), ("Precedence", "first-class"))})
    drain(app)

    [offer] = offers_to(ada)
    [stored] = [m for m in stored_messages() if m["direction"] == "inbound"]
    assert "auto_submitted" not in (stored.get("metadata") or {}) and offer["contact_id"] == stored["conversation_id"]


def test_an_auto_reply_in_a_conversation_an_agent_holds_reaches_that_agent(app, fake):  # noqa: F811
    create_agent(app, "ada", channels=("email",))
    ada = connect_agent(app, "ada")
    first = email_from(app)
    drain(app)
    assert agent_says(app, ada, action="accept", contact_id=first["conversation_id"])["type"] == "accepted"
    suggested = f"/conversations/{first['conversation_id']}/suggestions"
    before = app.http.get(suggested, headers=as_agent("ada")).json_body["suggestions"]

    email_from(app, **_out_of_office(1, "<CAF3kX9m2Q+order4417@mail.gmail.com>", ("Auto-Submitted", "auto-replied")))
    drain(app)

    [told] = [p for p in pushed(ada) if p.get("type") == "message"]
    assert told["contact_id"] == first["conversation_id"], "it is the agent's to read"
    assert told["metadata"] == {"auto_submitted": "Auto-Submitted: auto-replied"}, "the console marks it"
    after = app.http.get(suggested, headers=as_agent("ada")).json_body["suggestions"]
    assert [a["article_id"] for a in after] == [a["article_id"] for a in before], "an out-of-office reply asks nothing"
    assert before, "the customer's own question has its suggestions"


def test_an_ses_bounce_report_is_stored_and_routed_to_no_one(app, fake, sns_certificates):  # noqa: F811
    create_agent(app, "ada", channels=("email",))
    ada = connect_agent(app, "ada")
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@example.org>\r\n"
        b"To: support@acme-shop.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <ooo-ses-1@example.org>\r\nDate: Fri, 04 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system. Your message could not be delivered.\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.org\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--b1--\r\n"
    )
    response = post_sns(app, signed_raw_mail(raw, "ses-ooo-1", "<ooo-ses-1@example.org>"))
    assert response.status_code == 200, response.body
    drain(app)

    [stored] = [m for m in stored_messages() if m["direction"] == "inbound"]
    assert stored["metadata"]["auto_submitted"] == "Content-Type: multipart/report"
    assert routing_store.get_contact(stored["conversation_id"]) is None and offers_to(ada) == []
