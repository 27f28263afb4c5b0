"""The providers' front door: an HTTP API carrying only the webhooks, to the same API handler as the REST API.

An HTTP API request costs $1.00 per million against the REST API's $3.50 plus WAF's $0.60 (README, "The front
door"; bench/RESULTS.md prices every option on the same counts). WAF cannot be attached to an HTTP API; every
webhook is signed by its provider and the signature is checked before anything is stored, so what WAF adds for
them is little, while the widget (the one unsigned public endpoint, rate-limited per IP by WAF) and everything
agents and admins call stay on the REST API. What the HTTP API keeps: throttling (the stage's rate and burst)
and access logs without query strings (Meta's verify token arrives in the query).

Payload format 1.0 is the REST API's event shape (``requestContext.resourcePath``, ``multiValueHeaders``...),
which Chalice routes as it routes the REST API's; the ``$default`` stage is served at the root, so the URL a
provider calls (and signs, for Twilio) has no stage in it (app.py, ``_public_base_url``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Fn, Stack
from aws_cdk import aws_apigatewayv2 as apigatewayv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from chalicelib.channels import registry
from switchboard_infra.scans import skip

API_ID = "WebhooksHttpApi"  # not "WebhookApi": that is the API channel's output (operate.output_key)
ACCESS_LOG = {
    # No query string, no headers: Meta's verify token arrives in the query.
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
}


def routes() -> list[str]:
    """The route keys: every channel adapter's path with each of its methods."""
    return [f"{method} {adapter.path}" for adapter in registry.CHANNELS for method in adapter.methods]


@dataclass(frozen=True)
class WebhookApi:
    api_id: str  # a token: the HTTP API's id
    url: str  # a token: https://<id>.execute-api.<region>.<suffix>, no stage, no trailing slash


def add(
    stack: Stack,
    *,
    name: str,
    function_arn: str,
    rate: int,
    burst: int,
    log_retention: logs.RetentionDays,
) -> WebhookApi:
    """The webhooks' HTTP API in front of ``function_arn``."""
    api = apigatewayv2.CfnApi(
        stack,
        API_ID,
        name=name,
        protocol_type="HTTP",
        description="Providers' webhooks (signed); everything else is on the REST API",
    )
    integration = apigatewayv2.CfnIntegration(
        stack,
        "WebhookApiIntegration",
        api_id=api.ref,
        integration_type="AWS_PROXY",
        integration_uri=function_arn,
        payload_format_version="1.0",
        timeout_in_millis=29_000,
    )
    for key in routes():
        route = apigatewayv2.CfnRoute(
            stack,
            "WebhookRoute" + "".join(part.title() for part in key.replace("/", " ").split()),
            api_id=api.ref,
            route_key=key,
            target=Fn.join("/", ["integrations", integration.ref]),
            authorization_type="NONE",
        )
        skip(route, "CKV_AWS_309", "providers sign every webhook; the function checks it before storing anything")
    access_logs = logs.LogGroup(stack, "WebhookApiAccessLogs", retention=log_retention)
    skip(access_logs, "CKV_AWS_158", "encrypted by CloudWatch Logs; bodies and secrets never reach the logs")
    apigatewayv2.CfnStage(
        stack,
        "WebhookApiStage",
        api_id=api.ref,
        stage_name="$default",
        auto_deploy=True,
        access_log_settings=apigatewayv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG, separators=(",", ":"))
        ),
        default_route_settings=apigatewayv2.CfnStage.RouteSettingsProperty(
            throttling_rate_limit=rate, throttling_burst_limit=burst
        ),
    )
    lambda_.CfnPermission(
        stack,
        "WebhookApiInvokesApiHandler",
        action="lambda:InvokeFunction",
        function_name=function_arn,
        principal="apigateway.amazonaws.com",
        source_arn=Fn.sub(
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*", {"Api": api.ref}
        ),
    )
    return WebhookApi(api.ref, Fn.sub("https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}", {"Api": api.ref}))
