"""Celery entry points for playbook runs: thin wrappers over :mod:`orchestrator.engine`.

* ``apply_batch(run_id, tasks_json, deadline_iso)`` (queue ``winrm``; ``apply_graph_batch``, the
  same for tenant targets, on ``graph``): one delivery of a batch of targets. The per-target work is
  :func:`orchestrator.engine.launch.run_work` for the run (built once per run in a worker process),
  the gate is :class:`~orchestrator.engine.targets.StoredGate` plus the batch's deadline, and
  :class:`~orchestrator.engine.celery_executor.BatchRun` does the rest. Outcomes land in the store;
  the task returns only counts.
* ``advance_run(run_id)`` (queue ``control``): the coordinator as a task, with the Celery executor.

Failures: a host's problem is an outcome (``failed`` with its error kind), never an exception. A
store error retries the batch with exponential backoff (what was recorded is not done again). The
soft time limit stops the batch from starting targets; the targets in progress are recorded as
timed out and the untouched ones are sent again as a new batch: nothing is lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from orchestrator.config import Settings
from orchestrator.engine.celery_executor import (
    APPLY_BATCH_TASK,
    APPLY_GRAPH_BATCH_TASK,
    BatchReport,
    BatchRun,
    CeleryExecutor,
    deadline_gate,
    lease_policy,
)
from orchestrator.engine.model import Clock, TargetOutcome, TargetState, TargetTask, TargetWork
from orchestrator.engine.targets import LeasePolicy, StoredGate
from orchestrator.errors import FleetfixError, RunBusyError, StoreError
from orchestrator.store import Store
from orchestrator.store.types import utcnow
from tasks.app import TASK_ADVANCE_RUN, settings_of
from tasks.worker import worker_context

log = logging.getLogger("fleetfix.tasks")


@dataclass(frozen=True)
class BatchEnvironment:
    """What a batch of ``run_id`` runs with in this worker process."""

    store: Store
    work: TargetWork
    concurrency: int
    holder: str
    clock: Clock = utcnow
    policy: LeasePolicy = field(default_factory=LeasePolicy)
    sleep: Callable[[float], None] = time.sleep


EnvironmentProvider = Callable[[Settings, str], BatchEnvironment]


def default_environment(settings: Settings, run_id: str) -> BatchEnvironment:
    """The real one: the worker's store and the run's work as ``fleetfix run`` builds it."""
    context = worker_context(settings)
    built = context.run_work(run_id)
    return BatchEnvironment(
        store=context.store,
        work=built.runner,
        concurrency=built.concurrency,
        holder=context.holder,
        policy=lease_policy(settings.celery.lease_ttl_s),
    )


_provider: EnvironmentProvider = default_environment


def set_environment_provider(provider: EnvironmentProvider | None) -> EnvironmentProvider:
    """Replace how batches get their environment (the engine's tests run fake host work in an
    in-process worker); None restores the real one. Returns the previous provider."""
    global _provider  # noqa: PLW0603 (a process-wide seam, like a registry)
    previous = _provider
    _provider = provider or default_environment
    return previous


def backoff_s(retries: int, settings: Settings) -> float:
    """Exponential backoff with jitter, capped below the visibility timeout (a retry is a message
    with a countdown: it must come back before Redis would hand it out again)."""
    cap = min(settings.celery.retry_backoff_max_s, settings.celery.visibility_timeout_s / 2)
    return min(cap, 2.0 ** (retries + 1)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not crypto)


def _failing(message: str, kind: str) -> TargetWork:
    def work(task: TargetTask) -> TargetOutcome:
        return TargetOutcome(TargetState.FAILED, message, kind)

    return work


def _send_again(
    task: Any, run_id: str, left: Sequence[TargetTask], deadline_iso: str | None, ignore_window: bool
) -> None:
    if not left:
        return
    task.app.send_task(
        task.name,
        args=(run_id, [target.to_json() for target in left], deadline_iso),
        kwargs={"ignore_window": ignore_window},
        expires=datetime.fromisoformat(deadline_iso) if deadline_iso else None,
        argsrepr=f"({run_id!r}, <{len(left)} targets>)",
    )
    log.info("run %s: %d targets not started before the soft time limit were sent again", run_id, len(left))


def apply_batch(
    task: Any,
    run_id: str,
    tasks_json: list[dict[str, Any]],
    deadline_iso: str | None = None,
    ignore_window: bool = False,
) -> dict[str, int]:
    """One delivery of a batch of ``run_id``'s targets (module docstring)."""
    settings = settings_of(task.app)
    targets = [TargetTask.from_json(item) for item in tasks_json]
    deadline = datetime.fromisoformat(deadline_iso) if deadline_iso else None
    if (task.request.delivery_info or {}).get("redelivered"):
        log.info("run %s: batch of %d targets delivered again", run_id, len(targets))
    batch: BatchRun | None = None
    try:
        env = _provider(settings, run_id)
        gate = deadline_gate(
            StoredGate(env.store, run_id, env.clock, ignore_window=ignore_window), deadline, env.clock
        )
        work = env.work
        batch = BatchRun(
            env.store,
            targets,
            work,
            holder=env.holder,
            gate=gate,
            concurrency=env.concurrency,
            clock=env.clock,
            policy=env.policy,
            sleep=env.sleep,
        )
        report = batch.run()
    except SoftTimeLimitExceeded:
        message = (
            f"timed out: the batch reached its soft time limit ({settings.celery.soft_time_limit_s:g} s) "
            "while this target was in progress; what it changed is in the journal"
        )
        report = batch.abandon(message) if batch is not None else BatchReport(left=tuple(targets))
        _send_again(task, run_id, report.left, deadline_iso, ignore_window)
        log.warning("run %s: batch stopped at its soft time limit: %s", run_id, report.counts())
        return report.counts()
    except StoreError as exc:
        log.warning("run %s: store error, retrying the batch: %s", run_id, exc)
        raise task.retry(
            exc=exc,
            countdown=backoff_s(task.request.retries, settings),
            max_retries=settings.celery.retry_max,
        ) from None
    except FleetfixError as exc:
        if batch is not None:
            raise
        # this worker cannot build the run's work (its playbook or inventory differs): say so on
        # each target rather than leave them pending without a word
        return _fail_all(task, run_id, targets, exc, deadline=deadline, ignore_window=ignore_window)
    return report.counts()


