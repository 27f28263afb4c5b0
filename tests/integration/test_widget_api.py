"""The widget's unsigned API as a visitor's browser (or someone posing as one) calls it.

A visitor's ids are theirs alone: a ``message_id`` another visitor already used must not answer with that
visitor's conversation; a visitor's own retry deduplicates. A poll reads only what is new after its cursor,
counted in DynamoDB items. Absurdly nested JSON is a 400, never a 500, here and on every JSON REST route.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from chalice.test import Client
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.console import visitors
from chalicelib.settings import outbox_queue_name
from chalicelib.store import aws
from tests.support import (
    REGION,
    agent_says,
    as_admin,
    as_agent,
    connect_agent,
    create_agent,
    data_items,
    drain,
    lambda_service_sqs,
    offers_to,
    post_webchat,
    pushed,
    sqs_event,
    stored_messages,
    webchat_payload,
    ws_event,
)

SITE = "acme-shop"
JSON = {"Content-Type": "application/json"}


def _post(client: Client, visitor: str, message: str, text: str = "Hello?") -> Any:
    body = {"site": SITE, "visitor_id": visitor, "message_id": message, "text": text}
    return client.http.post("/widget/messages", headers=JSON, body=json.dumps(body).encode())


def _poll(client: Client, conversation: str, visitor: str, after: str = "") -> Any:
    query = urlencode({"site": SITE, "visitor_id": visitor, "after": after})
    return client.http.get(f"/widget/conversations/{conversation}/messages?{query}")


# --- point 6: a visitor's ids are scoped to the visitor -----------------------------------------------------


def test_a_message_id_another_visitor_used_reveals_nothing_of_theirs(client):
    first = _post(client, "v_grace", "m_1", "My card was charged twice")
    assert first.status_code == 200, first.body
    theirs = first.json_body["conversation_id"]

    second = _post(client, "v_mallory", "m_1", "Who wrote m_1?")
    assert second.status_code == 200, second.body
    mine = second.json_body["conversation_id"]
    assert mine != theirs, "the answer named another visitor's conversation"
    assert {k: second.json_body[k] for k in ("conversation_id", "message_id")} == {
        "conversation_id": mine,
        "message_id": "m_1",
    }
    # Mallory's message was stored as her own, not dropped as a duplicate of Grace's.
    assert sorted(m["text"] for m in stored_messages()) == ["My card was charged twice", "Who wrote m_1?"]
    assert [m["text"] for m in _poll(client, mine, "v_mallory").json_body["messages"]] == ["Who wrote m_1?"]
    assert _poll(client, theirs, "v_mallory").status_code == 404


def test_a_visitors_retry_is_stored_once_and_answers_the_same_conversation(client):
    first = _post(client, "v_grace", "m_7", "Is my parcel lost?")
    retry = _post(client, "v_grace", "m_7", "Is my parcel lost?")
    assert first.status_code == retry.status_code == 200
    assert retry.json_body == first.json_body
    assert [m["text"] for m in stored_messages()] == ["Is my parcel lost?"]


def test_a_signed_message_that_collides_with_a_visitors_scoped_id_is_not_revealed(client):
    """Defence in depth: even a site backend's id equal to the widget's scoped id never answers someone else's."""
    scoped = visitors.scoped_message_id("v_grace", "m_1")
    backend = post_webchat(client, webchat_payload(visitor="v_backend_user", message=scoped, text="from the backend"))
    assert backend.status_code == 200, backend.body
    theirs = backend.json_body["conversation_id"]

    answer = _post(client, "v_grace", "m_1", "Hello?")
    assert answer.status_code == 409, answer.body
    assert answer.json_body["error"] == "conflict"
    assert theirs not in json.dumps(answer.json_body)


def test_the_signed_webhook_still_dedupes_message_ids_per_site(client):
    """The documented contract of /webhooks/webchat is unchanged: message_id unique per site."""
    first = post_webchat(client, webchat_payload(visitor="v_a", message="m_site_1", text="first"))
    again = post_webchat(client, webchat_payload(visitor="v_b", message="m_site_1", text="second"))
    assert again.json_body["status"] == "duplicate"
    assert again.json_body["conversation_id"] == first.json_body["conversation_id"]


# --- point 7: a poll reads only what is new -----------------------------------------------------------------


