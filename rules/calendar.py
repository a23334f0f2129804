"""Business-hours calendars: when the SLA clock runs, and when a deadline falls.

`CalendarSpec` is the validated configuration (to sit in the rulebook);
`compile_calendar(spec)` turns it into a `Calendar` that answers `is_open`,
`next_open`, `add_working_time` and `working_time_between`. Every answer is an
aware UTC datetime or a `timedelta`; inputs must be aware and are treated as
instants (converted to UTC first), never as wall-clock readings.

Opening hours are local wall-clock intervals, half-open: open at 09:00, closed
at 17:00. Each interval is mapped to the real instants at which the local clock
shows its start and end, and working time is the real time elapsed between
them. So a 09:00-17:00 day is 8 hours even on a DST-change date (the change
happens outside it), while a 00:00-24:00 day is 23 or 25 hours when the change
falls inside it. Wall times the clock skips (spring forward) are reached at the
transition instant, so "02:30" on such a day means the moment the clock jumps
to 03:00; wall times that happen twice (fall back) mean the first occurrence.
Both mappings are monotonic, so deadlines never run backwards.

A holiday (an explicit date, or a public holiday of `holiday_country` from the
`holidays` package) closes the whole local date. Nothing here reads the clock
or does I/O beyond zoneinfo's tz data and the holidays package's tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

from rules.events import CountryCode

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar that finds no opening within this many consecutive local days is broken.
MAX_CLOSED_DAYS = 366

_INTERVAL = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
# Per-date spans are cheap to rebuild; the cap only stops a long-lived process growing.
_SPAN_CACHE_SIZE = 4096

Minutes = tuple[int, int]
Span = tuple[datetime, datetime]


def _minutes(interval: str) -> Minutes:
    m = _INTERVAL.match(interval)
    if m is None:
        raise ValueError(f"expected 'HH:MM-HH:MM', got {interval!r}")
    sh, sm, eh, em = (int(g) for g in m.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{interval!r} is not a time of day (00:00 to 24:00)")
    start, end = sh * 60 + sm, eh * 60 + em
    if start >= end:
        raise ValueError(f"{interval!r}: start must be before end (an interval cannot span midnight)")
    return start, end


def _check_interval(interval: str) -> str:
    _minutes(interval)
    return interval


Interval = Annotated[str, AfterValidator(_check_interval)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeeklyHours(_Strict):
    """Opening intervals per weekday, e.g. `mon: ["09:00-12:00", "13:00-17:30"]`.

    A day absent, null or empty is closed. `24:00` is allowed as an end; to stay
    open across midnight, end one day at 24:00 and start the next at 00:00.
    """

    mon: tuple[Interval, ...] = ()
    tue: tuple[Interval, ...] = ()
    wed: tuple[Interval, ...] = ()
    thu: tuple[Interval, ...] = ()
    fri: tuple[Interval, ...] = ()
    sat: tuple[Interval, ...] = ()
    sun: tuple[Interval, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _known_weekdays(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key not in WEEKDAYS:
                    raise ValueError(f"unknown weekday {key!r}; expected one of {', '.join(WEEKDAYS)}")
        return data

    @field_validator(*WEEKDAYS, mode="before")
    @classmethod
    def _closed_or_single(cls, value: Any) -> Any:
        # YAML `sat:` is null (closed); `mon: "09:00-17:00"` is one interval.
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _no_overlap(self) -> WeeklyHours:
        for day in WEEKDAYS:
            ordered = sorted(getattr(self, day), key=_minutes)
            for before, after in pairwise(ordered):
                if _minutes(after)[0] < _minutes(before)[1]:
                    raise ValueError(f"{day}: {before!r} overlaps {after!r}")
        return self

    def by_weekday(self) -> tuple[tuple[Minutes, ...], ...]:
        """Minutes since local midnight, sorted and merged where they touch; Monday first."""
        week = []
        for day in WEEKDAYS:
            merged: list[Minutes] = []
            for start, end in sorted(_minutes(i) for i in getattr(self, day)):
                if merged and merged[-1][1] == start:
                    merged[-1] = (merged[-1][0], end)
                else:
                    merged.append((start, end))
            week.append(tuple(merged))
        return tuple(week)


class CalendarSpec(_Strict):
    """When the SLA clock runs: always (`24x7`) or during `hours` in `timezone`, minus holidays."""

    kind: Literal["24x7", "business_hours"] = "24x7"
    timezone: str = "UTC"
    hours: WeeklyHours | None = None
    holidays: tuple[date, ...] = ()
    holiday_country: CountryCode | None = None
    holiday_subdivision: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        return check_timezone(name)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        if self.kind == "24x7":
            if self.hours is not None or self.holidays or self.holiday_country:
                raise ValueError("hours and holidays apply only to kind 'business_hours'")
        elif self.hours is None:
            raise ValueError("kind 'business_hours' needs hours")
        elif not any(self.hours.by_weekday()):
            raise ValueError("hours has no open time: the calendar would never be open")
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise ValueError("holiday_subdivision needs holiday_country")
        # The country alone first, so that a bad subdivision is not blamed on the country.
        country = self.holiday_country or ""
        for subdiv in (None, self.holiday_subdivision) if country else ():
            try:
                holidays_lib.country_holidays(country, subdiv=subdiv)
            except NotImplementedError:
                what = f"holiday_subdivision {subdiv!r} for" if subdiv else "holiday_country"
                raise ValueError(f"unknown {what} {country!r} (see the holidays package)") from None
        return self


def check_timezone(name: str) -> str:
    """`name` if it is an IANA zone this machine knows, else ValueError with a clear message."""
    if name == "localtime":
        raise ValueError("timezone 'localtime' depends on the host; name an IANA zone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown IANA timezone {name!r} (expected a name such as 'America/New_York' or 'UTC')"
        ) from None
    return name


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class Calendar:
    """A compiled `CalendarSpec`. Logically immutable; holiday years and per-date
    open spans are memoised inside, so calls after the first for a date are cheap."""

    __slots__ = ("_closed_years", "_last_open", "_open_around", "_spans", "_tz", "_week", "spec")

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self._tz = ZoneInfo(spec.timezone)
        self._week = spec.hours.by_weekday() if spec.kind == "business_hours" and spec.hours else None
        self._closed_years: dict[int, frozenset[date]] = {}
        self._spans: dict[date, tuple[Span, ...]] = {}
        # Local date -> the open spans of the day before and of that date: all `is_open` reads.
        self._open_around: dict[date, tuple[Span, ...]] = {}
        # Reps share calendars and one routing decision asks about one instant for
        # every candidate: remember the last answer.
        self._last_open: tuple[datetime, bool] | None = None

    def is_open(self, at: datetime) -> bool:
        """Whether the SLA clock runs at `at` (open intervals include their start, not their end)."""
        last = self._last_open
        if last is not None and last[0] == at:
            return last[1]
        s = at if at.tzinfo is UTC else _utc(at, "at")  # UTC already: the usual case, nothing to check
        if self._week is None:
            return True
        day = s.astimezone(self._tz).date()
        spans = self._open_around.get(day)
        if spans is None:
            if len(self._open_around) >= _SPAN_CACHE_SIZE:
                self._open_around.clear()
            spans = self._open_around[day] = self._day_spans(day - _DAY) + self._day_spans(day)
        result = False
        for a, b in spans:
            if a <= s < b:
                result = True
                break
        self._last_open = (at, result)
        return result

    def next_open(self, at: datetime) -> datetime:
        """`at` (in UTC) if open, else the next opening; ValueError if none within 366 days."""
        return self.add_working_time(_utc(at, "at"), timedelta(0))

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The UTC instant at which `amount` of working time has elapsed since `start`.

        Closed time before `start`'s next opening does not count. When the amount
        runs out exactly at a closing time, the deadline is that closing instant
        (17:00, not the next morning), so for a positive amount the calendar is
        always open just before the deadline. A zero amount gives `next_open(start)`.
        """
        s = _utc(start, "start")
        if amount < timedelta(0):
            raise ValueError(f"amount must not be negative, got {amount}")
        if self._week is None:
            return s + amount
        remaining = amount
        for a, b in self._spans_from(s):
            if b <= s:
                continue
            a = max(a, s)
            if remaining <= b - a:
                return a + remaining
            remaining -= b - a
        raise AssertionError("unreachable: _spans_from never ends")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end), exact to the microsecond; zero if end <= start."""
        s, e = _utc(start, "start"), _utc(end, "end")
        if e <= s:
            return timedelta(0)
        if self._week is None:
            return e - s
        total = timedelta(0)
        day, last = self._local_date(s) - _DAY, self._local_date(e) + _DAY
        while day <= last:
            for a, b in self._day_spans(day):
                lo, hi = max(a, s), min(b, e)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._tz).date()

    def _spans_from(self, s: datetime) -> Iterator[Span]:
        """Open spans in time order from the local day before `s`; endless unless broken."""
        closed_since = self._local_date(s)
        day = closed_since - _DAY
        while day - closed_since <= MAX_CLOSED_DAYS * _DAY:
            spans = self._day_spans(day)
            day += _DAY
            if spans:
                closed_since = day
                yield from spans
        raise ValueError(
            f"no opening in the {MAX_CLOSED_DAYS} local days from {closed_since}"
            f" ({self.spec.timezone}): check the calendar's hours and holidays"
        )

    def _day_spans(self, day: date) -> tuple[Span, ...]:
        """The open (start, end) instants of a local date, memoised."""
        spans = self._spans.get(day)
        if spans is None:
            assert self._week is not None
            intervals = () if day in self._closed_dates(day.year) else self._week[day.weekday()]
            midnight, to_utc = datetime.combine(day, time(), tzinfo=self._tz), self._wall_to_utc
            pairs = (
                (to_utc(midnight + lo * _MINUTE), to_utc(midnight + hi * _MINUTE)) for lo, hi in intervals
            )
            spans = tuple((a, b) for a, b in pairs if b > a)  # a span inside a skipped hour never opens
            if len(self._spans) >= _SPAN_CACHE_SIZE:
                self._spans.clear()
            self._spans[day] = spans
        return spans

    def _closed_dates(self, year: int) -> frozenset[date]:
        closed = self._closed_years.get(year)
        if closed is None:
            dates = {d for d in self.spec.holidays if d.year == year}
            if self.spec.holiday_country is not None:
                dates.update(
                    holidays_lib.country_holidays(
                        self.spec.holiday_country, subdiv=self.spec.holiday_subdivision, years=year
                    ).keys()
                )
            closed = self._closed_years[year] = frozenset(dates)
        return closed

    def _wall_to_utc(self, wall: datetime) -> datetime:
        """The instant the local clock shows `wall` (fold=0: first of two, or the jump over a gap)."""
        utc = wall.astimezone(UTC)
        if utc.astimezone(self._tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
            return utc
        # Skipped by a forward jump: fold=1 maps it before the jump, fold=0 after; bisect to the jump.
        lo, hi = wall.replace(fold=1).astimezone(UTC), utc
        after = hi.astimezone(self._tz).utcoffset()
        while hi - lo > _MICROSECOND:
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self._tz).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return hi


def compile_calendar(spec: CalendarSpec) -> Calendar:
    """Build the calendar for a spec (cheap; holiday tables load lazily per year)."""
    return Calendar(spec)
