"""What `make bench` gets from the simulator: one row per standard scenario and policy."""

from __future__ import annotations

from chalicelib.sim import BENCH_POLICIES, BENCH_SCENARIOS, bench_row
from chalicelib.sim.scenario import standard_scenarios


def test_a_bench_row_has_sl_waits_and_the_erlang_bound() -> None:
    row = bench_row("multi-skill-085", "longest-idle", contacts=2_000)

    assert (row["scenario"], row["policy"], row["contacts"]) == ("multi-skill-085", "longest-idle", 2_000)
    assert row["bound_model"] == "erlang-c"
    assert 0.5 < row["bound_service_level"] <= 1 and 0 < row["service_level"] <= 1
    assert 0 < row["bound_service_level_20s"] < row["bound_service_level"]  # the P(wait <= 20 s) too
    assert set(row["queues"]) == {"default/webchat", "billing/webchat", "support/webchat"}
    assert row["p90_wait"] <= row["p99_wait"] and row["cpu_seconds"] >= 0


def test_the_bench_covers_every_standard_scenario_but_the_quick_lab_check_under_every_policy() -> None:
    assert set(BENCH_SCENARIOS) == set(standard_scenarios()) - {"lab-check"}
    assert BENCH_POLICIES == ("classic", "longest-idle", "round-robin")
