"""Same seed, same numbers: two separate processes with different hash seeds write byte-identical reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Everything random at once: Poisson arrivals with a profile, a mix, lognormal handle times, patience,
# accept delays, declines and missed offers, returning customers, shifts.
BUSY = """
name: busy
start: 2026-04-07T06:00:00Z
contacts: 1500
arrivals:
  - channel: webchat
    per_hour: 120
    profile: [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    mix:
      - {share: 60, text: "Where is my order?"}
      - {share: 25, text: "refund please"}
      - {share: 15, text: "Hola", language: es}
  - channel: voice
    per_hour: 30
handle_time:
  webchat: {distribution: lognormal, mean: 200s, cv: 0.8}
  voice: {distribution: exponential, mean: 240s}
patience:
  webchat: {distribution: exponential, mean: 100s}
  voice: {distribution: exponential, mean: 60s}
agents:
  - {name: all, count: 6, skills: {billing: 3, spanish: 2}, queues: [default, billing, support]}
  - {name: day, count: 4, queues: [default], shifts: [{start: "08:00", end: "16:00"}]}
answering:
  accept_delay: {distribution: lognormal, mean: 5s, cv: 0.6}
  decline_probability: 0.05
  no_answer_probability: 0.05
returning_customers: 0.4
"""


def _run(folder: Path, scenario: Path, hash_seed: str, seed: str) -> dict[str, object]:
    out = folder / f"out-{hash_seed}-{seed}"
    subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "simulate", str(scenario), "--seed", seed, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    text = (out / "report.json").read_text()
    return {"text": text, "document": json.loads(text)}


def test_the_same_seed_gives_identical_json_in_separate_processes(tmp_path: Path) -> None:
    scenario = tmp_path / "busy.yaml"
    scenario.write_text(BUSY)

    first = _run(tmp_path, scenario, "1", "42")
    second = _run(tmp_path, scenario, "987", "42")
    other = _run(tmp_path, scenario, "1", "43")

    assert first["text"] == second["text"]
    document = first["document"]
    assert isinstance(document, dict)
    total = document["total"]
    # The run exercised what it claims to: abandonment, declines/misses (more than one offer), returning customers.
    assert total["abandoned"] > 0 and total["offers_per_contact"] > 1 and total["returning"] > 0
    assert other["text"] != first["text"]  # the seed matters
