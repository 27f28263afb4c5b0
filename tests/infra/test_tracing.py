"""X-Ray per stage, read off the synthesized templates: the share of requests traced is the stage's setting.

``SWITCHBOARD_TRACE_PERCENT`` (.chalice/config.json, or ``-c tracePercent=`` at deploy) is the percent of REST
requests API Gateway's sampling rule traces. The rule has no reservoir (X-Ray's default rule traces the first
request of every second, which at a contact centre's volume is nearly all of them). Below 100 % every function
is PassThrough: it traces only an invocation that arrives sampled (API Gateway's header, or the AWSTraceHeader
SQS carries from a sampled producer), never one Lambda would sample itself (Active's fixed 1 a second + 5 %).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.settings import TRACE_PERCENT
from tests.infra.conftest import PROD_CONTEXT, synthesize
from tests.infra.template import resources

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def sampled_prod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """prod as an operator deploys it with 2 % of requests traced (README, "Traces")."""
    return synthesize("prod", tmp_path_factory.mktemp("synth-prod-traced"), {**PROD_CONTEXT, "tracePercent": "2"})


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: f["Properties"] for name, f in resources(template, "AWS::Serverless::Function").items()}


def rest_api(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["RestAPI"]["Properties"])


def sampling_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"]["SamplingRule"] for r in resources(template, "AWS::XRay::SamplingRule").values()]


def assert_rule_for_the_stages_rest_api(rule: dict[str, Any], stage: str, rate: float) -> None:
    assert rule["FixedRate"] == rate
    assert rule["ReservoirSize"] == 0, "a reservoir traces the first request of every second: nearly all of them"
    # API Gateway names its segments {api name}/{stage}; dev's and prod's APIs share the name, not the ARN.
    assert rule["ServiceName"] == "switchboard/api"
    assert rule["ServiceType"] == "AWS::ApiGateway::Stage"
    arn = rule["ResourceARN"]["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/api")
    assert (rule["Host"], rule["HTTPMethod"], rule["URLPath"]) == ("*", "*", "*")
    assert rule["RuleName"] == f"switchboard-{stage}-api" and len(rule["RuleName"]) <= 32


def test_dev_traces_every_invocation(templates):
    dev = templates["dev"]
    found = functions(dev)
    assert {f["Tracing"] for f in found.values()} == {"Active"}
    assert {f["Environment"]["Variables"][TRACE_PERCENT] for f in found.values()} == {"100"}
    assert rest_api(dev)["TracingEnabled"] is True
    [rule] = sampling_rules(dev)
    assert_rule_for_the_stages_rest_api(rule, "dev", 1.0)


def test_prod_traces_nothing_by_default(templates):
    prod = templates["prod"]
    found = functions(prod)
    assert {f["Tracing"] for f in found.values()} == {"PassThrough"}
    assert {f["Environment"]["Variables"][TRACE_PERCENT] for f in found.values()} == {"0"}
    assert rest_api(prod)["TracingEnabled"] is False
    assert sampling_rules(prod) == []


def test_a_stage_set_to_a_percent_traces_that_share_of_rest_requests(sampled_prod):
    found = functions(sampled_prod)
    # The queues' functions trace what arrives sampled; WebSocket messages and the schedule have no sampler in
    # front of them, so nothing arrives sampled there and they trace nothing.
    assert {f["Tracing"] for f in found.values()} == {"PassThrough"}
    assert {f["Environment"]["Variables"][TRACE_PERCENT] for f in found.values()} == {"2"}
    assert rest_api(sampled_prod)["TracingEnabled"] is True
    [rule] = sampling_rules(sampled_prod)
    assert_rule_for_the_stages_rest_api(rule, "prod", 0.02)
