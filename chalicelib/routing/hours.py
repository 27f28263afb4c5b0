"""Business hours: whether a queue is open at a moment, and when it opens next. Pure; time is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from chalicelib.routing.config import DAYS, Hours, QueueConfig, RoutingConfig

# Far enough to step over any run of holidays a config can list next to closed weekdays.
_SEARCH_DAYS = 400


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(at: datetime, timezone: str) -> datetime:
    """``at`` (tz-aware) as wall-clock time in ``timezone``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a moment must carry its time zone (e.g. 2026-04-07T09:00:00+00:00)")
    return at.astimezone(zone(timezone))


def minute_of_day(value: str) -> int:
    """Minutes since midnight of ``"HH:MM"`` (``"24:00"`` is 1440)."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def is_open(queue: QueueConfig, at: datetime) -> bool:
    """Whether ``queue`` takes contacts at ``at``: always without hours; never on a holiday in its own zone."""
    if queue.hours is None:
        return True
    local = local_time(at, queue.hours.timezone)
    return _open_on(queue.hours, local)


def open_queues(config: RoutingConfig, names: Iterable[str], at: datetime) -> frozenset[str]:
    """Which of the queues ``names`` take contacts at ``at``: only these may be offered from.

    A queue the config no longer has counts as open, so a config change never strands its contacts.
    """
    return frozenset(name for name in names if name not in config.queues or is_open(config.queues[name], at))


def overflow_destination(config: RoutingConfig, name: str, at: datetime) -> str | None:
    """Where a contact of queue ``name`` goes at ``at`` if that queue is closed and overflows out of hours.

    The overflow chain is followed to the first open queue (or its last queue: cycles are refused when the
    config is read, and stopped here too); None when ``name`` is open or waits for its own opening.
    """
    visited, target = {name}, None
    queue = config.queues.get(name)
    while queue is not None and not is_open(queue, at):
        policy = queue.out_of_hours
        onward = policy.overflow_to if policy and policy.action == "overflow" else None
        if onward is None or onward in visited or onward not in config.queues:
            break
        visited.add(onward)
        target, queue = onward, config.queues[onward]
    return target


def _open_on(hours: Hours, local: datetime) -> bool:
    if local.date() in hours.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(minute_of_day(start) <= minute < minute_of_day(end) for start, end in _windows(hours, local.date()))


def _windows(hours: Hours, day: date) -> list[tuple[str, str]]:
    return hours.weekly.get(DAYS[day.weekday()], [])


def next_opening(queue: QueueConfig, at: datetime) -> datetime | None:
    """The first moment from ``at`` on when ``queue`` is open (``at`` itself if open now), in the queue's zone.

    ``None`` when it never opens (hours with no windows at all).
    """
    if queue.hours is None:
        return at
    hours = queue.hours
    local = local_time(at, hours.timezone)
    # Compare instants in UTC: Python compares datetimes sharing a tzinfo by wall clock, which DST makes ambiguous.
    now = at.astimezone(UTC)
    for offset in range(_SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for start, end in _windows(hours, day):
            opens, closes = _instant(day, minute_of_day(start), hours), _instant(day, minute_of_day(end), hours)
            if closes > now:
                return max(opens, now).astimezone(zone(hours.timezone))
    return None


def _instant(day: date, minute: int, hours: Hours) -> datetime:
    """``day`` at ``minute`` past local midnight, in UTC (minute 1440 is the next midnight).

    A wall-clock time that a DST change skips resolves to the instant just after the gap.
    """
    wall = datetime.combine(day, time(0), tzinfo=zone(hours.timezone)) + timedelta(minutes=minute)
    return wall.astimezone(UTC)


def after_open_seconds(queue: QueueConfig, at: datetime, seconds: float) -> datetime | None:
    """The moment ``queue`` has been open for ``seconds`` counted from ``at`` (a business-hours SLA clock).

    The clock starts at ``at`` if the queue is open then, else when it opens, and stands still while it is
    closed (nights, closed days, holidays). Always-open queues: ``at + seconds``. ``None`` when the queue does
    not stay open that long within the search horizon (hours with no windows at all).
    """
    if queue.hours is None:
        return at + timedelta(seconds=seconds)
    hours = queue.hours
    local = local_time(at, hours.timezone)
    now = at.astimezone(UTC)
    left = timedelta(seconds=seconds)
    for offset in range(_SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for start, end in sorted(_windows(hours, day), key=lambda window: minute_of_day(window[0])):
            opens, closes = _instant(day, minute_of_day(start), hours), _instant(day, minute_of_day(end), hours)
            if closes <= now:
                continue
            begin = max(opens, now)
            if begin + left <= closes:
                return (begin + left).astimezone(zone(hours.timezone))
            left -= closes - begin
            now = closes
    return None
