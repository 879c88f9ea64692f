"""Running a scheduled job: a sweep or a playbook run, with the real edges.

The beat runs jobs here when no broker is configured (the embedded default); with a broker it
prepares a playbook run here (:func:`prepare_playbook_run`: checks, approval, the run row) and lets
the Celery workers drive it, and Celery workers may call :func:`run_sweep_job` and
:func:`run_playbook_job` for a job they were sent.

What a job yields is a :class:`JobResult`: the fire's outcome for the ledger (status, message, a
summary without secrets), the run it made, and the JSON document the CLI would print for the same
work (``fleetfix sweep -o json``, ``fleetfix runs show -o json``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.config import ScheduleJobSettings, Settings
from orchestrator.errors import FleetfixError, InputError
from orchestrator.schedule.jobs import Job, approval_digest, approval_document, approval_problem
from orchestrator.store.models import FireStatus

if TYPE_CHECKING:
    from orchestrator.engine.model import RolloutOptions
    from orchestrator.engine.runs import RunView
    from orchestrator.inventory import Host
    from orchestrator.playbook.model import Playbook
    from orchestrator.store import Store
    from orchestrator.sweep.service import SweepResult

log = logging.getLogger("fleetfix.schedule")


@dataclass(frozen=True)
class JobResult:
    """How a fired job ended, for the fire ledger and the beat's output.

    ``attention`` is what ``fleetfix sweep`` or ``fleetfix run`` would signal with exit code 1
    (findings, hosts not collected, a run that did not fix everything).
    """

    status: FireStatus
    message: str
    summary: dict[str, Any] | None = None
    run_id: str | None = None
    document: dict[str, Any] | None = None
    attention: bool = False

    @property
    def ok(self) -> bool:
        return self.status is FireStatus.SUCCEEDED


def actor_of(job_name: str) -> str:
    """Who a scheduled job's runs and audit entries name as requester."""
    return f"schedule:{job_name}"


def scheduled_hosts(settings: Settings, selector: str | None) -> tuple[Host, ...]:
    """The configured inventory (and the hosts synced from Intune) that ``selector`` selects."""
    from orchestrator.inventory import load_inventory, parse_selector, select  # noqa: PLC0415
    from orchestrator.inventory.intune import intune_file  # noqa: PLC0415

    parsed = parse_selector(selector) if selector is not None else None
    synced = intune_file(settings.data_dir)
    synced_file = synced if synced.is_file() else None
    if not settings.inventory and synced_file is None:
        raise InputError("no inventory: set `inventory` in fleetfix.toml", field="inventory")
    return select(load_inventory(settings.inventory, intune_file=synced_file), parsed)


# --- sweeps -------------------------------------------------------------------------------------


def run_sweep_job(
    settings: Settings,
    store: Store,
    job: ScheduleJobSettings,
    *,
    environ: Mapping[str, str] | None = None,
    notify: Callable[[Settings, SweepResult], SweepResult] | None = None,
) -> JobResult:
    """A sweep of the job's hosts, stored, notified and summarised as ``fleetfix sweep`` does."""
    from orchestrator.reports.notify import after_sweep  # noqa: PLC0415
    from orchestrator.sweep.plan import CollectOptions  # noqa: PLC0415
    from orchestrator.sweep.report import sweep_document  # noqa: PLC0415
    from orchestrator.sweep.service import SweepRequest, default_io, run_sweep  # noqa: PLC0415

    try:
        hosts = scheduled_hosts(settings, job.selector)
    except FleetfixError as exc:
        return JobResult(FireStatus.FAILED, f"cannot sweep: {exc}")
    request = SweepRequest(
        hosts, requested_by=actor_of(job.name), selector=job.selector, options=CollectOptions()
    )
    result = run_sweep(store, request, default_io(settings, environ=environ))
    result = (notify or after_sweep)(settings, result)  # never raises: failures become notes
    document = sweep_document(result)
    message = sweep_line(result)
    return JobResult(
        FireStatus.SUCCEEDED,
        message,
        summary=dict(result.summary),
        run_id=result.run.id,
        document=document,
        attention=not result.compliant,
    )


