"""The console page and the widget script, read from this package once per container, and the headers they go with.

The console holds an agent's sign-in token, so its page is locked down: a Content-Security-Policy that runs
only its own inline script (by hash, computed here from the page as served), connects only to this API, the
deployment's WebSocket URL and Cognito, and may not be framed (clickjacking). The widget script runs inside
businesses' pages, whose own CSP governs it; its response only says what it is.
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
from chalicelib.settings import get_settings

_HERE = Path(__file__).parent
# The page's own inline blocks (no attributes): each is allowed by its hash, so nothing injected can run.
_WIDGET_WS = '"__SWITCHBOARD_WEBSOCKET_URL__"'  # where the served script names the deployment's WebSocket URL
_INLINE = {"script": re.compile(r"<script>(.*?)</script>", re.S), "style": re.compile(r"<style>(.*?)</style>", re.S)}


@functools.cache
def _read(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def console_html() -> str:
    """The agent and supervisor console: one self-contained HTML page."""
    return _read("console.html")


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
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_hashes('script')}",
            f"style-src {_hashes('style')}",
            f"connect-src {' '.join(dict.fromkeys(connect))}",
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


def widget_headers() -> dict[str, str | list[str]]:
    """What the widget script is served with: it is meant to be loaded by other sites' pages."""
    return {
        "Content-Type": "application/javascript; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
        # Host pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": "public, max-age=300",
    }
