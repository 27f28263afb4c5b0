"""The console page and the widget script, read from this package once per container."""

from __future__ import annotations

import functools
from pathlib import Path

_HERE = Path(__file__).parent


@functools.cache
def _read(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def console_html() -> str:
    """The agent and supervisor console: one self-contained HTML page."""
    return _read("console.html")


def widget_js() -> str:
    """The script a business pastes into its site to give visitors a chat bubble."""
    return _read("widget.js")
