"""Routing metrics as CloudWatch embedded metric format (EMF) through Powertools, per queue and channel."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "Switchboard"


def _emit(name: str, unit: MetricUnit, value: float, queue: str, channel: str) -> None:
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="queue", value=queue)
        metric.add_dimension(name="channel", value=channel)


def wait_until_offer(seconds: float, queue: str, channel: str) -> None:
    _emit("WaitUntilOffer", MetricUnit.Seconds, seconds, queue, channel)


def wait_until_accept(seconds: float, queue: str, channel: str) -> None:
    _emit("WaitUntilAccept", MetricUnit.Seconds, seconds, queue, channel)


def sla(met: bool, queue: str, channel: str) -> None:
    """First response within the SLA target (accepted before the deadline) or not."""
    _emit("SLAMet" if met else "SLABreached", MetricUnit.Count, 1, queue, channel)
