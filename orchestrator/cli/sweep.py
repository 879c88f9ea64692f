"""``fleetfix sweep``: collect the selected hosts, run the checks, store and report the findings.

Thin: the flow is :func:`orchestrator.sweep.service.run_sweep`; this module parses options,
reports progress on stderr, and renders the result (JSON shape in docs/cli-json.md).
Exit codes: 0 compliant, 1 findings or hosts/tenant that could not be collected, 2 bad input,
3 store or internal error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import (
    ExitCode,
    OutputFormat,
    OutputOption,
    app_state,
    command,
    emit_json,
    render_table,
    stderr,
    stdout,
)
from orchestrator.cli.inventory import InventoryOption, LimitOption, selected_hosts
from orchestrator.config import Settings
from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, CollectOptions

if TYPE_CHECKING:
    from orchestrator.inventory import Host
    from orchestrator.store.sweeps import FindingRecord
    from orchestrator.sweep.collect import HostOutcome
    from orchestrator.sweep.diff import Change
    from orchestrator.sweep.service import SweepResult

ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", "-j", min=1, max=1024, help="hosts collected at once")
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1.0, help="seconds one host's session may take (connect, probe, close)"),
]


@command
def sweep_command(
    ctx: typer.Context,
    *,
    limit: LimitOption = None,
    inventory: InventoryOption = None,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    timeout: TimeoutOption = DEFAULT_DEADLINE_S,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Collect facts from the selected hosts (and Intune), run every check, store and show findings."""
    hosts = selected_hosts(ctx, inventory, limit)
    options = CollectOptions(concurrency=concurrency, deadline_s=timeout)
    if app_state(ctx).settings.broker_url:  # collect on Celery workers (docs/celery.md)
        distributed = run_on_workers(
            app_state(ctx).settings,
            hosts,
            selector=limit,
            options=options,
            progress=output is OutputFormat.table,
        )
        _report(app_state(ctx).settings, distributed, output)
    result = run(
        app_state(ctx).settings, hosts, selector=limit, options=options, progress=output is OutputFormat.table
    )
    from orchestrator.reports.notify import after_sweep  # noqa: PLC0415 (webhooks: docs/reports.md)

    result = after_sweep(app_state(ctx).settings, result)  # never raises; failures become notes
    if output is OutputFormat.json:
        from orchestrator.sweep.report import sweep_document  # noqa: PLC0415

        emit_json(sweep_document(result))
    else:
        render(result)
    raise typer.Exit(int(ExitCode.OK if result.compliant else ExitCode.FINDINGS))


def run(
    settings: Settings,
    hosts: tuple[Host, ...],
    *,
    selector: str | None,
    options: CollectOptions,
    progress: bool,
    environ: Mapping[str, str] | None = None,
) -> SweepResult:
    """One sweep with the real edges; also what ``fleetfix demo`` calls."""
    # Imported here: the store, the checks and the transports load only for commands that sweep.
    from orchestrator.store import local_actor, open_store  # noqa: PLC0415
    from orchestrator.sweep.service import SweepRequest, default_io, run_sweep  # noqa: PLC0415

    _quiet_pypsrp()
    request = SweepRequest(hosts, requested_by=local_actor(), selector=selector, options=options)
    io = default_io(settings, on_host_done=_Progress(len(hosts)) if progress else None, environ=environ)
    with open_store(settings) as store:
        return run_sweep(store, request, io)


