"""The discrete-event simulation: the real router (``routing.memory.world``) on a virtual clock.

Customers arrive as the scenario says and write to the router as a ``ConversationMessage``; the routing rules
classify them. Simulated agents see offers through the notifier (``on_push``) and answer after a random delay:
accept (``Router.accept``, then ``Router.close`` after the handle time), decline (``Router.decline``) or never
(the router's own ``OfferTimeout`` fires from the bus's timer heap). Shifts start and end with
``Router.set_presence`` / ``Router.go_offline``; impatient customers leave with ``Router.abandon``; the sweeper
runs every ``sweep_every`` seconds and at every business-hours opening, as in production.

Time is one ISO string per moment, as the router stores it: events are ordered by it, so the simulator's own
events and the router's timers interleave exactly. Every random draw comes from a generator seeded by the
scenario's seed and the draw's purpose, so the same seed replays the same run, and the arrivals (with each
contact's handle time and patience) are the same whichever policy routes them.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.routing import matching, memory
from chalicelib.routing.config import RoutingConfig, default_config, load_file
from chalicelib.routing.events import ConversationMessage
from chalicelib.routing.model import Agent, ContactState, Presence
from chalicelib.sim.baselines import LongestIdle, RoundRobin
from chalicelib.sim.scenario import (
    AgentGroup,
    Distribution,
    Scenario,
    ScenarioError,
    Stream,
    read_arrivals_csv,
)

DRAIN_SECONDS = 2 * 86400.0  # after the last arrival, how long the simulation runs on for those still waiting
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def iso_at(base: datetime, offset: float) -> str:
    """The moment ``offset`` seconds after ``base``, as the router writes moments (UTC, microseconds)."""
    micros = round(offset * 1_000_000) + _micros_of_day(base)
    day, micros = divmod(micros, 86_400_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_of(base, day)}T{hour:02d}:{minute:02d}:{second:02d}.{micros:06d}Z"


def _micros_of_day(base: datetime) -> int:
    return ((base.hour * 60 + base.minute) * 60 + base.second) * 1_000_000 + base.microsecond


@lru_cache(maxsize=4096)
def _date_of(base: datetime, day: int) -> str:
    return (base.date() + timedelta(days=day)).isoformat()


def seconds_since(base: datetime, moment: str) -> float:
    return (datetime.fromisoformat(moment.replace("Z", "+00:00")) - base).total_seconds()


POOLED = "pooled"
POLICIES = ("switchboard", "classic", "longest-idle", "round-robin", POOLED)


def policy_named(name: str) -> matching.Policy:
    """The router's own policy (``switchboard``: its default, each queue as routing.yaml says), the order before
    issue 11 (``classic``), or a baseline (``longest-idle``, ``round-robin``; ``pooled``: longest idle, first
    come first served, with every agent given every group's skills and queues, the cross-trained pool that
    Erlang C assumes, on the same arrivals)."""
    if name == "switchboard":
        return matching.DEFAULT_POLICY
    if name == "classic":
        return matching.Classic()
    if name == "longest-idle":
        return LongestIdle()
    if name == POOLED:
        return LongestIdle(name=POOLED)
    if name == "round-robin":
        return RoundRobin()
    raise ValueError(f"unknown policy {name!r} ({', '.join(POLICIES)})")


def draw(rng: random.Random, distribution: Distribution) -> float:
    """One duration from ``distribution``."""
    mean = distribution.mean
    if distribution.distribution == "fixed" or mean <= 0:
        return mean
    if distribution.distribution == "exponential":
        return rng.expovariate(1.0 / mean)
    sigma2 = math.log(1.0 + distribution.cv**2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


@dataclass
class Arrival:
    """One contact the scenario brings: when, on which channel, what the rules see, and the customer's side."""

    at: float  # seconds after the start
    channel: str
    label: str
    text: str
    handle: float
    patience: float | None
    subject: str | None = None
    language: str | None = None
    tier: str | None = None
    tags: tuple[str, ...] = ()
    customer_id: str | None = None
    returning: float = 1.0  # a uniform draw: below the scenario's share, a returning customer


