"""Business-hours calendars: opening hours, holidays, DST, and SLA deadlines on them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.calendar import MAX_CLOSED_DAYS, Calendar, CalendarSpec, WeeklyHours, compile_calendar
from rules.sla import first_touch_due

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
PROPERTY = settings(database=None, deadline=None, max_examples=120)
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def business(timezone: str, hours: dict[str, Any] | None = None, **extra: Any) -> Calendar:
    """A business_hours calendar; Mon-Fri 09:00-17:00 unless `hours` is given."""
    week = hours if hours is not None else dict.fromkeys(WORKDAYS, ("09:00-17:00",))
    return compile_calendar(
        CalendarSpec.model_validate({"kind": "business_hours", "timezone": timezone, "hours": week, **extra})
    )


CALENDARS = {
    "ny": business("America/New_York"),
    "ny_us": business("America/New_York", holiday_country="US"),
    "ny_feb9_off": business("America/New_York", holidays=["2026-02-09"]),
    "berlin": business("Europe/Berlin"),
    "berlin_de": business("Europe/Berlin", holiday_country="DE"),
    "berlin_by": business("Europe/Berlin", holiday_country="DE", holiday_subdivision="BY"),
    "lunch": business("Europe/Berlin", dict.fromkeys(WORKDAYS, ("09:00-12:00", "13:00-17:30"))),
    "night": business("Europe/Berlin", {"mon": ["20:00-24:00"], "tue": ["00:00-06:00"]}),
    "24x7": compile_calendar(CalendarSpec(kind="24x7", timezone="America/New_York")),
}


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz, fold=fold)


def tz_of(name: str) -> ZoneInfo:
    return ZoneInfo(CALENDARS[name].spec.timezone)


# 2026-02-06 is a Friday; 2026-02-09 the Monday after.
@pytest.mark.parametrize(
    ("name", "start", "minutes", "due"),
    [
        ("ny", (2026, 2, 6, 16, 58), 5, (2026, 2, 9, 9, 3)),
        ("berlin", (2026, 2, 6, 16, 58), 5, (2026, 2, 9, 9, 3)),
        ("ny", (2026, 2, 6, 17, 58), 5, (2026, 2, 9, 9, 5)),
        ("ny", (2026, 2, 6, 16, 55), 5, (2026, 2, 6, 17, 0)),
        ("ny_feb9_off", (2026, 2, 6, 16, 58), 5, (2026, 2, 10, 9, 3)),
        ("lunch", (2026, 2, 10, 11, 58), 5, (2026, 2, 10, 13, 3)),
        ("lunch", (2026, 2, 10, 17, 28), 5, (2026, 2, 11, 9, 3)),
        ("ny", (2026, 2, 10, 7, 0), 5, (2026, 2, 10, 9, 5)),
        ("ny", (2026, 2, 7, 12, 0), 5, (2026, 2, 9, 9, 5)),
        ("ny", (2026, 2, 9, 9, 0), 20 * 60, (2026, 2, 11, 13, 0)),
        ("ny", (2026, 11, 25, 16, 58), 5, (2026, 11, 26, 9, 3)),
        ("ny_us", (2026, 11, 25, 16, 58), 5, (2026, 11, 27, 9, 3)),
        ("berlin_de", (2026, 12, 24, 16, 58), 5, (2026, 12, 28, 9, 3)),
        ("berlin_de", (2026, 1, 5, 16, 58), 5, (2026, 1, 6, 9, 3)),
        ("berlin_by", (2026, 1, 5, 16, 58), 5, (2026, 1, 7, 9, 3)),
        ("night", (2026, 2, 9, 23, 58), 5, (2026, 2, 10, 0, 3)),
        ("night", (2026, 2, 9, 12, 0), 5, (2026, 2, 9, 20, 5)),
        ("24x7", (2026, 2, 6, 16, 58), 5, (2026, 2, 6, 17, 3)),
        ("24x7", (2026, 2, 7, 3, 0), 0, (2026, 2, 7, 3, 0)),
    ],
    ids=[
        "ny-friday-to-monday",
        "berlin-friday-to-monday",
        "after-close-starts-at-next-opening",
        "runs-out-exactly-at-closing",
        "explicit-holiday-monday",
        "lunch-gap",
        "lunch-calendar-overnight",
        "before-opening",
        "weekend-start",
        "several-days",
        "no-country-thanksgiving-is-a-workday",
        "us-thanksgiving",
        "de-christmas",
        "de-epiphany-is-a-workday",
        "bavaria-epiphany",
        "open-across-midnight-24:00",
        "night-shift-opens-at-20:00",
        "24x7-passthrough",
        "24x7-zero",
    ],
)
def test_add_working_time(name: str, start: tuple[int, ...], minutes: int, due: tuple[int, ...]) -> None:
    """The deadline is when that much working time has run, in the calendar's local hours; as UTC."""
    tz = tz_of(name)
    deadline = CALENDARS[name].add_working_time(at(tz, *start), timedelta(minutes=minutes))
    assert deadline == at(tz, *due)
    assert deadline.tzinfo is UTC


