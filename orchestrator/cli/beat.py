"""``fleetfix beat``: fire the scheduled sweeps and playbook runs of ``[schedule]`` (docs/schedule.md).

Thin: the schedule is :mod:`orchestrator.schedule`; this module picks the dispatcher (Celery when a
broker is configured, else in-process), prints what the beat does on stderr (UTC and each job's
local time), and renders ``--once`` and ``--list`` (JSON shapes in docs/schedule.md).

Exit codes: ``--health``: 0 while a beat (this one or another) holds a live lease, else 1;
``--once``: 0 nothing needed attention (also when another beat holds the lease:
nothing fired), 1 a fired job failed, was refused, or found something (findings, hosts not
collected, a run that did not fix everything); ``--list``: 1 when a job cannot run as configured
(an unknown playbook, a missing or stale approval); the long-running beat: 0 after SIGTERM or
Ctrl-C, 1 with ``--no-standby`` when another beat holds the lease; 2 bad input; 3 store or
internal error.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

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
)
from orchestrator.config import Settings
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.schedule.beat import Beat, BeatEvent, Clock, Dispatcher, FireOutcome
    from orchestrator.schedule.lease import LeaseState
    from orchestrator.store import Store


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not an ISO 8601 date and time", field="--now") from None
    if value.tzinfo is None:
        raise InputError(f"{text!r} needs an offset or Z (the beat keeps UTC)", field="--now")
    return value.astimezone(UTC)


@command
def beat_command(
    ctx: typer.Context,
    *,
    once: Annotated[
        bool, typer.Option("--once", help="fire what is due now and exit (for cron or systemd timers)")
    ] = False,
    list_jobs: Annotated[
        bool, typer.Option("--list", help="the jobs, their next fire (UTC and local), last fire, approval")
    ] = False,
    health: Annotated[
        bool,
        typer.Option("--health", help="exit 0 when a beat holds a live schedule lease (container health)"),
    ] = False,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby/--no-standby",
            help="when another beat holds the schedule: wait to take over (default) or exit 1",
        ),
    ] = True,
    now: Annotated[
        str | None,
        typer.Option("--now", hidden=True, help="pretend the clock shows this ISO time (tests, rehearsals)"),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Fire the jobs scheduled in the config: one beat at a time, each fire once per job and local date."""
    from orchestrator.schedule.beat import Beat, beat_holder, offset_clock  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    if sum((once, list_jobs, health)) > 1:
        raise InputError("--once, --list and --health do not go together", field="--list")
    settings = app_state(ctx).settings
    clock: Clock = offset_clock(_parse_now(now)) if now is not None else (lambda: datetime.now(UTC))
    if health:
        with open_store(settings) as store:
            _health(store, clock(), output)
        return
    if list_jobs:
        with open_store(settings) as store:
            _list(settings, store, clock(), output)
        return
    if not settings.schedule.jobs:
        raise InputError(
            "nothing to schedule: add [[schedule.jobs]] to the config (docs/schedule.md)",
            field="schedule.jobs",
        )
    from orchestrator.cli.sweep import _quiet_pypsrp  # noqa: PLC0415

    _quiet_pypsrp()
    with open_store(settings) as store:
        holder = beat_holder()
        dispatcher = _dispatcher(settings, store, holder, clock)
        beat = Beat(settings, store, dispatcher, holder=holder, clock=clock, on_event=_print_event)
        _warn_unrunnable(settings, beat, clock())
        if once:
            lease, fired = beat.once()
            _render_once(beat, lease, fired, clock(), output)
            return
        code = _run_forever(beat, standby=standby, output=output)
    raise typer.Exit(int(code))


def _dispatcher(settings: Settings, store: Store, holder: str, clock: Clock) -> Dispatcher:
    from orchestrator.schedule.beat import CeleryDispatch, InProcess  # noqa: PLC0415

    if settings.broker_url:
        from tasks.app import make_app, require_shared_store  # noqa: PLC0415 (celery only with a broker)

        # the workers run what the beat records: a run the beat creates must be in their store
        require_shared_store(settings)
        return CeleryDispatch(settings, store, make_app(settings), clock)
    return InProcess(settings, store, holder, clock)


