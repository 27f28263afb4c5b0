"""`make demo` runs the product's main job: it must print its summary and exit 0 within 3 minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_demo_serves_every_visitor_and_exits_zero() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "HOME": str(ROOT)},
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "Switchboard demo: 20 web-chat conversations" in finished.stdout
    assert "offered 20/20" in finished.stdout and "closed 20/20" in finished.stdout
    assert finished.stdout.count("visitor-") >= 20
