"""A simulation scenario, read from YAML and checked by pydantic; errors name the field and say what is wrong.

A scenario says when the simulated period starts and how long it lasts (or how many contacts arrive), what
arrives (Poisson streams per channel with an hourly profile and a mix of contact facts the routing rules
classify, or a CSV of arrivals), how long contacts take, how patient customers are, who works when, and how
agents answer offers. ``chalicelib/sim/scenarios/README.md`` shows a commented example.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.routing.config import CHANNELS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME_OF_DAY = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file and each bad field."""


def seconds(value: Any) -> float:
    """Seconds in ``90``, ``2.5``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a number with s, m, h or d (90s, 5m, 2h)")
    if isinstance(value, int | float):
        if value < 0 or math.isnan(value):
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("a duration is a number of seconds or a number with s, m, h or d (90s, 5m, 2h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


Seconds = Annotated[float, BeforeValidator(seconds)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    """A random duration: ``exponential``, ``lognormal`` (with ``cv``, the standard deviation over the mean) or
    ``fixed``, by its mean."""

    distribution: Literal["exponential", "lognormal", "fixed"] = "exponential"
    mean: Seconds
    cv: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _cv_only_for_lognormal(self) -> Distribution:
        if self.cv != 1.0 and self.distribution != "lognormal":
            raise ValueError("cv applies to a lognormal distribution only")
        return self


class Patience(_Strict):
    """How long a waiting customer stays: exponential with this mean (Erlang A's assumption), or ``none``."""

    distribution: Literal["exponential", "none"] = "exponential"
    mean: Seconds | None = None

    @model_validator(mode="after")
    def _mean_when_exponential(self) -> Patience:
        if self.distribution == "exponential" and not self.mean:
            raise ValueError("an exponential patience needs a mean above 0 (or distribution: none)")
        return self


def _channel(value: str) -> str:
    if value not in CHANNELS:
        raise ValueError(f"unknown channel (channels: {', '.join(CHANNELS)})")
    return value


Channel = Annotated[str, BeforeValidator(_channel)]


class ContactKind(_Strict):
    """One kind of contact in a stream's mix: what the routing rules see of it, and its share of the stream."""

    share: float = Field(gt=0)
    text: str = ""
    subject: str | None = None
    language: str | None = None
    tier: str | None = None
    tags: list[str] = Field(default_factory=list)
    label: str | None = None  # a name for reports (default: the text)


class Stream(_Strict):
    """Poisson arrivals on one channel: ``per_hour`` on average, shaped by a 24-value hourly ``profile``
    (multipliers by local hour of the start's time zone; UTC), mixed as ``mix`` says."""

    channel: Channel
    per_hour: float = Field(gt=0)
    profile: list[float] | None = None
    mix: list[ContactKind] = Field(default_factory=lambda: [ContactKind(share=1.0)])

    @field_validator("profile")
    @classmethod
    def _day_of_hours(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 24 or any(v < 0 for v in value) or not any(value)):
            raise ValueError("an hourly profile is 24 multipliers, none negative, not all 0")
        return value


def _time_of_day(value: str) -> str:
    if not isinstance(value, str) or not _TIME_OF_DAY.match(value):
        raise ValueError("a time of day is HH:MM (24:00 ends the day)")
    return value


def _days(value: Any) -> list[str]:
    if isinstance(value, str):
        first, sep, last = value.strip().lower().partition("-")
        if first not in _DAYS or (sep and last not in _DAYS):
            raise ValueError("days are mon..sun or a range such as mon-fri")
        if not sep:
            return [first]
        start, stop = _DAYS.index(first), _DAYS.index(last)
        return [_DAYS[(start + i) % 7] for i in range((stop - start) % 7 + 1)]
    if isinstance(value, list) and all(isinstance(v, str) and v in _DAYS for v in value):
        return list(value)
    raise ValueError("days are mon..sun or a range such as mon-fri")


class Shift(_Strict):
    """A daily shift in UTC, from ``start`` to ``end`` (may pass midnight), on ``days`` (default every day)."""

    start: Annotated[str, BeforeValidator(_time_of_day)]
    end: Annotated[str, BeforeValidator(_time_of_day)]
    days: Annotated[list[str], BeforeValidator(_days)] = Field(default_factory=lambda: list(_DAYS))

    @model_validator(mode="after")
    def _not_empty(self) -> Shift:
        if self.start == self.end:
            raise ValueError("a shift must end at another time than it starts")
        return self


class AgentGroup(_Strict):
    """``count`` agents alike: skills (name -> proficiency 1..5), queues, capacity units and shifts
    (none: on all the time)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    count: int = Field(ge=1, le=100_000)
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    queues: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    capacity: int | None = Field(default=None, ge=1)  # default: the routing config's per-agent capacity
    channel_costs: dict[Channel, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    max_per_channel: dict[Channel, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    shifts: list[Shift] = Field(default_factory=list)


class Answering(_Strict):
    """How simulated agents answer offers: after an accept delay they accept, or decline, or never answer
    (the router's offer timeout then fires). An agent set Away for ignoring offers is back after ``away_for``."""

    accept_delay: Distribution = Field(default_factory=lambda: Distribution(distribution="fixed", mean=0.0))
    decline_probability: Probability = 0.0
    no_answer_probability: Probability = 0.0
    away_for: Seconds = 60.0

    @model_validator(mode="after")
    def _probabilities_add_up(self) -> Answering:
        if self.decline_probability + self.no_answer_probability > 1:
            raise ValueError("decline_probability + no_answer_probability cannot exceed 1")
        return self


class Scenario(_Strict):
    """Everything one simulation run needs besides the routing rules (and the seed, which may be overridden)."""

    name: str = "scenario"
    description: str = ""
    start: datetime
    duration: Seconds | None = None
    contacts: int | None = Field(default=None, ge=1, le=10_000_000)
    seed: int = 1
    rules: str | None = None  # a routing.yaml, relative to the scenario file (default: the shipped rules)
    always_open: bool = False  # ignore the queues' business hours (a steady-state model)
    load: float | None = Field(default=None, gt=0)  # scale the streams to this offered load of the staffed slots
    arrivals: list[Stream] = Field(default_factory=list)
    arrivals_csv: str | None = None  # at,channel,text,language,tier,customer_id[,handle_seconds,patience_seconds]
    handle_time: dict[Channel, Distribution] = Field(min_length=1)
    patience: dict[Channel, Patience] = Field(default_factory=dict)
    agents: list[AgentGroup] = Field(min_length=1)
    answering: Answering = Field(default_factory=Answering)
    returning_customers: Probability = 0.0
    sweep_every: Seconds = Field(default=60.0)
    report_thresholds: list[Seconds] = Field(default_factory=list)  # extra SL points, e.g. [20s]

    @field_validator("start")
    @classmethod
    def _with_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("the start needs a time zone, e.g. 2026-04-07T08:00:00Z")
        return value

    @field_validator("sweep_every")
    @classmethod
    def _sweep_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("the sweeper must run every so many seconds, above 0")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if (self.duration is None) == (self.contacts is None):
            raise ValueError("give exactly one of duration and contacts")
        if bool(self.arrivals) == bool(self.arrivals_csv):
            raise ValueError("give exactly one of arrivals (Poisson streams) and arrivals_csv")
        if self.arrivals_csv and self.load is not None:
            raise ValueError("load scales Poisson streams; it cannot be used with arrivals_csv")
        for stream in self.arrivals:
            if stream.channel not in self.handle_time:
                raise ValueError(f"handle_time has no distribution for channel {stream.channel}")
        names = [g.name for g in self.agents]
        if len(set(names)) != len(names):
            raise ValueError("agent group names must be unique")
        return self


def _render(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def parse_scenario(text: str, source: str = "scenario.yaml") -> Scenario:
    """A scenario from YAML text; ``ScenarioError`` lists every bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping (start, arrivals, handle_time, agents, ...)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_render(exc, source)) from None


STANDARD = Path(__file__).parent / "scenarios"


def scenario_path(name: str) -> Path:
    """A scenario file: the path given, or the standard scenario of that name (``chalicelib/sim/scenarios``)."""
    given = Path(name)
    if given.exists() or given.suffix in (".yaml", ".yml") or "/" in name:
        return given
    return STANDARD / f"{name}.yaml"


def standard_scenarios() -> list[str]:
    """The names of the standard scenarios."""
    return sorted(path.stem for path in STANDARD.glob("*.yaml"))


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """A scenario file and the folder its relative paths (rules, arrivals_csv) are read from."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{file}: cannot read: {exc.strerror}") from None
    return parse_scenario(text, str(file)), file.parent


class CsvArrival(BaseModel):
    """One row of an arrivals CSV."""

    at: datetime
    channel: Channel
    text: str = ""
    language: str | None = None
    tier: str | None = None
    customer_id: str | None = None
    handle_seconds: float | None = Field(default=None, gt=0)
    patience_seconds: float | None = Field(default=None, gt=0)

    @field_validator("language", "tier", "customer_id", "handle_seconds", "patience_seconds", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def read_arrivals_csv(path: Path) -> list[CsvArrival]:
    """Arrivals from a CSV with a header row; a bad row is reported by its line number and column."""
    rows: list[CsvArrival] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line, fields in enumerate(csv.DictReader(handle), start=2):
                try:
                    rows.append(CsvArrival.model_validate(fields))
                except ValidationError as exc:
                    raise ScenarioError(_render(exc, f"{path} line {line}")) from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    if any(arrival.at.tzinfo is None for arrival in rows):
        raise ScenarioError(f"{path}: arrival times need a time zone (…Z)")
    return sorted(rows, key=lambda r: r.at)
