"""Time as Switchboard stores it: UTC ISO-8601 with microseconds, so strings sort in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now_iso() -> str:
    """The current time."""
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def plus_seconds(value: str, seconds: float) -> str:
    return to_iso(parse_iso(value) + timedelta(seconds=seconds))


def seconds_between(earlier: str, later: str) -> float:
    return (parse_iso(later) - parse_iso(earlier)).total_seconds()