@dataclass
class Record:
    """What the report needs of one contact."""

    arrival: Arrival
    contact_id: str
    customer_id: str
    queue: str = ""
    rule: str = ""
    sla_deadline: str = ""
    target: float = 0.0
    preferred_agent: str | None = None
    accepted_iso: str | None = None
    accepted: float | None = None
    agent: str | None = None
    abandoned: float | None = None
    offers: int = 0


@dataclass
class Result:
    """A finished run: every contact's record, and what the agents were doing."""

    scenario: Scenario
    policy: str
    seed: int
    config: RoutingConfig
    records: list[Record]
    agents: dict[str, Agent]
    group_of: dict[str, str]
    staffed: dict[str, float]  # agent -> capacity-unit seconds on shift
    busy: dict[str, float]  # agent -> capacity-unit seconds working (accept to close)
    shifts: dict[str, list[tuple[float, float]]]  # agent -> on-shift intervals (seconds after the start)
    span: float  # seconds from the start to the last arrival
    end: float  # seconds from the start to the last event
    sweeps: int = 0
    events: int = 0


def routing_config(
    scenario: Scenario, folder: Path, rules: str | Path | None = None, given: RoutingConfig | None = None
) -> RoutingConfig:
    """The rules a run uses: ``given`` (already parsed), ``rules`` (the command line), the scenario's, or the
    shipped ones; without business hours if the scenario says ``always_open``."""
    chosen = rules or (folder / scenario.rules if scenario.rules else None)
    config = given or (load_file(chosen) if chosen else default_config())
    if scenario.always_open:
        config = replace(
            config, queues={name: replace(q, hours=None, out_of_hours=None) for name, q in config.queues.items()}
        )
    return config


def slots(group: AgentGroup, config: RoutingConfig, channel: str) -> int:
    """How many contacts of ``channel`` one agent of ``group`` holds at once."""
    capacity = group.capacity or config.default_capacity
    cost = group.channel_costs.get(channel, config.cost(channel))
    held = capacity // max(1, cost)
    cap = group.max_per_channel.get(channel)
    return min(held, cap) if cap is not None else held


def offered_load(scenario: Scenario, config: RoutingConfig) -> float:
    """The streams' offered work over the staffed slots, before ``load`` scaling (Erlangs per slot)."""
    work: dict[str, float] = {}
    for stream in scenario.arrivals:
        mean_rate = stream.per_hour * (sum(stream.profile) / 24 if stream.profile else 1.0) / 3600
        work[stream.channel] = work.get(stream.channel, 0.0) + mean_rate * scenario.handle_time[stream.channel].mean
    total_work = sum(work.values())
    if total_work == 0:
        return 0.0
    # Slots weighted by each channel's share of the work (one pool per channel in a single-channel scenario).
    staffed = sum(
        share / total_work * sum(g.count * slots(g, config, channel) for g in scenario.agents)
        for channel, share in work.items()
    )
    return total_work / staffed if staffed else math.inf


def _stream(stream: Stream, scenario: Scenario, scale: float, rng: random.Random) -> Iterator[Arrival]:
    """Poisson arrivals of one stream, piecewise constant by UTC hour, forever."""
    start = scenario.start.astimezone(UTC)
    handle = scenario.handle_time[stream.channel]
    patience = scenario.patience.get(stream.channel)
    kinds = stream.mix
    cumulative = list(itertools.accumulate(k.share for k in kinds))
    t = 0.0
    first_hour = start.hour + start.minute / 60 + start.second / 3600
    while True:
        # The hour of day at t: the profile's multiplier holds until the next whole UTC hour.
        hour_of_day = int(first_hour + t / 3600) % 24
        until = (math.floor(first_hour + t / 3600) + 1 - first_hour) * 3600
        rate = stream.per_hour * scale * (stream.profile[hour_of_day] if stream.profile else 1.0) / 3600
        gap = rng.expovariate(rate) if rate > 0 else math.inf
        if t + gap >= until:
            t = until  # memoryless: start again at the hour's end with its rate
            continue
        t += gap
        kind = kinds[bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]
        wait_limit = draw(rng, Distribution(mean=patience.mean or 0)) if patience and patience.mean else None
        yield Arrival(
            at=t,
            channel=stream.channel,
            label=kind.label or kind.text or stream.channel,
            text=kind.text,
            subject=kind.subject,
            language=kind.language,
            tier=kind.tier,
            tags=tuple(kind.tags),
            handle=max(0.001, draw(rng, handle)),
            patience=wait_limit,
            returning=rng.random(),
        )


