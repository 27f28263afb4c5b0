"""The routing lab's simulator: the real router on a virtual clock, against Erlang bounds and baselines.

``switchboard simulate SCENARIO.yaml`` runs a scenario (``scenario.py``; standard ones in ``scenarios/``)
through ``simulator.py`` (the router of ``routing.memory.world`` with simulated customers and agents),
summarises it per queue and channel beside the Erlang C / Erlang A bound for the same load (``erlang.py``)
and writes Markdown, JSON and plots (``report.py``). ``baselines.py`` holds the longest-idle and round-robin
policies the router is measured against; ``bench_rows`` gives ``make bench`` its table.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

BENCH_SCENARIOS = ("single-queue", "multi-skill-085", "multi-skill-095", "voice-priority-085", "mixed-day")
BENCH_POLICIES = ("classic", "longest-idle", "round-robin")
QUICK_CONTACTS = 10_000


def bench_row(name: str, policy: str, contacts: int | None = None) -> dict[str, Any]:
    """One standard scenario under one policy: SL, waits and the Erlang bound, and the CPU time it took."""
    from chalicelib.sim import report
    from chalicelib.sim.scenario import load_scenario, scenario_path
    from chalicelib.sim.simulator import simulate

    scenario, folder = load_scenario(scenario_path(name))
    if contacts is not None and scenario.contacts is not None:
        scenario = scenario.model_copy(update={"contacts": contacts})
    started = time.process_time()
    result = simulate(scenario, folder, policy=policy)
    seconds = time.process_time() - started
    document = report.report(result)
    total = document["total"]
    (channel, *others) = document["channels"]
    bound = channel["bound"] if not others else {}
    row: dict[str, Any] = {
        "scenario": name,
        "policy": policy,
        "contacts": document["contacts"],
        "cpu_seconds": round(seconds, 1),
        "service_level": total["service_level"],
        "bound_service_level": bound.get("service_level"),
        "bound_model": bound.get("model"),
        "mean_wait": total["mean_wait"],
        "p90_wait": total["p90_wait"],
        "p99_wait": total["p99_wait"],
        "abandonment_rate": total["abandonment_rate"],
        "occupancy": total["occupancy"],
        "queues": {
            f"{q['queue']}/{q['channel']}": {
                "service_level": q["service_level"],
                "mean_wait": q["mean_wait"],
                "target_seconds": q["target_seconds"],
            }
            for q in document["queues"]
        },
    }
    for key in total:
        if key.startswith("service_level_"):
            row[key] = total[key]
            row[f"bound_{key}"] = bound.get(key)
    return row


def bench_rows(quick: bool, workers: int = 2) -> list[dict[str, Any]]:
    """The standard scenarios under every policy (``quick``: 10,000 contacts each instead of the scenario's),
    in ``workers`` processes; rows in scenario, then policy order."""
    contacts = QUICK_CONTACTS if quick else None
    jobs = [(name, policy, contacts) for name in BENCH_SCENARIOS for policy in BENCH_POLICIES]
    if workers <= 1:
        return [bench_row(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(bench_row, *zip(*jobs, strict=True)))
