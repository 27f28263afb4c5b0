"""A run summarised per queue and channel beside its Erlang bound, as JSON, Markdown and PNG plots.

Service level (SL) of a contact: accepted by its ``sla_deadline`` (the rule's target); one abandoned or never
answered missed it. Waits run from arrival to accept, over the answered. Occupancy is busy capacity over
staffed capacity of the agents who serve the queue. The bound is pooled: every agent who can hold a contact of
the channel serves one queue (Erlang C, or Erlang A with the channel's mean patience), at the sample's own
arrivals and mean handle time (hour by hour, weighted by arrivals, when arrivals or shifts vary). With several
channels each gets the share of the on-shift capacity its work needs: an estimate then, not a bound.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.sim import erlang
from chalicelib.sim.simulator import Record, Result

HOUR = 3600.0


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _r(value: float, digits: int = 4) -> float:
    return round(value, digits) if math.isfinite(value) else value


def _met(record: Record) -> bool:
    return record.accepted_iso is not None and record.accepted_iso <= record.sla_deadline


def summarise(records: Sequence[Record], result: Result, thresholds: Iterable[float] = ()) -> dict[str, Any]:
    """SL, waits, abandonment, offers and preferred-agent hits of ``records``."""
    count = len(records)
    answered = [r for r in records if r.accepted is not None]
    waits = sorted(r.accepted - r.arrival.at for r in answered if r.accepted is not None)
    returning = [r for r in records if r.preferred_agent]
    targets = sorted({round(r.target) for r in records})
    row: dict[str, Any] = {
        "contacts": count,
        "target_seconds": targets[0] if len(targets) == 1 else targets,
        "service_level": _r(sum(_met(r) for r in records) / count) if count else 0.0,
        "answered": len(answered),
        "abandoned": sum(r.abandoned is not None for r in records),
        "unanswered": count - len(answered) - sum(r.abandoned is not None for r in records),
        "abandonment_rate": _r(sum(r.abandoned is not None for r in records) / count) if count else 0.0,
        "mean_wait": _r(sum(waits) / len(waits), 2) if waits else 0.0,
        "p50_wait": _r(_percentile(waits, 0.5), 2),
        "p90_wait": _r(_percentile(waits, 0.9), 2),
        "p99_wait": _r(_percentile(waits, 0.99), 2),
        "offers_per_contact": _r(sum(r.offers for r in records) / count) if count else 0.0,
        "returning": len(returning),
        "preferred_agent_hit_rate": (
            _r(sum(r.agent == r.preferred_agent for r in returning) / len(returning)) if returning else None
        ),
    }
    for threshold in thresholds:
        row[f"service_level_{round(threshold)}s"] = _r(
            sum(r.accepted is not None and r.accepted - r.arrival.at <= threshold for r in records) / count
            if count
            else 0.0
        )
    return row


def occupancy(result: Result, agent_ids: Iterable[str]) -> float:
    """Busy capacity over staffed capacity of these agents (0 when none were staffed)."""
    ids = list(agent_ids)
    staffed = sum(result.staffed[a] for a in ids)
    return _r(sum(result.busy[a] for a in ids) / staffed) if staffed else 0.0


def _servers(result: Result, channel: str, at: float, work: dict[str, float]) -> int:
    """Contacts of ``channel`` the agents on shift at ``at`` can hold at once, given the capacity its share of
    the work needs (``work``: Erlangs per channel then; one channel gets all of every agent's capacity)."""
    config = result.config
    costs = {c: config.cost(c) for c in work}
    units = sum(w * costs[c] for c, w in work.items())
    share = (work.get(channel, 0.0) * costs.get(channel, 1) / units) if units else 1.0
    total = 0.0
    for agent_id, agent in result.agents.items():
        if not any(a <= at < b for a, b in result.shifts[agent_id]):
            continue
        cost = agent.channel_costs.get(channel, config.cost(channel))
        held = agent.capacity * share / max(1, cost) if share < 1 else agent.capacity // max(1, cost)
        cap = agent.max_per_channel.get(channel)
        total += min(held, cap) if cap is not None else held
    return int(total)


def _work_by_period(result: Result, length: float) -> dict[int, dict[str, float]]:
    """Erlangs arriving per channel in each period of ``length`` seconds (by index from the start)."""
    found: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in result.records:
        found[int(record.arrival.at // length)][record.arrival.channel] += record.arrival.handle / length
    return {index: dict(work) for index, work in found.items()}


def bound(result: Result, channel: str, target: float, thresholds: Iterable[float] = ()) -> dict[str, Any]:
    """The pooled Erlang C (or A) service level at ``target`` for the channel's arrivals, hour by hour."""
    mine = [r for r in result.records if r.arrival.channel == channel]
    if not mine:
        return {}
    patience = result.scenario.patience.get(channel)
    mean_patience = patience.mean if patience is not None and patience.mean else None
    by_hour: dict[int, list[Record]] = defaultdict(list)
    for r in mine:
        by_hour[int(r.arrival.at // HOUR)].append(r)
    # One period if nothing changes during the run (a steady state): the whole sample's load.
    steady = (
        not result.scenario.arrivals_csv
        and all(not s.profile for s in result.scenario.arrivals)
        and all(not g.shifts for g in result.scenario.agents)
    )
    periods: list[tuple[list[Record], float, float]] = (
        [(mine, max(result.span, 1.0), 0.0)]
        if steady
        else [(rs, HOUR, hour * HOUR) for hour, rs in sorted(by_hour.items())]
    )
    points = [target, *thresholds]
    length = max(result.span, 1.0) if steady else HOUR
    work = _work_by_period(result, length)
    totals = [0.0] * len(points)
    abandonment = 0.0
    wait = 0.0
    for records, _, begins in periods:
        rate = len(records) / length
        handle = sum(r.arrival.handle for r in records) / len(records)
        servers = _servers(result, channel, begins + length / 2, work.get(int(begins // length), {}))
        for index, point in enumerate(points):
            if mean_patience:
                found = erlang.erlang_a(servers, rate, handle, mean_patience, point)
                totals[index] += found.service_level * len(records)
                if index == 0:
                    abandonment += found.abandonment * len(records)
                    wait += found.mean_wait * len(records)
            else:
                totals[index] += erlang.erlang_c_service_level(servers, rate, handle, point) * len(records)
                if index == 0:
                    mean = erlang.erlang_c_mean_wait(servers, rate, handle)
                    wait += (mean if math.isfinite(mean) else 0.0) * len(records)
    found_row: dict[str, Any] = {
        "model": "erlang-a" if mean_patience else "erlang-c",
        "service_level": _r(totals[0] / len(mine)),
        "mean_wait": _r(wait / len(mine), 2),
    }
    if mean_patience:
        found_row["abandonment_rate"] = _r(abandonment / len(mine))
    for point, total in zip(points[1:], totals[1:], strict=True):
        found_row[f"service_level_{round(point)}s"] = _r(total / len(mine))
    if steady:
        records = mine
        found_row["servers"] = _servers(result, channel, 0.0, work.get(0, {}))
        found_row["load_erlangs"] = _r(
            len(records) / max(result.span, 1.0) * sum(r.arrival.handle for r in records) / len(records), 3
        )
    return found_row


def report(result: Result) -> dict[str, Any]:
    """The run as one JSON-ready document: per queue and channel, per channel, in total, and per agent group."""
    thresholds = result.scenario.report_thresholds
    rows = []
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in result.records:
        groups[(record.queue, record.arrival.channel)].append(record)
    for (queue, channel), records in sorted(groups.items()):
        target = records[0].target
        serving = [a for a, agent in result.agents.items() if queue in agent.queues]
        rows.append(
            {
                "queue": queue,
                "channel": channel,
                "rule": records[0].rule,
                **summarise(records, result, thresholds),
                "occupancy": occupancy(result, serving),
                "bound": bound(result, channel, target, thresholds),
            }
        )
    channels = []
    by_channel: dict[str, list[Record]] = defaultdict(list)
    for record in result.records:
        by_channel[record.arrival.channel].append(record)
    for channel, records in sorted(by_channel.items()):
        target = records[0].target
        channels.append(
            {
                "channel": channel,
                **summarise(records, result, thresholds),
                "bound": bound(result, channel, target, thresholds),
            }
        )
    agent_groups = defaultdict(list)
    for agent_id, group in result.group_of.items():
        agent_groups[group].append(agent_id)
    return {
        "scenario": result.scenario.name,
        "description": result.scenario.description,
        "policy": result.policy,
        "seed": result.seed,
        "contacts": len(result.records),
        "simulated_hours": _r(result.end / HOUR, 2),
        "sweeps": result.sweeps,
        "queues": rows,
        "channels": channels,
        "total": {**summarise(result.records, result, thresholds), "occupancy": occupancy(result, result.agents)},
        "agent_groups": {
            g: {"agents": len(ids), "occupancy": occupancy(result, ids)} for g, ids in sorted(agent_groups.items())
        },
        "sl_by_hour": sl_by_hour(result),
    }


def sl_by_hour(result: Result) -> dict[str, list[float | None]]:
    """SL per queue by hour of the day (UTC) of arrival, over every day of the run."""
    met: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    seen: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    start_hour = result.scenario.start.hour
    for record in result.records:
        hour = (start_hour + int(record.arrival.at // HOUR)) % 24
        seen[record.queue][hour] += 1
        met[record.queue][hour] += _met(record)
    return {
        queue: [_r(met[queue][h] / n) if n else None for h, n in enumerate(counts)]
        for queue, counts in sorted(seen.items())
    }


def markdown(document: dict[str, Any]) -> str:
    """The report as a Markdown page: per queue and channel, beside the pooled Erlang bound."""
    lines = [
        f"# Simulation: {document['scenario']} ({document['policy']}, seed {document['seed']})",
        "",
        document["description"].strip(),
        "",
        f"{document['contacts']} contacts over {document['simulated_hours']} simulated hours; "
        f"occupancy {document['total']['occupancy']:.1%}; SL {document['total']['service_level']:.1%}.",
        "",
        "| queue | channel | contacts | target | SL | bound SL | mean wait | p50 | p90 | p99 | abandoned "
        "| occupancy | offers/contact | preferred hit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in document["queues"]:
        hit = row["preferred_agent_hit_rate"]
        lines.append(
            f"| {row['queue']} | {row['channel']} | {row['contacts']} | {row['target_seconds']} s "
            f"| {row['service_level']:.1%} | {_pct(row['bound'].get('service_level'))} "
            f"({row['bound'].get('model', '')}) "
            f"| {row['mean_wait']:.1f} s | {row['p50_wait']:.1f} | {row['p90_wait']:.1f} | {row['p99_wait']:.1f} "
            f"| {row['abandonment_rate']:.1%} | {row['occupancy']:.1%} | {row['offers_per_contact']:.2f} "
            f"| {'-' if hit is None else f'{hit:.1%}'} |"
        )
    extra = [k for k in document["total"] if k.startswith("service_level_")]
    if extra:
        lines += [
            "",
            "| channel | " + " | ".join(f"SL {k.removeprefix('service_level_')}" for k in extra) + " | bound |",
            "|---|" + "---:|" * (len(extra) + 1),
        ]
        for row in document["channels"]:
            values = " | ".join(f"{row[k]:.1%}" for k in extra)
            bounds = ", ".join(_pct(row["bound"].get(k)) for k in extra)
            lines.append(f"| {row['channel']} | {values} | {bounds} |")
    lines += [
        "",
        "SL: accepted by the rule's target (abandoned and unanswered count as missed). Bound: pooled Erlang C, "
        "or Erlang A with the channel's patience, at the sample's own load (hour by hour when arrivals or staff "
        "vary). With several channels each gets the share of the capacity its work needs: an estimate, not a "
        "bound.",
        "",
    ]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def plots(result: Result, folder: Path) -> list[Path]:
    """PNG plots: the wait distribution per queue, and SL across the day per queue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_queue: dict[str, list[float]] = defaultdict(list)
    for record in result.records:
        if record.accepted is not None:
            by_queue[record.queue].append(record.accepted - record.arrival.at)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for queue, waits in sorted(by_queue.items()):
        waits.sort()
        shares = [(i + 1) / len(waits) for i in range(len(waits))]
        axes.step(waits, shares, where="post", label=f"{queue} ({len(waits)})")
    axes.set_xlabel("wait until accepted (s)")
    axes.set_ylabel("share of answered contacts")
    axes.set_xscale("symlog", linthresh=10)
    axes.set_title(f"Wait distribution per queue: {result.scenario.name} ({result.policy})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    path = folder / "waits.png"
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    written.append(path)

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for queue, values in sl_by_hour(result).items():
        points = [(h, v) for h, v in enumerate(values) if v is not None]
        axes.plot([h for h, _ in points], [v for _, v in points], marker="o", label=queue)
    axes.set_xlabel("hour of arrival (UTC)")
    axes.set_ylabel("service level")
    axes.set_ylim(0, 1.02)
    axes.set_xticks(range(0, 24, 2))
    axes.set_title(f"SL across the day: {result.scenario.name} ({result.policy})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    path = folder / "sl-by-hour.png"
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    written.append(path)
    return written


def write(result: Result, folder: Path) -> list[Path]:
    """``report.json``, ``report.md`` and the plots in ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    document = report(result)
    json_path, md_path = folder / "report.json", folder / "report.md"
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(markdown(document), encoding="utf-8")
    return [json_path, md_path, *plots(result, folder)]
