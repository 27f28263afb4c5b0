"""Routing metrics as CloudWatch embedded metric format (EMF) through Powertools, per queue and channel.

The SLA outcome is also emitted once more with the service dimension alone, so that one alarm can watch the
breach rate of the whole stage without knowing the queues (CloudWatch alarms cannot sum over a SEARCH).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chalicelib.settings import get_settings


def _emit(name: str, unit: MetricUnit, value: float, queue: str | None = None, channel: str | None = None) -> None:
    namespace = get_settings().metrics_namespace
    with single_metric(name=name, unit=unit, value=value, namespace=namespace) as metric:
        if queue is not None:
            metric.add_dimension(name="queue", value=queue)
        if channel is not None:
            metric.add_dimension(name="channel", value=channel)


def wait_until_offer(seconds: float, queue: str, channel: str) -> None:
    _emit("WaitUntilOffer", MetricUnit.Seconds, seconds, queue, channel)


def wait_until_accept(seconds: float, queue: str, channel: str) -> None:
    _emit("WaitUntilAccept", MetricUnit.Seconds, seconds, queue, channel)


def sla(met: bool, queue: str, channel: str) -> None:
    """First response within the SLA target (accepted before the deadline) or not: per queue and channel, and in all."""
    name = "SLAMet" if met else "SLABreached"
    _emit(name, MetricUnit.Count, 1, queue, channel)
    _emit(name, MetricUnit.Count, 1)
