"""An e-mail is routed on its subject as well as its body, live exactly as ``switchboard rules explain`` says.

Mailgun posts are signed as Mailgun signs them and go through the real webhook route; the routing events are
pumped into the real router Lambda (``on_routing_event``) as the SQS event source would. The config is the
deployed ``routing.yaml``: its rule "billing questions" matches ``refund|invoice|billing``.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

from chalicelib import cli
from chalicelib.routing.events import ConversationMessage, from_body
from tests.support import (
    agent_says,
    as_admin,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_mailgun,
    pushed,
    receive_routing_messages,
)

FIRST = "<CAF3kX9m2Q+refund123@mail.gmail.com>"


def _email(**changes: str) -> dict[str, str]:
    return {
        "recipient": "support@acme-shop.example",
        "sender": "ada.lovelace@example.com",
        "from": "Ada Lovelace <Ada.Lovelace@example.com>",
        "subject": "Refund for order 123",
        "body-plain": "please see the subject\r\n",
        "stripped-text": "please see the subject",
        "Message-Id": FIRST,
        "Date": "Mon, 23 Nov 2026 09:00:00 +0000",
        **changes,
    }


def _reply(message_id: str, text: str) -> dict[str, str]:
    """Ada answers in the same thread: her mail client keeps the subject with "Re:" and names the first mail."""
    return _email(
        subject="Re: Refund for order 123",
        **{"body-plain": text + "\r\n", "stripped-text": text, "Message-Id": message_id},
        **{"In-Reply-To": FIRST, "References": FIRST},
    )


def _contact(client: Any, conversation_id: str) -> dict[str, Any]:
    response = client.http.get(f"/contacts/{conversation_id}", headers=as_admin())
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def test_an_email_whose_subject_names_a_refund_lands_in_billing_and_its_thread_stays_there(client):
    create_agent(client, "bea", channels=("email",), queues=["billing"], skills={"billing": 4})
    create_agent(client, "dan", channels=("email",), queues=["default"])
    bea, dan = connect_agent(client, "bea"), connect_agent(client, "dan")
    drain(client)

    assert post_mailgun(client, _email()).status_code == 200
    drain(client)

    [offer] = offers_to(bea)
    conversation = offer["contact_id"]
    assert offer["queue"] == "billing" and offer["skills"] == {"billing": 3}
    assert offers_to(dan) == [], "not the catch-all"
    contact = _contact(client, conversation)
    assert contact["rule"] == "billing questions" and contact["queues"] == ["billing"]

    assert agent_says(client, bea, action="accept", contact_id=conversation)["type"] == "accepted"
    assert post_mailgun(client, _reply("<CAF3kX9m2Q+refund123-2@mail.gmail.com>", "any news?")).status_code == 200
    drain(client)
    told = [p for p in pushed(bea) if p.get("type") == "message"]
    assert [p["contact_id"] for p in told] == [conversation], "the reply joins the conversation its agent holds"
    assert _contact(client, conversation)["assigned_to"] == "bea"

    agent_says(client, bea, action="close", contact_id=conversation)
    drain(client)
    assert post_mailgun(client, _reply("<CAF3kX9m2Q+refund123-3@mail.gmail.com>", "still nothing")).status_code == 200
    drain(client)
    reopened = _contact(client, conversation)
    assert reopened["state"] in ("queued", "offered") and reopened["queues"] == ["billing"], (
        "a reply in the thread reopens the conversation, routed by its subject to billing again"
    )
    assert offers_to(dan) == []


def test_the_routing_event_carries_the_subject_that_rules_explain_reads(client):
    assert post_mailgun(client, _email()).status_code == 200
    [message] = receive_routing_messages()
    event = from_body(message["Body"])
    assert isinstance(event, ConversationMessage)
    assert event.subject == "Refund for order 123"

    explained = io.StringIO()
    with redirect_stdout(explained):
        cli.main(
            [
                "rules",
                "explain",
                "chalicelib/routing/routing.yaml",
                "--message",
                '{"channel": "email", "subject": "Refund for order 123", "text": "please see the subject"}',
            ]
        )
    assert "Rule:         billing questions" in explained.getvalue()
