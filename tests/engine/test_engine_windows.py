"""Change windows: parsing, days, crossing midnight, DST in the window's zone, named windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.config import Settings, load_settings
from orchestrator.engine.windows import ChangeWindow, resolve_window
from orchestrator.errors import ConfigError, InputError, InternalError

AMS = ZoneInfo("Europe/Amsterdam")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ams(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    """Amsterdam wall time as UTC: aware datetimes in a repeated hour never compare equal across
    zones (PEP 495), so tests compare UTC instants."""
    return datetime(year, month, day, hour, minute, tzinfo=AMS, fold=fold).astimezone(UTC)


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days", "start", "end", "zone"),
    [
        ("22:00-04:00 Europe/Amsterdam", set(range(7)), 22 * 60, 4 * 60, "Europe/Amsterdam"),
        ("Sat-Sun 22:00-04:00 Europe/Amsterdam", {5, 6}, 1320, 240, "Europe/Amsterdam"),
        ("Mon,Wed 9:00-17:30 UTC", {0, 2}, 540, 1050, "UTC"),
        ("fri-mon 20:00-24:00 America/New_York", {4, 5, 6, 0}, 1200, 1440, "America/New_York"),
        ("Monday,Tue-Wed 00:00-01:00 UTC", {0, 1, 2}, 0, 60, "UTC"),
        ("  Sun   01:00 - 02:00   Asia/Tokyo ", {6}, 60, 120, "Asia/Tokyo"),
    ],
)
def test_parse(text: str, days: set[int], start: int, end: int, zone: str) -> None:
    window = ChangeWindow.parse(text)
    assert (set(window.days), window.start, window.end, window.zone) == (days, start, end, zone)
    assert ChangeWindow.parse(window.spec) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("22:00-04:00", "not a change window"),  # no zone
        ("22:00 Europe/Amsterdam", "not a change window"),
        ("25:00-04:00 UTC", "not a time of day"),
        ("22:60-04:00 UTC", "not a time of day"),
        ("24:00-04:00 UTC", "not a time of day"),  # 24:00 ends a window, it does not start one
        ("22:00-22:00 UTC", "must differ"),
        ("00:00-24:00 UTC", None),  # allowed: all day
        ("22:00-00:00 UTC", None),  # until midnight
        ("Sat-Funday 22:00-04:00 UTC", "unknown day 'Funday'"),
        ("22:00-04:00 Europe/Amsterdm", "did you mean Europe/Amsterdam"),
        ("22:00-04:00 Nowhere", "unknown time zone"),
        ("22:00-04:00 ../etc/passwd", "unknown time zone"),
    ],
)
def test_parse_errors_name_the_field(text: str, message: str | None) -> None:
    if message is None:
        ChangeWindow.parse(text)
        return
    with pytest.raises(InputError, match=message) as raised:
        ChangeWindow.parse(text)
    assert raised.value.field == "--window"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InternalError):
        ChangeWindow.parse("22:00-04:00 UTC").is_open(datetime(2026, 6, 1, 23, 0))


# --- open, closes, next -------------------------------------------------------------------------


def test_crossing_midnight_on_named_days() -> None:
    window = ChangeWindow.parse("Sat-Sun 22:00-04:00 UTC")
    # 2026-06-06 is a Saturday
    assert window.is_open(utc(2026, 6, 6, 22, 0))
    assert window.is_open(utc(2026, 6, 7, 3, 59))  # Saturday's window, on Sunday morning
    assert window.is_open(utc(2026, 6, 8, 3, 0))  # Sunday's window, on Monday morning
    assert not window.is_open(utc(2026, 6, 6, 3, 0))  # Friday opened no window
    assert not window.is_open(utc(2026, 6, 8, 4, 0))  # the end is exclusive
    assert not window.is_open(utc(2026, 6, 8, 22, 30))  # Monday opens none
    assert window.closes_at(utc(2026, 6, 6, 23, 0)) == utc(2026, 6, 7, 4, 0)
    assert window.closes_at(utc(2026, 6, 8, 12, 0)) is None
    assert window.next_open(utc(2026, 6, 8, 12, 0)) == utc(2026, 6, 13, 22, 0)
    assert window.next_open(utc(2026, 6, 7, 1, 0)) == utc(2026, 6, 7, 1, 0)  # open: now


def test_back_to_back_occurrences_close_together() -> None:
    window = ChangeWindow.parse("Sat-Sun 00:00-24:00 UTC")
    assert window.closes_at(utc(2026, 6, 6, 10, 0)) == utc(2026, 6, 8, 0, 0)


def test_window_in_its_own_zone() -> None:
    window = ChangeWindow.parse("09:00-17:00 America/New_York")
    assert window.is_open(utc(2026, 6, 1, 13, 0))  # 09:00 EDT
    assert not window.is_open(utc(2026, 6, 1, 12, 59))
    assert window.closes_at(utc(2026, 6, 1, 15, 0)) == utc(2026, 6, 1, 21, 0)


# --- daylight saving time (Europe/Amsterdam 2026: forward on Mar 29 at 02:00, back on Oct 25 at 03:00)


def test_night_window_follows_the_wall_clock_across_dst() -> None:
    window = ChangeWindow.parse("22:00-04:00 Europe/Amsterdam")
    spring = window.occurrence(date(2026, 3, 28))
    autumn = window.occurrence(date(2026, 10, 24))
    assert spring == (ams(2026, 3, 28, 22, 0), ams(2026, 3, 29, 4, 0))
    assert autumn == (ams(2026, 10, 24, 22, 0), ams(2026, 10, 25, 4, 0))
    assert spring[1] - spring[0] == timedelta(hours=5)
    assert autumn[1] - autumn[0] == timedelta(hours=7)


def test_window_inside_the_skipped_hour_does_not_open_that_day() -> None:
    window = ChangeWindow.parse("02:00-03:00 Europe/Amsterdam")
    assert window.occurrence(date(2026, 3, 29)) is None
    for minute in range(0, 120, 5):  # 00:00-02:00 UTC covers the whole night around the jump
        assert not window.is_open(utc(2026, 3, 29, 0, 0) + timedelta(minutes=minute))
    # the next opening is Monday's 02:00 CEST
    assert window.next_open(utc(2026, 3, 28, 23, 0)) == ams(2026, 3, 30, 2, 0)
    assert window.is_open(ams(2026, 3, 28, 2, 30))  # the day before: an ordinary hour


def test_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    window = ChangeWindow.parse("01:30-02:30 Europe/Amsterdam")
    start, end = window.occurrence(date(2026, 3, 29)) or (None, None)
    assert start == ams(2026, 3, 29, 1, 30)
    assert end == utc(2026, 3, 29, 1, 0) == ams(2026, 3, 29, 3, 0)  # the jump itself
    assert window.closes_at(ams(2026, 3, 29, 1, 45)) == ams(2026, 3, 29, 3, 0)


def test_window_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    window = ChangeWindow.parse("02:30-04:00 Europe/Amsterdam")
    assert window.next_open(utc(2026, 3, 28, 23, 0)) == ams(2026, 3, 29, 3, 0)


def test_repeated_hour_is_inside_a_window_that_spans_it() -> None:
    window = ChangeWindow.parse("02:00-03:00 Europe/Amsterdam")
    start, end = window.occurrence(date(2026, 10, 25)) or (None, None)
    assert (start, end) == (ams(2026, 10, 25, 2, 0, fold=0), ams(2026, 10, 25, 3, 0))
    assert end - start == timedelta(hours=2)  # type: ignore[operator]
    assert window.is_open(ams(2026, 10, 25, 2, 30, fold=1))  # the second 02:30


def test_window_ending_in_the_repeated_hour_closes_at_its_first_pass() -> None:
    window = ChangeWindow.parse("01:00-02:30 Europe/Amsterdam")
    assert window.closes_at(ams(2026, 10, 25, 1, 30)) == ams(2026, 10, 25, 2, 30, fold=0)
    assert not window.is_open(ams(2026, 10, 25, 2, 15, fold=1))


ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]


@st.composite
def windows(draw: st.DrawFn) -> ChangeWindow:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(1, 24 * 60).filter(lambda end: end != start))
    always = len(days) == 7 and start == 0 and end == 1440
    if always:
        end = 720
    return ChangeWindow(days=days, start=start, end=end, zone=draw(st.sampled_from(ZONES)))


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC, microsecond=0)
)


@given(windows(), instants)
def test_open_next_and_close_agree(window: ChangeWindow, at: datetime) -> None:
    opens = window.next_open(at)
    if window.is_open(at):
        assert opens == at
        closes = window.closes_at(at)
        assert closes is not None
        assert closes > at
        assert not window.is_open(closes)
        assert window.is_open(closes - timedelta(seconds=1))
    else:
        assert window.closes_at(at) is None
        assert opens > at
        assert window.is_open(opens)
        assert not window.is_open(opens - timedelta(seconds=1))
        assert opens - at <= timedelta(days=8)


# --- named windows ------------------------------------------------------------------------------


def test_resolve_named_and_literal(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, windows={"weekend": "Sat-Sun 22:00-04:00 Europe/Amsterdam"})
    named = resolve_window("weekend", settings)
    assert named.name == "weekend"
    assert named == ChangeWindow.parse("Sat-Sun 22:00-04:00 Europe/Amsterdam")
    assert str(named) == "weekend (Sat,Sun 22:00-04:00 Europe/Amsterdam)"
    assert resolve_window("22:00-04:00 UTC", settings).name is None


def test_unknown_name_suggests(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, windows={"weekend": "Sat-Sun 22:00-04:00 UTC", "nightly": "22:00-04:00 UTC"}
    )
    with pytest.raises(InputError, match="did you mean 'weekend'") as raised:
        resolve_window("weekedn", settings)
    assert raised.value.field == "--window"
    with pytest.raises(InputError, match="configured: nightly, weekend"):
        resolve_window("sometime", settings)
    with pytest.raises(InputError, match="no windows are configured"):
        resolve_window("weekend", Settings(data_dir=tmp_path))


def test_bad_window_in_config_fails_at_load(tmp_path: Path) -> None:
    config = tmp_path / "fleetfix.toml"
    config.write_text('[windows]\nweekend = "Sat-Sun 22:00-04:00 Europe/Amsterdm"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"window 'weekend'.*did you mean Europe/Amsterdam"):
        load_settings(config)
    config.write_text('[windows]\nweekend = "Sat-Sun 22:00-04:00 Europe/Amsterdam"\n', encoding="utf-8")
    assert load_settings(config).windows == {"weekend": "Sat-Sun 22:00-04:00 Europe/Amsterdam"}