def test_24x7_matches_first_touch_due() -> None:
    """A 24x7 calendar gives the same deadline as the foundation's first_touch_due."""
    start = datetime(2026, 3, 8, 6, 59, tzinfo=UTC)
    for target in (MINUTE, 5 * MINUTE, 3 * HOUR):
        assert CALENDARS["24x7"].add_working_time(start, target) == first_touch_due(start, target)


@pytest.mark.parametrize(
    ("name", "moment", "expected"),
    [
        ("ny", (2026, 2, 9, 9, 0), True),
        ("ny", (2026, 2, 9, 8, 59), False),
        ("ny", (2026, 2, 9, 17, 0), False),
        ("ny", (2026, 2, 7, 12, 0), False),
        ("ny_us", (2026, 11, 26, 12, 0), False),
        ("ny_feb9_off", (2026, 2, 9, 12, 0), False),
        ("lunch", (2026, 2, 10, 12, 30), False),
        ("lunch", (2026, 2, 10, 17, 29), True),
        ("night", (2026, 2, 10, 0, 0), True),
        ("night", (2026, 2, 10, 6, 0), False),
        ("24x7", (2026, 2, 7, 3, 0), True),
    ],
)
def test_is_open(name: str, moment: tuple[int, ...], expected: bool) -> None:
    """Intervals are half-open: open at their start, closed at their end; holidays close the day."""
    assert CALENDARS[name].is_open(at(tz_of(name), *moment)) is expected


def test_open_until_the_last_microsecond() -> None:
    """A calendar open until 17:00 is open at 16:59:59.999999."""
    assert CALENDARS["ny"].is_open(at(NY, 2026, 2, 9, 17) - timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("name", "moment", "expected"),
    [
        ("ny", (2026, 2, 9, 10, 0), (2026, 2, 9, 10, 0)),
        ("ny", (2026, 2, 6, 17, 0), (2026, 2, 9, 9, 0)),
        ("ny_us", (2026, 11, 25, 18, 0), (2026, 11, 27, 9, 0)),
        ("lunch", (2026, 2, 10, 12, 0), (2026, 2, 10, 13, 0)),
        ("24x7", (2026, 2, 7, 3, 0), (2026, 2, 7, 3, 0)),
    ],
)
def test_next_open(name: str, moment: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """next_open is the instant itself when open, else the next opening, in UTC."""
    tz = tz_of(name)
    result = CALENDARS[name].next_open(at(tz, *moment))
    assert result == at(tz, *expected)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("name", "start", "end", "expected"),
    [
        ("ny", (2026, 2, 6, 16, 58), (2026, 2, 9, 9, 3), 5 * MINUTE),
        ("ny", (2026, 2, 9, 0, 0), (2026, 2, 16, 0, 0), 40 * HOUR),
        ("ny_us", (2026, 11, 23, 0, 0), (2026, 11, 30, 0, 0), 32 * HOUR),
        ("lunch", (2026, 2, 10, 0, 0), (2026, 2, 11, 0, 0), 7.5 * HOUR),
        ("ny", (2026, 2, 9, 12, 0), (2026, 2, 9, 12, 0), timedelta(0)),
        ("ny", (2026, 2, 9, 12, 0), (2026, 2, 9, 11, 0), timedelta(0)),
        ("24x7", (2026, 2, 9, 12, 0), (2026, 2, 10, 12, 0), 24 * HOUR),
        ("24x7", (2026, 2, 10, 12, 0), (2026, 2, 9, 12, 0), timedelta(0)),
    ],
)
def test_working_time_between(
    name: str, start: tuple[int, ...], end: tuple[int, ...], expected: timedelta
) -> None:
    """Working time counts only open hours, and is zero when end <= start."""
    tz = tz_of(name)
    assert CALENDARS[name].working_time_between(at(tz, *start), at(tz, *end)) == expected