def _fail_all(
    task: Any,
    run_id: str,
    targets: Sequence[TargetTask],
    exc: FleetfixError,
    *,
    deadline: datetime | None,
    ignore_window: bool,
) -> dict[str, int]:
    settings = settings_of(task.app)
    context = worker_context(settings)
    log.error("run %s: this worker cannot run the batch: %s", run_id, exc)
    message = f"worker {context.holder} cannot run this playbook: {exc}"
    gate = deadline_gate(
        StoredGate(context.store, run_id, utcnow, ignore_window=ignore_window), deadline, utcnow
    )
    batch = BatchRun(
        context.store,
        targets,
        _failing(message, exc.kind),
        holder=context.holder,
        gate=gate,
        concurrency=1,
        policy=lease_policy(settings.celery.lease_ttl_s),
    )
    return batch.run().counts()


def executor_for(app: Any, store: Store, *, holder: str, ignore_window: bool = False) -> CeleryExecutor:
    """The Celery executor for ``app``'s settings (the CLI's and the controller's)."""
    celery = settings_of(app).celery
    return CeleryExecutor(
        store,
        app,
        celery.batch_size,
        holder,
        poll_s=celery.poll_s,
        redispatch_after_s=celery.redispatch_after,
        ignore_window=ignore_window,
    )


def advance_run(task: Any, run_id: str, ignore_window: bool = False) -> dict[str, Any]:
    """Drive ``run_id`` with the Celery executor until it finishes or pauses (re-entrant: a second
    controller for a run that is being advanced answers ``busy`` and leaves it alone)."""
    from orchestrator.engine.coordinator import advance  # noqa: PLC0415

    settings = settings_of(task.app)
    context = worker_context(settings)
    executor = executor_for(task.app, context.store, holder=context.holder, ignore_window=ignore_window)
    try:
        view = advance(
            context.store,
            run_id,
            executor,
            settings=settings,
            ignore_window=ignore_window,
            wait_for_window=False,
        )
    except RunBusyError as exc:
        log.info("run %s: %s", run_id, exc)
        return {"run": run_id, "status": "busy", "message": str(exc)}
    return {"run": run_id, "status": view.status.value, "message": view.status_message or view.pause_reason}


def register(app: Any) -> None:
    """Add the run tasks to ``app`` (called by ``tasks.app.make_app``)."""
    celery = settings_of(app).celery
    batch_options: dict[str, Any] = {
        "bind": True,
        "max_retries": celery.retry_max,
        # a worker that died mid-batch is retried after this long (task_retry_on_worker_lost)
        "default_retry_delay": 10,
        "ignore_result": celery.result_backend is None,
    }
    app.task(name=APPLY_BATCH_TASK, **batch_options)(apply_batch)
    app.task(name=APPLY_GRAPH_BATCH_TASK, **batch_options)(apply_batch)
    app.task(
        name=TASK_ADVANCE_RUN,
        bind=True,
        # A controller drives a whole run, for hours: acknowledged on receipt, so no visibility
        # timeout or RabbitMQ consumer timeout re-delivers it while it runs. A controller that dies
        # leaves the run in the store as it stood; advancing it again (`runs resume`, another
        # advance_run) continues once its claim expires.
        acks_late=False,
        soft_time_limit=celery.control_time_limit_s - 60 if celery.control_time_limit_s > 120 else None,
        time_limit=celery.control_time_limit_s,
        max_retries=0,
        ignore_result=celery.result_backend is None,
    )(advance_run)


__all__ = [
    "BatchEnvironment",
    "EnvironmentProvider",
    "advance_run",
    "apply_batch",
    "backoff_s",
    "default_environment",
    "executor_for",
    "register",
    "set_environment_provider",
]
