"""The rules check of the routing lab: a candidate config simulated beside the current one, before it is used.

``compare`` runs one standard scenario twice with the same seed (the same customers, handle times and agent
answers), once per config, and lists the service level per queue and channel. It warns, and never refuses,
when the candidate loses more than the configured number of SL points in total or on a queue and channel
with enough contacts to say so. ``switchboard rules check FILE --scenario NAME`` and PUT /admin/routing (when
routing.yaml has ``lab:``) use it. It needs no numpy or matplotlib, so it also runs inside Lambda.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from chalicelib.routing.config import RoutingConfig
from chalicelib.sim.scenario import load_scenario, scenario_path
from chalicelib.sim.simulator import Record, simulate

DEFAULT_MAX_LOSS_POINTS = 2.0
# A queue and channel with fewer contacts in the scenario is shown but not warned about: too few to tell.
MIN_CONTACTS_TO_WARN = 30


@dataclass(frozen=True)
class LabRow:
    """One queue and channel (or the total, ``queue == "*"``): its SL under each config."""

    queue: str
    channel: str
    current_contacts: int
    candidate_contacts: int
    current_sl: float | None
    candidate_sl: float | None

    @property
    def loss_points(self) -> float:
        """SL points the candidate loses (negative: it gains); 0 when one side has no contacts here."""
        if self.current_sl is None or self.candidate_sl is None:
            return 0.0
        return round(100 * (self.current_sl - self.candidate_sl), 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "channel": self.channel,
            "current": {"contacts": self.current_contacts, "service_level": self.current_sl},
            "candidate": {"contacts": self.candidate_contacts, "service_level": self.candidate_sl},
            "loss_points": self.loss_points,
        }


@dataclass(frozen=True)
class LabVerdict:
    """The comparison, and the warnings (empty: the candidate loses no more than allowed anywhere)."""

    scenario: str
    max_loss_points: float
    total: LabRow
    rows: tuple[LabRow, ...]
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "max_sl_loss_points": self.max_loss_points,
            "total": self.total.as_dict(),
            "queues": [row.as_dict() for row in self.rows],
            "warnings": list(self.warnings),
        }

    def lines(self) -> list[str]:
        """The comparison as text for a terminal."""
        shown = [f"lab scenario {self.scenario}: SL current -> candidate (warn above {self.max_loss_points} points)"]
        for row in (*self.rows, self.total):
            name = "total" if row.queue == "*" else f"{row.queue}/{row.channel}"
            shown.append(
                f"  {name:<24} {_pct(row.current_sl):>7} -> {_pct(row.candidate_sl):>7}"
                f"  ({row.current_contacts} -> {row.candidate_contacts} contacts)"
            )
        shown += [f"warning: {warning}" for warning in self.warnings]
        return shown


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _service_levels(records: list[Record]) -> dict[tuple[str, str], tuple[int, float]]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.queue, record.arrival.channel)].append(record)
        groups[("*", "*")].append(record)
    return {
        key: (
            len(found),
            sum(r.accepted_iso is not None and r.accepted_iso <= r.sla_deadline for r in found) / len(found),
        )
        for key, found in groups.items()
    }


def compare(
    current: RoutingConfig,
    candidate: RoutingConfig,
    scenario: str | None = None,
    max_loss_points: float | None = None,
) -> LabVerdict:
    """Simulate ``scenario`` (default: the candidate's, else the current config's ``lab``) with both configs."""
    lab = candidate.lab or current.lab
    name = scenario or (lab.scenario if lab else None)
    if name is None:
        raise ValueError("no lab scenario: name one, or set lab.scenario in routing.yaml")
    allowed = (
        max_loss_points if max_loss_points is not None else (lab.max_sl_loss_points if lab else DEFAULT_MAX_LOSS_POINTS)
    )
    loaded, folder = load_scenario(scenario_path(name))
    before = _service_levels(simulate(loaded, folder, config=current).records)
    after = _service_levels(simulate(loaded, folder, config=candidate).records)
    rows = []
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key, (0, None)), after.get(key, (0, None))
        rows.append(LabRow(key[0], key[1], was[0], now[0], was[1], now[1]))
    total = next(row for row in rows if row.queue == "*")
    rows = [row for row in rows if row.queue != "*"]
    warnings = []
    if total.loss_points > allowed:
        warnings.append(
            f"the candidate loses {total.loss_points:.1f} SL points in total on scenario {name} "
            f"({_pct(total.current_sl)} -> {_pct(total.candidate_sl)}), more than {allowed:g}"
        )
    for row in rows:
        enough = min(row.current_contacts, row.candidate_contacts) >= MIN_CONTACTS_TO_WARN
        if enough and row.loss_points > allowed:
            warnings.append(
                f"the candidate loses {row.loss_points:.1f} SL points on {row.queue}/{row.channel} "
                f"({_pct(row.current_sl)} -> {_pct(row.candidate_sl)}), more than {allowed:g}"
            )
    return LabVerdict(name, allowed, total, tuple(rows), tuple(warnings))
