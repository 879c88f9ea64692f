"""Charts as inline SVG text: a line chart, a stacked area chart, horizontal bars.  Pure.

Every function returns one ``<svg>`` element that needs nothing else: no script, no font file, no
stylesheet (it inherits the page's font).  Every label and title is XML-escaped here; colours must
be hex literals (``#1f6feb``), so no caller-supplied text ever reaches an attribute unescaped.
Charts are sensible for any number of points: none draws "no data", one draws a single marker (or
one stacked column), many thin out their axis labels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

SEVERITY_COLORS = {
    "critical": "#7a1020",
    "high": "#d93025",
    "medium": "#f29900",
    "low": "#c9a400",
    "info": "#5f6b7a",
}
ACCENT = "#1f6feb"
GOOD = "#1a7f37"
GRID = "#d0d7de"
TEXT = "#24292f"
MUTED = "#57606a"
MAX_X_LABELS = 8
MAX_MARKERS = 60
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}")


@dataclass(frozen=True)
class Series:
    """One line (or band) of a chart: a value per x label."""

    name: str
    values: tuple[float, ...]
    color: str = ACCENT


@dataclass(frozen=True)
class Bar:
    """One bar: ``note`` is written right of it (``97.5 % (390/400)``)."""

    label: str
    value: float
    color: str = ACCENT
    note: str = ""


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    left: int = 48
    right: int = 16
    top: int = 30
    bottom: int = 34

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)

    def x(self, index: int, count: int) -> float:
        if count <= 1:
            return self.left + self.plot_w / 2
        return self.left + index * self.plot_w / (count - 1)

    def y(self, value: float, top_value: float) -> float:
        return self.top + self.plot_h * (1 - (value / top_value if top_value else 0))


def _color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise ValueError(f"chart colours are hex literals such as #1f6feb, not {value!r}")
    return value


def _clean(value: float) -> float:
    return 0.0 if not math.isfinite(value) or value < 0 else float(value)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def scale(value: float, *, integer: bool = False, divisions: int = 5) -> tuple[float, float]:
    """``(top, step)`` of a y axis for data up to ``value``: a round step (1, 2 or 5 times a power
    of ten; at least 1 for counts) and the first multiple of it at or above ``value``."""
    step = nice_max(max(value, 0.0) / divisions) if value > 0 and math.isfinite(value) else 1.0
    if integer:
        step = max(1.0, step)
    top = step * max(1, math.ceil(value / step - 1e-9)) if value > 0 and math.isfinite(value) else step
    return round(top, 9), step


def _number(value: float, unit: str) -> str:
    text = str(int(value)) if float(value).is_integer() else f"{value:.1f}"
    return f"{text}{unit}"


def _open(frame: _Frame, title: str) -> list[str]:
    safe = escape(title, quote=True)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="{frame.width}" height="{frame.height}" role="img" aria-label="{safe}" '
        f'class="chart" font-size="11" fill="{TEXT}">',
        f"<title>{safe}</title>",
    ]


def _no_data(frame: _Frame, title: str, text: str = "no data") -> str:
    parts = _open(frame, title)
    parts.append(
        f'<text x="{frame.width / 2:.0f}" y="{frame.height / 2:.0f}" text-anchor="middle" '
        f'fill="{MUTED}">{escape(text)}</text></svg>'
    )
    return "".join(parts)


def _y_axis(frame: _Frame, top_value: float, step: float, unit: str) -> list[str]:
    parts = []
    for i in range(round(top_value / step) + 1):
        value = step * i
        y = frame.y(value, top_value)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{escape(_number(value, unit))}</text>"
        )
    return parts


def _x_labels(frame: _Frame, labels: Sequence[str]) -> list[str]:
    count = len(labels)
    step = max(1, math.ceil(count / MAX_X_LABELS))
    shown = list(range(0, count, step))
    if shown[-1] != count - 1:
        if count - 1 - shown[-1] < step / 2 and len(shown) > 1:
            shown.pop()  # keep the last label clear of its neighbour
        shown.append(count - 1)
    parts = []
    baseline = frame.height - frame.bottom + 16
    for index in shown:
        x = frame.x(index, count)
        anchor = "middle"
        if count > 1 and index == 0:
            anchor = "start"
        elif count > 1 and index == count - 1:
            anchor = "end"
        parts.append(
            f'<text x="{x:.1f}" y="{baseline}" text-anchor="{anchor}" fill="{MUTED}">'
            f"{escape(labels[index])}</text>"
        )
    return parts


def _legend(frame: _Frame, series: Sequence[Series]) -> list[str]:
    parts = []
    x = float(frame.left)
    for item in series:
        parts.append(
            f'<rect x="{x:.1f}" y="8" width="10" height="10" fill="{_color(item.color)}"/>'
            f'<text x="{x + 14:.1f}" y="17">{escape(item.name)}</text>'
        )
        x += 14 + 7 * len(item.name) + 16
    return parts


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for item in series:
        _color(item.color)
        if len(item.values) != len(labels):
            raise ValueError(f"series {item.name!r} has {len(item.values)} values for {len(labels)} labels")


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_max: float | None = None,
    unit: str = "",
    integer: bool = False,
    width: int = 560,
    height: int = 220,
) -> str:
    """Lines over the x ``labels`` (one value per label and series); ``y_max`` fixes the scale
    (100 for percentages), else it is the next round number above the data; ``integer`` keeps
    the grid on whole numbers (counts)."""
    frame = _Frame(width, height)
    _check(labels, series)
    if not labels or not series:
        return _no_data(frame, title)
    if y_max:
        top_value, step = y_max, scale(y_max, integer=integer)[1]
    else:
        top_value, step = scale(max(_clean(v) for s in series for v in s.values), integer=integer)
    parts = _open(frame, title) + _y_axis(frame, top_value, step, unit) + _legend(frame, series)
    count = len(labels)
    for item in series:
        color = _color(item.color)
        points = [
            (frame.x(i, count), frame.y(min(_clean(v), top_value), top_value))
            for i, v in enumerate(item.values)
        ]
        if count > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if count <= MAX_MARKERS:
            for (x, y), label, value in zip(points, labels, item.values, strict=True):
                tip = escape(f"{item.name} {label}: {_number(_clean(value), unit)}")
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{tip}</title></circle>'
                )
    parts += _x_labels(frame, labels)
    parts.append("</svg>")
    return "".join(parts)


def stacked_area_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 560,
    height: int = 220,
) -> str:
    """Bands stacked in the order given (the first at the bottom); one point is one column."""
    frame = _Frame(width, height)
    _check(labels, series)
    if not labels or not series:
        return _no_data(frame, title)
    count = len(labels)
    totals = [sum(_clean(s.values[i]) for s in series) for i in range(count)]
    top_value, step = scale(max(totals), integer=True)
    parts = _open(frame, title) + _y_axis(frame, top_value, step, "") + _legend(frame, series)
    below = [0.0] * count
    for item in series:
        color = _color(item.color)
        above = [below[i] + _clean(item.values[i]) for i in range(count)]
        if count == 1:
            x = frame.x(0, 1)
            y_top, y_bottom = frame.y(above[0], top_value), frame.y(below[0], top_value)
            tip = escape(f"{item.name} {labels[0]}: {_number(_clean(item.values[0]), '')}")
            parts.append(
                f'<rect x="{x - 20:.1f}" y="{y_top:.1f}" width="40" height="{y_bottom - y_top:.1f}" '
                f'fill="{color}"><title>{tip}</title></rect>'
            )
        else:
            upper = [f"{frame.x(i, count):.1f},{frame.y(above[i], top_value):.1f}" for i in range(count)]
            lower = [
                f"{frame.x(i, count):.1f},{frame.y(below[i], top_value):.1f}" for i in reversed(range(count))
            ]
            tip = escape(f"{item.name}: {', '.join(_number(_clean(v), '') for v in item.values[-3:])} (last)")
            parts.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.85" '
                f'stroke="{color}" stroke-width="1"><title>{tip}</title></polygon>'
            )
        below = above
    parts += _x_labels(frame, labels)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    max_value: float | None = None,
    width: int = 560,
    label_width: int = 150,
    row_height: int = 22,
    empty: str = "no data",
) -> str:
    """Horizontal bars, one row each, the label left (shortened; full text in its tooltip);
    ``empty`` is what an empty chart says."""
    for bar in bars:
        _color(bar.color)
    height = 12 + row_height * max(len(bars), 1) + 8
    frame = _Frame(width, height if bars else 60, left=label_width, right=130, top=12, bottom=8)
    if not bars:
        return _no_data(frame, title, empty)
    top_value = max_value if max_value else nice_max(max(_clean(bar.value) for bar in bars))
    parts = _open(frame, title)
    for index, bar in enumerate(bars):
        y = frame.top + index * row_height
        length = frame.plot_w * min(_clean(bar.value), top_value) / top_value
        label = bar.label if len(bar.label) <= 26 else bar.label[:25] + "\u2026"
        parts.append(
            f"<g><title>{escape(f'{bar.label}: {bar.note or _n(bar.value)}')}</title>"
            f'<text x="{frame.left - 8}" y="{y + row_height / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{frame.left}" y="{y + 3}" width="{frame.plot_w:.1f}" height="{row_height - 6}" '
            f'fill="{GRID}" fill-opacity="0.35"/>'
            f'<rect x="{frame.left}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" '
            f'fill="{bar.color}"/>'
            f'<text x="{frame.left + frame.plot_w + 6:.1f}" y="{y + row_height / 2 + 4:.1f}" '
            f'fill="{MUTED}">{escape(bar.note or _n(bar.value))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar: ``name`` (a legend entry), its value and colour."""

    name: str
    value: float
    color: str = ACCENT


