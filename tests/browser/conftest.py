"""The local stack with fake providers, a loopback page for the widget, and Chromium driven by Playwright.

Order matters: the fake providers start first and the environment points at
them (and PUBLIC_BASE_URL at the API's port, chosen up front, so Twilio
signatures are computed over the URL the stack really serves) before the
stack starts and loads its settings.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.local.stack import LocalStack
from tests.fakes import twilio_voice
from tests.fakes.providers import ACCOUNT_SID, META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN, FakeProviders
from tests.support import CHANNEL_SECRETS, WEBCHAT_SECRET

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
SITE = "acme"
SOFTPHONE_SETTINGS = {
    # The fake Twilio's API key: with one set, the app's REST requests (SMS, calls) authenticate with it too.
    "TWILIO_API_KEY_SID": twilio_voice.API_KEY_SID,
    "TWILIO_API_KEY_SECRET": twilio_voice.API_KEY_SECRET,
    "TWILIO_TWIML_APP_SID": "AP" + "7a" * 16,
}


AXE = Path(__file__).resolve().parents[2] / "chalicelib/console/vendor/node_modules/axe-core/axe.min.js"


def accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's critical and serious findings on the page as it is now (WCAG 2.1 A and AA rules), each with the
    selectors of the elements at fault. axe comes from npm (chalicelib/console/vendor), injected by the test."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, {
            runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
            resultTypes: ["violations"] });
          return result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5) }));
        }"""
    )
    return [v for v in found if v["impact"] in ("critical", "serious")]


def page_width(page: Any) -> int:
    """How wide the page really is: more than the viewport means a sideways scroll."""
    return int(page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def fake_providers() -> Iterator[FakeProviders]:
    fake = FakeProviders(ACCOUNT_SID, CHANNEL_SECRETS["TWILIO_AUTH_TOKEN"], META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def stack(fake_providers: FakeProviders) -> Iterator[LocalStack]:
    api_port = _free_port()
    env = pytest.MonkeyPatch()
    for name in ("SWITCHBOARD_SSM_PREFIX", "SWITCHBOARD_ROUTING_CONFIG_PARAMETER"):
        env.delenv(name, raising=False)
    env.setenv("WEBCHAT_SECRET", WEBCHAT_SECRET)
    for name, value in CHANNEL_SECRETS.items():
        env.setenv(name, value)
    env.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{api_port}")
    env.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    for name, value in SOFTPHONE_SETTINGS.items():  # the softphone's token (tests/browser/test_console_voice.py)
        env.setenv(name, value)
    env.setenv("META_ACCESS_TOKEN", META_ACCESS_TOKEN)
    env.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_BOT_TOKEN)
    for name in ("TWILIO_API_BASE", "META_GRAPH_BASE", "TELEGRAM_API_BASE"):
        env.setenv(name, fake_providers.base_url)
    from app import app

    try:
        with LocalStack(app, api_port=api_port, ws_port=0, management_port=0, moto_port=0) as running:
            yield running
    finally:
        env.undo()


class Admin:
    """The admin's REST calls the tests set up with (agents are created by an admin, not in the console)."""

    def __init__(self, stack: LocalStack) -> None:
        self.api = stack.api_url
        token = requests.post(f"{self.api}/dev/tokens", json={"agent_id": "root", "roles": ["admin"]}, timeout=10)
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['token']}"}

    def create_agent(self, agent_id: str, channel: str) -> None:
        body = {"agent_id": agent_id, "name": agent_id.title(), "max_per_channel": {channel: 2}, "presence": "Offline"}
        response = requests.post(f"{self.api}/agents", json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text

    def set_presence(self, agent_id: str, presence: str) -> None:
        response = requests.put(
            f"{self.api}/agents/{agent_id}/presence", json={"presence": presence}, headers=self.headers, timeout=10
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Admin:
    return Admin(stack)


@pytest.fixture(scope="module")
def site_server(stack: LocalStack) -> Iterator[str]:
    """A business's page on another origin, embedding the widget the way the README says to."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Acme</title></head>"
        "<body><h1>Acme Shop</h1>"
        f"<script src='{stack.api_url}/widget.js' data-site='{SITE}' data-api='{stack.api_url}'"
        " data-name='Grace Hopper'></script></body></html>"
    ).encode()

    yield from serve_page(page, "acme-site")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshot() -> Any:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save


def serve_page(page: bytes, name: str, headers: dict[str, str] | None = None) -> Iterator[str]:
    """Serve one HTML page on a loopback port (another origin than the API) until the generator is closed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            for header, value in (headers or {}).items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
