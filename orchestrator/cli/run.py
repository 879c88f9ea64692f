"""``fleetfix run PLAYBOOK`` and ``fleetfix runs list|show|resume|cancel|approve``.

Thin: the targets and the per-target work come from :mod:`orchestrator.engine.launch` and
:mod:`orchestrator.engine.hostwork`, the run's state machine from :mod:`orchestrator.engine`.
This module parses options, shows live progress per wave on stderr, and renders results (JSON
shapes in docs/cli-json.md).

Exit codes: 0 the run succeeded and every target is fixed or was already right (or ``--check``
planned without errors); 1 it failed, paused, awaits approval, or some target was refused,
skipped or could not be planned; 2 bad input; 3 store or internal error.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
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
    stdout,
)
from orchestrator.cli.inventory import InventoryOption, LimitOption, selected_hosts
from orchestrator.config import Settings
from orchestrator.errors import InputError
from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, CollectOptions

if TYPE_CHECKING:
    from orchestrator.engine.hostwork import TargetPlan
    from orchestrator.engine.launch import Context, Target
    from orchestrator.engine.model import RolloutOptions, RunEvent
    from orchestrator.engine.runs import RunView
    from orchestrator.inventory import Host
    from orchestrator.playbook.model import Playbook
    from orchestrator.store import Store

runs_app = typer.Typer(help="Playbook runs: list, show, resume, cancel, approve.", no_args_is_help=True)

ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", "-j", min=1, max=1024, help="targets worked on at once")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=1.0, help="seconds one WinRM session may take")
]
RunIdArgument = Annotated[str, typer.Argument(help="the run id (from `fleetfix runs list`)")]


def _holder() -> str:
    """Who holds leases for this process: host name and pid, so a dead process is recognisable."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


