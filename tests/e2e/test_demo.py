"""`make demo` is what a new user sees first: a mixed morning across channels, skills and languages.

It must exit 0, print a clean summary with SLA attainment per queue and per channel (and nothing else: no
JSON log lines, no tracebacks), and name the log file the rest went to.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ("webchat", "sms", "whatsapp", "telegram", "email", "voice")
QUEUES = ("default", "billing", "support")  # support: Spanish speakers; billing: refunds and invoices


def _table_rows(stdout: str, title: str) -> dict[str, list[str]]:
    """The rows of the rich table under ``title``: first cell -> the other cells."""
    section = stdout[stdout.index(title) :]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("└"):
            break
        cells = [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] and not line.startswith(("┏", "┡", "┃")):
            rows[cells[0]] = cells[1:]
    return rows


def test_demo_plays_every_channel_and_prints_sla_per_queue_and_channel() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "HOME": str(ROOT)},
    )
    out = finished.stdout
    assert finished.returncode == 0, out[-3000:] + finished.stderr[-3000:]

    assert "offered 12/12, accepted 12/12, closed 12/12" in out, out
    contacts = _table_rows(out, "Switchboard demo: every contact")
    assert len(contacts) == 12, contacts
    assert {cells[0] for cells in contacts.values()} == set(CHANNELS)
    assert {"en", "es"} == {cells[1] for cells in contacts.values()}
    assert all(cells[-1] in ("sent", "-") for cells in contacts.values()), contacts  # every reply reached a provider
    per_queue = _table_rows(out, "SLA per queue")
    per_channel = _table_rows(out, "SLA per channel")
    assert set(QUEUES) <= set(per_queue), per_queue
    assert set(per_channel) == set(CHANNELS), per_channel
    for cells in (*per_queue.values(), *per_channel.values()):
        assert re.fullmatch(r"\d+ % \(\d+/\d+\)", cells[2]), cells  # the SLA attainment column

    assert not [line for line in out.splitlines() if line.lstrip().startswith("{")], "JSON log lines on stdout"

    # switchboard replay of the run's own stored contacts: the simulator reproduces the recorded waits with the
    # same rules (within a second or half the wait), and shows what a stricter rule would have done.
    replayed = _table_rows(out, "Replay of this run")
    assert set(QUEUES) <= set(replayed), replayed
    seconds = {q: [float(c.removesuffix(" s")) for c in cells[1:]] for q, cells in replayed.items()}
    for queue, (recorded, same_rules, _) in seconds.items():
        assert abs(same_rules - recorded) <= max(1.0, recorded / 2), (queue, seconds)
    assert seconds["billing"][2] > seconds["billing"][1] + 60, "refunds needing billing 5 wait for escalation"
    assert seconds["default"][2] == pytest.approx(seconds["default"][1], abs=1.0), "other queues are unchanged"
    assert "Traceback" not in out and "Traceback" not in finished.stderr
    log = re.search(r"^logs: (\S+)$", out, flags=re.MULTILINE)
    assert log, out[-500:]
    log_file = ROOT / log.group(1)
    assert log_file.is_file() and '"level":"INFO"' in log_file.read_text()
