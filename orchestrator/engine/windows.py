"""Change windows: when a run may start work on a host. Pure (zoneinfo only reads the tz database).

A window is written ``[DAYS] HH:MM-HH:MM ZONE``::

    22:00-04:00 Europe/Amsterdam              every night, crossing midnight
    Sat-Sun 22:00-04:00 Europe/Amsterdam      opens Saturday and Sunday at 22:00
    Mon,Wed 09:00-17:00 UTC
    Fri-Mon 20:00-24:00 America/New_York      day ranges may wrap around the week

* ``DAYS`` name the local days on which the window *opens*; a window that crosses midnight ends
  on the following day (``Sat-Sun 22:00-04:00`` is open until Monday 04:00). No days: every day.
* ``ZONE`` is an IANA time zone (``UTC`` included); it is required, because "22:00" means nothing
  without it.
* ``24:00`` (or ``00:00``) as the end means midnight at the end of the day; start and end must
  differ, except that ``00:00-24:00`` is the whole day.

**Daylight saving time.** Both ends of an occurrence are the *first instant the local clock shows
that time*, each on its own day's offset, so windows follow the wall clock: a 22:00-04:00 window
lasts 5 real hours on the night clocks go forward and 7 on the night they go back.


* spring forward (the clock jumps from 02:00 to 03:00): a time inside the skipped hour resolves to
  the jump itself, 03:00. A window ``02:00-03:00`` therefore does not open at all on that day
  (start and end are the same instant); ``01:30-02:30`` lasts 30 minutes (01:30 to the jump);
  ``02:30-04:00`` opens at 03:00.
* fall back (the clock shows 02:00-02:59 twice): a repeated time resolves to its first occurrence.
  A window ``02:00-03:00`` is open for both passes through that hour (two real hours, as the wall
  clock shows 02:xx all that time); a window ending at ``02:30`` closes at the first 02:30.

Named windows come from the ``windows`` table of ``fleetfix.toml``; :func:`resolve_window` accepts
a name or a literal spec.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from orchestrator.errors import InputError, InternalError

if TYPE_CHECKING:
    from orchestrator.config import Settings

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MINUTES_PER_DAY = 24 * 60
_FORMAT_HINT = "expected '[DAYS] HH:MM-HH:MM ZONE', e.g. 'Sat-Sun 22:00-04:00 Europe/Amsterdam'"
_SPEC = re.compile(
    r"\s*(?:(?P<days>[A-Za-z][A-Za-z,\-\s]*?)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*"
)
_MAX_MERGED_OCCURRENCES = 16
"""closes_at joins back-to-back occurrences; an always-open window stops joining after this many."""
_SEARCH_DAYS = 400
"""next_open looks this far ahead; every valid window opens within 8 days, DST gaps included."""


def _day(token: str, text: str, field_name: str) -> int:
    name = token.strip().lower()
    for names in (DAY_NAMES, _FULL_DAY_NAMES):
        if name in names:
            return names.index(name)
    raise InputError(
        f"{text!r}: unknown day {token.strip()!r} (use {', '.join(name.title() for name in DAY_NAMES)})",
        field=field_name,
    )


def _parse_days(spec: str, text: str, field_name: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _day(first_text, text, field_name), _day(last_text, text, field_name)
            span = (last - first) % 7  # ranges wrap around the week: Fri-Mon
            days.update((first + step) % 7 for step in range(span + 1))
        else:
            days.add(_day(part, text, field_name))
    return frozenset(days)


def _parse_minutes(value: str, text: str, field_name: str, *, is_end: bool) -> int:
    hours, minutes = (int(part) for part in value.split(":"))
    limit = 24 if is_end else 23
    if hours > limit or minutes > 59 or (hours == 24 and minutes != 0):
        raise InputError(f"{text!r}: {value} is not a time of day", field=field_name)
    return hours * 60 + minutes


def _zone(key: str, text: str, field_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(key, sorted(available_timezones()), n=1)
        hint = f"; did you mean {close[0]}?" if close else " (an IANA name such as Europe/Amsterdam or UTC)"
        raise InputError(f"{text!r}: unknown time zone {key!r}{hint}", field=field_name) from None


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def first_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in ``zone`` shows ``minutes`` after midnight of
    ``day`` (1440 = next midnight), or jumps past it (a time skipped by spring-forward)."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    early = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = [instant for instant in (early, late) if _wall(instant, zone) == naive]
    if exists:
        return min(exists)
    # In a gap: fold 0 and fold 1 apply the offsets either side of the jump, so the jump lies between
    # them; find the first whole second whose wall time is at or after ``naive``.
    low, high = min(early, late), max(early, late)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _wall(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high if _wall(low, zone) < naive else low


@dataclass(frozen=True)
class ChangeWindow:
    """A recurring change window; see the module docstring for the syntax and DST behaviour.

    ``days`` are ``date.weekday()`` numbers (Monday 0) on which the window opens; ``start`` and
    ``end`` are minutes after local midnight (``end`` may be 1440); ``end <= start`` means the
    window ends on the next day. ``name`` is the config name it was resolved from, if any.
    """

    days: frozenset[int]
    start: int
    end: int
    zone: str
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise InputError("a change window needs days between Mon and Sun", field="--window")
        if not 0 <= self.start < _MINUTES_PER_DAY or not 0 < self.end <= _MINUTES_PER_DAY:
            raise InputError("a change window's times must lie within a day", field="--window")
        if self.start == self.end:
            raise InputError("a change window's start and end must differ", field="--window")

    @classmethod
    def parse(cls, text: str, *, field_name: str = "--window", name: str | None = None) -> ChangeWindow:
        """Parse ``[DAYS] HH:MM-HH:MM ZONE``; InputError (naming ``field_name``) when it is not one."""
        match = _SPEC.fullmatch(text)
        if match is None:
            raise InputError(f"{text!r} is not a change window: {_FORMAT_HINT}", field=field_name)
        days = _parse_days(match["days"], text, field_name) if match["days"] else frozenset(range(7))
        start = _parse_minutes(match["start"], text, field_name, is_end=False)
        # an end at 00:00 is the coming midnight, as 24:00 is
        end = _parse_minutes(match["end"], text, field_name, is_end=True) or _MINUTES_PER_DAY
        zone = _zone(match["zone"], text, field_name)
        if start == end:
            raise InputError(f"{text!r}: start and end must differ", field=field_name)
        return cls(days=days, start=start, end=end, zone=zone.key, name=name)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def spec(self) -> str:
        """The canonical text of this window; ``ChangeWindow.parse(w.spec) == w``."""

        def clock(minutes: int) -> str:
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        days = (
            "" if len(self.days) == 7 else ",".join(DAY_NAMES[day].title() for day in sorted(self.days)) + " "
        )
        return f"{days}{clock(self.start)}-{clock(self.end)} {self.zone}"

    def __str__(self) -> str:
        return self.spec if self.name is None else f"{self.name} ({self.spec})"

    # --- occurrences ----------------------------------------------------------------------------

    def occurrence(self, day: date) -> tuple[datetime, datetime] | None:
        """The window opening on local ``day`` as a UTC [start, end) pair; None when it does not
        open that day (not one of its days, or swallowed whole by a spring-forward jump)."""
        if day.weekday() not in self.days:
            return None
        start = first_instant(day, self.start, self.tz)
        end_day = day + timedelta(days=1) if self.end <= self.start else day
        end = first_instant(end_day, self.end, self.tz)
        return (start, end) if end > start else None

    def _occurrences(self, first: date, count: int) -> Iterator[tuple[datetime, datetime]]:
        for offset in range(count):
            found = self.occurrence(first + timedelta(days=offset))
            if found is not None:
                yield found

    def _containing(self, at: datetime) -> tuple[datetime, datetime] | None:
        local_day = at.astimezone(self.tz).date()
        # a window lasts at most a day (25 hours on a fall-back day): it opened today or before
        for start, end in self._occurrences(local_day - timedelta(days=2), 3):
            if start <= at < end:
                return start, end
        return None

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (timezone-aware) lies inside the window."""
        return self._containing(_aware(at)) is not None

    def closes_at(self, at: datetime) -> datetime | None:
        """When the window that contains ``at`` closes (UTC), joining back-to-back occurrences
        (``Mon-Sun 00:00-24:00`` is open across midnights); None when it is closed at ``at``."""
        found = self._containing(_aware(at))
        if found is None:
            return None
        end = found[1]
        for _ in range(_MAX_MERGED_OCCURRENCES):
            following = self._containing(end)
            if following is None:
                break
            end = following[1]
        return end

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when the window is open then, else the next opening (UTC)."""
        at = _aware(at)
        if self._containing(at) is not None:
            return at
        local_day = at.astimezone(self.tz).date()
        for start, _end in self._occurrences(local_day - timedelta(days=1), _SEARCH_DAYS):
            if start > at:
                return start
        raise InternalError(f"change window {self.spec} never opens")  # pragma: no cover


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InternalError("change windows need timezone-aware datetimes")
    return at.astimezone(UTC)


_LOOKS_LIKE_SPEC = re.compile(r"\d:\d")


def resolve_window(text: str, settings: Settings) -> ChangeWindow:
    """The window ``text`` names: a name from the ``windows`` table of the config, or a literal
    spec. An unknown name raises InputError (field ``--window``) with a did-you-mean."""
    name = text.strip()
    named = settings.windows
    if name in named:
        return ChangeWindow.parse(named[name], field_name=f"windows.{name}", name=name)
    if _LOOKS_LIKE_SPEC.search(name):
        return ChangeWindow.parse(text)
    close = difflib.get_close_matches(name, sorted(named), n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif named:
        hint = f" (configured: {', '.join(sorted(named))})"
    else:
        hint = f" (no windows are configured; give a spec: {_FORMAT_HINT})"
    raise InputError(f"unknown change window {name!r}{hint}", field="--window")


__all__ = ["DAY_NAMES", "ChangeWindow", "first_instant", "resolve_window"]
