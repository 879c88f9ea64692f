"""The HTML sweep report: one self-contained file (inline CSS and SVG, no external asset).

Rendering is Jinja2 with autoescaping on for every template, and ``StrictUndefined`` so a typo in
a template fails the tests instead of printing nothing.  Everything from the store -- host names,
messages, evidence -- is data and is escaped; the only markup that is not escaped comes from this
package (the SVG charts, which escape their own labels, and the filter script).  The page carries
a Content-Security-Policy that allows no network access at all and runs only the one script whose
hash it names, so even a template mistake could not make the report load or run anything else.

The content is all in the HTML; the small script only adds a filter over the hosts (the form is
``hidden`` until the script shows it).  Templates are package data (``templates/*.j2``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from orchestrator import __version__
from orchestrator.checks.model import FrozenJson, thaw
from orchestrator.reports import svg
from orchestrator.reports.model import SEVERITIES, GroupCompliance, SweepReport, TrendPoint

SWEEP_TEMPLATE = "sweep.html.j2"
NEW_TABLE_LIMIT = 200
"""Rows of the "new findings" table; every finding is in the per-host section anyway."""

FILTER_SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  var text = document.getElementById("filter-text");
  var severity = document.getElementById("filter-severity");
  var count = document.getElementById("filter-count");
  var hosts = document.querySelectorAll("article.host");
  function apply() {
    var wanted = text.value.trim().toLowerCase();
    var level = severity.value;
    var shown = 0;
    for (var i = 0; i < hosts.length; i++) {
      var host = hosts[i];
      var match = (!wanted || host.getAttribute("data-search").indexOf(wanted) !== -1) &&
        (!level || (" " + host.getAttribute("data-severities") + " ").indexOf(" " + level + " ") !== -1);
      host.hidden = !match;
      if (match) { shown++; }
    }
    count.textContent = shown + " of " + hosts.length + " shown";
  }
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  text.addEventListener("input", apply);
  severity.addEventListener("change", apply);
  form.hidden = false;
  apply();
})();
"""


def script_hash(script: str) -> str:
    """The CSP source (``'sha256-…'``) that allows exactly ``script``."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src {script_hash(FILTER_SCRIPT)}; base-uri 'none'; form-action 'none'"
)


# --- filters ------------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """``2026-03-01 02:00:05 UTC`` (``—`` for none)."""
    if moment is None:
        return "\u2014"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:.1f} %"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "\u2014"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s" if minutes else f"{seconds:.1f} s"


def evidence_value(value: FrozenJson) -> str:
    """A piece of evidence as text: scalars as they are, structures as compact JSON."""
    plain = thaw(value)
    if isinstance(plain, str):
        return plain
    return json.dumps(plain, ensure_ascii=False, separators=(", ", ": "))


def _environment_filters() -> Mapping[str, Any]:
    return {"when": when, "pct": pct, "duration": duration, "evidence_value": evidence_value}


@functools.cache
def environment() -> Environment:
    """The report templates' environment (cached): autoescape on, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("orchestrator.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_environment_filters())
    return env


# --- charts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepCharts:
    severity: Markup
    trend_findings: Markup
    trend_compliance: Markup
    by_role: Markup
    by_site: Markup
    by_check: Markup


def _trend_labels(points: Sequence[TrendPoint]) -> list[str]:
    days = {point.at.astimezone(UTC).date() for point in points}
    form = "%H:%M" if len(days) == 1 and len(points) > 1 else "%m-%d %H:%M"
    return [point.at.astimezone(UTC).strftime(form) for point in points]


def _group_bars(rows: Sequence[GroupCompliance]) -> list[svg.Bar]:
    return [
        svg.Bar(
            label=row.key,
            value=row.compliance_pct or 0.0,
            color=svg.GOOD if row.compliant == row.hosts else svg.ACCENT,
            note=f"{pct(row.compliance_pct)} ({row.compliant}/{row.hosts})",
        )
        for row in rows
    ]


def trusted(markup: str) -> Markup:
    """Markup this package made and escaped itself (an SVG chart, the filter script): the only
    text the templates print unescaped."""
    return Markup(markup)  # noqa: S704 (svg.py escapes every label; the script is a constant)


def _severity_bars(counts: Mapping[str, int]) -> list[svg.Bar]:
    return [
        svg.Bar(severity, float(count), svg.SEVERITY_COLORS.get(severity, svg.ACCENT), str(count))
        for severity, count in counts.items()
    ]


def _check_bars(report: SweepReport) -> list[svg.Bar]:
    return [
        svg.Bar(
            row.check_id,
            float(row.findings),
            svg.SEVERITY_COLORS.get(row.severity, svg.ACCENT),
            f"{row.findings} on {row.hosts_affected} hosts"
            if row.hosts_affected
            else f"{row.findings} fleet-wide",
        )
        for row in report.by_check
        if not row.passed
    ]


def sweep_charts(report: SweepReport) -> SweepCharts:
    trend = report.trend
    labels = _trend_labels(trend)
    severities = [s for s in SEVERITIES if any(p.findings_by_severity.get(s) for p in trend)] or ["high"]
    findings_series = [
        svg.Series(
            name=severity,
            values=tuple(float(p.findings_by_severity.get(severity, 0)) for p in trend),
            color=svg.SEVERITY_COLORS.get(severity, svg.ACCENT),
        )
        for severity in reversed(severities)  # the most severe band on top
    ]
    compliance = svg.Series(
        name="compliant hosts %", values=tuple(p.compliance_pct or 0.0 for p in trend), color=svg.GOOD
    )
    return SweepCharts(
        severity=trusted(
            svg.bar_chart(_severity_bars(report.summary.findings_by_severity), title="Findings by severity")
        ),
        trend_findings=trusted(
            svg.stacked_area_chart(labels, findings_series, title="Findings by severity, sweep by sweep")
        ),
        trend_compliance=trusted(
            svg.line_chart(labels, [compliance], title="Compliant hosts, sweep by sweep", y_max=100, unit="%")
        ),
        by_role=trusted(
            svg.bar_chart(
                _group_bars(report.by_role), title="Compliant hosts by role", max_value=100, empty="no hosts"
            )
        ),
        by_site=trusted(
            svg.bar_chart(
                _group_bars(report.by_site), title="Compliant hosts by site", max_value=100, empty="no hosts"
            )
        ),
        by_check=trusted(svg.bar_chart(_check_bars(report), title="Findings by check", empty="no findings")),
    )


# --- rendering ----------------------------------------------------------------------------------


def render_sweep_html(report: SweepReport) -> Iterator[str]:
    """The HTML page of ``report``, as chunks (the template is streamed, not built in memory)."""
    template = environment().get_template(SWEEP_TEMPLATE)
    return template.generate(
        report=report,
        charts=sweep_charts(report),
        severities=SEVERITIES,
        table_limit=NEW_TABLE_LIMIT,
        script=trusted(FILTER_SCRIPT),
        csp=CONTENT_SECURITY_POLICY,
        version=__version__,
    )


def sweep_html(report: SweepReport) -> str:
    """The whole page as one string (tests, small reports)."""
    return "".join(render_sweep_html(report))


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FILTER_SCRIPT",
    "NEW_TABLE_LIMIT",
    "SWEEP_TEMPLATE",
    "SweepCharts",
    "duration",
    "environment",
    "evidence_value",
    "pct",
    "render_sweep_html",
    "script_hash",
    "sweep_charts",
    "sweep_html",
    "trusted",
    "when",
]