def sweep_line(result: SweepResult) -> str:
    """The one-line verdict ``fleetfix sweep`` prints."""
    hosts, findings = result.summary["hosts"], result.summary["findings"]
    verdict = "compliant" if result.compliant else "not compliant"
    return (
        f"sweep {result.run.id}: {hosts['ok']}/{hosts['selected']} hosts collected, "
        f"{findings['total']} findings ({findings['new']} new, {findings['still_open']} still open, "
        f"{findings['resolved']} resolved since the previous sweep): {verdict}"
    )


# --- playbooks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaybookCheck:
    """A playbook job checked against the playbooks and windows as they are now."""

    playbook: Playbook | None
    digest: str | None
    risky: bool
    window: str | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": None if self.playbook is None else self.playbook.id,
            "risk": None if self.playbook is None else self.playbook.risk.value,
            "approval_digest": self.digest,
            "window": self.window,
            "problem": self.problem,
        }


def check_playbook_job(settings: Settings, job: Job, today: date) -> PlaybookCheck:
    """Whether a playbook job could run now: the playbook exists, its parameters and window are
    valid, and a risky one is approved for exactly this job (``today``: the job's local date)."""
    from orchestrator.engine.windows import resolve_window  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415

    config = job.settings
    assert config.playbook is not None
    try:
        playbook = load_playbooks(settings).get(config.playbook)
    except FleetfixError as exc:
        return PlaybookCheck(None, None, False, None, f"playbook: {exc}")
    risky = playbook.risk.value != "none"
    try:
        window = None if config.window is None else resolve_window(config.window, settings).spec
        playbook.resolve_params(config.params)
    except FleetfixError as exc:
        return PlaybookCheck(playbook, None, risky, None, str(exc))
    content = playbook.model_dump(mode="json", exclude={"source"})
    digest = approval_digest(approval_document(config, job.zone.key, content, window))
    problem = approval_problem(config, risky=risky, digest=digest, today=today)
    return PlaybookCheck(playbook, digest, risky, window, problem)


@dataclass(frozen=True)
class PreparedRun:
    """A scheduled playbook run created in the store (approved when its playbook is risky)."""

    run_id: str
    playbook: Playbook
    check: PlaybookCheck
    hosts: tuple[Host, ...] = field(repr=False)


def prepare_playbook_run(
    settings: Settings, store: Store, job: Job, *, local_date: date, now: datetime
) -> PreparedRun | JobResult:
    """Create the job's run as ``fleetfix run PLAYBOOK`` would (targets from the last sweep), or the
    result that says why not: refused (unknown playbook, bad parameter or window, no valid
    approval), failed (no inventory, no sweep), or nothing to do."""
    from orchestrator.checks.model import thaw  # noqa: PLC0415
    from orchestrator.engine.launch import load_context, select_targets  # noqa: PLC0415
    from orchestrator.engine.runs import approve, create_run  # noqa: PLC0415
    from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S  # noqa: PLC0415

    config = job.settings
    check = check_playbook_job(settings, job, local_date)
    if check.problem is not None or check.playbook is None:
        return JobResult(FireStatus.REFUSED, check.problem or "playbook not found")
    playbook = check.playbook
    try:
        params = playbook.resolve_params(config.params)
        hosts = scheduled_hosts(settings, config.selector)
        context = load_context(store)
    except FleetfixError as exc:
        return JobResult(FireStatus.FAILED, str(exc))
    targets = select_targets(
        playbook, hosts, context, all_hosts=config.all_hosts, tenant_configured=settings.graph.configured
    )
    if not targets:
        message = f"nothing to do: no selected host has a finding {playbook.id} fixes in the last sweep"
        return JobResult(FireStatus.SUCCEEDED, message, summary={"targets": 0})
    concurrency = config.concurrency or DEFAULT_CONCURRENCY
    actor = actor_of(config.name)
    run_id = create_run(
        store,
        playbook_id=playbook.id,
        targets=[(target.name, target.role) for target in targets],
        rollout=rollout_of(playbook, config),
        window_text=config.window,
        settings=settings,
        selector=config.selector,
        concurrency=concurrency,
        requested_by=actor,
        needs_approval=check.risky,
        parameters={
            "params": {key: thaw(value) for key, value in params.items()},
            "sweep_id": context.sweep.id,
            "concurrency": concurrency,
            "deadline_s": DEFAULT_DEADLINE_S,
            "verify_timeout_s": None,
            "approved_with_yes": False,
            "schedule": {
                "job": config.name,
                "local_date": local_date.isoformat(),
                "approved_by": config.approved_by if check.risky else None,
                "approved_digest": check.digest if check.risky else None,
            },
        },
        now=now,
    )
    if check.risky:
        # The approval written in the config stands in for `fleetfix runs approve`: audited as
        # run.approve by the named approver, on every run the job makes.
        assert config.approved_by is not None
        approve(store, run_id, approver=config.approved_by, now=now)
    return PreparedRun(run_id, playbook, check, hosts)