def arrivals(scenario: Scenario, folder: Path, config: RoutingConfig, seed: int) -> list[Arrival]:
    """Every arrival of the run, in time order."""
    if scenario.arrivals_csv:
        return _csv_arrivals(scenario, folder / scenario.arrivals_csv, seed)
    scale = 1.0
    if scenario.load is not None:
        scale = scenario.load / offered_load(scenario, config)
    streams = [
        _stream(s, scenario, scale, random.Random(f"{seed}:arrivals:{i}")) for i, s in enumerate(scenario.arrivals)
    ]
    merged = heapq.merge(*streams, key=lambda a: a.at)
    if scenario.contacts is not None:
        return list(itertools.islice(merged, scenario.contacts))
    horizon = scenario.duration or 0.0
    return list(itertools.takewhile(lambda a: a.at < horizon, merged))


def _csv_arrivals(scenario: Scenario, path: Path, seed: int) -> list[Arrival]:
    rng = random.Random(f"{seed}:csv")
    start = scenario.start.astimezone(UTC)
    found = []
    for row in read_arrivals_csv(path):
        at = (row.at.astimezone(UTC) - start).total_seconds()
        if at < 0 or (scenario.duration is not None and at >= scenario.duration):
            continue
        handle_of = scenario.handle_time.get(row.channel)
        if row.handle_seconds is None and handle_of is None:
            raise ScenarioError(f"{path}: no handle_seconds and no handle_time for channel {row.channel}")
        patience = scenario.patience.get(row.channel)
        found.append(
            Arrival(
                at=at,
                channel=row.channel,
                label=row.text or row.channel,
                text=row.text,
                language=row.language,
                tier=row.tier,
                customer_id=row.customer_id,
                handle=row.handle_seconds or max(0.001, draw(rng, handle_of)),  # type: ignore[arg-type]
                patience=row.patience_seconds
                or (draw(rng, Distribution(mean=patience.mean or 0)) if patience and patience.mean else None),
                returning=rng.random(),
            )
        )
    return found[: scenario.contacts] if scenario.contacts else found


def shift_intervals(group: AgentGroup, start: datetime, horizon: float) -> list[tuple[float, float]]:
    """The group's on-shift intervals in seconds after ``start`` (UTC shifts), up to ``horizon``."""
    if not group.shifts:
        return [(0.0, math.inf)]
    first = start.astimezone(UTC).date() - timedelta(days=1)
    days = int(horizon // 86400) + 3
    found: list[tuple[float, float]] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for shift in group.shifts:
            if _DAYS[day.weekday()] not in shift.days:
                continue
            begin = _at(day, shift.start)
            end = _at(day, shift.end)
            if end <= begin:
                end += timedelta(days=1)
            a, b = (begin - start).total_seconds(), (end - start).total_seconds()
            if b > 0 and a < horizon:
                found.append((max(0.0, a), b))
    found.sort()
    merged: list[tuple[float, float]] = []
    for a, b in found:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _at(day: date, hhmm: str) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hours, minutes=minutes)