@dataclass(frozen=True)
class Stack:
    """One row of a stacked bar chart: its segments, left to right; ``note`` is written right of it."""

    label: str
    segments: tuple[Segment, ...]
    note: str = ""

    @property
    def total(self) -> float:
        return sum(_clean(segment.value) for segment in self.segments)


def stacked_bar_chart(
    stacks: Sequence[Stack],
    *,
    title: str,
    width: int = 560,
    label_width: int = 150,
    row_height: int = 22,
    empty: str = "no data",
) -> str:
    """Horizontal bars split into segments (a wave's targets by state), each row scaled to its own
    total so that proportions compare across rows of any size; a legend of every segment name
    that has a value, in first-seen order.  Every label, note and tooltip is escaped."""
    for stack in stacks:
        for segment in stack.segments:
            _color(segment.color)
    legend: dict[str, str] = {}
    for stack in stacks:
        for segment in stack.segments:
            if _clean(segment.value) > 0:
                legend.setdefault(segment.name, segment.color)
    legend_rows = math.ceil(len(legend) / 4) if legend else 0
    top = 12 + 18 * legend_rows
    height = top + row_height * max(len(stacks), 1) + 8
    frame = _Frame(width, height if stacks else 60, left=label_width, right=130, top=top, bottom=8)
    if not stacks:
        return _no_data(frame, title, empty)
    parts = _open(frame, title)
    for index, (name, color) in enumerate(legend.items()):
        x = frame.left + (index % 4) * ((width - frame.left) / 4)
        y = 4 + 18 * (index // 4)
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 9}">{escape(name)}</text>'
        )
    for row, stack in enumerate(stacks):
        y = frame.top + row * row_height
        label = stack.label if len(stack.label) <= 26 else stack.label[:25] + "\u2026"
        total = stack.total
        shares = ", ".join(f"{s.name} {_n(_clean(s.value))}" for s in stack.segments if _clean(s.value) > 0)
        parts.append(
            f"<g><title>{escape(f'{stack.label}: {shares or stack.note or 0}')}</title>"
            f'<text x="{frame.left - 8}" y="{y + row_height / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{frame.left}" y="{y + 3}" width="{frame.plot_w:.1f}" height="{row_height - 6}" '
            f'fill="{GRID}" fill-opacity="0.35"/>'
        )
        x = float(frame.left)
        for segment in stack.segments:
            value = _clean(segment.value)
            if value <= 0 or total <= 0:
                continue
            length = frame.plot_w * value / total
            tip = escape(f"{stack.label}: {segment.name} {_n(value)}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" '
                f'fill="{segment.color}"><title>{tip}</title></rect>'
            )
            x += length
        parts.append(
            f'<text x="{frame.left + frame.plot_w + 6:.1f}" y="{y + row_height / 2 + 4:.1f}" '
            f'fill="{MUTED}">{escape(stack.note or _n(total))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


__all__ = [
    "ACCENT",
    "GOOD",
    "SEVERITY_COLORS",
    "Bar",
    "Segment",
    "Series",
    "Stack",
    "bar_chart",
    "line_chart",
    "nice_max",
    "scale",
    "stacked_area_chart",
    "stacked_bar_chart",
]
