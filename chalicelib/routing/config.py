"""The routing configuration ops edit: queues, business hours, rules, SLAs and capacity, read from YAML.

``routing.yaml`` next to this module is the deployed default and documents
the format. An SSM parameter named by ``SWITCHBOARD_ROUTING_CONFIG_PARAMETER``
can override it at run time (``current_config``) without a deployment.

Parsing happens in three steps: YAML to plain data (with a map from every
node's path to its line), pydantic validation of the shape, then checks that
span fields (queues that exist, escalation order, overflow cycles). Every
problem becomes one line ``FILE:LINE: FIELD: MESSAGE`` of a ``ConfigError``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import yaml
from aws_lambda_powertools import Logger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.routing.matching import QueueRouting
from chalicelib.settings import MissingSetting, get_settings

logger = Logger(service="switchboard", child=True)

DEFAULT_FILE = Path(__file__).with_name("routing.yaml")
ROUTING_CONFIG_SETTING = "SWITCHBOARD_ROUTING_CONFIG_PARAMETER"
# How often ``current_config`` looks at the SSM parameter again.
REFRESH_SECONDS = 60

# Every channel an adapter delivers (``InboundMessage.channel``). Config keys naming another channel are typos.
_MESSAGING = ("sms", "whatsapp", "telegram", "app", "in_store", "voice_assistant")
_SOCIAL = ("messenger", "instagram")
CHANNELS: tuple[str, ...] = ("voice", "webchat", *_MESSAGING, *_SOCIAL, "email")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Defaults for what a config leaves out; routing.yaml spells the same values out, with the reasons, for ops.
DEFAULT_SLA_SECONDS = {
    "voice": 20,
    "webchat": 60,
    **dict.fromkeys(_MESSAGING, 300),
    **dict.fromkeys(_SOCIAL, 900),
    "email": 3600,
}
# A call takes a whole agent (60 units), a chat or message a third, an e-mail a fifth.
DEFAULT_CHANNEL_COSTS = {"voice": 60, "webchat": 20, **dict.fromkeys((*_MESSAGING, *_SOCIAL), 20), "email": 12}
DEFAULT_ACKNOWLEDGEMENT = (
    "Thanks for waiting. You are number {position} in the queue; the expected wait is about {wait_minutes} minutes."
)
_ACKNOWLEDGEMENT_FIELDS = frozenset({"position", "wait_minutes"})

# Guards against alias bombs and recursive anchors in a YAML document.
_MAX_NODES = 50_000
_MAX_DEPTH = 40


# ---------------------------------------------------------------------------------------------------------------------
# What the rest of Switchboard reads: plain frozen values.


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (line, field path) and what."""

    line: int | None
    field: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A routing configuration that cannot be used; ``str()`` is one ``FILE:LINE: FIELD: MESSAGE`` line per problem."""

    def __init__(self, message: str, source: str = "", problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.source = source
        self.problems = problems

    @classmethod
    def from_problems(cls, source: str, problems: Iterable[Problem]) -> ConfigError:
        ordered = tuple(sorted(problems, key=lambda p: (p.line or 0, p.field)))
        return cls("\n".join(p.render(source) for p in ordered), source, ordered)


@dataclass(frozen=True)
class Hours:
    """Opening hours in ``timezone``: windows per day ("mon".."sun", every day present) and closed dates."""

    timezone: str
    weekly: dict[str, list[tuple[str, str]]]  # "mon" -> [("08:00", "18:00")]; "24:00" ends a day
    holidays: tuple[date, ...] = ()


@dataclass(frozen=True)
class OutOfHours:
    """What happens to a contact while its queue is closed: ``reply`` (and keep it queued) or ``overflow``."""

    action: Literal["reply", "overflow"]
    message: str = ""
    overflow_to: str | None = None


@dataclass(frozen=True)
class QueueConfig:
    name: str
    hours: Hours | None = None  # None: always open
    out_of_hours: OutOfHours | None = None
    routing: QueueRouting = field(default_factory=QueueRouting)  # how its contacts are routed and timed


@dataclass(frozen=True)
class EscalationStep:
    """One step that relaxes or widens a waiting contact's requirements; exactly one of the two times is set."""

    after_seconds: int | None = None  # fires this long after the contact was queued
    before_breach_seconds: int | None = None  # or this long before the SLA deadline
    set_skills: dict[str, int] = field(default_factory=dict)  # lower the minimum proficiency of these skills
    drop_skills: tuple[str, ...] = ()  # stop requiring these skills
    add_queues: tuple[str, ...] = ()  # also wait in these queues
    overflow_to: str | None = None  # move to this queue, replacing the current ones
    raise_priority: int = 0  # add to the priority (the result is capped at 9)

    def delay_seconds(self, sla_seconds: int) -> int:
        """Seconds after queueing at which this step fires, for a contact with ``sla_seconds`` to first response."""
        if self.after_seconds is not None:
            return self.after_seconds
        return max(0, sla_seconds - (self.before_breach_seconds or 0))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stored with a queued contact); ``from_dict`` reads it back."""
        return {
            "after_seconds": self.after_seconds,
            "before_breach_seconds": self.before_breach_seconds,
            "set_skills": dict(self.set_skills),
            "drop_skills": list(self.drop_skills),
            "add_queues": list(self.add_queues),
            "overflow_to": self.overflow_to,
            "raise_priority": self.raise_priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationStep:
        return cls(
            after_seconds=_int_or_none(data.get("after_seconds")),
            before_breach_seconds=_int_or_none(data.get("before_breach_seconds")),
            set_skills={str(k): int(v) for k, v in (data.get("set_skills") or {}).items()},
            drop_skills=tuple(data.get("drop_skills") or ()),
            add_queues=tuple(data.get("add_queues") or ()),
            overflow_to=data.get("overflow_to"),
            raise_priority=int(data.get("raise_priority") or 0),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class TimeWindow:
    """A rule's time condition: on these days (empty: every day) and between these local times (None: all day)."""

    timezone: str
    days: tuple[str, ...] = ()
    between: tuple[str, str] | None = None  # start inclusive, end exclusive; start > end spans midnight


