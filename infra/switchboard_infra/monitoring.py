"""Alarms (into one SNS topic) and the operations dashboard of a stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from switchboard_infra.functions import FUNCTIONS
from switchboard_infra.scans import skip
from switchboard_infra.stages import Stage

if TYPE_CHECKING:
    from switchboard_infra.stack import SwitchboardStack

MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# Replies waiting longer than this to leave mean a provider is down or refusing us.
OUTBOX_AGE_SECONDS = 300
API_5XX_PER_5_MINUTES = 5


def dashboard_name(stage: Stage) -> str:
    return f"{stage.prefix}-operations"


def add(stack: SwitchboardStack) -> sns.Topic:
    """Every alarm of the stage, publishing to the returned topic, and the dashboard."""
    stage = stack.stage
    topic = sns.Topic(stack, "Alarms", topic_name=f"{stage.prefix}-alarms", display_name=f"Switchboard {stage.name}")
    skip(topic, "CKV_AWS_26", "CloudWatch cannot publish to a topic under the AWS managed key; alarms hold no data")
    if stage.alarm_email:
        topic.add_subscription(subscriptions.EmailSubscription(stage.alarm_email))
    notify = actions.SnsAction(topic)
    alarms: list[cloudwatch.Alarm] = []

    def alarm(
        construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str, periods: int = 1
    ) -> None:
        created = cloudwatch.Alarm(
            stack,
            construct_id,
            alarm_name=f"{stage.prefix}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        created.add_alarm_action(notify)
        created.add_ok_action(notify)
        alarms.append(created)

    for key, dead_letters in stack.dead_letter_queues.items():
        alarm(
            f"{key}-dead-letters",
            dead_letters.metric_approximate_number_of_messages_visible(period=MINUTE, statistic="Maximum"),
            1,
            f"A message gave up on the {key} queue: `switchboard dlq list --stage {stage.name}`, fix the cause, "
            f"then `switchboard dlq redrive`.",
        )
    alarm(
        "routing-backlog",
        stack.queues["routing"].metric_approximate_age_of_oldest_message(period=MINUTE, statistic="Maximum"),
        stage.routing_age_seconds,
        "Routing events are waiting: the router is failing or throttled, and customers wait unrouted.",
        periods=3,
    )
    alarm(
        "outbox-backlog",
        stack.queues["outbox"].metric_approximate_age_of_oldest_message(period=MINUTE, statistic="Maximum"),
        OUTBOX_AGE_SECONDS,
        "Agents' replies are not leaving: a provider refuses or is down (see the outbox function's log).",
        periods=3,
    )
    sla_rate = _sla_breach_rate(stage)
    alarm(
        "sla-breach-rate",
        sla_rate,
        stage.sla_breach_percent,
        f"More than {stage.sla_breach_percent:g}% of first responses missed their SLA in the last 15 minutes.",
    )
    functions = {f.name: stack.app.get_function(f.logical_id) for f in FUNCTIONS}
    for name, function in functions.items():
        label = name.replace("_", "-")
        alarm(
            f"{label}-errors",
            function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            1,
            f"{name} failed (an unhandled error or a timeout); its log group is /switchboard/{stage.name}/{name}.",
        )
        alarm(
            f"{label}-throttles",
            function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
            1,
            f"{name} was throttled: raise the account's Lambda concurrency or look for a flood.",
        )
    api_5xx = _api_metric(stage, "5XXError", "Sum")
    alarm("api-5xx", api_5xx, API_5XX_PER_5_MINUTES, "The REST API answers 5xx: agents' calls or widget posts fail.")
    webhooks_5xx = cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name="5xx",  # an HTTP API's name for it
        dimensions_map={"ApiId": stack.webhook_api.api_id, "Stage": "$default"},
        period=FIVE_MINUTES,
        statistic="Sum",
    )
    alarm(
        "webhooks-5xx",
        webhooks_5xx,
        API_5XX_PER_5_MINUTES,
        "The webhooks' HTTP API answers 5xx: providers retry, and messages wait or are lost.",
    )

    _dashboard(stack, sla_rate, functions, api_5xx, alarms)
    return topic


def _sla_metric(stage: Stage, name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=f"Switchboard/{stage.name}",
        metric_name=name,
        dimensions_map={"service": stage.environment.get("POWERTOOLS_SERVICE_NAME", "switchboard")},
        period=Duration.minutes(15),
        statistic="Sum",
    )


def _sla_breach_rate(stage: Stage) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression="100 * FILL(breached, 0) / MAX([FILL(met, 0) + FILL(breached, 0), 1])",
        using_metrics={"met": _sla_metric(stage, "SLAMet"), "breached": _sla_metric(stage, "SLABreached")},
        label="SLA breach rate (%)",
        period=Duration.minutes(15),
    )


def _search(stage: Stage, metric: str, statistic: str) -> cloudwatch.MathExpression:
    namespace = f"Switchboard/{stage.name}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{namespace},channel,queue,service}} MetricName=\"{metric}\"', '{statistic}', 300)",
        using_metrics={},
        label=f"{metric} {statistic}",
        period=FIVE_MINUTES,
    )


def _graph(title: str, metrics: list[cloudwatch.IMetric], width: int = 8) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=width)


def _api_metric(stage: Stage, name: str, statistic: str) -> cloudwatch.Metric:
    """A metric of the REST API (Chalice names the API after the app)."""
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=name,
        dimensions_map={"ApiName": "switchboard", "Stage": stage.api_gateway_stage},
        period=FIVE_MINUTES,
        statistic=statistic,
    )


def _dashboard(
    stack: SwitchboardStack,
    sla_rate: cloudwatch.MathExpression,
    functions: dict[str, lambda_.IFunction],
    api_5xx: cloudwatch.Metric,
    alarms: list[cloudwatch.Alarm],
) -> None:
    stage = stack.stage
    board = cloudwatch.Dashboard(stack, "Operations", dashboard_name=dashboard_name(stage))
    board.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4))
    board.add_widgets(
        cloudwatch.GraphWidget(
            title="First responses: SLA met and breached",
            left=[_sla_metric(stage, "SLAMet"), _sla_metric(stage, "SLABreached")],
            right=[sla_rate],
            width=8,
        ),
        _graph("Wait until offered (p90, per queue and channel)", [_search(stage, "WaitUntilOffer", "p90")]),
        _graph("Wait until accepted (p90, per queue and channel)", [_search(stage, "WaitUntilAccept", "p90")]),
    )
    board.add_widgets(  # calls (issue 13): the caller's wait ends when the agent joins; who gave up, and when
        _graph("Calls: wait until the agent joined (p90, per queue)", [_search(stage, "WaitUntilAgent", "p90")]),
        _graph("Abandoned (per queue and channel)", [_search(stage, "Abandoned", "Sum")]),
        _graph("Time to abandon (p90, per queue and channel)", [_search(stage, "TimeToAbandon", "p90")]),
    )
    queues, dead_letters = stack.queues.items(), stack.dead_letter_queues.items()
    board.add_widgets(
        _graph(
            "Queues: oldest message (s)",
            [
                q.metric_approximate_age_of_oldest_message(period=MINUTE, statistic="Maximum", label=k)
                for k, q in queues
            ],
        ),
        _graph(
            "Queues: messages waiting",
            [
                q.metric_approximate_number_of_messages_visible(period=MINUTE, statistic="Maximum", label=k)
                for k, q in queues
            ],
        ),
        _graph(
            "Dead-letter queues",
            [
                q.metric_approximate_number_of_messages_visible(period=MINUTE, statistic="Maximum", label=k)
                for k, q in dead_letters
            ],
        ),
    )
    named = functions.items()
    board.add_widgets(
        _graph("Function errors", [f.metric_errors(period=FIVE_MINUTES, label=n) for n, f in named]),
        _graph(
            "Function duration (p90)",
            [f.metric_duration(period=FIVE_MINUTES, statistic="p90", label=n) for n, f in named],
        ),
        _graph("Function throttles", [f.metric_throttles(period=FIVE_MINUTES, label=n) for n, f in named]),
    )
    board.add_widgets(
        _graph("REST API: 4xx and 5xx", [_api_metric(stage, "4XXError", "Sum"), api_5xx], width=12),
        _graph("REST API: latency (p90)", [_api_metric(stage, "Latency", "p90")], width=12),
    )