@command
def run_command(
    ctx: typer.Context,
    playbook_id: Annotated[
        str, typer.Argument(metavar="PLAYBOOK", help="playbook id (fleetfix playbooks list)")
    ],
    *,
    limit: LimitOption = None,
    inventory: InventoryOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="show the exact plan per target; change nothing")
    ] = False,
    save_plan: Annotated[
        Path | None, typer.Option("--save-plan", help="with --check: write the plan to FILE for --plan")
    ] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="apply a saved plan; targets that drifted are refused")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="approve a risky playbook yourself")] = False,
    canary: Annotated[int | None, typer.Option("--canary", min=0, help="targets in the canary wave")] = None,
    wave_size: Annotated[
        int | None, typer.Option("--wave-size", min=1, help="targets per later wave")
    ] = None,
    max_fail: Annotated[
        str | None, typer.Option("--max-fail", help="failure budget: a count (3) or a share (10%)")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window", help="change window, e.g. '22:00-04:00 Europe/Amsterdam', or a configured name"
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="playbook parameter NAME=VALUE (repeatable)")
    ] = None,
    all_hosts: Annotated[
        bool,
        typer.Option(
            "--all-hosts", help="every selected host of the role, not only those the last sweep flagged"
        ),
    ] = False,
    wait_window: Annotated[
        bool, typer.Option("--wait/--no-wait", help="outside the window: wait for it (default) or pause")
    ] = True,
    verify_timeout: Annotated[
        float | None,
        typer.Option(
            "--verify-timeout", min=0.0, help="seconds verification may poll (default: the playbook's)"
        ),
    ] = None,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    timeout: TimeoutOption = DEFAULT_DEADLINE_S,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run a playbook on the hosts the last sweep flagged: canary first, then waves."""
    from orchestrator.engine.launch import load_context, select_targets  # noqa: PLC0415
    from orchestrator.engine.planfile import load_plan  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks, parse_param_overrides  # noqa: PLC0415
    from orchestrator.store import local_actor, open_store  # noqa: PLC0415

    settings = app_state(ctx).settings
    if save_plan is not None and not check:
        raise InputError("--save-plan needs --check", field="--save-plan")
    if plan_file is not None and check:
        raise InputError("--plan applies a saved plan; leave out --check", field="--plan")
    playbook = load_playbooks(settings).get(playbook_id)
    saved = load_plan(plan_file) if plan_file is not None else None
    if saved is not None and saved.playbook != playbook.id:
        raise InputError(
            f"{plan_file}: the plan is for playbook {saved.playbook}, not {playbook.id}", field="--plan"
        )
    overrides = parse_param_overrides(param or [], playbook)
    params = playbook.resolve_params(overrides if saved is None else dict(saved.params))
    rollout = _rollout(playbook, canary=canary, wave_size=wave_size, max_fail=max_fail)
    window_text = _window_text(window, settings)
    hosts = selected_hosts(ctx, inventory, limit)
    options = CollectOptions(concurrency=concurrency, deadline_s=timeout)
    _quiet_pypsrp()
    _refuse_unshared_store(settings)
    with open_store(settings) as store:
        context = load_context(store)
        if saved is not None:
            targets = _saved_targets(saved.roles(), hosts, limit)
        else:
            targets = select_targets(
                playbook, hosts, context, all_hosts=all_hosts, tenant_configured=settings.graph.configured
            )
        if check:
            _check(
                settings, store, playbook, params, hosts, context, targets, limit, save_plan, options, output
            )
            return
        if not targets:
            _nothing_to_do(playbook, output)
            return
        run_id = _create(
            store,
            playbook,
            params,
            targets,
            rollout=rollout,
            window_text=window_text,
            selector=limit,
            actor=local_actor(),
            approved=yes,
            planned=saved.targets if saved is not None else None,
            sweep_id=context.sweep.id,
            concurrency=concurrency,
            deadline_s=timeout,
            verify_timeout_s=verify_timeout,
        )
        view = _advance(settings, store, run_id, hosts, wait_window=wait_window, output=output)
    _finish(view, output)


def launch_playbook(
    settings: Settings,
    store: Store,
    playbook_id: str,
    hosts: Sequence[Host],
    *,
    progress: bool,
    environ: Mapping[str, str] | None = None,
) -> RunView | None:
    """Run a playbook with its defaults on what the last sweep flagged, approved by whoever runs
    this (``fleetfix demo`` on its lab); None when nothing is flagged."""
    from orchestrator.engine.launch import load_context, select_targets  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415
    from orchestrator.store import local_actor  # noqa: PLC0415

    playbook = load_playbooks(settings).get(playbook_id)
    context = load_context(store)
    targets = select_targets(playbook, hosts, context, tenant_configured=settings.graph.configured)
    if not targets:
        return None
    run_id = _create(
        store,
        playbook,
        playbook.resolve_params(),
        targets,
        rollout=_rollout(playbook, canary=None, wave_size=None, max_fail=None),
        window_text=None,
        selector=None,
        actor=local_actor(),
        approved=True,
        planned=None,
        sweep_id=context.sweep.id,
        concurrency=DEFAULT_CONCURRENCY,
        deadline_s=DEFAULT_DEADLINE_S,
        verify_timeout_s=None,
    )
    output = OutputFormat.table if progress else OutputFormat.json
    return _advance(settings, store, run_id, hosts, wait_window=False, output=output, environ=environ)


def _nothing_to_do(playbook: Playbook, output: OutputFormat) -> None:
    message = (
        f"nothing to do: no selected host has a finding {playbook.id} fixes in the last sweep "
        "(--all-hosts plans every selected host of the role)"
    )
    if output is OutputFormat.json:
        emit_json({"run": None, "playbook": playbook.id, "targets": 0, "message": message})
    else:
        stdout.print(message, highlight=False)


def _quiet_pypsrp() -> None:
    from orchestrator.cli.sweep import _quiet_pypsrp as quiet  # noqa: PLC0415

    quiet()


def _rollout(
    playbook: Playbook, *, canary: int | None, wave_size: int | None, max_fail: str | None
) -> RolloutOptions:
    from orchestrator.engine.model import FailureBudget, RolloutOptions  # noqa: PLC0415

    defaults = playbook.rollout
    return RolloutOptions(
        canary=defaults.canary if canary is None else canary,
        wave_size=defaults.wave_size if wave_size is None else wave_size,
        serial=defaults.serial,
        max_fail=FailureBudget.parse(max_fail if max_fail is not None else str(defaults.max_fail)),
    )


def _window_text(window: str | None, settings: Settings) -> str | None:
    """The window's literal spec (checked now: a typo fails before anything runs)."""
    if window is None:
        return None
    from orchestrator.engine.windows import resolve_window  # noqa: PLC0415

    resolve_window(window, settings)
    return settings.windows.get(window, window)


def _saved_targets(roles: Mapping[str, str], hosts: Sequence[Host], limit: str | None) -> tuple[Target, ...]:
    """A saved plan's targets, still in the inventory (and in ``--limit``, when given)."""
    from orchestrator.engine.launch import TENANT_ROLE, Target  # noqa: PLC0415

    known = {host.name.casefold(): host for host in hosts}
    targets = []
    for name, role in roles.items():
        if role == TENANT_ROLE or name.casefold() in known:
            targets.append(Target(name, role))
        elif limit is None:
            raise InputError(f"the plan names {name}, which is not in the inventory", field="--plan")
    return tuple(targets)


