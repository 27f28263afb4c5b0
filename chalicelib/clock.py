"""Time as Switchboard stores it: UTC ISO-8601 with microseconds, so strings sort in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache


def now_iso() -> str:
    """The current time."""
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    # As strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a fraction of its cost (the simulator writes millions of these).
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond:06d}Z"
    )


@lru_cache(maxsize=8192)
def parse_iso(value: str) -> datetime:
    # Remembered: routing parses the same few moments (a contact's arrival, deadline, offer expiry) many times.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def plus_seconds(value: str, seconds: float) -> str:
    return to_iso(parse_iso(value) + timedelta(seconds=seconds))


def seconds_between(earlier: str, later: str) -> float:
    return (parse_iso(later) - parse_iso(earlier)).total_seconds()
