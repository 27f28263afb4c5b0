"""The shape of the routing document ops write, validated by pydantic: types, ranges, units and formats.

Each model (``ConfigIn``, ``QueueIn``, ``RuleIn``...) is one mapping of ``routing.yaml``; unknown keys are
refused (a typo is a mistake, not a silent default). Durations take units (``90s``, ``5m``, ``2h``, ``7d``);
days, opening hours, dates, channels, languages and message templates are checked as they are read; what spans
fields (queues that exist, the order of escalation steps) is in ``checks``, canned responses in ``canned``.
"""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.routing.config.canned import CannedField, CannedResponsesIn
from chalicelib.routing.config.values import (
    CHANNELS,
    DAYS,
    DEFAULT_ACKNOWLEDGEMENT,
    DEFAULT_CHANNEL_COSTS,
    DEFAULT_SELF_SERVICE_CLOSE_AFTER_SECONDS,
    DEFAULT_SLA_SECONDS,
    SELF_SERVICE_CHANNELS,
)
from chalicelib.routing.config.widget import WidgetField, WidgetIn
from chalicelib.routing.config.wrapup import WrapUpCodes

_ACKNOWLEDGEMENT_FIELDS = frozenset({"position", "wait_minutes"})


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


def minute_of_day(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def parse_window(value: str) -> tuple[str, str]:
    start, sep, end = value.partition("-")
    start, end = start.strip(), end.strip()
    if not sep or not _TIME.match(start) or not (_TIME.match(end) or end == "24:00"):
        raise _custom("hours", "opening hours are written HH:MM-HH:MM, e.g. 08:00-18:00 (24:00 ends the day)")
    if minute_of_day(start) >= minute_of_day(end):
        raise _custom("hours", "opening hours must end after they start; split a night across two days")
    return start, end


def _check_window(value: str) -> str:
    parse_window(value)
    return value


def _check_days(value: str) -> str:
    parse_days(value)
    return value


def parse_days(value: str) -> tuple[str, ...]:
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
Windows = Annotated[list[Window], BeforeValidator(_listify)]  # these take one value or a list: [email, webchat]
DaySpecs = Annotated[list[DaySpec], BeforeValidator(_listify)]
Channels = Annotated[list[Channel], BeforeValidator(_listify)]
Languages = Annotated[list[Language], BeforeValidator(_listify)]
Labels = Annotated[list[Label], BeforeValidator(_listify)]
Names = Annotated[list[Name], BeforeValidator(_listify)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacityIn(Strict):
    per_agent: Units = 60
    default_cost: Units = 20
    costs: dict[Channel, Units] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))


class SlaIn(Strict):
    default: Duration = 300
    channels: dict[Channel, Duration] = Field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))


class OffersIn(Strict):
    timeout: Duration = 30
    timeouts: dict[Channel, Duration] = Field(default_factory=lambda: {"webchat": 30, "voice": 20})
    max_consecutive_expired: Annotated[StrictInt, Field(ge=1, le=100)] = 3


class AcknowledgementIn(Strict):
    interval: Duration = 120
    message: Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_check_template)] = (
        DEFAULT_ACKNOWLEDGEMENT
    )


def _check_hold_audio(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise _custom("hold_audio", "must be an absolute https URL Twilio can fetch")
    return url


class CallbackIn(Strict):
    """A waiting caller may press 1 to be called back (``offer``); a call back not answered (busy, no answer,
    failed) is tried ``attempts`` times in all, ``retry_after`` apart (at most 15 minutes: one timer's delay)."""

    offer: StrictBool = True
    attempts: Annotated[StrictInt, Field(ge=1, le=10)] = 3
    retry_after: Annotated[Duration, Field(ge=10, le=900)] = 120


class VoiceIn(Strict):
    """What a waiting caller hears: their position and expected wait every ``position_interval``, hold audio
    (played between announcements; about that long) or silence; and whether they may ask to be called back."""

    position_interval: Annotated[Duration, Field(ge=10, le=600)] = 45
    hold_audio: Annotated[str, StringConstraints(max_length=1000), AfterValidator(_check_hold_audio)] | None = None
    callback: CallbackIn = Field(default_factory=CallbackIn)


LAB_SCENARIOS = Path(__file__).resolve().parents[2] / "sim" / "scenarios"


def _check_lab_scenario(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not (LAB_SCENARIOS / f"{name}.yaml").is_file():
        known = ", ".join(sorted(path.stem for path in LAB_SCENARIOS.glob("*.yaml")))
        raise _custom("lab_scenario", f"unknown simulator scenario (scenarios: {known})")
    return name


class LabIn(Strict):
    scenario: Annotated[str, AfterValidator(_check_lab_scenario)]
    max_sl_loss_points: float = Field(default=2.0, ge=0, le=100)


class HoursIn(Strict):
    timezone: TimeZoneName
    weekly: dict[DaySpec, Windows]
    holidays: list[Holiday] = Field(default_factory=list)


class OutOfHoursIn(Strict):
    action: Literal["reply", "overflow", "voicemail"]
    message: Annotated[str, StringConstraints(max_length=1000)] = ""
    overflow_to: Name | None = None

    @model_validator(mode="after")
    def _action_has_what_it_needs(self) -> OutOfHoursIn:
        if self.action == "reply" and (not self.message.strip() or self.overflow_to):
            raise _custom("out_of_hours", "action reply needs a message and no overflow_to")
        if self.action == "overflow" and not self.overflow_to:
            raise _custom("out_of_hours", "action overflow needs overflow_to (a queue)")
        if self.action == "voicemail" and self.overflow_to:
            raise _custom("out_of_hours", "action voicemail takes no overflow_to (message is the caller's greeting)")
        return self


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


class QueueRoutingIn(Strict):
    """``queues.<name>.routing``: see ``values.QueueRouting``."""

    policy: Literal["balanced", "classic"] = "balanced"
    aging_seconds: Duration | None = None
    keep_scarce_skills: StrictBool = True
    sla_clock: Literal["arrival", "business_hours"] = "arrival"
    # Due this long before a WhatsApp or Messenger reply window (24 h) closes; at most 23 h.
    reply_window_margin: Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=23 * 3600)] = 3600