def run_on_workers(
    settings: Settings,
    hosts: tuple[Host, ...],
    *,
    selector: str | None,
    options: CollectOptions,
    progress: bool,
) -> SweepResult:
    """One sweep whose hosts are collected by Celery workers (``broker_url`` set); the checks and
    the store writes run here, as in :func:`run`. Refuses a SQLite store (exit 2)."""
    from orchestrator.store import local_actor, open_store  # noqa: PLC0415
    from orchestrator.sweep.distributed import run_distributed_sweep  # noqa: PLC0415
    from orchestrator.sweep.service import SweepRequest  # noqa: PLC0415
    from tasks.app import make_app, require_shared_store  # noqa: PLC0415

    require_shared_store(settings)
    _quiet_pypsrp()
    request = SweepRequest(hosts, requested_by=local_actor(), selector=selector, options=options)
    with open_store(settings) as store:
        return run_distributed_sweep(
            settings,
            store,
            make_app(settings),
            request,
            on_progress=_Counted(len(hosts)) if progress else None,
        )


def _report(settings: Settings, result: SweepResult, output: OutputFormat) -> None:
    """Notify, render and exit as ``fleetfix sweep`` does."""
    from orchestrator.reports.notify import after_sweep  # noqa: PLC0415

    result = after_sweep(settings, result)  # never raises; failures become notes
    if output is OutputFormat.json:
        from orchestrator.sweep.report import sweep_document  # noqa: PLC0415

        emit_json(sweep_document(result))
    else:
        render(result)
    raise typer.Exit(int(ExitCode.OK if result.compliant else ExitCode.FINDINGS))


class _Counted:
    """``collected 250/1000 hosts`` on stderr at every tenth of the fleet, from the ledger's count."""

    def __init__(self, total: int) -> None:
        self.step = max(1, total // 10)
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if done // self.step > self.shown // self.step or (done == total and self.shown != total):
            stderr.print(f"collected {done}/{total} hosts", highlight=False)
            self.shown = done


def _quiet_pypsrp() -> None:
    """pypsrp logs an ERROR with a traceback for every request that times out, and urllib3 a
    WARNING for each retried refused connection; the sweep already reports each host's error once,
    so below DEBUG those records only repeat it (per host)."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pypsrp").setLevel(logging.CRITICAL)
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


class _Progress:
    """``collected 250/1000 hosts`` on stderr at every tenth of the fleet (called from workers)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.step = max(1, total // 10)
        self._lock = threading.Lock()

    def __call__(self, outcome: HostOutcome) -> None:
        with self._lock:  # held while printing, so the counts come out in order
            self.done += 1
            if self.done % self.step == 0 or self.done == self.total:
                stderr.print(f"collected {self.done}/{self.total} hosts", highlight=False)


def render(result: SweepResult) -> None:
    """The table view: what failed to collect, the findings, what changed."""
    from orchestrator.sweep.diff import FindingStatus  # noqa: PLC0415
    from orchestrator.sweep.report import select_findings  # noqa: PLC0415

    summary = result.summary
    hosts, findings = summary["hosts"], summary["findings"]
    for note in summary["notes"]:
        stderr.print(f"[yellow]note:[/] {escape(note)}", markup=True, highlight=False)
    problems = [record for record in result.hosts if record.error_kind is not None]
    if problems:
        rows = ((r.host, r.role, r.status.value, r.error_kind, r.error_message) for r in problems)
        render_table("hosts not collected", ("host", "role", "status", "error", "message"), rows)
    selected = select_findings(result.diff, FindingStatus.OPEN)
    if selected:
        render_findings(f"{len(selected)} findings", selected)
    verdict = "compliant" if result.compliant else "not compliant"
    stdout.print(
        f"sweep {result.run.id}: {hosts['ok']}/{hosts['selected']} hosts collected, "
        f"{findings['total']} findings ({findings['new']} new, {findings['still_open']} still open, "
        f"{findings['resolved']} resolved since the previous sweep): {verdict}",
        highlight=False,
    )


def render_findings(title: str, selected: Sequence[tuple[FindingRecord, Change]]) -> None:
    rows = (
        (record.severity, record.host, record.check_id, record.subject, record.message, change.value)
        for record, change in selected
    )
    render_table(title, ("severity", "host", "check", "subject", "message", "status"), rows)


__all__ = ["render", "render_findings", "run", "sweep_command"]
