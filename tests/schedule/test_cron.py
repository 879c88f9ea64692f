"""Cron expressions: parsing, errors naming the field, Vixie's day rule, and fire times across DST."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine.windows import first_instant
from orchestrator.errors import InputError, InternalError
from orchestrator.schedule.cron import CronExpr, latest_occurrence, next_fire, next_occurrence, occurrences

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
LHI = ZoneInfo("Australia/Lord_Howe")  # DST moves the clock by 30 minutes
DST_ZONES = (AMS, NYC, LHI)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0
) -> datetime:
    """A wall time in ``zone`` as a UTC instant (aware datetimes in a repeated hour never compare
    equal across zones, PEP 495, so tests compare UTC instants)."""
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def chain(expr: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    fires, at = [], start
    for _ in range(count):
        at = next_fire(expr, zone, at)
        fires.append(at)
    return fires


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes", "hours", "days", "months", "weekdays"),
    [
        ("0 2 * * *", {0}, {2}, set(range(1, 32)), set(range(1, 13)), set(range(7))),
        (
            "*/15 8-18/5 * * MON-FRI",
            {0, 15, 30, 45},
            {8, 13, 18},
            set(range(1, 32)),
            set(range(1, 13)),
            {1, 2, 3, 4, 5},
        ),
        ("5,35 22 1,15 jan,Jul sun", {5, 35}, {22}, {1, 15}, {1, 7}, {0}),
        ("0 0 * * 7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}),  # 7 is Sunday
        ("0 0 * * 5-7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {5, 6, 0}),
        ("0 12 10-20/5 FEB-APR *", {0}, {12}, {10, 15, 20}, {2, 3, 4}, set(range(7))),
        ("@daily", {0}, {0}, set(range(1, 32)), set(range(1, 13)), set(range(7))),
        ("@hourly", {0}, set(range(24)), set(range(1, 32)), set(range(1, 13)), set(range(7))),
        ("@weekly", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}),
        ("  0   2 *  * *  ", {0}, {2}, set(range(1, 32)), set(range(1, 13)), set(range(7))),
    ],
)
def test_parse(
    text: str, minutes: set[int], hours: set[int], days: set[int], months: set[int], weekdays: set[int]
) -> None:
    expr = CronExpr.parse(text)
    assert (set(expr.minutes), set(expr.hours), set(expr.days), set(expr.months), set(expr.weekdays)) == (
        minutes,
        hours,
        days,
        months,
        weekdays,
    )
    assert CronExpr.parse(expr.text) == expr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 2 * *", "has 4 fields"),
        ("0 2 * * * *", "has 6 fields"),
        ("", "has 1 field:"),
        ("60 2 * * *", "minute 60 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 2 0 * *", "day of month 0 is out of range 1-31"),
        ("0 2 * 13 *", "month 13 is out of range 1-12"),
        ("0 2 * * 8", "day of week 8 is out of range 0-7"),
        ("0 2 * FOO *", "'FOO' is not a valid month (names: JAN"),
        ("0 2 * * MONDAY", "'MONDAY' is not a valid day of week"),
        ("0 2 * JAN-MON *", "'MON' is not a valid month"),
        ("0 18-6 * * *", "range 18-6 runs backwards"),
        ("*/0 * * * *", "a step of 0"),
        ("5/15 * * * *", "write 5-59/15"),
        ("1,,2 * * * *", "'' is not a valid minute item"),
        ("0 2 30 2 *", "never fires"),
        ("0 2 31 4,6,9,11 *", "never fires"),
        ("@reboot", "unknown macro '@reboot'"),
        ("0 2 * * ?", "'?' is not a valid day of week item"),
    ],
)
def test_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        CronExpr.parse(text, field_name="schedule.jobs.nightly.cron")
    assert caught.value.field == "schedule.jobs.nightly.cron"
    assert message in caught.value.message, caught.value.message


def test_february_29_is_a_real_date() -> None:
    fire = next_occurrence("0 0 29 2 *", "UTC", utc(2097, 3, 1))
    assert fire.local_date == date(2104, 2, 29)  # 2100 is no leap year


# --- the day-of-month / day-of-week rule --------------------------------------------------------


def fire_dates(expr: str, start: date, days: int) -> set[date]:
    cron = CronExpr.parse(expr)
    return {start + timedelta(days=n) for n in range(days) if cron.matches_day(start + timedelta(days=n))}


def test_vixie_or_rule_when_both_day_fields_are_restricted() -> None:
    # June 2026: Mondays are 1, 8, 15, 22, 29; the 13th is a Saturday
    dates = fire_dates("0 0 13 * MON", date(2026, 6, 1), 30)
    assert {d.day for d in dates} == {1, 8, 13, 15, 22, 29}


def test_and_rule_when_one_day_field_starts_with_a_star() -> None:
    assert {d.day for d in fire_dates("0 0 * * MON", date(2026, 6, 1), 30)} == {1, 8, 15, 22, 29}
    assert {d.day for d in fire_dates("0 0 13 * *", date(2026, 6, 1), 30)} == {13}
    # "*/2" starts with '*': Vixie cron treats it as unrestricted for the rule, so AND applies
    assert {d.day for d in fire_dates("0 0 */2 * MON", date(2026, 6, 1), 30)} == {1, 15, 29}


def test_months_restrict_both_day_fields() -> None:
    dates = fire_dates("0 0 1 JUN MON", date(2026, 5, 1), 62)
    assert all(d.month == 6 for d in dates)
    assert {d.day for d in dates} == {1, 8, 15, 22, 29}


# --- fire times -----------------------------------------------------------------------------------


def test_next_fire_is_strictly_after_and_in_utc() -> None:
    at = local(AMS, 2026, 6, 1, 2)
    fire = next_fire("0 2 * * *", AMS, at)
    assert fire == local(AMS, 2026, 6, 2, 2)
    assert fire.tzinfo is UTC
    assert next_fire("0 2 * * *", AMS, at - timedelta(seconds=1)) == at


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InternalError, match="timezone-aware"):
        next_fire("0 2 * * *", AMS, datetime(2026, 6, 1))


def test_spring_forward_fires_once_at_the_end_of_the_gap() -> None:
    # 2026-03-29: Amsterdam jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist
    fires = chain("30 2 * * *", AMS, local(AMS, 2026, 3, 27, 12), 3)
    assert fires == [local(AMS, 2026, 3, 28, 2, 30), utc(2026, 3, 29, 1, 0), local(AMS, 2026, 3, 30, 2, 30)]
    assert next_occurrence("30 2 * * *", AMS, local(AMS, 2026, 3, 28, 12)).local_time == time(2, 30)


def test_fall_back_fires_once_at_the_first_occurrence() -> None:
    # 2026-10-25: Amsterdam shows 02:00-02:59 twice (CEST, then CET)
    fires = chain("30 2 * * *", AMS, local(AMS, 2026, 10, 24, 12), 3)
    assert fires == [
        local(AMS, 2026, 10, 25, 2, 30),
        local(AMS, 2026, 10, 26, 2, 30),
        local(AMS, 2026, 10, 27, 2, 30),
    ]
    assert fires[0] == utc(2026, 10, 25, 0, 30)  # CEST, the first pass
    # asked between the two passes, the next fire is tomorrow's, not the second 02:30
    assert next_fire("30 2 * * *", AMS, utc(2026, 10, 25, 1, 0)) == local(AMS, 2026, 10, 26, 2, 30)


def test_skipped_slots_of_a_frequent_job_collapse_into_one_fire() -> None:
    fires = chain("*/30 * * * *", AMS, utc(2026, 3, 29, 0, 0), 4)
    # 01:30 CET, then 02:00, 02:30 (skipped) and 03:00 CEST are one fire at the jump
    assert fires == [
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2, 0),
    ]


def test_new_york_and_lord_howe_gaps() -> None:
    # New York 2026-03-08: 02:00 EST -> 03:00 EDT
    assert next_fire("15 2 * * *", NYC, local(NYC, 2026, 3, 7, 12)) == local(NYC, 2026, 3, 8, 3, 0)
    # Lord Howe 2026-10-04: 02:00 -> 02:30 (+10:30 -> +11:00); 02:10 fires at 02:30
    assert next_fire("10 2 * * *", LHI, local(LHI, 2026, 10, 3, 12)) == local(LHI, 2026, 10, 4, 2, 30)
    # Lord Howe 2026-04-05: 02:00 -> 01:30 (01:30-01:59 twice); 01:45 fires once, the first time
    fires = chain("45 1 * * *", LHI, local(LHI, 2026, 4, 4, 12), 2)
    assert fires == [local(LHI, 2026, 4, 5, 1, 45, fold=0), local(LHI, 2026, 4, 6, 1, 45)]


def test_occurrences_and_latest_occurrence() -> None:
    start = local(AMS, 2026, 6, 1, 0)
    found = list(occurrences("0 */6 * * *", AMS, start, start + timedelta(days=1)))
    assert [o.slot for o in found] == ["06:00", "12:00", "18:00", "00:00"]
    last = latest_occurrence("0 2 * * *", AMS, local(AMS, 2026, 6, 1, 2, 30), timedelta(hours=1))
    assert last is not None
    assert (last.at, last.local_date, last.slot) == (local(AMS, 2026, 6, 1, 2), date(2026, 6, 1), "02:00")
    assert latest_occurrence("0 2 * * *", AMS, local(AMS, 2026, 6, 1, 3, 30), timedelta(hours=1)) is None


# --- properties over zones with DST -----------------------------------------------------------------

zones = st.sampled_from(DST_ZONES)
# instants across several years, so both transitions of each zone are covered
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)
)
# every minute of the day is a candidate, including every time inside a DST gap or a repeated hour
daily_times = st.tuples(st.integers(0, 23), st.integers(0, 59))


@settings(max_examples=150, deadline=None)
@given(zone=zones, start=instants, hm=daily_times)
def test_a_daily_job_fires_exactly_once_on_every_local_date(
    zone: ZoneInfo, start: datetime, hm: tuple[int, int]
) -> None:
    hour, minute = hm
    expr = f"{minute} {hour} * * *"
    found = []
    at = start
    for _ in range(400):  # more than a year: both DST transitions
        occurrence = next_occurrence(expr, zone, at)
        assert occurrence.at > at
        found.append(occurrence)
        at = occurrence.at
    dates = [o.at.astimezone(zone).date() for o in found]
    # no local date twice, none skipped: the dates are consecutive days
    assert dates == [dates[0] + timedelta(days=n) for n in range(len(dates))]
    # the nominal date is the date the fire lands on
    assert [o.local_date for o in found] == dates
    # a fire is at the wall time asked for, or (only inside a gap) at the first instant after it
    for occurrence in found:
        wall = occurrence.at.astimezone(zone).replace(tzinfo=None)
        asked = datetime.combine(occurrence.local_date, time(hour, minute))
        assert wall >= asked
        assert wall - asked <= timedelta(hours=1)
        assert occurrence.at == first_instant(occurrence.local_date, hour * 60 + minute, zone)


cron_fields = st.tuples(
    st.sampled_from(["0", "*/20", "5,35", "0-10/5", "*/7"]),
    st.sampled_from(["*", "2", "1-3", "0,12", "*/5", "22-23"]),
    st.sampled_from(["*", "1", "1-7", "*/10", "15,31"]),
    st.sampled_from(["*", "3,10", "1-6", "OCT-DEC"]),
    st.sampled_from(["*", "SUN", "MON-FRI", "6", "0,3"]),
)


def oracle(expr: CronExpr, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire in (start, end] by brute force: each matching local day and slot mapped through
    first_instant, duplicates collapsed."""
    instants = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        if expr.matches_day(day):
            for hour in expr.hours:
                for minute in expr.minutes:
                    at = first_instant(day, hour * 60 + minute, zone)
                    if start < at <= end:
                        instants.add(at)
        day += timedelta(days=1)
    return sorted(instants)


@settings(max_examples=120, deadline=None)
@given(zone=zones, start=instants, fields=cron_fields)
def test_fires_are_strictly_increasing_and_match_a_brute_force_oracle(
    zone: ZoneInfo, start: datetime, fields: tuple[str, ...]
) -> None:
    expr = CronExpr.parse(" ".join(fields))
    end = start + timedelta(days=45)
    found = [o.at for o in occurrences(expr, zone, start, end)]
    assert all(earlier < later for earlier, later in itertools.pairwise(found))
    assert found == oracle(expr, zone, start, end)


@settings(max_examples=80, deadline=None)
@given(zone=zones, start=instants, fields=cron_fields)
def test_no_wall_time_fires_twice_on_fall_back(
    zone: ZoneInfo, start: datetime, fields: tuple[str, ...]
) -> None:
    expr = CronExpr.parse(" ".join(fields))
    found = list(occurrences(expr, zone, start, start + timedelta(days=45)))
    keys = [(o.local_date, o.slot) for o in found]
    assert len(keys) == len(set(keys))
    walls = [o.at.astimezone(zone).replace(tzinfo=None) for o in found]
    assert len(walls) == len(set(walls))
