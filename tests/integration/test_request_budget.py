"""A cost budget: the AWS requests one web-chat message costs, webhook to offer, stay at or below a written number.

Counted with botocore's ``before-send`` hook on every client the app uses,
so retries count too. The routing queue's receive and delete are made by the
Lambda service, not by our code, and are not counted.
"""

from __future__ import annotations

from collections import Counter

from tests.support import (
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_webchat,
    record_aws_requests,
    webchat_payload,
)

# Documented in README.md ("Cost budget"). Webhook: 7 (identity read, identity put, profile put, conversation
# upsert, the claim's put, message put, queue send: plain writes cost half a transaction's write units, so the
# claim's two-item transaction became two requests at half the write units).
# Router: 7 (contact read, customer read, agents query, one transaction creating the contact offered with
# the agent's reservation, the offer's timeout timer, connections query, push).
REQUESTS_PER_MESSAGE = 14


def test_one_message_costs_at_most_the_budget(client):
    create_agent(client, "ada", capacity=5)
    connection = connect_agent(client, "ada")
    post_webchat(client, webchat_payload(visitor="warm-up", message="warm-up"))
    drain(client)  # every client exists and the queue URL is cached, as in a warm Lambda

    sent = record_aws_requests()
    post_webchat(client, webchat_payload(visitor="v_budget", message="m_budget"))
    drain(client)

    assert len(offers_to(connection)) == 2
    counts = Counter(sent)
    total = len(sent)
    assert total <= REQUESTS_PER_MESSAGE, f"{total} requests: {dict(counts)}"
    assert counts["sqs.SendMessage"] == 2, "the routing event and the offer's timeout timer"
    assert counts["apigatewaymanagementapi.PostToConnection"] == 1
