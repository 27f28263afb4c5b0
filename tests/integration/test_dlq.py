"""`switchboard dlq list` and `redrive`: a poisoned message lands in the dead-letter queue, shows up there,
goes back once the cause is fixed, and is processed."""

from __future__ import annotations

from typing import Any

from chalicelib.cli import main
from chalicelib.store import aws
from chalicelib.store import routing as routing_store
from tests.support import connect_agent, create_agent, deliver_once, drain, offers_to, post_webchat, webchat_payload


def test_poisoned_routing_event_is_listed_redriven_and_processed(client, capsys):
    create_agent(client, "ada")
    connection = connect_agent(client, "ada")
    drain(client)
    conversation = post_webchat(client, webchat_payload(text="SECRET-BODY-TEXT")).json_body["conversation_id"]

    def broken_table(**_: Any) -> None:  # the cause: DynamoDB writes failing, as during an outage
        raise RuntimeError("simulated outage")

    events = aws.client("dynamodb").meta.events
    events.register_first("before-call.dynamodb.TransactWriteItems", broken_table)
    for _ in range(10):  # five receives, then SQS moves it to the dead-letter queue
        delivered, _failed = deliver_once(client)
        if delivered == 0:
            break
    events.unregister("before-call.dynamodb.TransactWriteItems", broken_table)
    assert offers_to(connection) == []

    assert main(["dlq", "list"]) == 0
    listing = capsys.readouterr().out
    assert "switchboard-routing.fifo: 1 dead letters" in listing
    assert "ConversationMessage" in listing and f"group {conversation}" in listing
    assert "SECRET-BODY-TEXT" not in listing, "never show what customers wrote"

    assert main(["dlq", "redrive", "--queue", "switchboard-routing.fifo"]) == 0
    assert "1 moved back" in capsys.readouterr().out
    drain(client)

    assert [o["contact_id"] for o in offers_to(connection)] == [conversation]
    assert routing_store.get_contact(conversation).offer_count == 1
    assert main(["dlq", "list", "--queue", "switchboard-routing.fifo"]) == 0
    assert "0 dead letters" in capsys.readouterr().out


def test_unknown_queue_is_a_usage_error(client, capsys):
    assert main(["dlq", "list", "--queue", "nope"]) == 2
    assert "--queue" in capsys.readouterr().err
