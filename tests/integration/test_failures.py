"""Nothing is lost when a Lambda dies midway: SQS redelivers, handlers are idempotent.

Faults are injected at the AWS boundary with botocore's event hooks (the
call raises as a network failure or a timed-out Lambda would), never by
replacing our own code.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store import aws
from chalicelib.store import routing as routing_store
from tests.support import (
    connect_agent,
    create_agent,
    deliver_once,
    drain,
    fails_once,
    iter_contacts,
    offers_to,
    post_webchat,
    queued_message_count,
    stored_messages,
    webchat_payload,
)


def _end_state(connection: str) -> dict[str, Any]:
    [contact] = list(iter_contacts())
    return {
        "state": contact["state"],
        "offered_to": contact["offered_to"],
        "offer_count": contact["offer_count"],
        "load": routing_store.get_agent("ada").load,
        "distinct_offers": len({o["offer_id"] for o in offers_to(connection)}),
        "messages": len(stored_messages()),
        "queued": queued_message_count(),
    }


EXPECTED = {
    "state": "offered",
    "offered_to": "ada",
    "offer_count": 1,
    "load": {"webchat": 1},
    "distinct_offers": 1,
    "messages": 1,
    "queued": 0,
}


def _setup(client) -> str:
    create_agent(client, "ada", capacity=2)
    connection = connect_agent(client, "ada")
    drain(client)  # the agent's own AgentFreed event, so each test starts with an empty queue
    return connection


def test_without_failure(client):
    connection = _setup(client)
    post_webchat(client, webchat_payload())
    drain(client)
    assert _end_state(connection) == EXPECTED


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        pytest.param("dynamodb", "GetItem", id="dies reading the contact"),
        pytest.param("dynamodb", "TransactWriteItems", id="dies reserving the agent"),
        pytest.param("apigatewaymanagementapi", "PostToConnection", id="dies after reserving, before the push"),
    ],
)
def test_router_dying_midway_is_redelivered_to_the_same_end_state(client, service, operation):
    connection = _setup(client)
    post_webchat(client, webchat_payload())
    aws.client(service)  # make sure the client exists before hooking it

    with fails_once(service, operation) as fired:
        delivered, failed = deliver_once(client)
    assert fired == [operation]
    assert delivered == 1 and len(failed) == 1, "the failed record must be reported back to SQS"
    assert queued_message_count() == 1

    drain(client)
    assert _end_state(connection) == EXPECTED


def test_webhook_dying_before_queueing_is_healed_by_the_provider_retry(client):
    connection = _setup(client)
    aws.client("sqs")
    with fails_once("sqs", "SendMessage"):
        first = post_webchat(client, webchat_payload())
    assert first.status_code == 500  # the provider sees a failure and retries
    assert queued_message_count() == 0 and len(stored_messages()) == 1

    retry = post_webchat(client, webchat_payload())
    assert retry.status_code == 200 and retry.json_body["status"] == "duplicate"
    drain(client)
    assert _end_state(connection) == EXPECTED


def test_one_failing_conversation_does_not_hold_up_another(client):
    _setup(client)
    post_webchat(client, webchat_payload(visitor="v_1", message="m_1"))
    post_webchat(client, webchat_payload(visitor="v_2", message="m_2"))
    aws.client("dynamodb")
    with fails_once("dynamodb", "GetItem"):
        delivered, failed = deliver_once(client)
    assert delivered == 2 and len(failed) == 1
    offered = [c for c in iter_contacts() if c["state"] == "offered"]
    assert len(offered) == 1
    drain(client)
    assert sorted(c["state"] for c in iter_contacts()) == ["offered", "offered"]