# --- --check -----------------------------------------------------------------------------------------


def _check(  # noqa: PLR0917 (private; the command's own values)
    settings: Settings,
    store: Store,
    playbook: Playbook,
    params: Mapping[str, Any],
    hosts: Sequence[Host],
    context: Context,
    targets: Sequence[Target],
    limit: str | None,
    save_plan: Path | None,
    options: CollectOptions,
    output: OutputFormat,
) -> None:
    from orchestrator.engine.hostwork import plan_target  # noqa: PLC0415
    from orchestrator.engine.launch import work_setup  # noqa: PLC0415
    from orchestrator.engine.planfile import plan_document, write_plan  # noqa: PLC0415
    from orchestrator.store import append_audit, local_actor  # noqa: PLC0415

    actor = local_actor()
    setup = work_setup(
        settings,
        store,
        run_id="check",
        playbook=playbook,
        params=params,
        hosts=hosts,
        context=context,
        actor=actor,
        options=options,
    )
    with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(targets) or 1))) as pool:
        plans = list(pool.map(lambda target: plan_target(setup, target.name, target.role), targets))
    document = plan_document(
        playbook=playbook.id,
        params=params,
        selector=limit,
        created_at=_now(),
        created_by=actor,
        targets=[plan.to_dict() for plan in plans],
    )
    if save_plan is not None:
        write_plan(save_plan, document)
    append_audit(
        store.engine,
        actor,
        "playbook.plan",
        playbook.id,
        {
            "targets": len(plans),
            "changes": document["changes"],
            "saved_to": save_plan.name if save_plan else None,
        },
    )
    if output is OutputFormat.json:
        emit_json(document)
    else:
        _render_plans(playbook, plans, save_plan)
    failed = any(plan.error for plan in plans)
    raise typer.Exit(int(ExitCode.FINDINGS if failed else ExitCode.OK))


def _render_plans(playbook: Playbook, plans: Sequence[TargetPlan], save_plan: Path | None) -> None:
    rows = []
    for plan in plans:
        if plan.error:
            rows.append((plan.target, "-", "-", f"cannot plan ({plan.error_kind}): {plan.error}", ""))
        for step in plan.steps:
            if step.plan is None:
                rows.append((plan.target, step.step, "-", f"skipped: {step.skipped}", ""))
            elif step.plan.noop:
                rows.append((plan.target, step.step, step.plan.action, "no change", step.plan.note))
            for change in step.plan.changes if step.plan is not None else ():
                rows.append(
                    (
                        plan.target,
                        step.step,
                        change.field,
                        f"{_text(change.before)} -> {_text(change.after)}",
                        "",
                    )
                )
    render_table(
        f"plan of {playbook.id} (nothing was changed)", ("target", "step", "what", "change", "note"), rows
    )
    changes = sum(plan.changes for plan in plans)
    where = f"; saved to {save_plan}" if save_plan else ""
    stdout.print(f"{len(plans)} targets, {changes} changes planned{where}", highlight=False)


def _text(value: Any) -> str:
    from orchestrator.checks.model import thaw  # noqa: PLC0415

    if value is None:
        return "(none)"
    plain = thaw(value)
    return plain if isinstance(plain, str) else str(plain)


# --- a run -------------------------------------------------------------------------------------------


def _create(
    store: Store,
    playbook: Playbook,
    params: Mapping[str, Any],
    targets: Sequence[Target],
    *,
    rollout: RolloutOptions,
    window_text: str | None,
    selector: str | None,
    actor: str,
    approved: bool,
    planned: Mapping[str, Mapping[str, Any]] | None,
    sweep_id: str,
    concurrency: int,
    deadline_s: float,
    verify_timeout_s: float | None,
) -> str:
    from orchestrator.checks.model import thaw  # noqa: PLC0415
    from orchestrator.engine.runs import create_run  # noqa: PLC0415

    return create_run(
        store,
        playbook_id=playbook.id,
        targets=[(target.name, target.role) for target in targets],
        rollout=rollout,
        window_text=window_text,
        selector=selector,
        concurrency=concurrency,
        requested_by=actor,
        needs_approval=playbook.risk != "none" and not approved,
        parameters={
            "params": {key: thaw(value) for key, value in params.items()},
            "sweep_id": sweep_id,
            "concurrency": concurrency,
            "deadline_s": deadline_s,
            "verify_timeout_s": verify_timeout_s,
            "approved_with_yes": approved and playbook.risk != "none",
        },
        plans=dict(planned) if planned is not None else None,
    )