@dataclass(frozen=True)
class Conditions:
    """What a contact must look like for a rule to match; every condition given must hold, none given matches all."""

    channels: tuple[str, ...] = ()
    text_matches: str | None = None  # regular expression, searched case-insensitively
    languages: tuple[str, ...] = ()  # language prefixes: "es" matches "es" and "es-MX"
    tiers: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    time: TimeWindow | None = None

    @property
    def is_empty(self) -> bool:
        return self == Conditions()


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: Conditions
    queue: str
    skills: dict[str, int] = field(default_factory=dict)  # skill -> minimum proficiency 1..5
    priority: int = 0  # 0..9, higher first
    sla_seconds: int | None = None  # None: the channel's default
    escalation: tuple[EscalationStep, ...] = ()


@dataclass(frozen=True)
class RoutingConfig:
    queues: dict[str, QueueConfig]
    rules: tuple[Rule, ...]
    default_capacity: int = 60
    channel_costs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))
    default_channel_cost: int = 20
    sla_seconds: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))
    default_sla_seconds: int = 300
    offer_timeout_seconds: dict[str, int] = field(default_factory=lambda: {"webchat": 30, "voice": 20})
    default_offer_timeout_seconds: int = 30
    max_consecutive_expired_offers: int = 3
    preferred_agent_window_seconds: int = 7 * 24 * 3600
    acknowledgement_interval_seconds: int = 120
    acknowledgement_message: str = DEFAULT_ACKNOWLEDGEMENT

    def cost(self, channel: str) -> int:
        """Capacity units one contact of ``channel`` takes from an agent."""
        return self.channel_costs.get(channel, self.default_channel_cost)

    def sla_for(self, channel: str) -> int:
        """First-response target for ``channel``, in seconds."""
        return self.sla_seconds.get(channel, self.default_sla_seconds)

    def offer_timeout(self, channel: str) -> int:
        """Seconds an agent has to accept an offer on ``channel``."""
        return self.offer_timeout_seconds.get(channel, self.default_offer_timeout_seconds)


# ---------------------------------------------------------------------------------------------------------------------
# Loading.


def parse_config(text: str, source: str = "routing.yaml") -> RoutingConfig:
    """Parse and check a routing configuration; raises ``ConfigError`` naming file, line and field."""
    data, lines = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError.from_problems(
            source, [Problem(1, "", "the configuration must be a mapping with at least 'queues' and 'rules'")]
        )
    try:
        raw = _ConfigIn.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_problems(source, _pydantic_problems(exc, lines)) from None
    problems = _cross_checks(raw)
    if problems:
        raise ConfigError.from_problems(source, (Problem(_line_of(lines, p), _render_path(p), m) for p, m in problems))
    return _build(raw)


