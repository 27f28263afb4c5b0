"""The routing lab's simulator: the real router on a virtual clock, against Erlang bounds and baselines.

``switchboard simulate SCENARIO.yaml`` runs a scenario (``scenario.py``; standard ones in ``scenarios/``)
through ``simulator.py`` (the router of ``routing.memory.world`` with simulated customers and agents),
summarises it per queue and channel beside the Erlang C / Erlang A bound for the same load (``erlang.py``)
and writes Markdown, JSON and plots (``report.py``). ``baselines.py`` holds the longest-idle and round-robin
policies the router is measured against; ``bench_rows`` gives ``make bench`` its table; ``lab.py`` is the
rules check (a candidate config simulated beside the current one).

Speed: the real router costs about 0.5 ms of CPU per contact, so 100,000 contacts take about a minute of
one core (56 s for multi-skill-085, 60 s for multi-skill-095, measured with cProfile-guided tuning on a
busy 2-core machine). The sweeper runs every 60 s as deployed; that is about 8 % of the time, and running it
hourly instead changed no result, so the production period stays the default.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

BENCH_SCENARIOS = ("single-queue", "multi-skill-085", "multi-skill-095", "voice-priority-085", "mixed-day")
BENCH_POLICIES = ("switchboard", "longest-idle", "round-robin", "pooled")
# Where the pooled baseline (everyone cross-trained, same arrivals) is worth its minute: the skill mixes.
POOLED_SCENARIOS = ("multi-skill-085", "multi-skill-095")
QUICK_CONTACTS = 2_000  # the CI smoke of make bench runs every section in under a minute or so


def bench_run(name: str, policy: str, contacts: int | None = None) -> list[dict[str, Any]]:
    """One standard scenario under one policy, as flat rows for the bench's table: the whole scenario
    (``queue`` ``all``, with the pooled Erlang bound and the CPU time the run took), then each queue and channel."""
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
    channels = document["channels"]
    # One channel: the pooled bound is the scenario's; several: the capacity split makes it an estimate only.
    bound = channels[0]["bound"] if len(channels) == 1 else {}

    def row(queue: str, found: dict[str, Any], whole: bool) -> dict[str, Any]:
        targets = found["target_seconds"]
        return {
            "scenario": name,
            "queue": queue,
            "policy": policy,
            "load": scenario.load if scenario.load is not None else "",
            "contacts": found["contacts"],
            "target_s": targets if isinstance(targets, int | float) else "mixed",
            "sl": found["service_level"],
            "erlang_sl": bound.get("service_level", "") if whole else "",
            "sl_20s": found.get("service_level_20s", ""),
            "erlang_sl_20s": bound.get("service_level_20s", "") if whole else "",
            "mean_wait_s": found["mean_wait"],
            "p90_wait_s": found["p90_wait"],
            "p99_wait_s": found["p99_wait"],
            "abandoned": found["abandonment_rate"],
            "cpu_s": round(seconds, 1) if whole else "",
        }

    rows = [row("all", document["total"], True)]
    rows += [row(f"{q['queue']}/{q['channel']}", q, False) for q in document["queues"]]
    return rows


def bench_rows(quick: bool, workers: int = 2) -> list[dict[str, Any]]:
    """The standard scenarios under every policy (``quick``: 2,000 contacts each instead of the scenario's),
    run in ``workers`` processes; rows by scenario, then queue (``all`` first), then policy, so that the
    policies of one queue stand side by side."""
    contacts = QUICK_CONTACTS if quick else None
    jobs = [
        (name, policy, contacts)
        for name in BENCH_SCENARIOS
        for policy in BENCH_POLICIES
        if policy != "pooled" or name in POOLED_SCENARIOS
    ]
    if workers <= 1:
        runs = [bench_run(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(bench_run, *zip(*jobs, strict=True)))
    rows = [row for run in runs for row in run]
    order = {name: index for index, name in enumerate(BENCH_SCENARIOS)}
    policies = {name: index for index, name in enumerate(BENCH_POLICIES)}
    return sorted(rows, key=lambda r: (order[r["scenario"]], r["queue"] != "all", r["queue"], policies[r["policy"]]))
