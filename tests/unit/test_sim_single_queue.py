"""The simulator against queueing theory: one pooled queue is M/M/n (Erlang C), with patience M/M/n+M (Erlang A).

The test computes the bound itself from the scenario's parameters, so it checks the simulator (arrivals,
handle times, the router's offers, accepts and closes on the virtual clock), not the report's own bound.
"""

from __future__ import annotations

from chalicelib.sim import erlang, report
from chalicelib.sim.scenario import load_scenario, parse_scenario, scenario_path
from chalicelib.sim.simulator import simulate

AGENTS, HANDLE = 30, 180.0


def _sample_load(result: object) -> tuple[float, float]:
    """The arrival rate and mean handle time the run actually drew (Erlang C "at the sample's load")."""
    records = result.records  # type: ignore[attr-defined]
    return len(records) / result.span, sum(r.arrival.handle for r in records) / len(records)  # type: ignore[attr-defined]


def test_a_single_pooled_queue_agrees_with_erlang_c_within_one_point() -> None:
    # 50,000 contacts: the batch-means standard error of SL at 60 s is about one point at this size (waits are
    # strongly correlated through busy periods); the comparison is at the sample's own load, which takes out
    # the part of that error due to how many contacts and how much work the seed happened to draw.
    scenario, folder = load_scenario(scenario_path("single-queue"))
    scenario = scenario.model_copy(update={"contacts": 50_000})
    result = simulate(scenario, folder)

    rate, handle = _sample_load(result)
    assert abs(rate * handle / AGENTS - 0.85) < 0.01  # the scenario's load
    (row,) = report.report(result)["queues"]
    assert row["target_seconds"] == 60  # the shipped webchat target
    expected = erlang.erlang_c_service_level(AGENTS, rate, handle, 60)
    assert abs(row["service_level"] - expected) < 0.01
    assert abs(row["bound"]["service_level"] - expected) < 0.001  # the report's bound is the same computation
    assert abs(row["mean_wait"] - erlang.erlang_c_mean_wait(AGENTS, rate, handle)) < 2.5
    assert row["offers_per_contact"] == 1.0 and row["abandonment_rate"] == 0.0
    assert abs(row["occupancy"] - rate * handle / AGENTS) < 0.01


ABANDONING = """
name: abandoning
start: 2026-04-07T00:00:00Z
contacts: 30000
always_open: true
load: 0.95
arrivals:
  - {channel: webchat, per_hour: 1, mix: [{share: 1, text: "Where is my order?"}]}
handle_time:
  webchat: {distribution: exponential, mean: 180s}
patience:
  webchat: {distribution: exponential, mean: 120s}
agents:
  - {name: agent, count: 30, capacity: 20}
"""


def test_abandonment_agrees_with_erlang_a() -> None:
    scenario = parse_scenario(ABANDONING)
    result = simulate(scenario, scenario_path("single-queue").parent, seed=3)

    rate, handle = _sample_load(result)
    expected = erlang.erlang_a(AGENTS, rate, handle, 120.0, 60.0)
    (row,) = report.report(result)["queues"]
    assert expected.abandonment > 0.03  # enough customers leave for the comparison to mean something
    assert abs(row["abandonment_rate"] - expected.abandonment) < 0.01
    assert abs(row["service_level"] - expected.service_level) < 0.015
    abandoned = [r for r in result.records if r.abandoned is not None]
    assert all(r.accepted is None for r in abandoned)
    assert all(result.agents[a].used == 0 for a in result.agents)  # every withdrawn offer gave its capacity back
