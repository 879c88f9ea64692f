"""The HTML playbook-run report: one self-contained page a change ticket can carry (inline CSS and
SVG, no external asset), rendered with the sweep report's Jinja2 environment
(:func:`orchestrator.reports.html.environment`: autoescape on, undefined names are errors).

Everything from the store -- target names, messages, before and after values, audit details -- is
data and is escaped; the only markup printed unescaped is this package's own (the SVG charts,
which escape their labels, and the filter script).  The page's Content-Security-Policy allows no
network access and runs only the one script whose hash it names.  The script adds a filter over
the targets; without it the page is complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from markupsafe import Markup

from orchestrator import __version__
from orchestrator.checks.model import FrozenJson
from orchestrator.reports import svg
from orchestrator.reports.html import environment, script_hash, trusted
from orchestrator.reports.runexport import value_text
from orchestrator.reports.runmodel import TARGET_STATES, RunReport

RUN_TEMPLATE = "run.html.j2"
ATTENTION_LIMIT = 200
"""Rows of the "needs attention" table; every target is in its wave's table anyway."""

STATE_COLORS: Mapping[str, str] = {
    "succeeded": "#1a7f37",
    "unchanged": "#8c959f",
    "failed": "#d93025",
    "verify_failed": "#f29900",
    "rolled_back": "#8250df",
    "refused": "#c9a400",
    "skipped": "#5f6b7a",
    "cancelled": "#afb8c1",
    "pending": "#d0d7de",
    "running": "#1f6feb",
}

RUN_FILTER_SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  var text = document.getElementById("filter-text");
  var state = document.getElementById("filter-state");
  var count = document.getElementById("filter-count");
  var rows = document.querySelectorAll("tr.target");
  function apply() {
    var wanted = text.value.trim().toLowerCase();
    var chosen = state.value;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var match = (!wanted || row.getAttribute("data-search").indexOf(wanted) !== -1) &&
        (!chosen || row.getAttribute("data-state") === chosen);
      row.hidden = !match;
      if (match) { shown++; }
    }
    count.textContent = shown + " of " + rows.length + " targets shown";
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  text.addEventListener("input", apply);
  state.addEventListener("change", apply);
  form.hidden = false;
  apply();
})();
"""

RUN_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src {script_hash(RUN_FILTER_SCRIPT)}; base-uri 'none'; form-action 'none'"
)


def shown(value: FrozenJson) -> str:
    """A before or after value on the page: ``(none)`` for null, text as it is, else JSON."""
    return "(none)" if value is None else value_text(value)


@dataclass(frozen=True)
class RunCharts:
    waves: Markup
    states: Markup


def _color(state: str) -> str:
    return STATE_COLORS.get(state, svg.ACCENT)


def run_charts(report: RunReport) -> RunCharts:
    stacks = [
        svg.Stack(
            label=f"wave {wave.number} ({wave.kind})",
            segments=tuple(
                svg.Segment(state, float(n), _color(state)) for state, n in wave.counts.items() if n
            ),
            note=f"{wave.total} target{'s' if wave.total != 1 else ''}, {wave.status}",
        )
        for wave in report.waves
    ]
    bars = [
        svg.Bar(state, float(count), _color(state), str(count))
        for state, count in report.counts.items()
        if count
    ]
    return RunCharts(
        waves=trusted(
            svg.stacked_bar_chart(stacks, title="Targets by state, wave by wave", empty="no waves")
        ),
        states=trusted(svg.bar_chart(bars, title="Targets by state", empty="no targets")),
    )


def render_run_html(report: RunReport) -> Iterator[str]:
    """The HTML page of ``report``, as chunks (the template is streamed, not built in memory)."""
    template = environment().get_template(RUN_TEMPLATE)
    return template.generate(
        report=report,
        charts=run_charts(report),
        states=TARGET_STATES,
        used_states=[state for state, count in report.counts.items() if count] or [TARGET_STATES[0]],
        colors=STATE_COLORS,
        attention_limit=ATTENTION_LIMIT,
        value=shown,
        script=trusted(RUN_FILTER_SCRIPT),
        csp=RUN_CONTENT_SECURITY_POLICY,
        version=__version__,
    )


def run_html(report: RunReport) -> str:
    """The whole page as one string (tests, small reports)."""
    return "".join(render_run_html(report))


__all__ = [
    "ATTENTION_LIMIT",
    "RUN_CONTENT_SECURITY_POLICY",
    "RUN_FILTER_SCRIPT",
    "RUN_TEMPLATE",
    "STATE_COLORS",
    "RunCharts",
    "render_run_html",
    "run_charts",
    "run_html",
    "shown",
]
