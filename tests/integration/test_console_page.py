"""What the console page and the widget script are served with, and where the console may send its token.

The console's WebSocket URL is the deployment's (``WEBSOCKET_URL``, through ``GET /auth/options``); its CSP
lets it run only its own inline script and connect only to this API, that URL (and ``WEBSOCKET_ALLOWED_URLS``)
and Cognito, and forbids framing. The browser side of both is in tests/browser/test_console_security.py.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from chalicelib.settings import reload_settings

WS_URL = "wss://w1s2a3p4i5.execute-api.us-east-1.amazonaws.com/api"
CUSTOM_DOMAIN = "wss://agents.example.com/live"


@pytest.fixture
def deployed(client, monkeypatch):
    monkeypatch.setenv("WEBSOCKET_URL", WS_URL)
    monkeypatch.setenv("WEBSOCKET_ALLOWED_URLS", CUSTOM_DOMAIN)
    reload_settings()
    return client


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_auth_options_name_the_deployments_websocket_url(deployed):
    options = deployed.http.get("/auth/options").json_body
    assert options["websocket"] == {"url": WS_URL, "allowed": [WS_URL, CUSTOM_DOMAIN]}


def test_console_runs_only_its_own_script_connects_only_to_the_deployment_and_cannot_be_framed(deployed):
    page = deployed.http.get("/console")
    assert page.status_code == 200
    headers = {k.lower(): v for k, v in page.headers.items()}
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    csp = _directives(headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'none'"]
    html = page.body.decode() if isinstance(page.body, bytes) else page.body
    [script] = re.findall(r"<script>(.*?)</script>", re.sub(r"<!--.*?-->", "", html, flags=re.S), re.S)
    # The page's own script by hash, nothing inline else; and this origin's files (the softphone's SDK).
    assert csp["script-src"] == [_sha256(script), "'self'"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert set(csp["connect-src"]) == {
        "'self'",
        "wss://w1s2a3p4i5.execute-api.us-east-1.amazonaws.com",
        "wss://agents.example.com",
        # The softphone's Voice SDK: signalling, insights events, its sounds (tests/integration/test_softphone.py).
        "wss://voice-js.roaming.twilio.com",
        "https://eventgw.twilio.com",
        "https://sdk.twilio.com",
        "https://media.twiliocdn.com",
    }
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers would be blocked by the CSP"
    assert ' style="' not in html, "style attributes would be blocked by the CSP"


def test_console_may_reach_the_cognito_endpoint_it_signs_in_through(deployed, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "0")
    monkeypatch.setenv("COGNITO_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123")
    monkeypatch.setenv("COGNITO_CLIENT_ID", "4example0client0id")
    reload_settings()
    csp = _directives(deployed.http.get("/console").headers["Content-Security-Policy"])
    assert "https://cognito-idp.eu-west-1.amazonaws.com" in csp["connect-src"]


def test_widget_script_is_served_as_what_it_is(client):
    script = client.http.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert script.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_the_served_widget_names_the_deployments_websocket_url(deployed):
    """The widget's replies come on the deployment's WebSocket: the script as served says where (issue 12)."""
    script = deployed.http.get("/widget.js").body.decode()
    assert f'var ws = script.getAttribute("data-ws") || "{WS_URL}";' in script
