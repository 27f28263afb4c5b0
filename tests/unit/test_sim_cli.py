"""``switchboard simulate``: a scenario file in, Markdown on stdout, and report.json, report.md and PNG plots out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.cli import main

SMALL = """
name: small-lab
description: Two agents and a trickle of chats, refunds among them.
start: 2026-04-07T09:00:00Z
contacts: 300
always_open: true
arrivals:
  - channel: webchat
    per_hour: 30
    mix:
      - {share: 2, text: "Where is my order?", label: plain}
      - {share: 1, text: "I want a refund", label: refund}
handle_time:
  webchat: {distribution: exponential, mean: 2m}
agents:
  - {name: agent, count: 2, skills: {billing: 3}, queues: [default, billing], capacity: 20}
report_thresholds: [20s]
"""


def test_simulate_writes_markdown_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    out = tmp_path / "out"

    status = main(["simulate", str(scenario), "--seed", "5", "--out", str(out), "--policy", "longest-idle"])

    assert status == 0
    document = json.loads((out / "report.json").read_text())
    assert (document["scenario"], document["policy"], document["seed"], document["contacts"]) == (
        "small-lab",
        "longest-idle",
        5,
        300,
    )
    queues = {row["queue"]: row for row in document["queues"]}
    assert set(queues) == {"default", "billing"}  # the shipped rules sent the refunds to billing
    assert queues["billing"]["rule"] == "billing questions"
    assert sum(row["contacts"] for row in document["queues"]) == 300
    for row in document["queues"]:
        assert 0 <= row["service_level"] <= 1 and row["bound"]["model"] == "erlang-c"
        assert row["p50_wait"] <= row["p90_wait"] <= row["p99_wait"]
    markdown = (out / "report.md").read_text()
    assert "| billing | webchat |" in markdown and "| default | webchat |" in markdown
    assert "| billing | webchat |" in capsys.readouterr().out
    for plot in ("waits.png", "sl-by-hour.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_refuses_a_bad_scenario_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(SMALL.replace("count: 2", "count: -1"))

    status = main(["simulate", str(scenario), "--out", str(tmp_path / "out")])

    assert status == 1
    assert "agents.0.count" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_simulate_takes_a_standard_scenario_by_name_and_rejects_an_unknown_policy() -> None:
    assert main(["simulate", "single-queue", "--policy", "fastest"]) == 2


def test_simulate_uses_the_rules_given(tmp_path: Path) -> None:
    from chalicelib.routing.config import DEFAULT_FILE

    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    rules = tmp_path / "routing.yaml"
    rules.write_text(Path(DEFAULT_FILE).read_text().replace('"refund|invoice|billing"', '"no such words"'))

    assert main(["simulate", str(scenario), "--rules", str(rules), "--out", str(tmp_path / "out")]) == 0

    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {row["queue"] for row in document["queues"]} == {"default"}  # no rule sends refunds to billing now