def test_long_spans_are_exact_past_the_internal_cache() -> None:
    """Fifteen years of Mon-Fri 09:00-17:00 is 8 hours per weekday (spans thousands of dates)."""
    start, end = date(2020, 1, 1), date(2035, 1, 1)
    weekdays = sum((start + timedelta(days=i)).weekday() < 5 for i in range((end - start).days))
    total = CALENDARS["ny"].working_time_between(at(NY, 2020, 1, 1), at(NY, 2035, 1, 1))
    assert total == weekdays * 8 * HOUR


# --- DST ------------------------------------------------------------------------------------------

TRANSITIONS = [
    pytest.param("America/New_York", date(2026, 3, 8), 23, id="ny-spring"),
    pytest.param("America/New_York", date(2026, 11, 1), 25, id="ny-fall"),
    pytest.param("Europe/Berlin", date(2026, 3, 29), 23, id="berlin-spring"),
    pytest.param("Europe/Berlin", date(2026, 10, 25), 25, id="berlin-fall"),
]


def day_bounds(tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    return at(tz, day.year, day.month, day.day), at(tz, *(day + timedelta(days=1)).timetuple()[:3])


@pytest.mark.parametrize(("timezone", "day", "hours"), TRANSITIONS)
def test_dst_inside_the_open_interval_counts_real_time(timezone: str, day: date, hours: int) -> None:
    """Open 00:00-24:00 on a DST-change Sunday: the day holds 23 or 25 real hours of working time."""
    cal = business(timezone, {"sun": ["00:00-24:00"]})
    start, end = day_bounds(ZoneInfo(timezone), day)
    assert cal.working_time_between(start, end) == hours * HOUR
    assert cal.add_working_time(start, hours * HOUR) == end
    # Across the change, an hour of working time is an hour of real time.
    one_thirty = start + timedelta(hours=1, minutes=30)
    assert cal.add_working_time(one_thirty, HOUR) == one_thirty.astimezone(UTC) + HOUR


@pytest.mark.parametrize(("timezone", "day", "hours"), TRANSITIONS)
def test_dst_outside_the_open_interval_keeps_wall_hours(timezone: str, day: date, hours: int) -> None:
    """Open 09:00-17:00 on a DST-change Sunday: still 8 hours, opening at 09:00 local after the change."""
    del hours
    tz = ZoneInfo(timezone)
    cal = business(timezone, {"sun": ["09:00-17:00"]})
    start, end = day_bounds(tz, day)
    assert cal.working_time_between(start, end) == 8 * HOUR
    assert cal.next_open(start) == at(tz, day.year, day.month, day.day, 9)
    assert not cal.is_open(start + 2 * HOUR)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (at(NY, 2026, 3, 6, 16, 58), datetime(2026, 3, 9, 13, 3, tzinfo=UTC)),
        (at(NY, 2026, 10, 30, 16, 58), datetime(2026, 11, 2, 14, 3, tzinfo=UTC)),
        (at(BERLIN, 2026, 3, 27, 16, 58), datetime(2026, 3, 30, 7, 3, tzinfo=UTC)),
        (at(BERLIN, 2026, 10, 23, 16, 58), datetime(2026, 10, 26, 8, 3, tzinfo=UTC)),
    ],
    ids=["ny-spring", "ny-fall", "berlin-spring", "berlin-fall"],
)
def test_friday_to_monday_over_a_dst_weekend(start: datetime, due: datetime) -> None:
    """Over a DST weekend the Monday deadline is 09:03 local, i.e. a different UTC hour than Friday's."""
    assert CALENDARS["ny" if start.tzinfo is NY else "berlin"].add_working_time(start, 5 * MINUTE) == due


