"""What the app writes to CloudWatch Logs per flow, at the prod stage's level (README, "Logs").

Every byte is billed at ingestion. A line says what happened and to which conversation, contact, agent or
offer, plus the invocation's request id; it does not repeat what the log group already says (function name,
ARN, memory, service) nor a trace id when the invocation is not traced. Metrics are one EMF document per
invocation. And Lambda's own START/REPORT lines are priced as the stage deploys them.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from urllib.parse import parse_qsl, urlencode

import pytest

from chalicelib import stages
from chalicelib.settings import application_log_level, system_log_level
from tests.support import (
    agent_says,
    connect_agent,
    create_agent,
    deliver_once,
    drain,
    fixture,
    offers_to,
    post_twilio,
)

# The first message of an SMS conversation (webhook + routing: 2 invocations, 3 lines and 1 EMF document) at
# INFO: 1,665 bytes before (more in Lambda, whose context has a function ARN and memory size), 1,141 after.
FIRST_MESSAGE_BUDGET = 1200
# The agent's accept (its WebSocket command: 1 invocation, metrics only): 723 bytes in 3 EMF documents before,
# 418 in one after.
ACCEPT_BUDGET = 450
# What Lambda itself writes when an invocation is not traced (Sampled=0 still sets the header).
UNSAMPLED = "Root=1-6740f00d-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"
# Context keys the log group or the stage already names.
REDUNDANT = {"function_name", "function_arn", "function_memory_size", "cold_start", "service", "xray_trace_id"}


@contextmanager
def written() -> Iterator[list[str]]:
    """Every line the app writes to its log stream (Powertools' JSON lines and EMF documents) inside."""
    lines: list[str] = []
    sink = io.StringIO()
    handlers = [h for h in logging.getLogger("switchboard").handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(sink) for h in handlers]
    try:
        with redirect_stdout(sink):
            yield lines
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream if stream is not None else sys.stdout)
        lines.extend(line for line in sink.getvalue().splitlines() if line.strip())


def emf(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith('{"_aws"')]


def size(lines: list[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


def first_sms(client):
    form = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    assert post_twilio(client, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    while deliver_once(client)[0]:
        pass


@pytest.fixture
def lambda_like(monkeypatch):
    """INFO, as prod logs, the trace header Lambda sets on an invocation it does not trace, a warm container."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", UNSAMPLED)
    monkeypatch.setattr("aws_lambda_powertools.metrics.provider.cold_start.is_cold_start", False)
    logger = logging.getLogger("switchboard")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_a_first_message_logs_within_budget_and_names_only_what_the_log_group_does_not(client, lambda_like):
    create_agent(client, "ada", capacity=2, channels=("sms",))
    connect_agent(client, "ada")
    with written() as lines:
        first_sms(client)
    assert lines, "the first message logs what happened"
    documents = [json.loads(line) for line in lines if not line.startswith('{"_aws"')]
    assert {d["message"] for d in documents} >= {"inbound message", "offered"}
    for document in documents:
        assert document["conversation_id"] and document["function_request_id"], document
        assert not REDUNDANT & set(document), document
    assert size(lines) <= FIRST_MESSAGE_BUDGET, (size(lines), lines)


def test_an_accept_publishes_its_metrics_in_one_emf_document(client, lambda_like):
    create_agent(client, "ada", capacity=2, channels=("sms",))
    connection = connect_agent(client, "ada")
    first_sms(client)
    offer = offers_to(connection)[-1]
    with written() as lines:
        agent_says(client, connection, action="accept", contact_id=offer["contact_id"], offer_id=offer["offer_id"])
        drain(client)
    (document,) = emf(lines)
    directives = document["_aws"]["CloudWatchMetrics"]
    published = {
        (metric["Name"], tuple(dimensions))
        for directive in directives
        for metric in directive["Metrics"]
        for dimensions in directive["Dimensions"]
    }
    assert published == {
        ("WaitUntilAccept", ("queue", "channel", "service")),
        ("SLAMet", ("queue", "channel", "service")),
        ("SLAMet", ("service",)),
    }
    assert (document["queue"], document["channel"], document["service"]) == ("default", "sms", "switchboard")
    assert document["SLAMet"] == [1.0] and len(document["WaitUntilAccept"]) == 1
    assert size(lines) <= ACCEPT_BUDGET, (size(lines), lines)


# --- Lambda's own lines and levels: the stage's settings --------------------------------------------------------


def test_lambdas_levels_follow_the_stages_log_level():
    assert application_log_level({"LOG_LEVEL": "DEBUG"}) == "DEBUG"
    assert application_log_level({"LOG_LEVEL": "info"}) == "INFO"
    assert application_log_level({}) == "INFO"  # Powertools' default
    assert system_log_level({}) == "INFO"  # Lambda's default: START and REPORT kept
    assert system_log_level({"SWITCHBOARD_SYSTEM_LOG_LEVEL": "warn"}) == "WARN"
    assert (stages.application_log_level("dev"), stages.system_log_level("dev")) == ("DEBUG", "INFO")
    assert (stages.application_log_level("prod"), stages.system_log_level("prod")) == ("INFO", "WARN")


@pytest.mark.parametrize("level", ["WARNING", "WARN", "ERROR", "CRITICAL"])
def test_a_log_level_above_info_is_refused_because_it_would_drop_the_metrics(level):
    with pytest.raises(ValueError, match="EMF"):
        application_log_level({"LOG_LEVEL": level})


def test_a_system_log_level_lambda_does_not_have_is_refused():
    with pytest.raises(ValueError, match="SWITCHBOARD_SYSTEM_LOG_LEVEL"):
        system_log_level({"SWITCHBOARD_SYSTEM_LOG_LEVEL": "ERROR"})


def test_the_cost_model_prices_lambdas_own_lines_as_the_priced_stage_deploys_them():
    from bench import cost

    prices = cost.load_prices()
    per_level = prices["assumptions"]["lambda_platform_log_bytes"]
    assert per_level["WARN"] == 0 < per_level["INFO"]
    usage = cost.Usage()
    usage.invocations["api_handler"] = 1_000_000
    gb = per_level[stages.system_log_level(cost.PRICED_STAGE)] * 1_000_000 / 1e9
    price = prices["prices"]["cloudwatch_logs_ingestion_gb"]
    assert cost.dollars(usage, prices)["cloudwatch_logs"] == pytest.approx(gb * price["usd"] / price["per"])


def test_dev_level_lines_say_where_they_were_written(client, monkeypatch):
    """DEBUG (dev's LOG_LEVEL) keeps ``location`` for the developer; INFO (prod's) leaves it out."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", UNSAMPLED)
    logger = logging.getLogger("switchboard")
    level = logger.level
    try:
        for setting, expected in ((logging.DEBUG, True), (logging.INFO, False)):
            logger.setLevel(setting)
            with written() as lines:
                first_sms(client)
            documents = [json.loads(line) for line in lines if not line.startswith('{"_aws"')]
            inbound = [d for d in documents if d["message"] == "inbound message"]
            assert inbound and all(("location" in d) is expected for d in inbound), (setting, inbound)
    finally:
        logger.setLevel(level)
