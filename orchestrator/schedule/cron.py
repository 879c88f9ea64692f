"""Cron expressions and their fire times in a job's own time zone. Pure (zoneinfo only reads the tz
database).

An expression has the five classic fields, ``minute hour day-of-month month day-of-week``::

    0 2 * * *            every day at 02:00
    30 22 * * SAT,SUN    weekend evenings at 22:30
    */15 8-18 * * MON-FRI
    0 3 1,15 * *         the 1st and the 15th at 03:00
    0 4 1 * MON          Vixie cron's OR rule: the 1st of the month *and* every Monday

Each field is a comma list of ``*``, ``N``, ``A-B``, ``*/S`` or ``A-B/S``; months and days of the
week also take English names (``JAN``..``DEC``, ``SUN``..``SAT``, any case), day of the week takes
``0`` or ``7`` for Sunday. The macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``,
``@monthly`` and ``@yearly`` (``@annually``) stand for their usual expansions.

**Day-of-month and day-of-week** follow Vixie cron: when both are restricted (neither field starts
with ``*``) a day matches when *either* matches; when one of them starts with ``*`` the other one
alone decides (``*/2`` in the day-of-month field counts as starting with ``*``, as in Vixie cron).

**Daylight saving time.** Times are wall-clock times in the job's zone, mapped to instants the way
:mod:`orchestrator.engine.windows` maps window ends (:func:`~orchestrator.engine.windows.first_instant`):

* a time the clock skips (spring forward: 02:30 on the last Sunday of March in Europe/Amsterdam)
  fires once, at the first valid instant after the gap (03:00 CEST); several skipped times of one
  job collapse into that one fire;
* a time the clock shows twice (fall back: 02:30 on the last Sunday of October) fires once, at its
  first occurrence.

So a job that runs once a day fires exactly once on every local date, whatever the clocks do.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from orchestrator.engine.windows import first_instant
from orchestrator.errors import InputError, InternalError

MINUTES_PER_DAY = 24 * 60
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FORMAT_HINT = "expected 'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"
_ITEM = re.compile(r"(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?")
# The longest a valid expression waits between fires: Feb 29 on a Monday with the OR rule does not
# apply (that is AND-free), but "0 0 29 2 *" waits up to 8 years across a non-leap century year.
_SEARCH_DAYS = 8 * 366 + 2
# DST moves a wall time by at most two hours (Antarctica/Troll); slots earlier than this on the day
# of ``after`` cannot lie after it.
_MAX_SHIFT_MINUTES = 3 * 60
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February at its longest


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _FieldSpec("minute", 0, 59),
    _FieldSpec("hour", 0, 23),
    _FieldSpec("day of month", 1, 31),
    _FieldSpec("month", 1, 12, MONTH_NAMES, 1),
    # 7 is Sunday too (as in Vixie cron); folded into 0 after parsing
    _FieldSpec("day of week", 0, 7, WEEKDAY_NAMES, 0),
)


@dataclass(frozen=True)
class Occurrence:
    """One fire of a schedule: the instant (UTC) and the local date and wall time it was scheduled
    for (the nominal time: a skipped 02:30 keeps 02:30 here while ``at`` is the end of the gap)."""

    at: datetime
    local_date: date
    local_time: time

    @property
    def slot(self) -> str:
        """The nominal wall time as ``HH:MM``."""
        return f"{self.local_time.hour:02d}:{self.local_time.minute:02d}"


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; ``CronExpr.parse(e.text)`` gives ``e`` back.

    ``weekdays`` uses cron's numbering (Sunday 0 .. Saturday 6). ``day_star`` and ``weekday_star``
    record whether the day fields start with ``*`` (Vixie cron's rule for combining them).
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_star: bool
    weekday_star: bool

    @classmethod
    def parse(cls, text: str, *, field_name: str = "cron") -> CronExpr:
        """Parse ``text``; InputError naming ``field_name`` (the config field) when it is not valid."""
        source = " ".join(text.split())
        expanded = MACROS.get(source.lower(), source)
        if source.startswith("@") and expanded == source:
            known = ", ".join(sorted(MACROS))
            raise InputError(f"{text!r}: unknown macro {source!r} (known: {known})", field=field_name)
        parts = expanded.split(" ")
        if len(parts) != len(_FIELDS):
            raise InputError(
                f"{text!r} has {len(parts)} field{'s' if len(parts) != 1 else ''}: {_FORMAT_HINT}",
                field=field_name,
            )
        values = [
            _parse_field(part, spec, text, field_name) for part, spec in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(day % 7 for day in values[4])
        expr = cls(
            text=source,
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=weekdays,
            day_star=parts[2].startswith("*"),
            weekday_star=parts[4].startswith("*"),
        )
        expr._check_can_fire(field_name)
        return expr

    def _check_can_fire(self, field_name: str) -> None:
        """Refuse an expression that names no real date (``0 0 30 2 *``): it would never fire."""
        # Only a restricted day of month under an unrestricted day of week can name no real date:
        # with the OR rule the weekdays fire every week, and a day field starting with '*' holds
        # the 1st. Feb 29 is a real date (every four years, mostly).
        real = any(day <= _DAYS_IN_MONTH[month - 1] for month in self.months for day in self.days)
        if self.weekday_star and not self.day_star and not real:
            raise InputError(f"{self.text!r} never fires: no month it names has such a day", field=field_name)

    def __str__(self) -> str:
        return self.text

    @cached_property
    def slots(self) -> tuple[int, ...]:
        """The wall times of a matching day as minutes after midnight, in order."""
        return tuple(sorted(hour * 60 + minute for hour in self.hours for minute in self.minutes))

    @property
    def once_a_day(self) -> bool:
        """Whether the expression fires at most once per local date (one hour and one minute)."""
        return len(self.slots) == 1

    def matches_day(self, day: date) -> bool:
        """Whether the expression fires on local ``day`` (month, then Vixie's day rule)."""
        if day.month not in self.months:
            return False
        day_ok = day.day in self.days
        weekday_ok = (day.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _value(token: str, spec: _FieldSpec, text: str, field_name: str) -> int:
    lowered = token.lower()
    if spec.names and lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not token.isdigit():
        hint = f" (names: {', '.join(name.upper() for name in spec.names)})" if spec.names else ""
        raise InputError(f"{text!r}: {token!r} is not a valid {spec.name}{hint}", field=field_name)
    number = int(token)
    if not spec.low <= number <= spec.high:
        raise InputError(
            f"{text!r}: {spec.name} {number} is out of range {spec.low}-{spec.high}", field=field_name
        )
    return number


def _parse_field(part: str, spec: _FieldSpec, text: str, field_name: str) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise InputError(f"{text!r}: {item!r} is not a valid {spec.name} item", field=field_name)
        span, step_text = match["range"], match["step"]
        if span == "*":
            first, last = spec.low, spec.high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first = _value(first_text, spec, text, field_name)
            last = _value(last_text, spec, text, field_name)
            if last < first:
                raise InputError(
                    f"{text!r}: range {span} runs backwards (write it as two ranges)", field=field_name
                )
        else:
            first = last = _value(span, spec, text, field_name)
            if step_text is not None:
                # Quartz-style "5/15" means different things in different crons; say what we want.
                raise InputError(
                    f"{text!r}: a step needs a range: write {span}-{spec.high}/{step_text}", field=field_name
                )
        step = 1 if step_text is None else int(step_text)
        if step == 0:
            raise InputError(f"{text!r}: a step of 0 in {item!r}", field=field_name)
        values.update(range(first, last + 1, step))
    return frozenset(values)


# --- fire times ---------------------------------------------------------------------------------


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InternalError("schedules need timezone-aware datetimes")
    return at.astimezone(UTC)


def _expr(expr: CronExpr | str) -> CronExpr:
    return expr if isinstance(expr, CronExpr) else CronExpr.parse(expr)


def _occurrence(day: date, minutes: int, zone: ZoneInfo) -> Occurrence:
    return Occurrence(first_instant(day, minutes, zone), day, time(minutes // 60, minutes % 60))


def next_occurrence(expr: CronExpr | str, tz: ZoneInfo | str, after: datetime) -> Occurrence:
    """The first fire strictly after ``after`` (timezone-aware), with the local date and wall time
    it was scheduled for; see the module docstring for DST."""
    cron, zone, after = _expr(expr), _zone(tz), _aware(after)
    local = after.astimezone(zone)
    first_day = local.date()
    # Earlier days cannot fire after ``after``: instants grow with (day, wall time), so every slot of
    # an earlier local date lies before the first instant of ``after``'s own local date.
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if not cron.matches_day(day):
            continue
        slots = cron.slots
        start = 0
        if offset == 0:
            start = bisect_left(slots, local.hour * 60 + local.minute - _MAX_SHIFT_MINUTES)
        for minutes in slots[start:]:
            found = _occurrence(day, minutes, zone)
            # A slot skipped by spring-forward maps to the same instant as the slots after it up to
            # the jump; returning only instants after ``after`` makes them one fire.
            if found.at > after:
                return found
    raise InternalError(f"cron {cron.text!r} does not fire within {_SEARCH_DAYS} days")  # pragma: no cover


def next_fire(expr: CronExpr | str, tz: ZoneInfo | str, after: datetime) -> datetime:
    """The first fire time (UTC) strictly after ``after``, evaluated in ``tz``."""
    return next_occurrence(expr, tz, after).at


def occurrences(
    expr: CronExpr | str, tz: ZoneInfo | str, after: datetime, until: datetime
) -> Iterator[Occurrence]:
    """Every fire in ``(after, until]``, in order."""
    cron, zone, until = _expr(expr), _zone(tz), _aware(until)
    current = _aware(after)
    while current < until:
        found = next_occurrence(cron, zone, current)
        if found.at > until:
            return
        yield found
        current = found.at


def latest_occurrence(
    expr: CronExpr | str, tz: ZoneInfo | str, now: datetime, within: timedelta
) -> Occurrence | None:
    """The last fire in ``(now - within, now]``: what a beat starting (or waking) at ``now`` still
    owes, at most one per job however long it was away."""
    now = _aware(now)
    last: Occurrence | None = None
    for found in occurrences(expr, tz, now - within, now):
        last = found
    return last


__all__ = [
    "MACROS",
    "CronExpr",
    "Occurrence",
    "latest_occurrence",
    "next_fire",
    "next_occurrence",
    "occurrences",
]
