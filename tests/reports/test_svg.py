"""Inline SVG charts: well-formed, escaped, and sensible with no, one or many points."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from orchestrator.reports.svg import Bar, Series, bar_chart, line_chart, scale, stacked_area_chart

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quotes"'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything not well-formed (an unescaped <, & or ")
    assert root.tag == f"{NS}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter() if element.tag in {f"{NS}text", f"{NS}title"}]


@pytest.mark.parametrize("count", [0, 1, 2, 7, 400])
def test_line_and_area_charts_for_any_number_of_points(count: int) -> None:
    labels = [f"03-{i:02d}" for i in range(count)]
    series = [Series("high", tuple(float(i % 5) for i in range(count)), "#d93025")]
    for svg in (
        line_chart(labels, series, title="t", y_max=100, unit="%"),
        stacked_area_chart(labels, [*series, Series("low", (1.0,) * count, "#c9a400")], title="t"),
    ):
        root = parse(svg)
        shown = texts(root)
        if count == 0:
            assert "no data" in shown
            continue
        assert "no data" not in shown
        x_labels = [t for t in shown if t.startswith("03-")]
        assert 1 <= len(x_labels) <= 9
        assert labels[-1] in x_labels  # the newest sweep is always labelled
    one = parse(stacked_area_chart(["a"], [Series("x", (3.0,))], title="t"))
    assert len(list(one.iter(f"{NS}rect"))) >= 2  # a legend swatch and one column


def test_many_points_draw_a_line_without_a_marker_each() -> None:
    labels = [str(i) for i in range(400)]
    root = parse(line_chart(labels, [Series("x", tuple(float(i) for i in range(400)))], title="t"))
    assert len(list(root.iter(f"{NS}polyline"))) == 1
    assert list(root.iter(f"{NS}circle")) == []


def test_labels_and_titles_are_escaped() -> None:
    for svg in (
        line_chart([HOSTILE], [Series(HOSTILE, (1.0,))], title=HOSTILE),
        stacked_area_chart([HOSTILE, "b"], [Series(HOSTILE, (1.0, 2.0))], title=HOSTILE),
        bar_chart([Bar(HOSTILE, 3.0, note=HOSTILE)], title=HOSTILE),
    ):
        assert "<script>" not in svg
        root = parse(svg)
        assert root.get("aria-label") == HOSTILE
        assert any(HOSTILE in text for text in texts(root))


def test_colours_must_be_hex_literals() -> None:
    with pytest.raises(ValueError, match="hex"):
        bar_chart([Bar("a", 1.0, color='red" onload="x')], title="t")
    with pytest.raises(ValueError, match="hex"):
        line_chart(["a"], [Series("a", (1.0,), "url(http://x)")], title="t")


def test_a_series_needs_a_value_per_label() -> None:
    with pytest.raises(ValueError, match="2 values for 1 labels"):
        line_chart(["a"], [Series("a", (1.0, 2.0))], title="t")


def test_bars_scale_to_the_largest_or_the_given_maximum() -> None:
    root = parse(bar_chart([Bar("a", 50.0), Bar("b", 100.0), Bar("c", -5.0)], title="t", max_value=100))
    widths = [float(rect.get("width", "0")) for rect in root.iter(f"{NS}rect")]
    track, a, _, b, _, c = widths
    assert (a, b, c) == (track / 2, track, 0.0)
    assert "no data" in texts(parse(bar_chart([], title="t")))
    long = parse(bar_chart([Bar("x" * 80, 1.0)], title="t"))
    assert any(t.endswith("\u2026") for t in texts(long))  # shortened, full text in the tooltip
    assert any("x" * 80 in t for t in texts(long))


@pytest.mark.parametrize(
    ("value", "integer", "expected"),
    [
        (0, True, (1.0, 1.0)),
        (1, False, (1.0, 0.2)),
        (3, True, (3.0, 1.0)),
        (7, True, (8.0, 2.0)),
        (644, True, (800.0, 200.0)),
        (100, False, (100.0, 20.0)),
        (float("nan"), False, (1.0, 1.0)),
    ],
)
def test_axis_scale_is_round(value: float, integer: bool, expected: tuple[float, float]) -> None:
    assert scale(value, integer=integer) == expected
