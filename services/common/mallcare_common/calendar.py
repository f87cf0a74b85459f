"""The business calendar: every deadline in mallcare is computed here.

Two kinds of rule occur in the requirements and they are not the same:
- clock time ("within 24 h", "within 1 minute"): plain elapsed time;
- working time ("within 1 working day", "30 minutes after the next opening"):
  counts only the mall's opening hours, in the mall's own time zone, skipping
  the days it is closed.

All datetimes going in and out are timezone-aware; the caller supplies "now"
(the clock is injected, never read here).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from nameko.extensions import DependencyProvider

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A mall never stays closed longer than this; past it the calendar is broken.
_MAX_CLOSED_DAYS = 60


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str
    # weekday name -> (opening, closing); a weekday missing here is a closed day.
    opening_hours: dict[str, tuple[time, time]]
    closed_dates: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, at: datetime) -> datetime:
        _require_aware(at)
        return at.astimezone(self.zone)

    def hours_on(self, day: date) -> tuple[datetime, datetime] | None:
        """(open, close) as aware datetimes for that local date, or None if closed."""
        if day in self.closed_dates:
            return None
        hours = self.opening_hours.get(WEEKDAYS[day.weekday()])
        if not hours:
            return None
        opening, closing = hours
        start = datetime.combine(day, opening, tzinfo=self.zone)
        end = datetime.combine(day, closing, tzinfo=self.zone)
        if closing <= opening:  # open past midnight
            end += timedelta(days=1)
        return start, end

    def is_open(self, at: datetime) -> bool:
        local = self.local(at)
        for day in (local.date() - timedelta(days=1), local.date()):
            hours = self.hours_on(day)
            if hours and hours[0] <= local < hours[1]:
                return True
        return False

    def next_opening(self, at: datetime) -> datetime:
        """The first opening strictly after `at` (or `at` itself if open then)."""
        if self.is_open(at):
            return at
        local = self.local(at)
        for offset in range(_MAX_CLOSED_DAYS):
            hours = self.hours_on(local.date() + timedelta(days=offset))
            if hours and hours[0] >= local:
                return hours[0]
        raise ValueError(f"mall closed for {_MAX_CLOSED_DAYS} days after {at}")

    def add_clock_time(self, at: datetime, delta: timedelta) -> datetime:
        _require_aware(at)
        return at + delta

    def add_working_time(self, at: datetime, delta: timedelta) -> datetime:
        """`at` plus `delta` of opening hours (time while closed does not count)."""
        remaining = delta
        cursor = self.next_opening(at)
        for _ in range(_MAX_CLOSED_DAYS * 2):
            local = self.local(cursor)
            hours = self._hours_containing(local)
            available = hours[1] - local
            if remaining <= available:
                return (local + remaining).astimezone(at.tzinfo)
            remaining -= available
            cursor = self.next_opening(hours[1])
        raise ValueError(f"cannot add {delta} of working time after {at}")

    def add_working_days(self, at: datetime, days: int) -> datetime:
        """Same local time `days` open days later; from a closed moment, counts from the next opening."""
        cursor = self.local(self.next_opening(at))
        day = cursor.date()
        counted = 0
        for _ in range(days + _MAX_CLOSED_DAYS):
            if counted == days:
                hours = self.hours_on(day)
                due = datetime.combine(day, cursor.timetz().replace(tzinfo=None), tzinfo=self.zone)
                # an open day: one counted, or the day of the opening it starts from
                return min(max(due, hours[0]), hours[1]).astimezone(at.tzinfo)  # type: ignore[index]
            day += timedelta(days=1)
            if self.hours_on(day):
                counted += 1
        raise ValueError(f"cannot add {days} working days after {at}")

    def due(self, start: datetime, allowed: dict[str, Any], factor: float = 1.0) -> datetime:
        """The deadline `allowed` after `start`: {"hours": n} of clock time,
        {"working_hours": n} of opening hours or {"working_days": n} (the policy's
        AllowedTime), the time ones scaled by `factor` (risk tightens deadlines)."""
        if "working_days" in allowed:
            due = self.add_working_days(start, allowed["working_days"])
        elif "working_hours" in allowed:
            due = self.add_working_time(start, timedelta(hours=allowed["working_hours"] * factor))
        else:
            due = self.add_clock_time(start, timedelta(hours=allowed["hours"] * factor))
        return as_stored(due)

    def _hours_containing(self, local: datetime) -> tuple[datetime, datetime]:
        for day in (local.date() - timedelta(days=1), local.date()):
            hours = self.hours_on(day)
            if hours and hours[0] <= local < hours[1]:
                return hours
        raise AssertionError("cursor is always inside opening hours")


Quiet = tuple[time, time]  # (start, end) of quiet hours, local; past midnight when start > end


def is_quiet(at: datetime, quiet: Quiet, zone: tzinfo) -> bool:
    """Whether `at` falls in the quiet hours (no call, SMS or push then), in `zone`'s time."""
    start, end = quiet
    t = at.astimezone(zone).time()
    return (start <= t or t < end) if start > end else (start <= t < end)


def quiet_ends(at: datetime, quiet: Quiet, zone: tzinfo) -> datetime:
    """The first moment outside the quiet hours at or after `at`."""
    if not is_quiet(at, quiet, zone):
        return at
    local = at.astimezone(zone)
    end = datetime.combine(local.date(), quiet[1], tzinfo=zone)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(timezone.utc)


def parse_hours(text: str) -> tuple[time, time]:
    """'10:00-22:00' -> (time(10), time(22))."""
    opening, closing = (time.fromisoformat(part.strip()) for part in text.split("-"))
    return opening, closing


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: mallcare works with timezone-aware times only")


class Clock(DependencyProvider):
    """Gives workers `now()` as an aware UTC datetime; tests replace it."""

    def get_dependency(self, worker_ctx: Any) -> Any:
        return utc_now


def utc_now() -> datetime:
    return as_stored(datetime.now(timezone.utc))


def as_stored(at: datetime) -> datetime:
    """UTC at millisecond precision, as BSON stores it, so what an API returns equals what was stored."""
    return at.astimezone(timezone.utc).replace(microsecond=at.microsecond // 1000 * 1000)
