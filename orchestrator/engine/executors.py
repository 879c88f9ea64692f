"""Executors: who runs a wave's targets. The coordinator hands over a batch of tasks and gets
control back when every task it started is finished and recorded in the store.

``local`` (:class:`LocalExecutor`) works in this process with a bounded thread pool (the WinRM
client blocks, so threads). The Celery executor puts the same :func:`~.targets.process_target`
behind the same interface: it sends batches of :class:`~.model.TargetTask` (JSON) to workers,
which record outcomes in the store, and it reads the store to know when the batch is done.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Protocol

from orchestrator.engine.model import Clock, TargetOutcome, TargetTask, TargetWork
from orchestrator.engine.targets import LeasePolicy, ShouldStart, lease_heartbeat, process_target
from orchestrator.errors import InputError
from orchestrator.store.db import Store
from orchestrator.store.types import utcnow

log = logging.getLogger(__name__)

OnFinished = Callable[[TargetTask, TargetOutcome], None]
"""Told about each recorded outcome, as it lands (for budgets and live progress)."""


class Executor(Protocol):
    """Runs batches of targets for the coordinator.

    ``in_process`` tells the coordinator whether every target the executor starts runs inside the
    coordinating process (and is finished when ``execute`` returns). Then a target found ``running``
    under a live lease of the same run can only be a leftover of a dead process (the coordinator's
    claim on the run excludes a second live coordinator), and it is taken over at once. Executors
    with remote workers (Celery) say False: such a target may be in progress on a worker, and the
    coordinator waits until it finishes or its lease expires.
    """

    @property
    def in_process(self) -> bool: ...

    def execute(
        self,
        run_id: str,
        tasks: Sequence[TargetTask],
        should_start: ShouldStart,
        on_finished: OnFinished | None = None,
    ) -> None:
        """Work through ``tasks``; return when every task that started is finished and recorded.

        ``should_start(target)`` is asked right before each target starts (the window / cancel /
        budget gate); False leaves that target ``pending``. ``on_finished`` is called once per
        recorded outcome, possibly from another thread. Store errors propagate after the tasks in
        progress have finished.
        """
        ...


def default_holder() -> str:
    """``host:pid``: who holds leases for this process, recognisable in "locked by" messages."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LocalExecutor:
    """Runs targets in this process on at most ``concurrency`` threads.

    Per target: :func:`~.targets.process_target` (lease, claim, work, record, release). While a batch
    runs, a heartbeat thread renews all of this holder's leases of the run every ``policy.ttl / 3``
    with one UPDATE, so a long-running target keeps its host locked and a crashed process releases
    its hosts ``policy.ttl`` after its last renewal. Ctrl-C stops targets from starting; targets in
    progress finish first (threads cannot be interrupted safely mid-change).
    """

    in_process = True

    def __init__(
        self,
        store: Store,
        work: TargetWork,
        concurrency: int = 8,
        holder: str | None = None,
        *,
        policy: LeasePolicy | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if concurrency < 1:
            raise InputError("must be at least 1", field="--concurrency")
        self.store = store
        self.work = work
        self.concurrency = concurrency
        self.holder = holder or default_holder()
        self.policy = policy or LeasePolicy()
        self.clock = clock
        self.sleep = sleep

    def _one(self, task: TargetTask, should_start: ShouldStart, on_finished: OnFinished | None) -> None:
        outcome = process_target(
            self.store,
            task,
            self.work,
            self.holder,
            self.clock,
            policy=self.policy,
            should_start=should_start,
            sleep=self.sleep,
        )
        if outcome is not None and on_finished is not None:
            on_finished(task, outcome)

    def execute(
        self,
        run_id: str,
        tasks: Sequence[TargetTask],
        should_start: ShouldStart,
        on_finished: OnFinished | None = None,
    ) -> None:
        if not tasks:
            return
        workers = min(self.concurrency, len(tasks))
        heartbeat = lease_heartbeat(self.store, run_id, self.holder, self.clock, self.policy)
        with heartbeat, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetfix-target") as pool:
            futures: list[Future[None]] = [
                pool.submit(self._one, task, should_start, on_finished) for task in tasks
            ]
            try:
                done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
                if any(future.exception() is not None for future in done):
                    # no new target starts after a store failure; the started ones finish
                    for future in futures:
                        future.cancel()
                wait(futures)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]


__all__ = ["Executor", "LocalExecutor", "OnFinished", "default_holder"]
