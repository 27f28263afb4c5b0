"""Behind API Gateway with no PUBLIC_BASE_URL, a webhook is checked against the URL it came in on.

The stack cannot put its own REST API's URL into the API handler's settings (the API's definition names the
function), so the handler takes https://<domainName>/<stage> from the request, as Twilio saw it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.settings import reload_settings
from tests.support import PUBLIC_BASE_URL, fixture, twilio_headers

DOMAIN = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
PATH = "/webhooks/twilio/messaging"


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as the context of an invocation."""

    function_name: str = "switchboard-prod-APIHandler"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:switchboard-prod-APIHandler"
    aws_request_id: str = "8f5e2a51-6c1c-4a55-9b8e-0f6a5c7f9d10"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def api_gateway_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A REST API (v1) proxy event as API Gateway sends it for POST /api/webhooks/twilio/messaging."""
    return {
        "resource": PATH,
        "path": PATH,
        "httpMethod": "POST",
        "headers": {**headers, "Host": DOMAIN, "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {k: [v] for k, v in {**headers, "Host": DOMAIN}.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": PATH,
            "httpMethod": "POST",
            "path": f"/api{PATH}",
            "stage": "api",
            "domainName": DOMAIN,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "54.172.60.0", "userAgent": "TwilioProxy/1.1"},
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


@pytest.fixture
def behind_api_gateway(client, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL")
    reload_settings()
    from app import app

    return app


def test_webhook_signed_for_the_api_gateway_url_is_accepted(behind_api_gateway):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(PATH, body, base_url=f"https://{DOMAIN}/api")
    response = behind_api_gateway(api_gateway_event(body, headers), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert "<Response" in response["body"]  # Twilio's TwiML answer


def test_webhook_signed_for_another_url_is_rejected(behind_api_gateway):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(PATH, body, base_url=PUBLIC_BASE_URL)  # not where this request came in
    response = behind_api_gateway(api_gateway_event(body, headers), LambdaContext())
    assert response["statusCode"] == 401, response["body"]


def test_a_configured_public_url_wins(client, monkeypatch):
    from app import app

    body = fixture("twilio/inbound_sms.txt")
    # PUBLIC_BASE_URL is set (a custom domain): the API Gateway URL is not what Twilio was given.
    headers = twilio_headers(PATH, body, base_url=f"https://{DOMAIN}/api")
    assert app(api_gateway_event(body, headers), LambdaContext())["statusCode"] == 401
    headers = twilio_headers(PATH, body)
    assert app(api_gateway_event(body, headers), LambdaContext())["statusCode"] == 200


HTTP_API_DOMAIN = "f6g7h8i9j0.execute-api.eu-west-1.amazonaws.com"


def http_api_event(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """An HTTP API proxy event in payload format 1.0 (the webhooks' front door, infra/switchboard_infra/webhooks.py)
    for POST /webhooks/twilio/messaging on the $default stage: header names lowercased, a form body as text,
    ``requestContext.stage`` "$default" and no stage in the URL the provider called."""
    lowered = {k.lower(): v for k, v in {**headers, "Host": HTTP_API_DOMAIN}.items()}
    return {
        "version": "1.0",
        "resource": PATH,
        "path": PATH,
        "httpMethod": "POST",
        "headers": {**lowered, "x-forwarded-proto": "https", "x-forwarded-port": "443"},
        "multiValueHeaders": {k: [v] for k, v in lowered.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": HTTP_API_DOMAIN.split(".")[0],
            "domainName": HTTP_API_DOMAIN,
            "domainPrefix": HTTP_API_DOMAIN.split(".")[0],
            "extendedRequestId": "JxGxOgEfoAMEbUw=",
            "httpMethod": "POST",
            "identity": {"sourceIp": "54.172.60.0", "userAgent": "TwilioProxy/1.1"},
            "path": PATH,
            "protocol": "HTTP/1.1",
            "requestId": "JxGxOgEfoAMEbUw=",
            "requestTime": "02/Dec/2026:09:00:00 +0000",
            "requestTimeEpoch": 1796202000000,
            "resourceId": "POST /webhooks/twilio/messaging",
            "resourcePath": PATH,
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def test_webhook_through_the_http_api_is_checked_against_its_url_without_a_stage(behind_api_gateway):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(PATH, body, base_url=f"https://{HTTP_API_DOMAIN}")
    response = behind_api_gateway(http_api_event(body.decode(), headers), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert "<Response" in response["body"]

    forged = twilio_headers(PATH, body, base_url=f"https://{HTTP_API_DOMAIN}/$default")
    assert behind_api_gateway(http_api_event(body.decode(), forged), LambdaContext())["statusCode"] == 401
