"""The issue's routing targets, checked on bench rows: each target can hold, be missed, or be unmeasured."""

from __future__ import annotations

from typing import Any

from chalicelib.sim import targets


def row(scenario: str, policy: str, queue: str = "all", **values: Any) -> dict[str, Any]:
    return {"scenario": scenario, "policy": policy, "queue": queue, **values}


GOOD = [
    row("single-queue", "switchboard", sl=0.905, erlang_sl=0.91),
    row("multi-skill-085", "switchboard", sl_20s=0.81, erlang_sl_20s=0.825),
    row("multi-skill-085", "longest-idle", sl_20s=0.775),
    row("multi-skill-095", "switchboard", sl_20s=0.44, erlang_sl_20s=0.45),
    row("multi-skill-095", "longest-idle", sl_20s=0.39),
    row("voice-priority-085", "switchboard", erlang_sl=0.83),
    row("voice-priority-085", "switchboard", "billing/voice", sl=0.70),
    row("voice-priority-085", "switchboard", "default/voice", sl=0.90),
]


def verdicts(rows: list[dict[str, Any]]) -> list[bool | None]:
    return [t["holds"] for t in targets.check(rows)]


def test_every_target_holds_on_rows_that_meet_them() -> None:
    assert verdicts(GOOD) == [True] * 6


def test_a_starving_class_or_a_routing_no_better_than_longest_idle_is_missed() -> None:
    starving = [r if r["queue"] != "billing/voice" else {**r, "sl": 0.6} for r in GOOD]
    assert verdicts(starving)[-1] is False, "0.60 < 0.8 x 0.83"
    no_better = [r if r["policy"] != "longest-idle" else {**r, "sl_20s": 0.80} for r in GOOD]
    assert verdicts(no_better)[2] is False, "0.81 is only 1 point ahead of 0.80"
    far = [r if r["scenario"] != "single-queue" else {**r, "sl": 0.89} for r in GOOD]
    assert verdicts(far)[0] is False


def test_a_scenario_not_run_is_not_measured_rather_than_passed() -> None:
    assert verdicts([r for r in GOOD if r["scenario"] != "multi-skill-095"])[3:5] == [None, None]