def _advance(
    settings: Settings,
    store: Store,
    run_id: str,
    hosts: Sequence[Host] | None,
    *,
    wait_window: bool,
    output: OutputFormat,
    ignore_window: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RunView:
    """Build the run's work from what the run recorded and drive it until it stops."""
    from orchestrator.engine import get_run  # noqa: PLC0415
    from orchestrator.engine.executors import LocalExecutor  # noqa: PLC0415
    from orchestrator.engine.launch import run_work  # noqa: PLC0415
    from orchestrator.reports.runnotify import after_run  # noqa: PLC0415 (webhooks: docs/reports.md)

    view = get_run(store, run_id)
    if view.status.value == "awaiting_approval":
        return view
    holder = _holder()
    work = run_work(settings, store, view, holder=holder, hosts=hosts, environ=environ)
    executor = LocalExecutor(store, work.runner, concurrency=work.concurrency, holder=holder)
    executor = _choose_executor(settings, store, executor, holder=holder, ignore_window=ignore_window)
    progress = _Progress() if output is OutputFormat.table else None
    stopped = _advance_taking_over(
        store,
        run_id,
        executor,
        clock=_now,
        settings=settings,
        on_event=progress,
        wait_for_window=wait_window,
        ignore_window=ignore_window,
    )
    return after_run(settings, stopped, before=view)  # never raises; failures are warnings


def _choose_executor(
    settings: Settings, store: Store, local: Any, *, holder: str, ignore_window: bool
) -> Any:
    """The executor for this run: ``local`` (in this process) unless a broker is configured, then
    Celery workers (tasks.runs.executor_for). The check that the store is shared comes first."""
    if not settings.broker_url:
        return local
    from tasks.app import make_app, require_shared_store  # noqa: PLC0415 (Celery loads only when used)
    from tasks.runs import executor_for  # noqa: PLC0415

    require_shared_store(settings)
    return executor_for(make_app(settings), store, holder=holder, ignore_window=ignore_window)


def _refuse_unshared_store(settings: Settings) -> None:
    """With a broker, refuse a SQLite store before anything is created (exit 2, naming store_url)."""
    if settings.broker_url:
        from tasks.app import require_shared_store  # noqa: PLC0415

        require_shared_store(settings)


def _advance_taking_over(store: Store, run_id: str, executor: Any, **options: Any) -> RunView:
    """``advance``, taking over a run whose coordinator died on this machine (a killed CLI).

    The coordinator's claim names ``host:pid:nonce``; when the host is this one and no process
    has that pid, nobody can be advancing the run, so waiting for the claim to expire would only
    make the admin wait.  A claim from another machine is left to expire.
    """
    from orchestrator.engine import advance  # noqa: PLC0415
    from orchestrator.engine.runs import release_coordinator  # noqa: PLC0415
    from orchestrator.errors import RunBusyError  # noqa: PLC0415

    try:
        return advance(store, run_id, executor, **options)
    except RunBusyError as exc:
        if exc.holder is None or not _dead_here(exc.holder):
            raise
        stderr.print(
            f"taking over run {run_id} from {exc.holder}, which is no longer running", highlight=False
        )
        release_coordinator(store, run_id, exc.holder)
        return advance(store, run_id, executor, **options)


def _dead_here(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


class _Progress:
    """Live progress on stderr: each wave's start and end, each target's outcome."""

    def __call__(self, event: RunEvent) -> None:
        stderr.print(escape(event.text), highlight=False)


def _finish(view: RunView, output: OutputFormat) -> None:
    if view.status.value == "awaiting_approval":
        stderr.print(
            f"run {view.id} needs approval (risky playbook): another person runs "
            f"`fleetfix runs approve {view.id}`, then `fleetfix runs resume {view.id}`; or re-run with --yes",
            highlight=False,
        )
    if output is OutputFormat.json:
        emit_json(view.to_dict())
    else:
        _render_run(view)
    raise typer.Exit(int(ExitCode.OK if _all_done(view) else ExitCode.FINDINGS))


def _all_done(view: RunView) -> bool:
    """Exit 0 only when the run succeeded and every target is fixed or was already right: a target
    refused (drifted) or skipped (locked by another run) is still to do."""
    settled = {"succeeded", "unchanged"}
    return view.status.value == "succeeded" and all(target.state.value in settled for target in view.targets)


def _render_run(view: RunView) -> None:
    rows = [(target.wave, target.name, target.state, target.message or "") for target in view.targets]
    render_table(f"run {view.id} ({view.playbook_id})", ("wave", "target", "state", "message"), rows)
    reason = f": {view.pause_reason}" if getattr(view, "pause_reason", None) else ""
    message = f" ({view.status_message})" if view.status_message else ""
    stdout.print(f"run {view.id}: {view.status.value}{message}{reason}", highlight=False)


# --- runs ... ----------------------------------------------------------------------------------------


@runs_app.command("list")
@command
def runs_list(
    ctx: typer.Context,
    *,
    limit_n: Annotated[int, typer.Option("--last", min=1, help="how many runs, newest first")] = 20,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Playbook runs, newest first."""
    from orchestrator.engine import list_runs  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    with open_store(app_state(ctx).settings) as store:
        views = list_runs(store, limit=limit_n)
    if output is OutputFormat.json:
        emit_json({"runs": [view.to_dict(targets=False) for view in views]})
        return
    rows = [
        (
            view.id,
            view.playbook_id,
            view.status,
            view.requested_by,
            view.approved_by or "",
            str(view.created_at),
        )
        for view in views
    ]
    render_table("runs", ("id", "playbook", "status", "requested by", "approved by", "created"), rows)


@runs_app.command("show")
@command
def runs_show(
    ctx: typer.Context, run_id: RunIdArgument, *, output: OutputOption = OutputFormat.table
) -> None:
    """One run: its waves, every target's state and message."""
    from orchestrator.engine import get_run  # noqa: PLC0415
    from orchestrator.store import open_store  # noqa: PLC0415

    with open_store(app_state(ctx).settings) as store:
        view = get_run(store, run_id)
    if output is OutputFormat.json:
        emit_json(view.to_dict())
    else:
        _render_run(view)


@runs_app.command("resume")
@command
def runs_resume(
    ctx: typer.Context,
    run_id: RunIdArgument,
    *,
    wait_window: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="outside the window: wait for it (default) or stay paused"),
    ] = True,
    ignore_window: Annotated[
        bool, typer.Option("--ignore-window", help="go on now even outside the change window (audited)")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Continue a paused or interrupted run exactly where it stopped."""
    from orchestrator.store import open_store  # noqa: PLC0415

    settings = app_state(ctx).settings
    _quiet_pypsrp()
    _refuse_unshared_store(settings)
    with open_store(settings) as store:
        view = _advance(
            settings, store, run_id, None, wait_window=wait_window, output=output, ignore_window=ignore_window
        )
    _finish(view, output)


@runs_app.command("cancel")
@command
def runs_cancel(
    ctx: typer.Context, run_id: RunIdArgument, *, output: OutputOption = OutputFormat.table
) -> None:
    """Stop a run: no new target starts; targets in progress finish."""
    from orchestrator.engine import request_cancel  # noqa: PLC0415

    view = _decide(ctx, run_id, lambda store, actor: request_cancel(store, run_id, actor=actor))
    _decided(view, output, f"run {run_id}: {view.status.value}; cancel requested")


@runs_app.command("approve")
@command
def runs_approve(
    ctx: typer.Context, run_id: RunIdArgument, *, output: OutputOption = OutputFormat.table
) -> None:
    """Approve a risky run as a second person (not the one who requested it)."""
    from orchestrator.engine import approve  # noqa: PLC0415

    view = _decide(ctx, run_id, lambda store, actor: approve(store, run_id, approver=actor))
    _decided(
        view,
        output,
        f"run {run_id} approved by {view.approved_by}; start it with `fleetfix runs resume {run_id}`",
    )


def _decide(ctx: typer.Context, run_id: str, decision: Callable[[Store, str], object]) -> RunView:
    """Record an admin's decision on a run (audited by the engine) and return the run after it."""
    from orchestrator.engine import get_run  # noqa: PLC0415
    from orchestrator.store import local_actor, open_store  # noqa: PLC0415

    with open_store(app_state(ctx).settings) as store:
        decision(store, local_actor())
        return get_run(store, run_id)


def _decided(view: RunView, output: OutputFormat, message: str) -> None:
    if output is OutputFormat.json:
        emit_json(view.to_dict(targets=False))
    else:
        stdout.print(message, highlight=False)


__all__ = ["launch_playbook", "run_command", "runs_app"]
