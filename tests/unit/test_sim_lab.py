"""The routing lab's rules check: `lab:` in routing.yaml, `compare`, and `switchboard rules check --scenario`."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.routing.config import DEFAULT_FILE, ConfigError, default_config, parse_config
from chalicelib.sim.lab import compare

SHIPPED = Path(DEFAULT_FILE).read_text()
# Refunds need billing 5, which nobody in the lab scenario has: they wait for the 10-minute escalation.
STRICTER = SHIPPED.replace("      billing: 3\n    escalation:", "      billing: 5\n    escalation:")


def test_the_lab_setting_names_a_standard_scenario_and_a_loss_threshold() -> None:
    config = parse_config(SHIPPED + "\nlab:\n  scenario: lab-check\n  max_sl_loss_points: 1.5\n")
    assert config.lab is not None
    assert (config.lab.scenario, config.lab.max_sl_loss_points) == ("lab-check", 1.5)
    assert default_config().lab is None  # opt-in: the shipped rules do not simulate on every publish

    with pytest.raises(ConfigError, match=r"lab.scenario: unknown simulator scenario \(scenarios: .*lab-check"):
        parse_config(SHIPPED + "\nlab: {scenario: lab-chek}\n")
    with pytest.raises(ConfigError, match=r"lab\.max_sl_loss_points"):
        parse_config(SHIPPED + "\nlab: {scenario: lab-check, max_sl_loss_points: -1}\n")


def test_a_candidate_that_strands_refunds_is_warned_about_per_queue_and_in_total() -> None:
    verdict = compare(default_config(), parse_config(STRICTER), "lab-check")

    rows = {(row.queue, row.channel): row for row in verdict.rows}
    assert rows[("billing", "webchat")].loss_points > 50
    assert rows[("default", "webchat")].loss_points == 0  # plain chats are untouched
    assert verdict.total.current_contacts == verdict.total.candidate_contacts  # the same customers both times
    assert any("billing/webchat" in warning for warning in verdict.warnings)
    assert any("in total" in warning for warning in verdict.warnings)


def test_the_same_rules_lose_nothing() -> None:
    verdict = compare(default_config(), default_config(), "lab-check")
    assert verdict.warnings == ()
    assert all(row.loss_points == 0 for row in verdict.rows)


def test_the_threshold_comes_from_the_candidate_lab_setting() -> None:
    lenient = parse_config(STRICTER + "\nlab: {scenario: lab-check, max_sl_loss_points: 100}\n")
    assert compare(default_config(), lenient).warnings == ()


def test_rules_check_with_a_scenario_warns_but_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = tmp_path / "routing.yaml"
    candidate.write_text(STRICTER)

    assert main(["rules", "check", str(candidate), "--scenario", "lab-check"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "lab scenario lab-check" in out
    assert "warning: the candidate loses" in out and "billing/webchat" in out

    assert main(["rules", "check", str(candidate)]) == 0  # without --scenario: no simulation
    assert "lab scenario" not in capsys.readouterr().out
    assert main(["rules", "check", str(candidate), "--scenario", "no-such-scenario"]) == 2