@pytest.mark.parametrize(
    ("timezone", "day", "interval", "opens", "worked"),
    [
        # NY 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:xx never happens.
        ("America/New_York", date(2026, 3, 8), "01:00-02:30", (6, 0), HOUR),
        ("America/New_York", date(2026, 3, 8), "02:30-05:00", (7, 0), 2 * HOUR),
        ("America/New_York", date(2026, 3, 8), "02:15-02:45", None, timedelta(0)),
        # NY 2026-11-01: 01:xx happens twice (EDT, then EST); the first one counts.
        ("America/New_York", date(2026, 11, 1), "01:30-03:00", (5, 30), 2.5 * HOUR),
        # Berlin 2026-10-25: 02:xx happens twice (CEST, then CET).
        ("Europe/Berlin", date(2026, 10, 25), "02:30-03:30", (0, 30), 2 * HOUR),
        ("Europe/Berlin", date(2026, 3, 29), "02:30-04:00", (1, 0), HOUR),
    ],
)
def test_skipped_and_repeated_wall_times(
    timezone: str, day: date, interval: str, opens: tuple[int, int] | None, worked: timedelta
) -> None:
    """A skipped boundary is reached at the jump; a repeated one at its first occurrence."""
    tz = ZoneInfo(timezone)
    cal = business(timezone, {"sun": [interval]})
    start, end = day_bounds(tz, day)
    assert cal.working_time_between(start, end) == worked
    if opens is not None:
        first = datetime(day.year, day.month, day.day, *opens, tzinfo=UTC)
        assert cal.next_open(start) == first
        assert cal.add_working_time(start, worked) == first + worked


def test_skipped_and_repeated_inputs_do_not_crash() -> None:
    """Aware inputs at skipped or repeated local times are instants like any other; results stay ordered."""
    cal = business("America/New_York", {"sun": ["00:00-24:00"], "mon": ["09:00-17:00"]})
    first, second = at(NY, 2026, 11, 1, 1, 30, fold=0), at(NY, 2026, 11, 1, 1, 30, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == HOUR
    assert cal.add_working_time(first, HOUR) == cal.add_working_time(second, timedelta(0))
    skipped = at(NY, 2026, 3, 8, 2, 30)  # does not exist; zoneinfo reads it as 07:30 UTC
    assert cal.add_working_time(skipped, HOUR) == datetime(2026, 3, 8, 8, 30, tzinfo=UTC)
    assert cal.is_open(skipped)


# --- properties -----------------------------------------------------------------------------------

PROPERTY_CALENDARS = {
    "ny_us": CALENDARS["ny_us"],
    "berlin_lunch_by": business(
        "Europe/Berlin",
        dict.fromkeys(WORKDAYS, ("08:00-12:00", "13:00-17:30")),
        holiday_country="DE",
        holiday_subdivision="BY",
    ),
    "24x7": CALENDARS["24x7"],
    "ny_dst_edges": business(
        "America/New_York",
        {
            "sun": ["01:00-02:30", "03:00-24:00"],
            "mon": ["00:00-09:00", "09:00-17:00"],
            "sat": ["01:30-02:00"],
        },
    ),
}
DST_CHANGES = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
]
calendars = st.sampled_from(sorted(PROPERTY_CALENDARS)).map(PROPERTY_CALENDARS.__getitem__)
instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda t, m: t + timedelta(minutes=m), st.sampled_from(DST_CHANGES), st.integers(-4320, 4320)),
)
amounts = st.one_of(
    st.integers(0, 600).map(lambda m: m * MINUTE),
    st.timedeltas(timedelta(0), timedelta(days=10)),
)


