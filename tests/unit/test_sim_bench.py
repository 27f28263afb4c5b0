"""What `make bench` gets from the simulator: one row per standard scenario and policy."""

from __future__ import annotations

from chalicelib.sim import BENCH_POLICIES, BENCH_SCENARIOS, bench_run
from chalicelib.sim.scenario import standard_scenarios


def test_a_bench_run_gives_flat_rows_with_sl_waits_and_the_erlang_bound() -> None:
    whole, *queues = bench_run("multi-skill-085", "longest-idle", contacts=2_000)

    assert (whole["scenario"], whole["queue"], whole["policy"], whole["contacts"]) == (
        "multi-skill-085",
        "all",
        "longest-idle",
        2_000,
    )
    assert whole["load"] == 0.85 and whole["target_s"] == 60
    assert 0.5 < whole["erlang_sl"] <= 1 and 0 < whole["sl"] <= 1
    assert 0 < whole["erlang_sl_20s"] < whole["erlang_sl"]  # the P(wait <= 20 s) too
    assert whole["p90_wait_s"] <= whole["p99_wait_s"] and whole["cpu_s"] >= 0
    assert {row["queue"] for row in queues} == {"default/webchat", "billing/webchat", "support/webchat"}
    assert sum(row["contacts"] for row in queues) == 2_000
    # Flat: every value is a plain cell for the bench's Markdown table.
    assert all(not isinstance(value, dict | list) for row in (whole, *queues) for value in row.values())


def test_the_bench_covers_every_standard_scenario_but_the_quick_lab_check_under_every_policy() -> None:
    assert set(BENCH_SCENARIOS) == set(standard_scenarios()) - {"lab-check"}
    assert BENCH_POLICIES == ("switchboard", "longest-idle", "round-robin", "pooled")