def openings(config: RoutingConfig, start: datetime, horizon: float) -> list[float]:
    """Every moment a queue with business hours opens within the run (the sweeper runs then)."""
    found: set[float] = set()
    for queue in config.queues.values():
        hours = queue.hours
        if hours is None:
            continue
        zone = ZoneInfo(hours.timezone)
        first = start.astimezone(zone).date() - timedelta(days=1)
        for offset in range(int(horizon // 86400) + 3):
            day = first + timedelta(days=offset)
            if day in hours.holidays:
                continue
            for begin, _end in hours.weekly.get(_DAYS[day.weekday()], []):
                h, m = (int(part) for part in begin.split(":"))
                wall = datetime.combine(day, time(h, m), tzinfo=zone)
                at = (wall.astimezone(UTC) - start).total_seconds()
                if 0 <= at < horizon:
                    found.add(at)
    return sorted(found)


# A scheduled simulator event: (moment as ISO, sequence number, seconds after the start, action, its arguments).
_Event = tuple[str, int, float, Callable[..., None], tuple[Any, ...]]


class Simulation:
    """One run of a scenario with one policy and seed."""

    def __init__(
        self,
        scenario: Scenario,
        folder: Path,
        *,
        rules: str | Path | None = None,
        seed: int | None = None,
        policy: str = "switchboard",
        config: RoutingConfig | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.policy_name = policy
        self.config = routing_config(scenario, folder, rules, config)
        self.start = scenario.start.astimezone(UTC)
        self.start_iso = iso_at(self.start, 0.0)
        self.arrivals = arrivals(scenario, folder, self.config, self.seed)
        self.world = memory.world(self.config, self.start_iso, on_push=self._on_push, keep_pushes=False)
        self.router = self.world.router
        self.router.policy = policy_named(policy)
        self.store = self.world.store
        self.behaviour = random.Random(f"{self.seed}:answering")
        self.choices = random.Random(f"{self.seed}:customers")
        self.heap: list[_Event] = []
        self._seq = itertools.count()
        self.now = 0.0
        self.records: dict[str, Record] = {}
        self.served: list[tuple[float, str]] = []  # (closed at, customer) in closing order
        self.busy: dict[str, float] = {}
        self.group_of: dict[str, str] = {}
        self.capacity_of: dict[str, int] = {}
        self.shifts: dict[str, list[tuple[float, float]]] = {}
        self.sweeps = 0
        self.events = 0
        self._customers = itertools.count(1)
        self._tail: list[Record] | None = None

    # --- scheduling -------------------------------------------------------------------------------

    def _at(self, at: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.heap, (iso_at(self.start, at), next(self._seq), at, action, args))

    def _set_clock(self, at: float, iso: str) -> None:
        self.now = at
        self.world.clock.set(iso)

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> Result:
        """Run to the end: every contact closed (answered or abandoned), or the drain period over."""
        # The router logs every decision at INFO, as it should in Lambda; here that would be most of the time.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            return self._run()
        finally:
            logging.disable(previous)

    def _run(self) -> Result:
        span = self.arrivals[-1].at if self.arrivals else 0.0
        horizon = span + DRAIN_SECONDS
        self._staff(horizon)
        for at in openings(self.config, self.start, horizon):
            self._at(at, self._sweep)
        self._at(self.scenario.sweep_every, self._periodic_sweep)
        feed = iter(self.arrivals)
        first = next(feed, None)
        if first is not None:
            self._at(first.at, self._arrive, first, feed)
        bus = self.world.bus
        while True:
            timer_due = bus.next_timer_due()
            if self.heap and (timer_due is None or self.heap[0][0] <= timer_due):
                iso, _, at, action, args = heapq.heappop(self.heap)
                if at > horizon:
                    break
                self._set_clock(at, iso)
                action(*args)
            elif timer_due is not None:
                at = seconds_since(self.start, timer_due)
                if at > horizon:
                    break
                self._set_clock(at, timer_due)
                self.router.handle(bus.pop_timer(), timer_due)
            else:
                break
            self.events += 1
            if bus.events:
                self.world.run_events(self.world.clock.now())
            if self.now > span and self._all_done():
                break
        return self._result(span)

    def _all_done(self) -> bool:
        # Checked only after the last arrival: every contact closed (answered and finished, or abandoned).
        return not any(self.store.contacts[r.contact_id].state is not ContactState.CLOSED for r in self._open_records())

    def _open_records(self) -> list[Record]:
        if self._tail is None:
            self._tail = [r for r in self.records.values() if r.abandoned is None]
        self._tail = [r for r in self._tail if self.store.contacts[r.contact_id].state is not ContactState.CLOSED]
        return self._tail

    # --- agents -----------------------------------------------------------------------------------

    def _staff(self, horizon: float) -> None:
        everything: dict[str, int] = {}  # the pooled baseline: every group's skills at their highest level
        for group in self.scenario.agents:
            for skill, level in group.skills.items():
                everything[skill] = max(level, everything.get(skill, 0))
        all_queues = tuple(dict.fromkeys(q for group in self.scenario.agents for q in group.queues))
        pooled = self.policy_name == POOLED
        for group in self.scenario.agents:
            intervals = shift_intervals(group, self.start, horizon)
            for number in range(1, group.count + 1):
                agent_id = f"{group.name}-{number:03d}"
                on_now = bool(intervals) and intervals[0][0] <= 0.0
                self.store.add_agent(
                    Agent(
                        agent_id=agent_id,
                        name=agent_id,
                        presence=Presence.AVAILABLE if on_now else Presence.OFFLINE,
                        skills=dict(everything) if pooled else dict(group.skills),
                        capacity=group.capacity or self.config.default_capacity,
                        queues=all_queues if pooled else tuple(group.queues),
                        channel_costs=dict(group.channel_costs),
                        max_per_channel=dict(group.max_per_channel),
                        idle_since=self.start_iso,
                    )
                )
                self.group_of[agent_id] = group.name
                self.capacity_of[agent_id] = group.capacity or self.config.default_capacity
                self.busy[agent_id] = 0.0
                self.shifts[agent_id] = [(a, min(b, horizon)) for a, b in intervals]
                for begin, end in intervals:
                    if begin > 0:
                        self._at(begin, self._shift_starts, agent_id)
                    if end < horizon:
                        self._at(end, self._shift_ends, agent_id)

    def _shift_starts(self, agent_id: str) -> None:
        self.router.set_presence(agent_id, Presence.AVAILABLE)

    def _shift_ends(self, agent_id: str) -> None:
        agent = self.store.get_agent(agent_id)
        if agent is not None:
            self.router.go_offline(agent, self.world.clock.now())

    def _back_from_away(self, agent_id: str) -> None:
        agent = self.store.agents.get(agent_id)
        if agent is not None and agent.presence is Presence.AWAY and self._on_shift(agent_id):
            self.router.set_presence(agent_id, Presence.AVAILABLE)

    def _on_shift(self, agent_id: str) -> bool:
        return any(a <= self.now < b for a, b in self.shifts[agent_id])

    def _on_push(self, agent_id: str, payload: dict[str, Any]) -> None:
        """An agent's console got a push: answer an offer, or come back after being set Away."""
        kind = payload.get("type")
        if kind == "offer":
            if isinstance(self.router.policy, RoundRobin):
                self.router.policy.took_turn(agent_id)
            answering = self.scenario.answering
            roll = self.behaviour.random()
            delay = draw(self.behaviour, answering.accept_delay)
            contact_id, offer_id = str(payload["contact_id"]), str(payload["offer_id"])
            if roll < answering.decline_probability:
                self._at(self.now + delay, self._decline, agent_id, contact_id, offer_id)
            elif roll < answering.decline_probability + answering.no_answer_probability:
                pass  # never answered: the router's OfferTimeout takes it back
            else:
                self._at(self.now + delay, self._accept, agent_id, contact_id, offer_id)
        elif kind == "presence" and payload.get("presence") == Presence.AWAY.value:
            self._at(self.now + self.scenario.answering.away_for, self._back_from_away, agent_id)

    def _accept(self, agent_id: str, contact_id: str, offer_id: str) -> None:
        try:
            contact = self.router.accept(agent_id, contact_id, offer_id)
        except (Conflict, Forbidden, NotFound):
            return  # expired, withdrawn or abandoned meanwhile
        record = self.records[contact_id]
        record.accepted_iso, record.accepted, record.agent = contact.accepted_at, self.now, agent_id
        self.busy[agent_id] += contact.cost * record.arrival.handle
        self._at(self.now + record.arrival.handle, self._close, agent_id, contact_id)

    def _decline(self, agent_id: str, contact_id: str, offer_id: str) -> None:
        try:
            self.router.decline(agent_id, contact_id, offer_id)
        except (Conflict, Forbidden, NotFound):
            return

    def _close(self, agent_id: str, contact_id: str) -> None:
        self.router.close(agent_id, contact_id, "resolved")
        self.served.append((self.now, self.records[contact_id].customer_id))

    # --- customers --------------------------------------------------------------------------------

    def _customer(self, arrival: Arrival) -> str:
        """A returning customer (served within the preferred-agent window) for the scenario's share, else new."""
        if arrival.customer_id:
            return arrival.customer_id
        if arrival.returning < self.scenario.returning_customers and self.served:
            window = self.config.preferred_agent_window_seconds
            first = bisect.bisect_left(self.served, (self.now - window, ""))
            if first < len(self.served):
                return self.served[self.choices.randrange(first, len(self.served))][1]
        return f"cust-{next(self._customers):07d}"

    def _arrive(self, arrival: Arrival, feed: Iterator[Arrival]) -> None:
        following = next(feed, None)
        if following is not None:
            self._at(following.at, self._arrive, following, feed)
        contact_id = f"conv-{len(self.records) + 1:07d}"
        customer_id = self._customer(arrival)
        profile = self.store.customers.get(customer_id)
        if profile is None:
            self.store.add_customer(customer_id, tier=arrival.tier, tags=list(arrival.tags))
        elif arrival.tier is not None:
            profile["tier"] = arrival.tier
        record = Record(arrival=arrival, contact_id=contact_id, customer_id=customer_id)
        self.records[contact_id] = record
        now = self.world.clock.now()
        message = ConversationMessage(
            conversation_id=contact_id,
            customer_id=customer_id,
            channel=arrival.channel,
            message_id=f"msg-{contact_id}",
            received_at=now,
            text=arrival.text,
            language=arrival.language,
            subject=arrival.subject,
        )
        self.router.handle(message, now)
        contact = self.store.contacts[contact_id]
        record.queue, record.rule, record.sla_deadline = contact.queues[0], contact.rule, contact.sla_deadline
        record.target = seconds_since(self.start, contact.sla_deadline) - arrival.at if contact.sla_deadline else 0
        record.preferred_agent = contact.preferred_agent
        if arrival.patience is not None:
            self._at(self.now + arrival.patience, self._give_up, contact_id)

    def _give_up(self, contact_id: str) -> None:
        contact = self.store.contacts[contact_id]
        waiting = contact.state in (ContactState.QUEUED, ContactState.OFFERED)
        if waiting and self.router.abandon(contact_id, self.world.clock.now()) is not None:
            self.records[contact_id].abandoned = self.now

    # --- the sweeper ------------------------------------------------------------------------------

    def _sweep(self) -> None:
        self.router.sweep(self.world.clock.now())
        self.sweeps += 1

    def _periodic_sweep(self) -> None:
        self._sweep()
        self._at(self.now + self.scenario.sweep_every, self._periodic_sweep)

    # --- the result -------------------------------------------------------------------------------

    def _result(self, span: float) -> Result:
        for record in self.records.values():
            record.offers = self.store.contacts[record.contact_id].offer_count
        staffed = {
            agent_id: self.capacity_of[agent_id] * sum(max(0.0, min(b, self.now) - a) for a, b in intervals)
            for agent_id, intervals in self.shifts.items()
        }
        return Result(
            scenario=self.scenario,
            policy=self.policy_name,
            seed=self.seed,
            config=self.config,
            records=list(self.records.values()),
            agents=dict(self.store.agents),
            group_of=self.group_of,
            staffed=staffed,
            busy=self.busy,
            shifts=self.shifts,
            span=span,
            end=self.now,
            sweeps=self.sweeps,
            events=self.events,
        )


def simulate(
    scenario: Scenario,
    folder: Path,
    *,
    rules: str | Path | None = None,
    seed: int | None = None,
    policy: str = "switchboard",
    config: RoutingConfig | None = None,
) -> Result:
    """Run ``scenario`` once with ``policy`` (and the rules of ``config`` or ``rules``, and ``seed``, if given)."""
    return Simulation(scenario, folder, rules=rules, seed=seed, policy=policy, config=config).run()
