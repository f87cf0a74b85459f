"""R1.2, R2.3 (Time in DESIGN.md): the business calendar counts clock time and the
mall's working time differently, in the mall's own time zone, skipping closed days."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mallcare_common.calendar import BusinessCalendar

SH = ZoneInfo("Asia/Shanghai")
WEEK = {d: (time(10), time(22)) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def mall():
    # 2027-02-06 is a Saturday the mall is closed (Lunar New Year's Eve)
    return BusinessCalendar("Asia/Shanghai", WEEK, frozenset({date(2027, 2, 6)}))


def test_open_inside_hours_only(mall):
    assert mall.is_open(at("2026-11-23 10:00"))
    assert mall.is_open(at("2026-11-23 21:59"))
    assert not mall.is_open(at("2026-11-23 22:00"))
    assert not mall.is_open(at("2026-11-23 09:59"))


def test_time_zone_is_the_malls(mall):
    # 03:00 UTC is 11:00 in Shanghai: open
    assert mall.is_open(datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc))
    assert not mall.is_open(datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc))  # 23:00 local


def test_next_opening_skips_closed_days(mall):
    assert mall.next_opening(at("2026-11-23 23:30")) == at("2026-11-24 10:00")
    assert mall.next_opening(at("2027-02-05 22:30")) == at("2027-02-07 10:00")
    assert mall.next_opening(at("2026-11-23 15:00")) == at("2026-11-23 15:00")


def test_working_time_does_not_count_while_closed(mall):
    assert mall.add_working_time(at("2026-11-23 21:30"), timedelta(hours=1)) == at("2026-11-24 10:30")
    assert mall.add_working_time(at("2026-11-23 08:00"), timedelta(minutes=30)) == at("2026-11-23 10:30")
    assert mall.add_working_time(at("2027-02-05 21:00"), timedelta(hours=2)) == at("2027-02-07 11:00")


def test_clock_time_counts_everything(mall):
    assert mall.add_clock_time(at("2026-11-23 21:30"), timedelta(hours=24)) == at("2026-11-24 21:30")


def test_working_days_keep_the_time_of_day_and_skip_closed_days(mall):
    assert mall.add_working_days(at("2026-11-23 15:00"), 1) == at("2026-11-24 15:00")
    assert mall.add_working_days(at("2027-02-05 15:00"), 1) == at("2027-02-07 15:00")
    assert mall.add_working_days(at("2026-11-23 23:00"), 1) == at("2026-11-25 10:00")


def test_hours_past_midnight():
    bar = BusinessCalendar("Asia/Shanghai", {d: (time(18), time(2)) for d in WEEK})
    assert bar.is_open(at("2026-11-24 01:30"))
    assert not bar.is_open(at("2026-11-24 02:30"))
    assert bar.add_working_time(at("2026-11-24 01:30"), timedelta(hours=1)) == at("2026-11-24 18:30")


def test_naive_times_are_refused(mall):
    with pytest.raises(ValueError, match="naive"):
        mall.is_open(datetime(2026, 11, 23, 12, 0))
