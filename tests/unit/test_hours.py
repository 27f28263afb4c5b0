"""Business hours in a queue's own time zone: weekdays, weekends, holidays, DST, and when a queue opens next."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from chalicelib.routing.config import Hours, QueueConfig, default_config
from chalicelib.routing.hours import is_open, next_opening


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def support() -> QueueConfig:
    """The deployed support queue: London, Mon-Fri 08:00-18:00, Sat 09:00-13:00, 2026 bank holidays."""
    return default_config().queues["support"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Summer (BST, UTC+1): 17:59 London is 16:59 UTC.
        (utc(2026, 6, 10, 16, 59), True),
        (utc(2026, 6, 10, 17, 0), False),  # 18:00 London: closing time is exclusive
        (utc(2026, 6, 10, 17, 1), False),
        # Winter (GMT, UTC+0): the same wall-clock times are the same UTC times.
        (utc(2026, 1, 14, 17, 59), True),
        (utc(2026, 1, 14, 18, 1), False),
        (utc(2026, 1, 14, 8, 0), True),  # opening time is inclusive
        (utc(2026, 1, 14, 7, 59), False),
    ],
)
def test_weekday_hours_are_read_in_london_time(support, moment, expected):
    assert is_open(support, moment) is expected


def test_the_first_monday_of_summer_time_opens_at_0800_london_not_0800_utc(support):
    # 2026-03-29 the clocks go forward. On Friday 27th 07:30 UTC is 07:30 London (closed);
    # on Monday 30th 07:30 UTC is 08:30 London (open).
    assert not is_open(support, utc(2026, 3, 27, 7, 30))
    assert is_open(support, utc(2026, 3, 30, 7, 30))
    assert not is_open(support, utc(2026, 3, 30, 6, 59))


def test_saturday_has_its_own_hours_and_sunday_is_closed(support):
    # Saturday 2026-06-13, BST.
    assert not is_open(support, utc(2026, 6, 13, 7, 59))  # 08:59 London
    assert is_open(support, utc(2026, 6, 13, 8, 0))  # 09:00
    assert is_open(support, utc(2026, 6, 13, 11, 59))  # 12:59
    assert not is_open(support, utc(2026, 6, 13, 12, 0))  # 13:00
    assert not is_open(support, utc(2026, 6, 14, 10, 0))  # Sunday 11:00


def test_a_bank_holiday_is_closed_all_day(support):
    # Good Friday 2026-04-03 and Easter Monday 2026-04-06 would be open weekdays.
    for hour in (7, 9, 12, 16):
        assert not is_open(support, utc(2026, 4, 3, hour))
        assert not is_open(support, utc(2026, 4, 6, hour))
    assert is_open(support, utc(2026, 4, 2, 9))  # the Thursday before
    assert is_open(support, utc(2026, 4, 7, 9))  # the Tuesday after


def test_a_holiday_is_a_date_in_the_queues_own_zone():
    tokyo = QueueConfig(
        name="tokyo",
        hours=Hours(
            timezone="Asia/Tokyo",
            weekly={day: [("00:00", "24:00")] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            holidays=(date(2026, 1, 1),),
        ),
    )
    # 15:30 UTC on 31 December is 00:30 on 1 January in Tokyo.
    assert not is_open(tokyo, utc(2025, 12, 31, 15, 30))
    assert is_open(tokyo, utc(2025, 12, 31, 14, 59))  # 23:59 on the 31st, the day that "24:00" ends
    assert is_open(tokyo, utc(2026, 1, 1, 15, 0))  # 00:00 on 2 January


def test_a_queue_without_hours_is_always_open():
    always = QueueConfig(name="default")
    moment = utc(2026, 12, 25, 3, 0)
    assert is_open(always, moment)
    assert next_opening(always, moment) == moment


def test_next_opening_is_now_when_open(support):
    moment = utc(2026, 6, 10, 9, 0)
    assert next_opening(support, moment) == moment


def test_next_opening_after_closing_is_the_next_morning(support):
    opens = next_opening(support, utc(2026, 6, 10, 19, 0))  # Wednesday 20:00 BST
    assert opens is not None
    assert opens.astimezone(UTC) == utc(2026, 6, 11, 7, 0)  # Thursday 08:00 BST
    assert opens.tzinfo is not None and opens.utcoffset() is not None
    assert (opens.hour, opens.minute) == (8, 0)  # returned in London time


def test_next_opening_skips_the_easter_weekend(support):
    # Thursday 2 April after hours: Good Friday is a holiday, so Saturday 4 April 09:00 BST.
    opens = next_opening(support, utc(2026, 4, 2, 20, 0))
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 4, 4, 8, 0)
    # Saturday after 13:00: Sunday closed, Easter Monday a holiday, so Tuesday 08:00 BST.
    opens = next_opening(support, utc(2026, 4, 4, 13, 0))
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 4, 7, 7, 0)


def test_next_opening_across_the_clock_change(support):
    # Saturday 28 March after 13:00 GMT; the clocks go forward on Sunday; Monday 08:00 BST is 07:00 UTC.
    opens = next_opening(support, utc(2026, 3, 28, 14, 0))
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 3, 30, 7, 0)


def test_a_queue_with_no_windows_never_opens():
    closed = QueueConfig(name="closed", hours=Hours(timezone="UTC", weekly={}))
    assert not is_open(closed, utc(2026, 6, 10, 12, 0))
    assert next_opening(closed, utc(2026, 6, 10, 12, 0)) is None


def test_a_moment_without_a_time_zone_is_refused(support):
    with pytest.raises(ValueError, match="time zone"):
        is_open(support, datetime(2026, 6, 10, 12, 0))
