"""The console page and the widget script, read from this package once per container, and the headers they go with.

The console holds an agent's sign-in token, so its page is locked down: a Content-Security-Policy that runs
only its own inline script (by hash, computed here from the page as served) and scripts of this origin (the
softphone's SDK, loaded with its integrity), connects only to this API, the deployment's WebSocket URL, Cognito
and the Twilio endpoints the Voice SDK signals and fetches its sounds on, and may not be framed (clickjacking).
The widget script runs inside businesses' pages, whose own CSP governs it; its response only says what it is.

The softphone's SDK is Twilio's Voice JavaScript SDK from npm (``vendor/package.json``, pinned, with its lock;
``npm ci`` there installs it): of ``vendor/node_modules`` only its browser file ships
(infra/switchboard_infra/package.py), served at ``console/voice-sdk/twilio-voice-<version>.min.js``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.auth import sign_in_options
from chalicelib.errors import NotFound, SwitchboardError
from chalicelib.settings import get_settings

_HERE = Path(__file__).parent
# The page's own inline blocks (no attributes): each is allowed by its hash, so nothing injected can run.
_WIDGET_WS = '"__SWITCHBOARD_WEBSOCKET_URL__"'  # where the served script names the deployment's WebSocket URL
_INLINE = {"script": re.compile(r"<script>(.*?)</script>", re.S), "style": re.compile(r"<style>(.*?)</style>", re.S)}
VENDOR = _HERE / "vendor"
VOICE_SDK = VENDOR / "node_modules" / "@twilio" / "voice-sdk" / "dist" / "twilio.min.js"
_VOICE_SDK_TAG = "<!--VOICE_SDK-->"  # where the console's page loads the SDK
# What the Voice SDK talks to (its README, "Content Security Policy"): signalling, events, sounds and media.
TWILIO_VOICE_CONNECT = (
    "wss://voice-js.roaming.twilio.com",
    "https://eventgw.twilio.com",
    "https://sdk.twilio.com",
    "https://media.twiliocdn.com",
)
TWILIO_VOICE_MEDIA = ("mediastream:", "https://sdk.twilio.com", "https://media.twiliocdn.com")


class VoiceSdkMissing(SwitchboardError):
    """The SDK's npm package is not installed here (``npm ci`` in chalicelib/console/vendor)."""

    status = 503
    code = "not_configured"


@functools.cache
def _read(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


@functools.cache
def voice_sdk_version() -> str:
    """The SDK version ``vendor/package.json`` pins."""
    package = json.loads((VENDOR / "package.json").read_text(encoding="utf-8"))
    return str(package["dependencies"]["@twilio/voice-sdk"])


def voice_sdk_name() -> str:
    """The served file's name: versioned, so that it can be cached for good."""
    return f"twilio-voice-{voice_sdk_version()}.min.js"


@functools.cache
def voice_sdk_js() -> str:
    """The SDK's browser file (it sets ``window.Twilio.Device``), as npm installed it."""
    try:
        return VOICE_SDK.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VoiceSdkMissing("the Voice SDK is not installed: run npm ci in chalicelib/console/vendor") from None


def voice_sdk(name: str) -> str:
    """The SDK file asked for by name: only the pinned version's."""
    if name != voice_sdk_name():
        raise NotFound(f"no such file; the console's Voice SDK is {voice_sdk_name()}")
    return voice_sdk_js()


@functools.cache
def console_html() -> str:
    """The agent and supervisor console: one self-contained HTML page, loading the softphone's SDK if installed."""
    page = _read("console.html")
    try:
        digest = base64.b64encode(hashlib.sha384(voice_sdk_js().encode("utf-8")).digest()).decode()
    except VoiceSdkMissing:
        return page.replace(_VOICE_SDK_TAG, "", 1)  # the console works; its softphone says it is unavailable
    tag = f'<script src="console/voice-sdk/{voice_sdk_name()}" integrity="sha384-{digest}" defer></script>'
    return page.replace(_VOICE_SDK_TAG, tag, 1)


def widget_js() -> str:
    """The script a business pastes into its site to give visitors a chat bubble, naming the WebSocket URL its
    replies are pushed on (``WEBSOCKET_URL``; a ``data-ws`` on the script tag names another)."""
    return _read("widget.js").replace(_WIDGET_WS, json.dumps(get_settings().websocket_url or ""), 1)


def websocket_options() -> dict[str, Any]:
    """Where the console's WebSocket goes: the deployment's URL, and every URL a ``?ws=`` may name instead."""
    settings = get_settings()
    allowed = [u for u in (settings.websocket_url, *settings.websocket_allowed_urls) if u]
    return {"url": settings.websocket_url, "allowed": list(dict.fromkeys(allowed))}


@functools.cache
def _hashes(kind: str) -> str:
    blocks = _INLINE[kind].findall(re.sub(r"<!--.*?-->", "", console_html(), flags=re.S))  # not in comments
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def console_csp() -> str:
    """The console's Content-Security-Policy, from this deployment's WebSocket URLs and Cognito endpoint."""
    connect = ["'self'", *(_origin(u) for u in websocket_options()["allowed"])]
    cognito = sign_in_options()["cognito"]
    if cognito:
        connect.append(_origin(cognito["endpoint"]))
    connect.extend(TWILIO_VOICE_CONNECT)
    return "; ".join(
        (
            "default-src 'none'",
            # 'self': the softphone's SDK, served here (never from a CDN) and loaded with its integrity.
            f"script-src {_hashes('script')} 'self'",
            f"style-src {_hashes('style')}",
            f"connect-src {' '.join(dict.fromkeys(connect))}",
            # blob:: a voicemail's recording, fetched with the sign-in token and played from memory.
            f"media-src blob: {' '.join(TWILIO_VOICE_MEDIA)}",
            # Forms are handled by the script; without it, a sign-in form must not post the token anywhere.
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def console_headers() -> dict[str, str | list[str]]:
    """What the console page is served with."""
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": console_csp(),
        "X-Frame-Options": "DENY",  # browsers without frame-ancestors
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def voice_sdk_headers() -> dict[str, str | list[str]]:
    """The SDK file: JavaScript, cached for a year (its name changes with its version)."""
    return {
        "Content-Type": "text/javascript; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable",
    }


def widget_headers() -> dict[str, str | list[str]]:
    """What the widget script is served with: it is meant to be loaded by other sites' pages."""
    return {
        "Content-Type": "application/javascript; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
        # Host pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": "public, max-age=300",
    }
