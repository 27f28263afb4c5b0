"""Routing metrics as CloudWatch embedded metric format (EMF), per queue and channel: one document per invocation.

The SLA outcome is also published with the service dimension alone, so that one alarm can watch the breach rate
of the whole stage without knowing the queues (CloudWatch alarms cannot sum over a SEARCH).

What an invocation records is held until ``flush`` (the middleware calls it when the handler returns) and written
as one document for each queue and channel it touched: every metric once in the directives, its values an array
(EMF takes up to 100 a metric), the SLA's service-only count as a second dimension set of the same metric. A
first message or an accept is one line instead of one to three (README, "Logs").
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.settings import get_settings

SERVICE = "switchboard"
PER_QUEUE = ("queue", "channel", "service")
STAGE_WIDE = ("service",)
# EMF's limit on the values of one metric in one document; flushed before it is reached.
MAX_VALUES = 100

PER_ARTICLE = ("article", "channel", "service")

# ((first dimension, its value), channel) -> metric name -> (unit, dimension sets, values); the first dimension is
# the queue, or for self-service the knowledge-base article.
_pending: dict[tuple[tuple[str, str], str], dict[str, tuple[str, tuple[tuple[str, ...], ...], list[float]]]] = {}


def _record(
    name: str, unit: MetricUnit, value: float, queue: str, channel: str, *sets: tuple[str, ...], by: str = "queue"
) -> None:
    metrics = _pending.setdefault(((by, queue), channel), {})
    _unit, _sets, values = metrics.setdefault(name, (unit.value, sets, []))
    values.append(value)
    if len(values) >= MAX_VALUES:
        flush()


def wait_until_offer(seconds: float, queue: str, channel: str) -> None:
    _record("WaitUntilOffer", MetricUnit.Seconds, seconds, queue, channel, PER_QUEUE)


def wait_until_accept(seconds: float, queue: str, channel: str) -> None:
    _record("WaitUntilAccept", MetricUnit.Seconds, seconds, queue, channel, PER_QUEUE)


def sla(met: bool, queue: str, channel: str) -> None:
    """First response within the SLA target (accepted before the deadline) or not: per queue and channel, and in all."""
    _record("SLAMet" if met else "SLABreached", MetricUnit.Count, 1, queue, channel, PER_QUEUE, STAGE_WIDE)


def wait_until_agent(seconds: float, queue: str, channel: str) -> None:
    """A caller's wait, from joining the queue to the moment they are in the conference with the agent."""
    _record("WaitUntilAgent", MetricUnit.Seconds, seconds, queue, channel, PER_QUEUE)


def abandoned(seconds: float, queue: str, channel: str) -> None:
    """A customer gave up while waiting (a caller hung up): the count and the time to abandon, per queue."""
    _record("Abandoned", MetricUnit.Count, 1, queue, channel, PER_QUEUE)
    _record("TimeToAbandon", MetricUnit.Seconds, seconds, queue, channel, PER_QUEUE)


def callback(outcome: str, queue: str, channel: str) -> None:
    """A waiting caller's callback: ``requested`` (they pressed 1), ``connected`` (called back and with the agent)
    or ``failed`` (every attempt unanswered), as ``CallbackRequested``, ``CallbackConnected``, ``CallbackFailed``."""
    _record("Callback" + outcome.capitalize(), MetricUnit.Count, 1, queue, channel, PER_QUEUE)


def self_service(outcome: str, article_id: str, channel: str) -> None:
    """The self-service bot ``answered`` a first message with this article, the customer confirmed it ``solved``
    it, or it was ``handed_over`` to a person: ``SelfServiceAnswered``, ``SelfServiceSolved``,
    ``SelfServiceHandedOver``, per article and channel."""
    name = "SelfService" + "".join(part.capitalize() for part in outcome.split("_"))
    _record(name, MetricUnit.Count, 1, article_id, channel, PER_ARTICLE, by="article")


def flush() -> None:
    """Write what this invocation recorded: one EMF document per queue and channel, then forget it."""
    if not _pending:
        return
    namespace = get_settings().metrics_namespace
    timestamp = int(time.time() * 1000)
    for ((by, first), channel), metrics in list(_pending.items()):
        directives: dict[tuple[tuple[str, ...], ...], list[dict[str, str]]] = {}
        for name, (unit, dimension_sets, _values) in metrics.items():
            directives.setdefault(dimension_sets, []).append({"Name": name, "Unit": unit})
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {"Namespace": namespace, "Dimensions": [list(s) for s in sets], "Metrics": listed}
                    for sets, listed in directives.items()
                ],
            },
            by: first,
            "channel": channel,
            "service": SERVICE,
            **{name: values for name, (_unit, _sets, values) in metrics.items()},
        }
        print(json.dumps(document, separators=(",", ":")), flush=True)
    _pending.clear()