Spoken = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
# A Twilio speech-recognition language tag (en-US, en-GB, de-DE, es-MX...).
SpeechLanguage = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}-[A-Za-z0-9]{2,8}$")]


class AskIn(Strict):
    """``ask``: the question a caller hears first; the answer (speech) becomes the contact's text."""

    question: Spoken
    language: SpeechLanguage = "en-US"


def _question_alone(value: Any) -> Any:
    return {"question": value} if isinstance(value, str) else value


def _self_service_channels(values: list[str]) -> list[str]:
    if any(value not in SELF_SERVICE_CHANNELS for value in values):
        raise _custom("self_service", f"self-service answers on {', '.join(SELF_SERVICE_CHANNELS)} only")
    return values


def _not_true(value: Any) -> Any:
    if value is True:
        raise _custom("self_service", "self_service is a mapping (channels, languages, min_coverage, mode) or false")
    return value


class SelfServiceIn(Strict):
    """``self_service``: see ``values.SelfService`` (no ``languages``: any; no ``min_coverage``: kb.yaml's)."""

    channels: Annotated[Channels, AfterValidator(_self_service_channels), Field(min_length=1)]
    languages: Languages = Field(default_factory=list)  # ``checks``: languages the knowledge base can have
    min_coverage: Annotated[float, Field(gt=0, le=1)] | None = None
    mode: Literal["answer", "suggest"] = "answer"
    # An answer the customer never replies to closes the conversation (``self_service_unconfirmed``) after this.
    close_after: Annotated[Duration, Field(ge=60, le=7 * 86400)] = DEFAULT_SELF_SERVICE_CLOSE_AFTER_SECONDS


class QueueIn(Strict):
    hours: HoursIn | None = None
    out_of_hours: OutOfHoursIn | None = None
    routing: QueueRoutingIn = Field(default_factory=QueueRoutingIn)
    ask: Annotated[AskIn, BeforeValidator(_question_alone)] | None = None  # asked first, unless the rule asks
    self_service: SelfServiceIn | None = None


class CustomerIn(Strict):
    tier: Labels = Field(default_factory=list)
    tags_any: Labels = Field(default_factory=list)
    tags_all: Labels = Field(default_factory=list)


class TimeIn(Strict):
    days: DaySpecs = Field(default_factory=list)
    between: tuple[TimeOfDay, TimeOfDay] | None = None
    timezone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _says_something(self) -> TimeIn:
        if not self.days and not self.between:
            raise _custom("time", "a time condition needs days, between, or both")
        if self.between and self.between[0] == self.between[1]:
            raise _custom("time", "between needs two different times")
        return self


class WhenIn(Strict):
    channel: Channels = Field(default_factory=list)
    text_matches: (
        Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_check_regex)] | None
    ) = None
    language: Languages = Field(default_factory=list)
    customer: CustomerIn | None = None
    time: TimeIn | None = None


class StepIn(Strict):
    after: Duration | None = None
    before_breach: Duration | None = None
    set_skills: dict[Name, Level] = Field(default_factory=dict)
    drop_skills: Names = Field(default_factory=list)
    add_queues: Names = Field(default_factory=list)
    overflow_to: Name | None = None
    raise_priority: Priority = 0

    @model_validator(mode="after")
    def _one_time_and_some_action(self) -> StepIn:
        if (self.after is None) == (self.before_breach is None):
            raise _custom("escalation", "a step needs exactly one of after or before_breach")
        if not (self.set_skills or self.drop_skills or self.add_queues or self.overflow_to or self.raise_priority):
            raise _custom(
                "escalation",
                "a step must do something: set_skills, drop_skills, add_queues, overflow_to or raise_priority",
            )
        return self


class RuleIn(Strict):
    name: RuleName
    when: Annotated[WhenIn, BeforeValidator(_none_is_empty)] = Field(default_factory=WhenIn)
    queue: Name
    skills: dict[Name, Level] = Field(default_factory=dict)
    priority: Priority = 0
    sla: Duration | None = None
    escalation: list[StepIn] = Field(default_factory=list)
    # A call matching the rule records a voicemail: true (the default greeting) or the greeting to say.
    voicemail: StrictBool | Spoken | None = None
    ask: Annotated[AskIn, BeforeValidator(_question_alone)] | None = None
    self_service: Annotated[Literal[False] | SelfServiceIn | None, BeforeValidator(_not_true)] = None  # false: none


class ConfigIn(Strict):
    timezone: TimeZoneName = "UTC"
    capacity: CapacityIn = Field(default_factory=CapacityIn)
    sla: SlaIn = Field(default_factory=SlaIn)
    offers: OffersIn = Field(default_factory=OffersIn)
    preferred_agent_window: Duration = 7 * 24 * 3600
    acknowledgement: AcknowledgementIn = Field(default_factory=AcknowledgementIn)
    voice: VoiceIn = Field(default_factory=VoiceIn)
    queues: dict[Name, Annotated[QueueIn, BeforeValidator(_none_is_empty)]] = Field(min_length=1)
    rules: list[RuleIn] = Field(min_length=1)
    lab: LabIn | None = None
    canned_responses: CannedField = Field(default_factory=CannedResponsesIn)
    wrap_up_codes: WrapUpCodes = Field(default_factory=list)
    widget: WidgetField = Field(default_factory=WidgetIn)
