"""``switchboard replay``: a period's stored contact records run again through the simulator, with the rules
in force and with a candidate, beside what really happened.

Each recorded contact arrives again when it arrived, on its channel, with what the rules saw of it (its opening
message's text, read from the conversation's timeline, its language, the customer's tier and tags), keeps its
recorded handle time, and gives up after its recorded wait if it was abandoned. The agents are the ones who
were offered work in the period, with their skills, queues and capacity as stored now, on shift all period;
they answer offers as they did (mean accept delay, share declined, share left to expire). What this cannot
know: agents' presence changes within the period, and handle times under another agent.

Per queue it shows SL (answered within the queue's target), mean and p90 wait and abandonment, recorded and
replayed, and who would have taken what (contacts that go to another agent under the candidate).
"""

from __future__ import annotations

import csv
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chalicelib import clock
from chalicelib.routing import records as contact_records
from chalicelib.routing.model import Agent
from chalicelib.sim.scenario import AgentGroup, Answering, Distribution, Scenario
from chalicelib.sim.simulator import Result, simulate

TextOf = Callable[[dict[str, Any]], str]  # a record's opening message text ("" when unknown)


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def queue_stats(rows: Iterable[tuple[str, float | None, float, bool]]) -> dict[str, dict[str, Any]]:
    """Per queue, from (queue, wait or None if never answered, target seconds, abandoned): SL, waits."""
    by_queue: dict[str, list[tuple[float | None, float, bool]]] = defaultdict(list)
    for queue, wait, target, abandoned in rows:
        by_queue[queue].append((wait, target, abandoned))
    found = {}
    for queue, rows_of in sorted(by_queue.items()):
        waits = [w for w, _, _ in rows_of if w is not None]
        found[queue] = {
            "contacts": len(rows_of),
            "service_level": round(sum(1 for w, t, _ in rows_of if w is not None and w <= t) / len(rows_of), 4),
            "mean_wait": round(statistics.fmean(waits), 2) if waits else None,
            "p90_wait": round(_percentile(waits, 0.9) or 0.0, 2) if waits else None,
            "abandoned": sum(1 for _, _, a in rows_of if a),
        }
    return found


