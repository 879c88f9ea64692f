"""``fleetfix report``: reports of stored sweeps, and Prometheus metrics of the store.

Reads the store only (no host is contacted).  ``report sweep`` writes one self-contained HTML
page, or the CSV or JSON export (docs/reports.md), of a completed sweep -- the newest unless
``--run`` names another; ``report metrics`` writes the metrics file for node_exporter's textfile
collector.  ``report run ID`` writes the report of a playbook run for its change ticket (HTML, CSV
or JSON: the run, its plan, every target's changes, verification and rollbacks, its audit trail).
Files are written atomically (nothing is left behind on failure); ``-o -`` writes to standard
output.

In these commands ``-o`` is the file to write (``--out``); the result document that every command
prints with ``--output json`` is asked for with the long option only.  Exit codes: 0 written (what
the report says does not change it), 2 bad input (no such sweep, an unusable path), 3 store or
write error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    app_state,
    command,
    emit_json,
    stderr,
)
from orchestrator.cli.inventory import InventoryOption
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from orchestrator.config import Settings
    from orchestrator.reports.metrics import MetricsData
    from orchestrator.reports.model import SweepReport
    from orchestrator.reports.runmodel import PlaybookInfo, RunReport

app = typer.Typer(
    help="Reports of stored sweeps and playbook runs (HTML, CSV, JSON) and Prometheus metrics.",
    no_args_is_help=True,
)

DEFAULT_TREND = 10
MAX_TREND = 366


class ReportFormat(StrEnum):
    html = "html"
    csv = "csv"
    json = "json"


OutOption = Annotated[
    str, typer.Option("--out", "-o", help="file to write (replaced atomically); - for standard output")
]
ResultOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        help="what to print once written: table for humans, json for scripts",
        case_sensitive=False,
    ),
]
RunOption = Annotated[
    str | None, typer.Option("--run", help="sweep run id (default: the newest completed sweep)")
]
FormatOption = Annotated[
    ReportFormat, typer.Option("--format", "-f", case_sensitive=False, help="html, csv or json")
]
TrendOption = Annotated[
    int,
    typer.Option("--trend", min=1, max=MAX_TREND, help="sweeps in the trend, this one included"),
]


def _target(out: str, output: OutputFormat) -> Path | None:
    """The file to write, or None for standard output; bad input is refused before any work."""
    from orchestrator.reports.output import OUT_FIELD, check_target, is_stdout  # noqa: PLC0415

    if is_stdout(out):
        if output is OutputFormat.json:
            raise InputError(
                "-o - writes the report to standard output, where --output json would print a second "
                "document: use one of them",
                field=OUT_FIELD,
            )
        return None
    path = Path(out)
    check_target(path)
    return path


def _write(target: Path | None, chunks: Iterator[str]) -> int:
    from orchestrator.reports.output import write_atomic, write_stdout  # noqa: PLC0415

    return write_stdout(chunks) if target is None else write_atomic(target, chunks)


def _sites(ctx: typer.Context, inventory: list[Path] | None) -> tuple[dict[str, str], bool]:
    """Host -> ``site`` tag from the inventory; none configured is not an error (all unassigned)."""
    from orchestrator.cli.inventory import inventory_paths, load_selected_inventory  # noqa: PLC0415
    from orchestrator.reports.source import inventory_sites  # noqa: PLC0415

    app_state(ctx).settings  # noqa: B018 (a broken config is reported as such, not as "no inventory")
    try:
        inventory_paths(ctx, inventory)
    except InputError:
        return {}, False
    return inventory_sites(load_selected_inventory(ctx, inventory)), True


def _done(output: OutputFormat, document: dict[str, Any], message: str) -> None:
    if output is OutputFormat.json:
        emit_json(document)
    else:
        stderr.print(message, highlight=False, markup=False)


@app.command("sweep")
@command
def sweep_report(
    ctx: typer.Context,
    *,
    out: OutOption,
    run: RunOption = None,
    report_format: FormatOption = ReportFormat.html,
    trend: TrendOption = DEFAULT_TREND,
    inventory: InventoryOption = None,
    output: ResultOption = OutputFormat.table,
) -> None:
    """Write the report of a completed sweep (the newest by default) as HTML, CSV or JSON."""
    from orchestrator.reports.model import build_sweep_report  # noqa: PLC0415
    from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    target = _target(out, output)
    sites, inventory_loaded = _sites(ctx, inventory)
    with open_store(app_state(ctx).settings) as store, store.transaction() as session:
        sweep = report_sweep(session, run)
        data = load_sweep_data(
            session,
            sweep,
            trend=trend,
            sites=sites,
            checks=catalogue_checks(),
            generated_at=datetime.now(UTC),
            inventory_loaded=inventory_loaded,
        )
    report = build_sweep_report(data)
    written = _write(target, _renderer(report_format)(report))
    where = "standard output" if target is None else str(target)
    _done(
        output,
        {
            "run_id": report.run.id,
            "format": report_format.value,
            "path": None if target is None else str(target.resolve()),
            "bytes": written,
            "schema_version": report.schema_version,
            "compliant": report.summary.compliant,
            "hosts": report.summary.hosts_selected,
            "findings": report.summary.findings_total,
            "trend": len(report.trend),
        },
        f"wrote the {report_format.value} report of sweep {report.run.id} to {where} "
        f"({report.summary.hosts_selected} hosts, {report.summary.findings_total} findings, {written} bytes)",
    )
    raise typer.Exit(int(ExitCode.OK))


def _renderer(report_format: ReportFormat) -> Callable[[SweepReport], Iterator[str]]:
    if report_format is ReportFormat.html:
        from orchestrator.reports.html import render_sweep_html  # noqa: PLC0415 (Jinja2 only for HTML)

        return render_sweep_html
    from orchestrator.reports.export import sweep_csv, sweep_json  # noqa: PLC0415

    return sweep_csv if report_format is ReportFormat.csv else sweep_json


@app.command("metrics")
@command
def metrics_report(
    ctx: typer.Context,
    *,
    out: OutOption,
    output: ResultOption = OutputFormat.table,
) -> None:
    """Write Prometheus metrics of the store (newest sweep, runs by outcome) for node_exporter."""
    from orchestrator.reports.metrics import metrics_text  # noqa: PLC0415
    from orchestrator.reports.source import catalogue_checks, load_metrics_data  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    target = _target(out, output)
    with open_store(app_state(ctx).settings) as store, store.transaction() as session:
        data = load_metrics_data(session, checks=catalogue_checks())
        data = _with_run_targets(data, session)
    text = metrics_text(data)
    written = _write(target, iter((text,)))
    run_id = data.sweep.run_id if data.sweep else None
    _done(
        output,
        {
            "path": None if target is None else str(target.resolve()),
            "bytes": written,
            "run_id": run_id,
            "samples": sum(1 for line in text.splitlines() if line and not line.startswith("#")),
        },
        f"wrote metrics ({'sweep ' + run_id if run_id else 'no completed sweep yet'}) to "
        f"{'standard output' if target is None else target} ({written} bytes)",
    )
    raise typer.Exit(int(ExitCode.OK))


def _with_run_targets(data: MetricsData, session: Session) -> MetricsData:
    """The metrics with the targets of each playbook's newest run (``fleetfix_run_targets``)."""
    from dataclasses import replace  # noqa: PLC0415

    from orchestrator.reports.runsource import last_run_targets  # noqa: PLC0415

    return replace(data, run_targets=last_run_targets(session))