def load_file(path: str | Path) -> RoutingConfig:
    """Parse a configuration file; errors name it as given."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError.from_problems(str(path), [Problem(None, "", f"cannot read: {reason}")]) from None
    return parse_config(text, source=str(path))


@lru_cache(maxsize=1)
def default_config() -> RoutingConfig:
    """The deployed ``routing.yaml``, parsed once per container."""
    return load_file(DEFAULT_FILE)


@dataclass
class _Override:
    """The SSM override as last seen: when we looked, what text we parsed, and the last config that was valid."""

    parameter: str | None = None
    checked_at: float | None = None
    digest: str | None = None
    config: RoutingConfig | None = None
    reported_missing: bool = False  # "nothing published yet" is logged once, not every minute


_override = _Override()


def _parameter_not_found(exc: Exception) -> bool:
    """Whether Powertools' GetParameterError wraps SSM's ParameterNotFound (it keeps the cause as context)."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound"


def current_config(now: float | None = None) -> RoutingConfig:
    """The routing configuration in force: the SSM override when one is configured and valid, else ``routing.yaml``.

    The parameter is read at most every ``REFRESH_SECONDS`` (``now`` is a monotonic clock reading, passed by tests).
    A missing or invalid parameter is logged and the last good configuration stays in force.
    """
    parameter = get_settings().routing_config_parameter
    if not parameter:
        return default_config()
    global _override
    if _override.parameter != parameter:
        _override = _Override(parameter=parameter)
    now = time.monotonic() if now is None else now
    if _override.checked_at is None or not 0 <= now - _override.checked_at < REFRESH_SECONDS:
        _override.checked_at = now
        _refresh(_override, parameter)
    return _override.config or default_config()


def publish_override(text: str) -> RoutingConfig:
    """Check a routing config and make it the override (the SSM parameter); routers pick it up within 60 s.

    ``ConfigError`` for a config with mistakes (checked first: the admin's to fix); ``MissingSetting`` (503)
    when this deployment names no parameter. A parameter that does not exist yet is created (the deployed
    stack names it but leaves it to the first publish).
    """
    config = parse_config(text, source="request body")
    parameter = get_settings().routing_config_parameter
    if not parameter:
        raise MissingSetting(ROUTING_CONFIG_SETTING)
    from chalicelib.store import aws

    aws.client("ssm").put_parameter(Name=parameter, Value=text, Type="String", Tier="Advanced", Overwrite=True)
    return config


def forget_current_config() -> None:
    """Drop the cached override so the next ``current_config`` reads SSM again (tests)."""
    global _override
    _override = _Override()


def _refresh(state: _Override, parameter: str) -> None:
    from chalicelib.store import aws

    try:
        # Our own clock decides when to look again (see current_config), so skip Powertools' cache here.
        text = str(aws.parameters().get(parameter, max_age=REFRESH_SECONDS, force_fetch=True))
    except Exception as exc:  # any failure to read must leave routing running on the last good config
        if state.config is None and _parameter_not_found(exc):
            # Normal until the first PUT /admin/routing: the deployed stack names the parameter, nobody created it.
            if not state.reported_missing:
                state.reported_missing = True
                logger.info("no routing config published yet; routing.yaml is in force", extra={"parameter": parameter})
            return
        logger.error(
            "routing config parameter unreadable; keeping the last good config",
            extra={"parameter": parameter, "error_type": type(exc).__name__},
        )
        return
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest == state.digest:
        return
    try:
        config = parse_config(text, source=parameter)
    except ConfigError as exc:
        # Problems name lines and fields, never the configuration's text.
        logger.error(
            "routing config parameter is invalid; keeping the last good config",
            extra={"parameter": parameter, "problems": [p.render(parameter) for p in exc.problems]},
        )
        return
    state.digest, state.config = digest, config
    logger.info(
        "routing config loaded",
        extra={"parameter": parameter, "queues": len(config.queues), "rules": len(config.rules)},
    )