@PROPERTY
@given(cal=calendars, start=instants, amount=amounts)
def test_deadline_is_never_in_closed_time(cal: Calendar, start: datetime, amount: timedelta) -> None:
    """A positive amount ends inside open time or exactly at a closing instant (open just before it);
    a zero amount ends at the next opening."""
    deadline = cal.add_working_time(start, amount)
    assert deadline >= start
    if amount > timedelta(0):
        assert cal.is_open(deadline - timedelta(microseconds=1))
    else:
        assert deadline == cal.next_open(start)
        assert cal.is_open(deadline)


@PROPERTY
@given(cal=calendars, start=instants, amount=amounts)
def test_working_time_round_trips_exactly(cal: Calendar, start: datetime, amount: timedelta) -> None:
    """working_time_between(start, add_working_time(start, d)) == d, to the microsecond (no rounding)."""
    assert cal.working_time_between(start, cal.add_working_time(start, amount)) == amount


@PROPERTY
@given(cal=calendars, starts=st.lists(instants, min_size=2, max_size=2), amount=amounts)
def test_later_start_never_gives_earlier_deadline(
    cal: Calendar, starts: list[datetime], amount: timedelta
) -> None:
    """start1 <= start2 implies deadline1 <= deadline2."""
    early, late = sorted(starts)
    assert cal.add_working_time(early, amount) <= cal.add_working_time(late, amount)


@PROPERTY
@given(cal=calendars, start=instants, pair=st.lists(amounts, min_size=2, max_size=2))
def test_larger_amount_never_gives_earlier_deadline(
    cal: Calendar, start: datetime, pair: list[timedelta]
) -> None:
    """amount1 <= amount2 implies deadline1 <= deadline2."""
    small, large = sorted(pair)
    assert cal.add_working_time(start, small) <= cal.add_working_time(start, large)


@PROPERTY
@given(cal=calendars, moments=st.lists(instants, min_size=3, max_size=3))
def test_working_time_is_additive(cal: Calendar, moments: list[datetime]) -> None:
    """Working time over [a, c) is the sum over [a, b) and [b, c)."""
    a, b, c = sorted(moments)
    assert cal.working_time_between(a, b) + cal.working_time_between(b, c) == cal.working_time_between(a, c)


@PROPERTY
@given(
    cal=calendars,
    local=st.datetimes(datetime(2026, 3, 7), datetime(2026, 3, 10), timezones=st.just(NY)),
    other=st.datetimes(datetime(2026, 10, 31), datetime(2026, 11, 3), timezones=st.just(NY)),
)
def test_local_inputs_with_folds_and_gaps(cal: Calendar, local: datetime, other: datetime) -> None:
    """Aware local inputs, including skipped and repeated wall times, give ordered results by instant."""
    early, late = sorted((local, other), key=lambda d: d.astimezone(UTC))
    assert cal.add_working_time(early, 5 * MINUTE) <= cal.add_working_time(late, 5 * MINUTE)
    assert cal.next_open(early) <= cal.next_open(late)