def rollout_of(playbook: Playbook, config: ScheduleJobSettings) -> RolloutOptions:
    """The playbook's rollout defaults with the job's overrides."""
    from orchestrator.engine.model import FailureBudget, RolloutOptions  # noqa: PLC0415

    defaults, overrides = playbook.rollout, config.rollout
    return RolloutOptions(
        canary=defaults.canary if overrides.canary is None else overrides.canary,
        wave_size=defaults.wave_size if overrides.wave_size is None else overrides.wave_size,
        serial=defaults.serial,
        max_fail=FailureBudget.parse(
            overrides.max_fail if overrides.max_fail is not None else str(defaults.max_fail)
        ),
    )


def run_playbook_job(
    settings: Settings,
    store: Store,
    job: Job,
    *,
    local_date: date,
    now: datetime,
    holder: str,
    on_run: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> JobResult:
    """Prepare the job's run and drive it in this process (the local executor). Outside its change
    window the run pauses rather than waiting: a beat must not sit in one job for hours."""
    from orchestrator.engine import advance  # noqa: PLC0415
    from orchestrator.engine.executors import LocalExecutor  # noqa: PLC0415
    from orchestrator.engine.launch import run_work  # noqa: PLC0415
    from orchestrator.engine.runs import get_run  # noqa: PLC0415

    prepared = prepare_playbook_run(settings, store, job, local_date=local_date, now=now)
    if isinstance(prepared, JobResult):
        return prepared
    if on_run is not None:
        on_run(prepared.run_id)
    view = get_run(store, prepared.run_id)
    work = run_work(settings, store, view, holder=holder, hosts=prepared.hosts, environ=environ)
    clock = clock or (lambda: datetime.now(UTC))
    executor = LocalExecutor(store, work.runner, concurrency=work.concurrency, holder=holder, clock=clock)
    view = advance(
        store,
        prepared.run_id,
        executor,
        clock=clock,
        settings=settings,
        wait_for_window=False,
        actor=actor_of(job.name),
    )
    return run_result(view)


def run_result(view: RunView) -> JobResult:
    """A playbook run as a fire's outcome: succeeded when the run did; ``attention`` unless every
    target is fixed or was already right (``fleetfix run``'s exit code 1)."""
    counts: dict[str, int] = {}
    for target in view.targets:
        counts[target.state.value] = counts.get(target.state.value, 0) + 1
    status = view.status.value
    detail = view.status_message or view.pause_reason or ""
    message = f"run {view.id} ({view.playbook_id}): {status}{f' ({detail})' if detail else ''}"
    settled = status == "succeeded" and set(counts) <= {"succeeded", "unchanged"}
    summary = {"run_id": view.id, "playbook": view.playbook_id, "status": status, "targets": counts}
    fire_status = FireStatus.SUCCEEDED if status == "succeeded" else FireStatus.FAILED
    return JobResult(fire_status, message, summary, view.id, view.to_dict(), attention=not settled)


__all__ = [
    "JobResult",
    "PlaybookCheck",
    "PreparedRun",
    "actor_of",
    "check_playbook_job",
    "prepare_playbook_run",
    "rollout_of",
    "run_playbook_job",
    "run_result",
    "run_sweep_job",
    "scheduled_hosts",
    "sweep_line",
]
