"""Twilio signs the webhook URL exactly as it was configured, query string included: checked against that URL.

Twilio's string to sign starts with the full URL it called, its query string byte for byte (order, repeated
names, percent-encoding), so the check must not rebuild a different one. Where the request line is at hand
(the local REST server) the raw query is used as it came. API Gateway's REST API hands Lambda the query only
parsed (``multiValueQueryStringParameters``, decoded, each name's values together in order): the check then
tries the standard encodings of those parameters (``%20`` and ``+`` for a space, reserved characters escaped
or left as typed).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import pytest

from chalicelib.local.rest import RestApiServer
from chalicelib.settings import reload_settings
from tests.integration.test_public_url import DOMAIN, PATH, LambdaContext, api_gateway_event
from tests.support import fixture, stored_messages, twilio_headers


def rest_api_event(body: bytes, headers: dict[str, str], raw_query: str) -> dict:
    """API Gateway's REST API event for ``PATH?raw_query``: the query parsed and decoded, never raw."""
    parsed = parse_qs(raw_query, keep_blank_values=True)
    event = api_gateway_event(body, headers)
    event["multiValueQueryStringParameters"] = parsed
    event["queryStringParameters"] = {name: values[-1] for name, values in parsed.items()}
    return event


@pytest.fixture
def behind_api_gateway(client, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL")
    reload_settings()
    from app import app

    return app


@pytest.mark.parametrize(
    "raw_query",
    [
        "site=uk&tag=spring%20sale&tag=vip",  # a repeated name; a space urlencode would write as "+"
        "site=uk&tag=spring+sale",  # the form encoding
        "next=/shop/orders&at=10:30",  # reserved characters left as typed (urlencode escapes them)
        "next=%2Fshop%2Forders&lang=en~GB",  # escaped, and "~" unescaped
    ],
)
def test_behind_api_gateway_a_url_with_a_query_string_verifies(behind_api_gateway, raw_query):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(f"{PATH}?{raw_query}", body, base_url=f"https://{DOMAIN}/api")

    response = behind_api_gateway(rest_api_event(body, headers, raw_query), LambdaContext())

    assert response["statusCode"] == 200, response["body"]
    assert "<Response" in response["body"]


def test_behind_api_gateway_a_signature_for_other_parameters_is_refused(behind_api_gateway):
    body = fixture("twilio/inbound_sms.txt")
    headers = twilio_headers(f"{PATH}?site=uk&tag=vip", body, base_url=f"https://{DOMAIN}/api")

    response = behind_api_gateway(rest_api_event(body, headers, "site=uk&tag=vip&tag=spam"), LambdaContext())

    assert response["statusCode"] == 401
    assert stored_messages() == []


@pytest.fixture
def local_rest_server(client) -> Iterator[str]:
    """The local stack's REST server (chalice local's gateway) in front of the app, AWS still moto in-process."""
    from app import app

    server = RestApiServer(app, port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_local_server_checks_the_query_exactly_as_twilio_called_it(local_rest_server, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", local_rest_server)
    reload_settings()
    body = fixture("twilio/inbound_sms.txt")
    # Interleaved repeats, an order that is not sorted, "%2F", "~" and "%20": none survives parse-and-rebuild.
    raw_query = "tag=vip&site=uk&tag=spring%20sale&next=%2Fshop~1"
    headers = twilio_headers(f"{PATH}?{raw_query}", body, base_url=local_rest_server)
    assert urlencode(parse_qs(raw_query), doseq=True) != raw_query

    # The same parameters in another order or encoding are another URL: not what Twilio signed.
    assert post(f"{local_rest_server}{PATH}?site=uk&tag=vip&tag=spring%20sale&next=%2Fshop~1", body, headers) == 401
    assert post(f"{local_rest_server}{PATH}?tag=vip&site=uk&tag=spring+sale&next=%2Fshop~1", body, headers) == 401
    assert post(f"{local_rest_server}{PATH}?{raw_query}", body, headers) == 200
    assert len(stored_messages()) == 1