def _count_reads() -> tuple[Counter[str], Counter[str]]:
    """DynamoDB requests and the items they read (Query: ScannedCount; GetItem: 1; BatchGetItem: each item)."""
    requests: Counter[str] = Counter()
    items: Counter[str] = Counter()

    def after_call(event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        requests[operation] += 1
        if operation in ("Query", "Scan"):
            items[operation] += int(parsed.get("ScannedCount", 0))
        elif operation == "GetItem":
            items[operation] += int("Item" in parsed)
        elif operation == "BatchGetItem":
            items[operation] += sum(len(found) for found in parsed.get("Responses", {}).values())

    for made in aws.created_clients():
        made.meta.events.register("after-call.dynamodb", after_call)
    return requests, items


def test_a_poll_reads_only_the_messages_after_its_cursor(client):
    history = 30
    for number in range(history):
        assert _post(client, "v_long", f"m_{number}", f"message {number}").status_code == 200
    conversation = _post(client, "v_long", "m_last", "the newest").json_body["conversation_id"]
    seen = _poll(client, conversation, "v_long").json_body["messages"]
    assert len(seen) == history + 1
    cursor = seen[-1]["received_at"]

    requests, items = _count_reads()
    answer = _poll(client, conversation, "v_long", after=cursor)

    assert [m["text"] for m in answer.json_body["messages"]] == ["the newest"]
    # identity (1) + conversation (1) + profile (1) + the newest message, however long the history is
    assert items["Query"] <= 1, dict(items)
    assert sum(items.values()) <= 4, dict(items)
    assert sum(requests.values()) <= 4, dict(requests)


# --- point 11: nesting deep enough to break a recursive parser is a 400 ----------------------------------


def test_deeply_nested_json_to_the_widget_is_a_400(client):
    for body in ("[" * 2000 + "]" * 2000, '{"site": "acme-shop", "text": ' + "[" * 2000 + "]" * 2000 + "}"):
        answer = client.http.post("/widget/messages", headers=JSON, body=body.encode())
        assert answer.status_code == 400, answer.body
        assert answer.json_body["error"] == "invalid_json"
    assert stored_messages() == []


def test_nested_values_where_the_widget_wants_text_are_refused_by_name(client):
    body = {"site": SITE, "visitor_id": "v_1", "message_id": "m_1", "text": json.loads("[" * 500 + "]" * 500)}
    answer = client.http.post("/widget/messages", headers=JSON, body=json.dumps(body).encode())
    assert answer.status_code == 422, answer.body
    assert [d["field"] for d in answer.json_body["details"]] == ["text"]


def test_deeply_nested_json_to_a_rest_route_is_a_400(client):
    answer = client.http.post("/agents", headers=as_admin(), body=("[" * 2000 + "]" * 2000).encode())
    assert answer.status_code == 400, answer.body
    assert answer.json_body["error"] == "invalid_json"


# --- issue 12: replies pushed to the visitor's open widget, not polled ------------------------------------------


def _widget_connects(client: Client, query: dict[str, str]) -> tuple[str, int]:
    """A widget's WebSocket $connect as API Gateway hands it over; (connection id, the status answered)."""
    connection_id = uuid.uuid4().hex[:12] + "="
    answer = client.lambda_.invoke("ws_connect", ws_event("$connect", connection_id, query=query))
    return connection_id, int(answer.payload["statusCode"])


def _visitor_query(visitor: str, conversation: str, site: str = SITE) -> dict[str, str]:
    return {"site": site, "visitor_id": visitor, "conversation_id": conversation}


def _deliver_outbox(client: Client) -> int:
    """The outbox queue into its Lambda, as its event source would; returns how many jobs it took."""
    sqs = lambda_service_sqs()
    url = sqs.get_queue_url(QueueName=outbox_queue_name())["QueueUrl"]
    taken = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    ):
        client.lambda_.invoke("on_outbox", sqs_event(messages, f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:outbox"))
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken += len(messages)
    return taken


def _accepted_by_ada(client: Client, visitor: str, text: str) -> tuple[str, str]:
    """The visitor writes in the widget and Ada accepts the offer; (conversation id, Ada's connection)."""
    create_agent(client, "ada", capacity=3)
    agent = connect_agent(client, "ada")
    conversation = _post(client, visitor, "m_1", text).json_body["conversation_id"]
    drain(client)
    offer = offers_to(agent)[-1]
    assert offer["contact_id"] == conversation
    agent_says(client, agent, action="accept", contact_id=conversation, offer_id=offer["offer_id"])
    return conversation, agent


def _frames(connection_id: str, kind: str) -> list[dict[str, Any]]:
    return [frame for frame in pushed(connection_id) if frame.get("type") == kind]


def test_a_widget_connection_is_refused_without_the_conversations_visitor_credentials(client):
    graces = _post(client, "v_grace", "m_1", "My card was charged twice").json_body["conversation_id"]
    _post(client, "v_mallory", "m_1", "Hello?")

    refused = {
        "another visitor": _visitor_query("v_mallory", graces),
        "the visitor id on another site": _visitor_query("v_grace", graces, site="other-shop"),
        "an unknown visitor": _visitor_query("v_nobody", graces),
        "no such conversation": _visitor_query("v_grace", "conv_0000000000000000000a"),
    }
    for what, query in refused.items():
        _, status = _widget_connects(client, query)
        assert status == 403, what
    for what, query in {
        "no conversation named": {"site": SITE, "visitor_id": "v_grace"},
        "no site": {"visitor_id": "v_grace", "conversation_id": graces},
        "a malformed visitor id": _visitor_query("v grace<script>", graces),
    }.items():
        _, status = _widget_connects(client, query)
        assert status == 422, what
    _, status = _widget_connects(client, _visitor_query("v_grace", graces))
    assert status == 200
    # Only the accepted connection is remembered (refusals write nothing).
    assert len([i for i in data_items() if i["pk"].startswith("WIDGET#")]) == 1


def test_the_agents_reply_is_pushed_to_the_visitors_open_widget_and_no_other(client):
    conversation, _ = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    mallorys = _post(client, "v_mallory", "m_1", "Hello?").json_body["conversation_id"]
    graces_widget, status = _widget_connects(client, _visitor_query("v_grace", conversation))
    assert status == 200
    graces_other_tab, _ = _widget_connects(client, _visitor_query("v_grace", conversation))
    mallorys_widget, _ = _widget_connects(client, _visitor_query("v_mallory", mallorys))
    eavesdropper, status = _widget_connects(client, _visitor_query("v_mallory", conversation))
    assert status == 403

    answer = client.http.post(
        f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps({"text": "Refunded!"})
    )
    assert answer.status_code == 202, answer.body
    assert _deliver_outbox(client) == 0, "pushed by the reply's own request: no outbox job"

    [frame] = _frames(graces_widget, "message")
    assert frame["conversation_id"] == conversation
    assert frame["message"]["from"] == "agent" and frame["message"]["text"] == "Refunded!"
    assert frame["message"]["agent_name"] == "Ada"  # the agent's display name, never their id
    assert frame["message"]["received_at"].endswith("Z")  # the widget shows it in the visitor's local time
    # Exactly what the widget's own read shows for that message.
    read = _poll(client, conversation, "v_grace").json_body["messages"]
    assert frame["message"] == next(m for m in read if m["text"] == "Refunded!")
    assert _frames(graces_other_tab, "message") == [frame]
    assert pushed(mallorys_widget) == [] and pushed(eavesdropper) == []


def test_the_widgets_read_names_the_agent_who_answered_and_only_agents(client):
    conversation, _ = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    for text in ("Let me look.", "Refunded!"):
        answer = client.http.post(
            f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps({"text": text})
        )
        assert answer.status_code == 202, answer.body
    read = _poll(client, conversation, "v_grace").json_body["messages"]
    assert [(m["from"], m.get("agent_name")) for m in read if m["from"] in ("visitor", "agent")] == [
        ("visitor", None),
        ("agent", "Ada"),
        ("agent", "Ada"),
    ]
    assert all("agent_id" not in m and m.get("agent_name") != "ada" for m in read)


def test_closing_the_conversation_tells_the_open_widget(client):
    conversation, agent = _accepted_by_ada(client, "v_grace", "Thanks, that is all")
    widget, _ = _widget_connects(client, _visitor_query("v_grace", conversation))

    agent_says(client, agent, action="close", contact_id=conversation, wrap_up="resolved")

    assert _frames(widget, "status") == [{"type": "status", "status": "closed", "conversation_id": conversation}]
    assert _poll(client, conversation, "v_grace").json_body["status"] == "closed"


def test_the_queue_position_message_is_pushed_to_the_waiting_visitors_widget(client):
    create_agent(client, "ada", capacity=1, presence="Away")
    conversation = _post(client, "v_grace", "m_1", "Anyone there?").json_body["conversation_id"]
    widget, _ = _widget_connects(client, _visitor_query("v_grace", conversation))
    drain(client)
    _deliver_outbox(client)

    [frame] = _frames(widget, "message")
    assert frame["message"]["from"] == "system" and frame["message"]["text"]


def test_a_visitors_message_is_answered_as_the_widget_shows_it(client):
    """The widget shows the visitor's own message from the answer: no read back after sending."""
    answer = _post(client, "v_grace", "m_1", "Is the blue kettle in stock?").json_body
    read = _poll(client, answer["conversation_id"], "v_grace").json_body["messages"]
    assert answer["message"] == {k: v for k, v in read[0].items() if k != "received_at"}


def test_after_a_merge_the_visitor_still_connects_and_reads_their_whole_conversation(client):
    """The $connect's proof skips the profile only when the conversation is the visitor's own customer's; once that
    customer is merged into another, the profile's merged partitions prove it and hold the messages to read."""
    from chalicelib.store import conversations as conversation_store

    conversation = _post(client, "v_grace", "m_1", "My card was charged twice").json_body["conversation_id"]
    graces = str(conversation_store.get_conversation(conversation)["customer_id"])
    _post(client, "v_other", "m_1", "Hello?")
    others = str(
        conversation_store.get_conversation(_post(client, "v_other", "m_2").json_body["conversation_id"])["customer_id"]
    )
    conversation_store.merge_customers(graces, others)  # v_grace's identity now resolves to the other customer

    _, status = _widget_connects(client, _visitor_query("v_grace", conversation))
    assert status == 200
    read = _poll(client, conversation, "v_grace")
    assert read.status_code == 200, read.json_body
    assert [m["text"] for m in read.json_body["messages"]] == ["My card was charged twice"]
    # ... and the customer it was merged into gives no one else's visitor the conversation.
    _, status = _widget_connects(client, _visitor_query("v_mallory", conversation))
    assert status == 403


# --- the widget's keep-alive: API Gateway drops a WebSocket idle for 10 minutes -------------------------------


def test_the_widgets_ping_keeps_its_socket_alive_for_no_aws_request_and_no_answer(client):
    """A ping (sent by the widget just under the idle timeout) still invokes the Lambda, but nothing more: no
    DynamoDB read to find whose socket it is, no frame pushed back (API Gateway counts the client's message)."""
    from tests.support import record_aws_requests

    conversation = _post(client, "v_grace", "m_1", "Hello?").json_body["conversation_id"]
    widget, status = _widget_connects(client, _visitor_query("v_grace", conversation))
    assert status == 200
    client.lambda_.invoke("ws_message", ws_event("$default", widget, body=json.dumps({"action": "ping"})))  # warm

    sent = record_aws_requests()
    answer = client.lambda_.invoke("ws_message", ws_event("$default", widget, body=json.dumps({"action": "ping"})))

    assert "errorType" not in (answer.payload or {}), answer.payload
    assert sent == []
    assert pushed(widget) == []


# --- the pre-chat form: name and an unverified e-mail, never an identity link -------------------------------


def test_the_pre_chat_forms_email_is_kept_unverified_and_links_no_identity(client):
    known = post_webchat(client, webchat_payload(visitor="v_ada", message="m_ada", text="hi", email="ada@example.com"))
    adas_customer = known.json_body["customer_id"]
    body = {
        "site": SITE,
        "visitor_id": "v_mallory",
        "message_id": "m_1",
        "text": "Hello, I am Ada",
        "name": "Ada Lovelace",
        "contact_email": "ada@example.com",
    }
    answer = client.http.post("/widget/messages", headers=JSON, body=json.dumps(body).encode())
    assert answer.status_code == 200, answer.body
    (stored,) = [m for m in stored_messages() if m["text"] == "Hello, I am Ada"]
    unverified = {"contact_email": "ada@example.com", "email_verified": False, "source": "pre_chat_form"}
    assert stored["metadata"] == unverified
    assert stored["customer_id"] != adas_customer  # not linked to the customer who owns that address
    assert stored["identity"] == f"webchat#{SITE}/v_mallory"

    bad = client.http.post(
        "/widget/messages", headers=JSON, body=json.dumps({**body, "message_id": "m_2", "contact_email": "nope"})
    )
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json_body["details"]] == ["contact_email"]