def recorded_stats(summaries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What really happened, per queue (the queue the rules chose on arrival)."""
    rows = []
    for s in summaries:
        target = clock.seconds_between(s["arrived_at"], s["sla_deadline"]) if s.get("sla_deadline") else 0.0
        rows.append((s["queue"], s["wait_seconds"], target, s["abandoned"]))
    return queue_stats(rows)


def replayed_stats(result: Result, lag: float = 0.0) -> dict[str, dict[str, Any]]:
    """What the simulator made of the same contacts; ``lag``: the recorded time from arrival until the router
    saw a contact (webhook, queue, cold start), which the simulated arrivals start after."""
    rows = [
        (
            r.queue,
            (r.accepted - r.arrival.at + lag) if r.accepted is not None else None,
            r.target,
            r.abandoned is not None,
        )
        for r in result.records
    ]
    return queue_stats(rows)


def routed_at(summary: dict[str, Any]) -> str:
    """When the router queued the contact (its lifecycle's ``queued``), else when it arrived."""
    queued = [e["at"] for e in summary.get("lifecycle", []) if e.get("kind") == "queued" and e.get("at")]
    return min(queued) if queued else str(summary["arrived_at"])


def routing_lag(summaries: Sequence[dict[str, Any]]) -> float:
    """The mean time from a contact's arrival until the router queued it, over ``summaries``."""
    lags = [max(0.0, clock.seconds_between(s["arrived_at"], routed_at(s))) for s in summaries]
    return statistics.fmean(lags) if lags else 0.0


def scenario_of(
    summaries: Sequence[dict[str, Any]], agents: Iterable[Agent], start: str, end: str, text_of: TextOf
) -> tuple[Scenario, list[dict[str, Any]]]:
    """The scenario that replays ``summaries`` (contact records of [start, end)), and its arrivals CSV rows."""
    offers = [o for s in summaries for o in s["offers"]]
    working = {o["agent_id"] for o in offers}
    groups = [
        AgentGroup(
            name=agent.agent_id,
            count=1,
            skills={k: max(1, min(5, v)) for k, v in agent.skills.items()},
            queues=list(agent.queues),
            capacity=agent.capacity,
            channel_costs=dict(agent.channel_costs),
            max_per_channel=dict(agent.max_per_channel),
        )
        for agent in sorted(agents, key=lambda a: a.agent_id)
        if agent.agent_id in working
    ]
    outcomes = Counter(o["outcome"] for o in offers)
    answered = max(1, sum(outcomes.values()))
    delays = [clock.seconds_between(o["offered_at"], o["answered_at"]) for o in offers if o["outcome"] == "accepted"]
    handles: dict[str, list[float]] = defaultdict(list)
    rows = []
    for s in summaries:
        if s.get("handle_seconds"):
            handles[s["channel"]].append(float(s["handle_seconds"]))
        facts = s.get("facts") or {}
        patience = None
        if s["abandoned"] and not s.get("answered_at", s.get("accepted_at")) and s.get("closed_at"):
            patience = max(0.001, clock.seconds_between(s["arrived_at"], s["closed_at"]))
        rows.append(
            {
                "at": routed_at(s),
                "channel": s["channel"],
                "text": text_of(s),
                "language": facts.get("language") or "",
                "tier": facts.get("customer_tier") or "",
                "customer_id": s.get("customer_id") or "",
                "handle_seconds": s.get("handle_seconds") or "",
                "patience_seconds": patience or "",
            }
        )
    handle_time = {
        channel: Distribution(distribution="fixed", mean=statistics.fmean(values) if values else 180.0)
        for channel in {s["channel"] for s in summaries}
        for values in [handles.get(channel, [])]
    }
    scenario = Scenario(
        name="replay",
        description=f"contact records from {start} to {end}",
        start=clock.parse_iso(start),
        duration=max(1.0, clock.seconds_between(start, end)),
        arrivals_csv="arrivals.csv",
        handle_time=handle_time,
        agents=groups or [AgentGroup(name="nobody", count=1, queues=["default"], max_per_channel={"webchat": 0})],
        answering=Answering(
            accept_delay=Distribution(distribution="fixed", mean=statistics.fmean(delays) if delays else 0.0),
            decline_probability=round(outcomes["declined"] / answered, 4),
            no_answer_probability=round(outcomes["expired"] / answered, 4),
        ),
    )
    return scenario, rows


def replay(
    stored: Sequence[dict[str, Any]],
    agents: Iterable[Agent],
    start: str,
    end: str,
    *,
    current: str | Path | None,
    candidate: str | Path | None = None,
    text_of: TextOf = lambda summary: "",
    seed: int = 1,
) -> dict[str, Any]:
    """Replay the period's records with the ``current`` rules (a routing.yaml; None: the shipped rules) and, if
    given, a ``candidate``: per queue recorded and replayed stats, and who would have taken what."""
    summaries = [contact_records.summary(r) for r in stored]
    if not summaries:
        return {"from": start, "to": end, "contacts": 0, "queues": {}}
    scenario, rows = scenario_of(summaries, agents, start, end, text_of)
    with tempfile.TemporaryDirectory(prefix="switchboard-replay-") as folder:
        with (Path(folder) / "arrivals.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        runs = {"current": simulate(scenario, Path(folder), rules=current, seed=seed)}
        if candidate is not None:
            runs["candidate"] = simulate(scenario, Path(folder), rules=candidate, seed=seed)
    document: dict[str, Any] = {
        "from": start,
        "to": end,
        "contacts": len(summaries),
        "agents": [g.name for g in scenario.agents],
        "recorded": recorded_stats(summaries),
        "routing_lag_seconds": round(routing_lag(summaries), 3),
        **{name: replayed_stats(result, routing_lag(summaries)) for name, result in runs.items()},
    }
    if "candidate" in runs:
        now_by = {r.arrival.at: r.agent for r in runs["current"].records}
        moved = [
            {
                "arrived_at": clock.plus_seconds(start, r.arrival.at),
                "current": now_by.get(r.arrival.at),
                "candidate": r.agent,
            }
            for r in runs["candidate"].records
            if now_by.get(r.arrival.at) != r.agent
        ]
        document["taken_by_another_agent"] = moved
    return document


def render(document: dict[str, Any]) -> list[str]:
    """The replay as text: one line per queue and run."""
    lines = [f"replay of {document['contacts']} contacts from {document['from']} to {document['to']}"]
    if not document["contacts"]:
        return lines
    lines.append(f"agents: {', '.join(document['agents']) or 'none'}")
    runs = [name for name in ("recorded", "current", "candidate") if name in document]
    queues = sorted({q for name in runs for q in document[name]})
    lines.append(
        f"{'queue':<12} {'run':<10} {'contacts':>8} {'SL':>7} {'mean wait':>10} {'p90 wait':>9} {'abandoned':>9}"
    )
    for queue in queues:
        for name in runs:
            row = document[name].get(queue)
            if row is None:
                lines.append(f"{queue:<12} {name:<10} {0:>8}")
                continue
            mean = "-" if row["mean_wait"] is None else f"{row['mean_wait']:.1f} s"
            p90 = "-" if row["p90_wait"] is None else f"{row['p90_wait']:.1f} s"
            lines.append(
                f"{queue:<12} {name:<10} {row['contacts']:>8} {row['service_level'] * 100:>6.1f}% {mean:>10} "
                f"{p90:>9} {row['abandoned']:>9}"
            )
    if "taken_by_another_agent" in document:
        moved = document["taken_by_another_agent"]
        lines.append(f"{len(moved)} contacts would go to another agent under the candidate")
        lines += [f"  {m['arrived_at']}: {m['current']} -> {m['candidate']}" for m in moved[:20]]
    return lines
