"""Request-count budgets for every flow, and the modelled cost of a typical conversation.

The flows are driven exactly as ``make bench`` drives them (``bench.cost``: the app in one process against moto,
every AWS request our code makes counted with botocore hooks, DynamoDB write and read units computed from the
items' sizes): first message, follow-up, accept, the offer's timer, reply, SMS status callback, close, a first
message that waits and is told its place in the queue, the agent who frees up and gets it, and an idle sweep.
Each flow's requests and write units stay at or below the numbers written here; the typical conversation
(4 customer messages, accept, 3 replies, close, mixed evenly over web chat, SMS and e-mail) stays at or below
its dollars per 1,000 inbound messages, at the list prices of ``bench/prices.json``.

These are counts, not timings: they hold on any machine. Lower a number when a change makes a flow cheaper
(README, "Cost budget").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench import cost

# (flow, channel): (AWS requests, DynamoDB write request units), each at most.
BUDGETS: dict[tuple[str, str], tuple[float, float]] = {
    # The ingest (issue 12): plain writes, no claim transaction; a follow-up joins with 2 write units (claim,
    # message), and one on an assigned contact is pushed to its agent by the webhook itself (no routing event).
    ("first message", "webchat"): (14, 20),
    ("first message", "sms"): (14, 20),
    ("first message", "email"): (16, 22),
    ("follow-up", "webchat"): (8, 2),
    ("follow-up", "sms"): (8, 2),
    ("follow-up", "email"): (10, 4),
    ("accept", "webchat"): (7, 6),
    ("accept", "sms"): (7, 6),
    ("accept", "email"): (7, 6),
    ("offer timer", "webchat"): (1, 0),
    ("offer timer", "sms"): (1, 0),
    ("offer timer", "email"): (1, 0),
    # A reply is sent from the request that makes it (the outbox queue only when that send fails or dies). The
    # console's reply is a WebSocket command: + the read of which agent the connection is, + its answer pushed.
    ("reply", "webchat"): (11, 5),  # + the push: the conversation's widget connections, one message
    ("reply", "sms"): (10, 6),
    ("reply", "email"): (12, 6),
    ("status callback", "sms"): (5, 2),
    # A close sends no AgentFreed to the routing queue when nothing waits that the agent can take (it looks); its
    # conversation, profile and record events are plain idempotent writes after the contact's save.
    ("close", "webchat"): (14, 14),  # + the push of the status
    ("close", "sms"): (12, 14),
    ("close", "email"): (12, 14),
    # Its position message is sent by the outbox Lambda, whose commit writes no OUTBOUND item for web chat.
    ("first message, queued (queue position)", "webchat"): (20, 31),  # + the push's query (no widget open)
    ("agent available, offered", "webchat"): (12, 31),
    ("sweep (idle, one run)", "-"): (7, 0),
    # The widget's WebSocket (issue 12): each (re)connect proves the visitor (its identity and the conversation in
    # one BatchGetItem; the profile only when the conversation is a merged customer's) and is remembered (1 put),
    # then reads what it missed once (the proof, the profile for the merged partitions, the query);
    # $disconnect finds no agent behind it.
    ("widget connect", "webchat"): (2, 1),
    ("widget catch-up read", "webchat"): (3, 0),
    ("widget disconnect", "webchat"): (1, 0),
    # The supervisor's live view, one supervisor watching: one batch of the routing table's stream after a flow
    # that changed a queue's counts or an agent (first message, accept, close); who watches (1 query), the changed
    # queue's counts read afresh (2 reads), one push. Writes nothing.
    (cost.LIVE_VIEW, "webchat"): (4, 0),
    (cost.LIVE_VIEW, "sms"): (4, 0),
    (cost.LIVE_VIEW, "email"): (4, 0),
}
# Lambda invocations per flow, at most (flows not named here are not counted): a follow-up on a contact its
# agent has accepted is one webhook invocation, no routing event (its invocation and 3 FIFO requests).
INVOCATIONS: dict[tuple[str, str], float] = {
    ("follow-up", "webchat"): 1,
    ("follow-up", "sms"): 1,
    ("follow-up", "email"): 1,
    (cost.LIVE_VIEW, "webchat"): 1,  # a batch is one invocation of on_routing_change
    (cost.LIVE_VIEW, "sms"): 1,
    (cost.LIVE_VIEW, "email"): 1,
}
# The typical conversation, mixed over the three channels: modelled dollars per 1,000 inbound messages.
# The web-chat conversation includes the widget's WebSocket; every one a supervisor watching the live view
# ($0.0237 without it).
USD_PER_1000_INBOUND = 0.0257
# Lambda invocations of the typical conversation (mixed), each billed as a request and its duration: 14, and the
# live view's 3 batches.
LAMBDA_INVOCATIONS_PER_CONVERSATION = 17
# Of it, CloudWatch Logs: the app's lines at prod's level and Lambda's own at prod's SystemLogLevel (WARN: none).
LOGS_USD_PER_1000_INBOUND = 0.0005


@pytest.fixture(scope="module")
def measured() -> Iterator[dict[str, Any]]:
    yield cost.run(quick=True)


def test_every_flow_is_measured_and_budgeted(measured: dict[str, Any]) -> None:
    flows = {(row["flow"], row["channel"]) for row in measured["flows"]}
    assert flows == set(BUDGETS), "a flow without a budget, or a budget for a flow that no longer runs"


@pytest.mark.parametrize("flow", sorted(BUDGETS), ids=lambda f: f"{f[0]}/{f[1]}")
def test_flow_stays_within_its_request_budget(measured: dict[str, Any], flow: tuple[str, str]) -> None:
    [row] = [r for r in measured["flows"] if (r["flow"], r["channel"]) == flow]
    requests, wru = BUDGETS[flow]
    assert row["aws_requests"] <= requests, f"{row['aws_requests']} requests: {row['by_operation']}"
    assert row["wru"] <= wru, f"{row['wru']} write units: {row['by_operation']}"


@pytest.mark.parametrize("flow", sorted(INVOCATIONS), ids=lambda f: f"{f[0]}/{f[1]}")
def test_flow_stays_within_its_invocations(measured: dict[str, Any], flow: tuple[str, str]) -> None:
    [row] = [r for r in measured["flows"] if (r["flow"], r["channel"]) == flow]
    invocations = sum(row["lambda_invocations"].values())
    assert invocations <= INVOCATIONS[flow], f"{invocations} invocations: {row['lambda_invocations']}"


def test_a_typical_conversation_stays_within_its_cost(measured: dict[str, Any]) -> None:
    mixed = measured["conversations"][-1]
    assert mixed["conversation"].startswith("mixed")
    usd = mixed["per_1000_inbound"]["usd"]
    assert usd["total"] <= USD_PER_1000_INBOUND, f"${usd['total']} per 1,000 inbound messages: {usd}"


def test_a_typical_conversation_logs_within_its_cost(measured: dict[str, Any]) -> None:
    usd = measured["conversations"][-1]["per_1000_inbound"]["usd"]
    assert usd["cloudwatch_logs"] <= LOGS_USD_PER_1000_INBOUND, f"${usd['cloudwatch_logs']} of logs per 1,000 inbound"


def test_a_typical_conversation_stays_within_its_lambda_invocations(measured: dict[str, Any]) -> None:
    mixed = measured["conversations"][-1]["per_conversation"]
    invocations = sum(mixed["lambda_invocations"].values())
    assert invocations <= LAMBDA_INVOCATIONS_PER_CONVERSATION + 1e-9, mixed["lambda_invocations"]