# --- validation and guards ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "America/New_Yrok"}, "unknown IANA timezone 'America/New_Yrok'"),
        ({"timezone": "America"}, "unknown IANA timezone 'America'"),
        ({"timezone": "../etc/passwd"}, "unknown IANA timezone"),
        ({"timezone": "localtime"}, "depends on the host"),
        ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "mon: '09:00-12:00' overlaps '11:00-13:00'"),
        ({"hours": {"mon": ["17:00-09:00"]}}, "start must be before end"),
        ({"hours": {"mon": ["09:00-09:00"]}}, "start must be before end"),
        ({"hours": {"mon": ["9-17"]}}, "expected 'HH:MM-HH:MM'"),
        ({"hours": {"mon": ["09:00-24:30"]}}, "not a time of day"),
        ({"hours": {"mon": ["09:60-10:00"]}}, "not a time of day"),
        ({"hours": {"monday": ["09:00-17:00"]}}, "unknown weekday 'monday'"),
        ({"hours": None}, "kind 'business_hours' needs hours"),
        ({"hours": {}}, "no open time"),
        ({"hours": {"sat": [], "sun": None}}, "no open time"),
        ({"holiday_country": "XX"}, "unknown holiday_country 'XX'"),
        ({"holiday_country": "USA"}, "String should match pattern"),
        ({"holiday_country": "DE", "holiday_subdivision": "ZZ"}, "unknown holiday_subdivision 'ZZ' for 'DE'"),
        ({"holiday_subdivision": "BY"}, "holiday_subdivision needs holiday_country"),
        ({"holidays": ["2026-02-30"]}, "holidays.0"),
        ({"kind": "24x7"}, "apply only to kind 'business_hours'"),
        ({"kind": "8x5"}, "Input should be '24x7' or 'business_hours'"),
        ({"holiday_calendar": "US"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_are_rejected(data: dict[str, Any], message: str) -> None:
    """A bad calendar fails validation with an error that names the problem."""
    base: dict[str, Any] = {
        "kind": "business_hours",
        "timezone": "UTC",
        "hours": {"mon": ["09:00-17:00"]},
    }
    with pytest.raises(ValidationError, match=message):
        CalendarSpec.model_validate({**base, **data})


def test_specs_parse_as_people_write_them() -> None:
    """Null days are closed, a single string is one interval, touching intervals merge, codes upper-case."""
    hours = WeeklyHours.model_validate(
        {"mon": "09:00-12:00", "tue": ["13:00-17:00", "09:00-13:00"], "sat": None}
    )
    assert hours.by_weekday() == (((540, 720),), ((540, 1020),), (), (), (), (), ())
    spec = CalendarSpec.model_validate(
        {"kind": "business_hours", "hours": hours, "holiday_country": "us", "holidays": ["2026-02-09"]}
    )
    assert spec.holiday_country == "US"
    assert spec.holidays == (date(2026, 2, 9),)
    assert CalendarSpec().kind == "24x7"
    with pytest.raises(ValidationError, match="frozen"):
        spec.timezone = "Europe/Berlin"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["ny", "24x7"])
def test_naive_datetimes_are_rejected(name: str) -> None:
    """Every entry point refuses naive datetimes instead of guessing a zone."""
    cal, naive, aware = CALENDARS[name], datetime(2026, 2, 9, 12), datetime(2026, 2, 9, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.next_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_working_time(naive, MINUTE)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.working_time_between(aware, naive)


def test_negative_amount_is_rejected() -> None:
    """Working time cannot run backwards."""
    with pytest.raises(ValueError, match="must not be negative"):
        CALENDARS["ny"].add_working_time(datetime(2026, 2, 9, 12, tzinfo=UTC), -MINUTE)


def test_search_for_an_opening_gives_up_after_a_year() -> None:
    """Holidays that close every open day for over a year raise ValueError instead of looping."""
    first = date(2026, 1, 1)
    cal = business("UTC", {"mon": ["09:00-10:00"]}, holidays=[first + timedelta(days=i) for i in range(400)])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=f"no opening in the {MAX_CLOSED_DAYS} local days from 2026-01-01"):
        cal.next_open(start)
    with pytest.raises(ValueError, match="no opening"):
        cal.add_working_time(start, MINUTE)
    assert not cal.is_open(start)
    assert cal.working_time_between(start, start + timedelta(days=400)) == timedelta(0)


def test_long_amounts_are_not_mistaken_for_a_closed_calendar() -> None:
    """The one-year guard is about finding an opening: 60 hours at one hour a week takes 60 weeks."""
    cal = business("UTC", {"mon": ["09:00-10:00"]})
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
    assert cal.add_working_time(start, 60 * HOUR) == start + timedelta(weeks=59, hours=1)