RunIdArgument = Annotated[str, typer.Argument(metavar="ID", help="the playbook run (fleetfix runs list)")]


@app.command("run")
@command
def run_report(
    ctx: typer.Context,
    run_id: RunIdArgument,
    *,
    out: OutOption,
    report_format: FormatOption = ReportFormat.html,
    output: ResultOption = OutputFormat.table,
) -> None:
    """Write the report of a playbook run for its change ticket as HTML, CSV or JSON."""
    from orchestrator.reports.runmodel import build_run_report  # noqa: PLC0415
    from orchestrator.reports.runsource import load_run_data, report_run  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    target = _target(out, output)
    settings = app_state(ctx).settings
    with open_store(settings) as store, store.transaction() as session:
        record = report_run(session, run_id)
        playbook, notes = _run_playbook(settings, record.playbook_id)
        data = load_run_data(session, record, playbook=playbook, generated_at=datetime.now(UTC), notes=notes)
    report = build_run_report(data)
    written = _write(target, _run_renderer(report_format)(report))
    where = "standard output" if target is None else str(target)
    _done(
        output,
        {
            "run_id": report.run.id,
            "playbook": report.run.playbook_id,
            "status": report.run.status,
            "format": report_format.value,
            "path": None if target is None else str(target.resolve()),
            "bytes": written,
            "schema_version": report.schema_version,
            "targets": report.total,
            "failures": report.failures,
            "changes": report.changes_applied,
            "audit_entries": len(report.audit),
        },
        f"wrote the {report_format.value} report of run {report.run.id} ({report.run.playbook_id}, "
        f"{report.run.status}) to {where} ({report.total} targets, {report.changes_applied} changes, "
        f"{written} bytes)",
    )
    raise typer.Exit(int(ExitCode.OK))


def _run_playbook(settings: Settings, playbook_id: str | None) -> tuple[PlaybookInfo | None, tuple[str, ...]]:
    """The run's playbook as the catalogue has it now; a note instead when it cannot be had (the
    report of a stored run does not depend on today's playbook files)."""
    from orchestrator.errors import PlaybookError  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415
    from orchestrator.reports.runsource import playbook_info  # noqa: PLC0415

    if playbook_id is None:
        return None, ()
    try:
        return playbook_info(load_playbooks(settings).get(playbook_id)), ()
    except PlaybookError as exc:
        return None, (f"playbook {playbook_id} is not available from the catalogue: {exc}",)


def _run_renderer(report_format: ReportFormat) -> Callable[[RunReport], Iterator[str]]:
    if report_format is ReportFormat.html:
        from orchestrator.reports.runhtml import render_run_html  # noqa: PLC0415 (Jinja2 only for HTML)

        return render_run_html
    from orchestrator.reports.runexport import run_csv, run_json  # noqa: PLC0415

    return run_csv if report_format is ReportFormat.csv else run_json


__all__ = ["ReportFormat", "app", "metrics_report", "run_report", "sweep_report"]