def _print_event(event: BeatEvent) -> None:
    style = {"finished": "", "error": "red", "standby": "yellow"}.get(event.kind, "")
    stamp = (event.at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{stamp} beat: {escape(event.text)}"
    stderr.print(f"[{style}]{text}[/]" if style else text, markup=True, highlight=False)


def _warn_unrunnable(settings: Settings, beat: Beat, at: datetime) -> None:
    """Say at start which playbook jobs would be refused (not approved, unknown playbook)."""
    from orchestrator.schedule.execute import check_playbook_job  # noqa: PLC0415

    for job in beat.jobs:
        if job.kind != "playbook" or not job.enabled:
            continue
        problem = check_playbook_job(settings, job, at.astimezone(job.zone).date()).problem
        if problem is not None:
            text = f"job {job.name} will be refused when it fires: {problem}"
            stderr.print(
                f"[yellow]warning:[/] {escape(text)}",
                markup=True,
                highlight=False,
            )


def _run_forever(beat: Beat, *, standby: bool, output: OutputFormat) -> ExitCode:
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        held = beat.run(stop, standby=standby)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held is not None:
        message = f"another beat is active: {held.describe()}; this one exits (--standby waits to take over)"
        stderr.print(escape(message), highlight=False)
        if output is OutputFormat.json:
            emit_json({"lease": held.to_dict(), "fired": []})
        return ExitCode.FINDINGS
    return ExitCode.OK


# --- --once -------------------------------------------------------------------------------------


def _needs_attention(outcome: FireOutcome) -> bool:
    result = outcome.result
    if result is None:
        return False
    return result.attention or result.status.value in {"failed", "refused"}


def _render_once(
    beat: Beat, lease: LeaseState, fired: Sequence[FireOutcome], at: datetime, output: OutputFormat
) -> None:
    attention = any(_needs_attention(outcome) for outcome in fired)
    if output is OutputFormat.json:
        emit_json(
            {
                "at": at.isoformat(),
                "holder": beat.holder,
                "lease": lease.to_dict(),
                "fired": [outcome.to_dict() for outcome in fired],
            }
        )
    elif lease.mine:
        if not fired:
            stderr.print(f"nothing due at {at.strftime('%Y-%m-%dT%H:%M:%SZ')}", highlight=False)
        else:
            from orchestrator.schedule.beat import both_times  # noqa: PLC0415

            rows = [
                (
                    outcome.job.name,
                    outcome.job.kind,
                    both_times(outcome.scheduled_at, outcome.job.zone),
                    "fired" if outcome.fired else "already fired",
                    outcome.result.status.value if outcome.result else "",
                    outcome.result.message if outcome.result else "",
                )
                for outcome in fired
            ]
            render_table("scheduled jobs", ("job", "kind", "scheduled", "fire", "status", "result"), rows)
    raise typer.Exit(int(ExitCode.FINDINGS if attention else ExitCode.OK))


# --- --health -----------------------------------------------------------------------------------


def _health(store: Store, at: datetime, output: OutputFormat) -> None:
    """Healthy (0) while some beat holds a live lease: the schedule is being served (a standby
    beat is healthy too: the active one serves it). 1 when no beat does."""
    from orchestrator.schedule.lease import read_lease  # noqa: PLC0415

    lease = read_lease(store)
    live = lease is not None and lease.expires_at > at
    if output is OutputFormat.json:
        emit_json({"at": at.isoformat(), "live": live, "lease": None if lease is None else lease.to_dict()})
    elif lease is None:
        stderr.print("no beat holds the schedule lease", highlight=False)
    else:
        state = "live" if live else "expired"
        stderr.print(f"{escape(lease.describe())} ({state})", highlight=False)
    raise typer.Exit(int(ExitCode.OK if live else ExitCode.FINDINGS))


# --- --list -------------------------------------------------------------------------------------


def _list(settings: Settings, store: Store, at: datetime, output: OutputFormat) -> None:
    from orchestrator.schedule.beat import both_times  # noqa: PLC0415
    from orchestrator.schedule.execute import check_playbook_job  # noqa: PLC0415
    from orchestrator.schedule.fires import latest_fires  # noqa: PLC0415
    from orchestrator.schedule.jobs import Job  # noqa: PLC0415
    from orchestrator.schedule.lease import read_lease  # noqa: PLC0415

    jobs = Job.all_from(settings.schedule)
    last = latest_fires(store)
    lease = read_lease(store)
    documents: list[dict[str, Any]] = []
    for job in jobs:
        upcoming = job.next(at)
        check = check_playbook_job(settings, job, upcoming.local_date) if job.kind == "playbook" else None
        previous = last.get(job.name)
        documents.append(
            {
                "name": job.name,
                "kind": job.kind,
                "enabled": job.enabled,
                "cron": job.cron.text,
                "timezone": job.zone.key,
                "selector": job.settings.selector,
                "keyed_by": "job, local date" if job.cron.once_a_day else "job, local date, slot",
                "next_fire": {
                    "at": upcoming.at.isoformat(),
                    "local": upcoming.at.astimezone(job.zone).isoformat(),
                    "local_date": upcoming.local_date.isoformat(),
                    "slot": upcoming.slot,
                },
                "last_fire": None if previous is None else previous.to_dict(),
                "playbook": None if check is None else check.to_dict(),
            }
        )
    problems = [doc for doc in documents if doc["enabled"] and doc["playbook"] and doc["playbook"]["problem"]]
    if output is OutputFormat.json:
        emit_json(
            {
                "at": at.isoformat(),
                "lease": None if lease is None else {**lease.to_dict(), "live": lease.expires_at > at},
                "jobs": documents,
            }
        )
    else:
        rows = []
        for job, doc in zip(jobs, documents, strict=True):
            previous = doc["last_fire"]
            approval = ""
            if doc["playbook"] is not None:
                info = doc["playbook"]
                approval = info["problem"] or (
                    f"approved ({info['approval_digest']})" if info["risk"] != "none" else "not risky"
                )
            rows.append(
                (
                    job.name,
                    job.kind if job.enabled else f"{job.kind} (disabled)",
                    f"{job.cron.text} {job.zone.key}",
                    both_times(job.next(at).at, job.zone),
                    "" if previous is None else f"{previous['local_date']} {previous['status']}",
                    approval,
                )
            )
        render_table("schedule", ("job", "kind", "cron", "next fire", "last fire", "approval"), rows)
        if lease is not None:
            state = "active" if lease.expires_at > at else "expired"
            stderr.print(f"lease: {escape(lease.describe())} ({state})", highlight=False)
    raise typer.Exit(int(ExitCode.FINDINGS if problems else ExitCode.OK))


__all__ = ["beat_command"]