# ---------------------------------------------------------------------------------------------------------------------
# YAML with line numbers.

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 surprises: ``18:00`` stays a string (not 1080), ``no`` is not false, dates stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag.rsplit(":", 1)[-1] not in {"bool", "int", "float", "timestamp"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false|True|False|TRUE|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


class _TooLarge(Exception):
    """A document with too many nodes (aliases multiply them) or nested too deep, recursive anchors included."""


def _load_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        problems: list[Problem] = []
        _map_lines(node, (), lines, problems, [0], set())
        if problems:
            raise ConfigError.from_problems(source, problems)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        # Only PyYAML's description, not its snippet of the document.
        what = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError.from_problems(source, [Problem(line, "", f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError.from_problems(source, [Problem(None, "", f"not valid YAML: {type(exc).__name__}")]) from None
    except _TooLarge:
        message = f"too large or recursive (at most {_MAX_NODES} nodes, nested {_MAX_DEPTH} deep)"
        raise ConfigError.from_problems(source, [Problem(None, "", message)]) from None
    finally:
        loader.dispose()


def _map_lines(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[Problem], count: list[int], active: set[int]
) -> None:
    """Record the line of every node under ``path``; report duplicate keys, recursion and alias bombs."""
    count[0] += 1
    if count[0] > _MAX_NODES or len(path) > _MAX_DEPTH or id(node) in active:
        raise _TooLarge
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(line, _render_path((*path, key)), f"duplicate key (first on line {seen[key]})"))
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _map_lines(value_node, (*path, key), lines, problems, count, active)
        for merged_node in merged:  # explicit keys win over merged ones, as in the constructor
            if isinstance(merged_node, yaml.MappingNode):
                for key_node, value_node in merged_node.value:
                    key = str(key_node.value)
                    if key not in seen:
                        seen[key] = key_node.start_mark.line + 1
                        lines[(*path, key)] = seen[key]
                        _map_lines(value_node, (*path, key), lines, problems, count, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _map_lines(item, (*path, index), lines, problems, count, active)
    active.discard(id(node))


def _render_path(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor present in the document."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _pydantic_problems(exc: ValidationError, lines: Mapping[Path_, int]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path: Path_ = ()
        for part in error["loc"]:
            # Keep the parts that are in the document; pydantic adds its own (union members, "[key]").
            candidates = (part, str(part)) if isinstance(part, int) else (part,)
            found = next((c for c in candidates if (*path, c) in lines), None)
            if found is not None:
                path = (*path, found)
        shown, message = path, error["msg"]
        if error["type"] == "missing" and error["loc"]:
            shown = (*path, error["loc"][-1])
        if error["type"] == "extra_forbidden":
            known = _known_keys(error["loc"])
            message = f"unknown key (expected one of: {', '.join(known)})" if known else "unknown key"
        problems.append(Problem(_line_of(lines, path), _render_path(shown), message))
    # One error per place is enough (a union reports each member's complaint).
    unique = {(p.line, p.field): p for p in reversed(problems)}
    return list(unique.values())


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed beside the unknown one at ``loc``, found by following ``loc`` through the schema."""
    current: Any = _ConfigIn
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """``X`` out of ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


# ---------------------------------------------------------------------------------------------------------------------
# The shape of the document, validated by pydantic.


def _custom(kind: str, message: str) -> PydanticCustomError:
    # Messages are final text: no context is passed, so braces in them are never substituted.
    return PydanticCustomError(kind, message)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """Seconds in ``90``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise _custom("duration", "a duration is a number of seconds or a number with s, m, h or d (90s, 5m, 2h)")
    if isinstance(value, int):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise _custom("duration", "a duration is a number of seconds or a number with s, m, h or d (90s, 5m, 2h)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise _custom("timezone", "unknown time zone (use an IANA name such as Europe/London)") from None
    return name


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise _custom("regex", f"invalid regular expression: {exc.msg} at position {exc.pos}") from None
    return pattern


_TIME = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")


def _check_time(value: str) -> str:
    if not _TIME.match(value):
        raise _custom("time", "a time of day is HH:MM, 00:00 to 23:59")
    return value


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_window(value: str) -> tuple[str, str]:
    start, sep, end = value.partition("-")
    start, end = start.strip(), end.strip()
    if not sep or not _TIME.match(start) or not (_TIME.match(end) or end == "24:00"):
        raise _custom("hours", "opening hours are written HH:MM-HH:MM, e.g. 08:00-18:00 (24:00 ends the day)")
    if _minutes(start) >= _minutes(end):
        raise _custom("hours", "opening hours must end after they start; split a night across two days")
    return start, end


def _check_window(value: str) -> str:
    _parse_window(value)
    return value


def _check_days(value: str) -> str:
    _parse_days(value)
    return value


def _parse_days(value: str) -> tuple[str, ...]:
    """``mon`` or a range ``mon-fri`` (ranges may wrap: ``fri-mon``)."""
    first, sep, last = value.strip().lower().partition("-")
    if first not in DAYS or (sep and last not in DAYS):
        raise _custom("days", "a day is one of mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri")
    if not sep:
        return (first,)
    start, stop = DAYS.index(first), DAYS.index(last)
    return tuple(DAYS[(start + offset) % 7] for offset in range((stop - start) % 7 + 1))


def _check_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        raise _custom("date", "a date is written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _custom("date", f"invalid date: {exc}") from None


def _check_channel(value: str) -> str:
    if value not in CHANNELS:
        raise _custom("channel", f"unknown channel (channels: {', '.join(CHANNELS)})")
    return value


def _check_language(value: str) -> str:
    if not re.match(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$", value):
        raise _custom("language", "a language is a tag such as es, pt-BR or zh-Hant")
    return value.lower().replace("_", "-")


def _check_template(value: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise _custom("template", f"invalid template: {exc}") from None
    unknown = sorted(names - _ACKNOWLEDGEMENT_FIELDS)
    if unknown:
        raise _custom("template", f"unknown placeholder {{{unknown[0]}}}; use {{position}} and {{wait_minutes}}")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$")]
Channel = Annotated[str, AfterValidator(_check_channel)]
Duration = Annotated[int, BeforeValidator(parse_duration), Field(gt=0)]
Level = Annotated[StrictInt, Field(ge=1, le=5)]
Priority = Annotated[StrictInt, Field(ge=0, le=9)]
Units = Annotated[StrictInt, Field(ge=1, le=10_000)]
TimeZoneName = Annotated[str, AfterValidator(_check_zone)]
TimeOfDay = Annotated[str, AfterValidator(_check_time)]
DaySpec = Annotated[str, AfterValidator(_check_days)]
Window = Annotated[str, AfterValidator(_check_window)]
Holiday = Annotated[date, BeforeValidator(_check_date)]
Language = Annotated[str, AfterValidator(_check_language)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Where one value or a list is accepted ("channel: email" or "channel: [email, webchat]").
Windows = Annotated[list[Window], BeforeValidator(_listify)]
DaySpecs = Annotated[list[DaySpec], BeforeValidator(_listify)]
Channels = Annotated[list[Channel], BeforeValidator(_listify)]
Languages = Annotated[list[Language], BeforeValidator(_listify)]
Labels = Annotated[list[Label], BeforeValidator(_listify)]
Names = Annotated[list[Name], BeforeValidator(_listify)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CapacityIn(_Strict):
    per_agent: Units = 60
    default_cost: Units = 20
    costs: dict[Channel, Units] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))


class _SlaIn(_Strict):
    default: Duration = 300
    channels: dict[Channel, Duration] = Field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))


class _OffersIn(_Strict):
    timeout: Duration = 30
    timeouts: dict[Channel, Duration] = Field(default_factory=lambda: {"webchat": 30, "voice": 20})
    max_consecutive_expired: Annotated[StrictInt, Field(ge=1, le=100)] = 3


class _AcknowledgementIn(_Strict):
    interval: Duration = 120
    message: Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_check_template)] = (
        DEFAULT_ACKNOWLEDGEMENT
    )


class _HoursIn(_Strict):
    timezone: TimeZoneName
    weekly: dict[DaySpec, Windows]
    holidays: list[Holiday] = Field(default_factory=list)


class _OutOfHoursIn(_Strict):
    action: Literal["reply", "overflow"]
    message: Annotated[str, StringConstraints(max_length=1000)] = ""
    overflow_to: Name | None = None

    @model_validator(mode="after")
    def _action_has_what_it_needs(self) -> _OutOfHoursIn:
        if self.action == "reply" and (not self.message.strip() or self.overflow_to):
            raise _custom("out_of_hours", "action reply needs a message and no overflow_to")
        if self.action == "overflow" and not self.overflow_to:
            raise _custom("out_of_hours", "action overflow needs overflow_to (a queue)")
        return self


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


class _QueueRoutingIn(_Strict):
    """``queues.<name>.routing``: see ``matching.QueueRouting``."""

    policy: Literal["balanced", "classic"] = "balanced"
    aging_seconds: Duration | None = None
    keep_scarce_skills: StrictBool = True
    sla_clock: Literal["arrival", "business_hours"] = "arrival"
    # Due this long before a WhatsApp or Messenger reply window (24 h) closes; at most 23 h.
    reply_window_margin: Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=23 * 3600)] = 3600


class _QueueIn(_Strict):
    hours: _HoursIn | None = None
    out_of_hours: _OutOfHoursIn | None = None
    routing: _QueueRoutingIn = Field(default_factory=_QueueRoutingIn)


class _CustomerIn(_Strict):
    tier: Labels = Field(default_factory=list)
    tags_any: Labels = Field(default_factory=list)
    tags_all: Labels = Field(default_factory=list)


class _TimeIn(_Strict):
    days: DaySpecs = Field(default_factory=list)
    between: tuple[TimeOfDay, TimeOfDay] | None = None
    timezone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _says_something(self) -> _TimeIn:
        if not self.days and not self.between:
            raise _custom("time", "a time condition needs days, between, or both")
        if self.between and self.between[0] == self.between[1]:
            raise _custom("time", "between needs two different times")
        return self


class _WhenIn(_Strict):
    channel: Channels = Field(default_factory=list)
    text_matches: (
        Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_check_regex)] | None
    ) = None
    language: Languages = Field(default_factory=list)
    customer: _CustomerIn | None = None
    time: _TimeIn | None = None


class _StepIn(_Strict):
    after: Duration | None = None
    before_breach: Duration | None = None
    set_skills: dict[Name, Level] = Field(default_factory=dict)
    drop_skills: Names = Field(default_factory=list)
    add_queues: Names = Field(default_factory=list)
    overflow_to: Name | None = None
    raise_priority: Priority = 0

    @model_validator(mode="after")
    def _one_time_and_some_action(self) -> _StepIn:
        if (self.after is None) == (self.before_breach is None):
            raise _custom("escalation", "a step needs exactly one of after or before_breach")
        if not (self.set_skills or self.drop_skills or self.add_queues or self.overflow_to or self.raise_priority):
            raise _custom(
                "escalation",
                "a step must do something: set_skills, drop_skills, add_queues, overflow_to or raise_priority",
            )
        return self


class _RuleIn(_Strict):
    name: RuleName
    when: Annotated[_WhenIn, BeforeValidator(_none_is_empty)] = Field(default_factory=_WhenIn)
    queue: Name
    skills: dict[Name, Level] = Field(default_factory=dict)
    priority: Priority = 0
    sla: Duration | None = None
    escalation: list[_StepIn] = Field(default_factory=list)


class _ConfigIn(_Strict):
    timezone: TimeZoneName = "UTC"
    capacity: _CapacityIn = Field(default_factory=_CapacityIn)
    sla: _SlaIn = Field(default_factory=_SlaIn)
    offers: _OffersIn = Field(default_factory=_OffersIn)
    preferred_agent_window: Duration = 7 * 24 * 3600
    acknowledgement: _AcknowledgementIn = Field(default_factory=_AcknowledgementIn)
    queues: dict[Name, Annotated[_QueueIn, BeforeValidator(_none_is_empty)]] = Field(min_length=1)
    rules: list[_RuleIn] = Field(min_length=1)


# ---------------------------------------------------------------------------------------------------------------------
# Checks across fields.

Found = tuple[Path_, str]


def _cross_checks(raw: _ConfigIn) -> list[Found]:
    found: list[Found] = []
    queues = set(raw.queues)

    def queue_exists(path: Path_, name: str | None) -> None:
        if name is not None and name not in queues:
            found.append((path, f"unknown queue {name!r} (queues: {', '.join(sorted(queues))})"))

    for channel, cost in raw.capacity.costs.items():
        if cost > raw.capacity.per_agent:
            found.append(
                (("capacity", "costs", channel), f"costs more than an agent's capacity ({raw.capacity.per_agent})")
            )
    if raw.capacity.default_cost > raw.capacity.per_agent:
        found.append((("capacity", "default_cost"), f"costs more than an agent's capacity ({raw.capacity.per_agent})"))

    for name, queue in raw.queues.items():
        path: Path_ = ("queues", name)
        if queue.hours:
            found.extend(_check_hours(queue.hours, (*path, "hours")))
        if queue.out_of_hours:
            if not queue.hours:
                found.append(((*path, "out_of_hours"), "the queue has no hours, so it is never out of hours"))
            queue_exists((*path, "out_of_hours", "overflow_to"), queue.out_of_hours.overflow_to)
        if queue.routing.sla_clock == "business_hours" and not queue.hours:
            problem = "business_hours needs the queue's hours (without them it is always open)"
            found.append(((*path, "routing", "sla_clock"), problem))
    found.extend(_overflow_cycles(raw))

    names: dict[str, int] = {}
    for index, rule in enumerate(raw.rules):
        path = ("rules", index)
        if rule.name in names:
            found.append(((*path, "name"), f"duplicate rule name (also rules[{names[rule.name]}])"))
        names.setdefault(rule.name, index)
        queue_exists((*path, "queue"), rule.queue)
        catch_all = rule.when == _WhenIn()
        if catch_all and index < len(raw.rules) - 1:
            found.append((path, "this rule has no conditions, so the rules after it can never match"))
        if not catch_all and index == len(raw.rules) - 1:
            found.append((path, "the last rule must have no conditions (a catch-all), so every contact has a queue"))
        # The SLAs this rule's contacts can have: its own, or the defaults of the channels it names.
        slas = {rule.sla} if rule.sla else {raw.sla.channels.get(c, raw.sla.default) for c in rule.when.channel}
        found.extend(_check_escalation(rule, path, sorted(slas), queue_exists))
    return found


def _check_hours(hours: _HoursIn, path: Path_) -> list[Found]:
    found: list[Found] = []
    by_day: dict[str, str] = {}
    for spec, windows in hours.weekly.items():
        for day in _parse_days(spec):
            if day in by_day:
                found.append(((*path, "weekly", spec), f"{day} is already given by {by_day[day]}"))
            by_day.setdefault(day, spec)
        spans = sorted(_parse_window(w) for w in windows)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if _minutes(start) < _minutes(end):
                found.append(((*path, "weekly", spec), "opening hours overlap"))
    seen: set[date] = set()
    for index, holiday in enumerate(hours.holidays):
        if holiday in seen:
            found.append(((*path, "holidays", index), "date listed twice"))
        seen.add(holiday)
    return found


def _overflow_cycles(raw: _ConfigIn) -> list[Found]:
    found: list[Found] = []
    reported: set[frozenset[str]] = set()
    for start in raw.queues:
        chain = [start]
        while True:
            queue = raw.queues.get(chain[-1])
            target = queue.out_of_hours.overflow_to if queue and queue.out_of_hours else None
            if target is None or target not in raw.queues:
                break
            if target in chain:
                cycle = chain[chain.index(target) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    found.append(
                        (
                            ("queues", cycle[0], "out_of_hours", "overflow_to"),
                            f"overflow cycle {' -> '.join([*cycle, target])}",
                        )
                    )
                break
            chain.append(target)
    return found


def _check_escalation(
    rule: _RuleIn, path: Path_, slas: list[int], queue_exists: Callable[[Path_, str | None], None]
) -> list[Found]:
    """Steps name existing queues, fire in the order listed, and only relax skills the rule requires."""
    found: list[Found] = []
    skills = dict(rule.skills)
    last_after: int | None = None
    last_before: int | None = None
    last_fire: dict[int, int] = {}
    for index, step in enumerate(rule.escalation):
        here: Path_ = (*path, "escalation", index)
        for q_index, queue in enumerate(step.add_queues):
            queue_exists((*here, "add_queues", q_index), queue)
        queue_exists((*here, "overflow_to"), step.overflow_to)
        if step.after is not None:
            if last_after is not None and step.after <= last_after:
                found.append(((*here, "after"), "escalation steps must be in increasing order of after"))
            last_after = step.after
        if step.before_breach is not None:
            if slas and step.before_breach >= slas[0]:
                found.append(
                    ((*here, "before_breach"), f"must be shorter than the SLA ({slas[0]}s), or it fires at once")
                )
            if last_before is not None and step.before_breach >= last_before:
                found.append(
                    (
                        (*here, "before_breach"),
                        "escalation steps must be in the order they fire (decreasing before_breach)",
                    )
                )
            last_before = step.before_breach
        # With known SLAs, steps mixing after and before_breach can be put in order too.
        fires = {sla: step.after if step.after is not None else sla - (step.before_breach or 0) for sla in slas}
        if any(fire < last_fire.get(sla, fire) for sla, fire in fires.items()):
            found.append((here, "fires before the step above it; list steps in the order they fire"))
        last_fire = fires
        for skill, level in step.set_skills.items():
            if skill not in skills:
                found.append(((*here, "set_skills", skill), "not a skill this rule requires at this step"))
            elif level >= skills[skill]:
                found.append(((*here, "set_skills", skill), f"must be lower than {skills[skill]} (escalation relaxes)"))
            else:
                skills[skill] = level
        for s_index, skill in enumerate(step.drop_skills):
            if skills.pop(skill, None) is None:
                found.append(((*here, "drop_skills", s_index), "not a skill this rule requires at this step"))
    return found


# ---------------------------------------------------------------------------------------------------------------------
# From the validated document to the values the rest of Switchboard reads.


def _build(raw: _ConfigIn) -> RoutingConfig:
    return RoutingConfig(
        queues={name: _build_queue(name, queue) for name, queue in raw.queues.items()},
        rules=tuple(_build_rule(rule, raw.timezone) for rule in raw.rules),
        default_capacity=raw.capacity.per_agent,
        channel_costs=dict(raw.capacity.costs),
        default_channel_cost=raw.capacity.default_cost,
        sla_seconds=dict(raw.sla.channels),
        default_sla_seconds=raw.sla.default,
        offer_timeout_seconds=dict(raw.offers.timeouts),
        default_offer_timeout_seconds=raw.offers.timeout,
        max_consecutive_expired_offers=raw.offers.max_consecutive_expired,
        preferred_agent_window_seconds=raw.preferred_agent_window,
        acknowledgement_interval_seconds=raw.acknowledgement.interval,
        acknowledgement_message=raw.acknowledgement.message,
    )


def _build_queue(name: str, raw: _QueueIn) -> QueueConfig:
    hours = None
    if raw.hours:
        weekly: dict[str, list[tuple[str, str]]] = {day: [] for day in DAYS}
        for spec, windows in raw.hours.weekly.items():
            for day in _parse_days(spec):
                weekly[day] = sorted(_parse_window(w) for w in windows)
        hours = Hours(timezone=raw.hours.timezone, weekly=weekly, holidays=tuple(sorted(raw.hours.holidays)))
    ooh = raw.out_of_hours
    return QueueConfig(
        name=name,
        hours=hours,
        out_of_hours=OutOfHours(action=ooh.action, message=ooh.message.strip(), overflow_to=ooh.overflow_to)
        if ooh
        else None,
        routing=QueueRouting(
            policy=raw.routing.policy,
            aging_seconds=raw.routing.aging_seconds,
            keep_scarce_skills=raw.routing.keep_scarce_skills,
            sla_clock=raw.routing.sla_clock,
            reply_window_margin_seconds=raw.routing.reply_window_margin,
        ),
    )


def _build_rule(raw: _RuleIn, timezone: str) -> Rule:
    when = raw.when
    customer = when.customer or _CustomerIn()
    time_window = None
    if when.time:
        days = {day for spec in when.time.days for day in _parse_days(spec)}
        time_window = TimeWindow(
            timezone=when.time.timezone or timezone,
            days=tuple(day for day in DAYS if day in days),
            between=when.time.between,
        )
    return Rule(
        name=raw.name,
        conditions=Conditions(
            channels=tuple(when.channel),
            text_matches=when.text_matches,
            languages=tuple(when.language),
            tiers=tuple(t.casefold() for t in customer.tier),
            tags_any=tuple(t.casefold() for t in customer.tags_any),
            tags_all=tuple(t.casefold() for t in customer.tags_all),
            time=time_window,
        ),
        queue=raw.queue,
        skills=dict(raw.skills),
        priority=raw.priority,
        sla_seconds=raw.sla,
        escalation=tuple(
            EscalationStep(
                after_seconds=step.after,
                before_breach_seconds=step.before_breach,
                set_skills=dict(step.set_skills),
                drop_skills=tuple(step.drop_skills),
                add_queues=tuple(step.add_queues),
                overflow_to=step.overflow_to,
                raise_priority=step.raise_priority,
            )
            for step in raw.escalation
        ),
    )
