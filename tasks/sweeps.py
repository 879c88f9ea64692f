"""Celery entry points for sweeps: thin wrappers over :mod:`orchestrator.sweep`.

* ``collect_batch(collection, hosts, options)`` (queue ``winrm``): collect a batch of hosts into
  the ``collected_hosts`` ledger (:class:`~orchestrator.sweep.distributed.CollectBatch`); the
  credentials come from this worker's vault, the hosts' inventory entries and the collection options
  from the message.
* ``scheduled_sweep(job_name, selector, local_date)`` (queue ``control``): a whole sweep of the
  configured inventory (``selector`` as ``--limit``), collected on the workers, stored, notified
  (webhooks) and summarised; what the schedule fires. Deduplicating fires is the schedule's ledger's
  job: this task sweeps every time it runs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from orchestrator.errors import StoreError
from orchestrator.sweep.credentials import resolve_all
from orchestrator.sweep.distributed import (
    COLLECT_BATCH_TASK,
    CollectBatch,
    CollectReport,
    host_from_json,
    host_to_json,
    options_from_json,
    run_distributed_sweep,
)
from tasks.app import TASK_SCHEDULED_SWEEP, settings_of
from tasks.runs import backoff_s
from tasks.worker import worker_context

log = logging.getLogger("fleetfix.tasks")


def collect_batch(
    task: Any, collection: str, hosts: list[dict[str, Any]], options: dict[str, Any]
) -> dict[str, float]:
    """One delivery of a collection batch; hosts already in the ledger are not collected again."""
    settings = settings_of(task.app)
    batch: CollectBatch | None = None
    try:
        context = worker_context(settings)
        vault = context.vault
        batch = CollectBatch(
            context.store,
            collection,
            [host_from_json(host) for host in hosts],
            options_from_json(options),
            resolve=lambda keys: resolve_all(keys, open_vault=lambda: vault),
            holder=context.holder,
        )
        report = batch.run()
    except SoftTimeLimitExceeded:
        message = (
            f"timed out: the batch reached its soft time limit ({settings.celery.soft_time_limit_s:g} s) "
            "while this host was being collected"
        )
        report = batch.abandon(message) if batch is not None else CollectReport()
        left = report.left if batch is not None else tuple(host_from_json(host) for host in hosts)
        if left:
            task.app.send_task(
                COLLECT_BATCH_TASK,
                args=(collection, [host_to_json(host) for host in left], options),
                argsrepr=f"({collection!r}, <{len(left)} hosts>)",
            )
        log.warning("collection %s: batch stopped at its soft time limit: %s", collection, report.counts())
        return dict(report.counts())
    except StoreError as exc:
        log.warning("collection %s: store error, retrying the batch: %s", collection, exc)
        raise task.retry(
            exc=exc,
            countdown=backoff_s(task.request.retries, settings),
            max_retries=settings.celery.retry_max,
        ) from None
    # the worker's log shows the counts and where the batch's time went (bench/celery_sweep.py reads it)
    return {**report.counts(), **{name: round(value, 4) for name, value in batch.timings.items()}}


def scheduled_hosts(settings: Any, selector: str | None) -> tuple[Any, ...]:
    """The configured inventory (and the hosts synced from Intune) that ``selector`` selects."""
    from orchestrator.errors import InputError  # noqa: PLC0415
    from orchestrator.inventory import load_inventory, parse_selector, select  # noqa: PLC0415
    from orchestrator.inventory.intune import intune_file  # noqa: PLC0415

    parsed = parse_selector(selector) if selector is not None else None
    synced = intune_file(settings.data_dir)
    synced_file = synced if synced.is_file() else None
    if not settings.inventory and synced_file is None:
        raise InputError("no inventory: set `inventory` in fleetfix.toml", field="inventory")
    return tuple(select(load_inventory(settings.inventory, intune_file=synced_file), parsed))


def scheduled_sweep(task: Any, job_name: str, selector: str | None, local_date: str) -> dict[str, Any]:
    """Sweep for schedule job ``job_name`` on ``local_date`` (module docstring); returns the
    sweep's run id and summary (the findings are in the store)."""
    from orchestrator.reports.notify import after_sweep  # noqa: PLC0415
    from orchestrator.sweep.plan import CollectOptions  # noqa: PLC0415
    from orchestrator.sweep.service import SweepRequest  # noqa: PLC0415

    settings = settings_of(task.app)
    context = worker_context(settings)
    hosts = scheduled_hosts(settings, selector)
    request = SweepRequest(
        hosts, requested_by=f"schedule:{job_name}", selector=selector, options=CollectOptions()
    )
    result = run_distributed_sweep(settings, context.store, task.app, request)
    result = after_sweep(settings, result)  # never raises: a failed webhook is a note
    summary = dict(result.summary)
    log.info(
        "schedule %s (%s): sweep %s, %s findings, compliant: %s",
        job_name,
        local_date,
        result.run.id,
        summary.get("findings", {}).get("total"),
        result.compliant,
    )
    return {"job": job_name, "local_date": local_date, "run_id": result.run.id, "summary": summary}


def register(app: Any) -> None:
    """Add the sweep tasks to ``app`` (called by ``tasks.app.make_app``)."""
    celery = settings_of(app).celery
    app.task(
        name=COLLECT_BATCH_TASK,
        bind=True,
        max_retries=celery.retry_max,
        default_retry_delay=10,
        ignore_result=celery.result_backend is None,
    )(collect_batch)
    app.task(
        name=TASK_SCHEDULED_SWEEP,
        bind=True,
        # a sweep coordinator waits for the whole fleet: acknowledged on receipt (see advance_run);
        # a sweep that dies stays `running` in the store and the next fire sweeps afresh
        acks_late=False,
        soft_time_limit=celery.control_time_limit_s - 60 if celery.control_time_limit_s > 120 else None,
        time_limit=celery.control_time_limit_s,
        max_retries=0,
        ignore_result=celery.result_backend is None,
    )(scheduled_sweep)


__all__ = ["collect_batch", "register", "scheduled_hosts", "scheduled_sweep"]
