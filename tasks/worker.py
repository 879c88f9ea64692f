"""What a worker process keeps between tasks: its store, its name as a lease holder, its vault, and
the per-target work of the runs it has seen (rebuilt from what each run recorded, once per run).

Everything is per *process*: a prefork worker forks its pool processes after this module is
imported, and a database connection or a thread must never cross a fork, so the context is rebuilt
when the process id changes.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from orchestrator.config import Settings
from orchestrator.credentials.vault import Vault
from orchestrator.engine.launch import RunWork, run_work
from orchestrator.engine.runs import get_run
from orchestrator.store import Store, open_store
from orchestrator.store.db import ensure_current
from orchestrator.store.engine import create_store_engine

RUN_WORK_CACHE = 8
"""Runs whose work a process keeps built (a worker serves few runs at a time; a run's work holds
its playbook, the fleet context of its sweep and the inventory)."""


def worker_holder() -> str:
    """``celery@host:pid``: who holds leases and journal claims for this pool process."""
    return f"celery@{socket.gethostname()}:{os.getpid()}"


def open_worker_store(settings: Settings) -> Store:
    """The store for a worker process: PostgreSQL with a pool sized for a batch's threads (each
    target's transactions, the lease heartbeat and the gate borrow connections briefly)."""
    if settings.uses_sqlite:
        return open_store(settings)  # one machine only (tests); the CLI refuses it for workers
    engine = create_store_engine(settings.store_url_resolved, pool_size=10, max_overflow=30, pool_timeout=60)
    try:
        ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store.from_engine(engine)


@dataclass
class WorkerContext:
    settings: Settings
    pid: int
    store: Store
    holder: str
    _vault: Vault | None = None
    _works: OrderedDict[str, RunWork] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def vault(self) -> Vault:
        with self._lock:
            if self._vault is None:
                self._vault = Vault.from_settings(self.settings)
            return self._vault

    def run_work(self, run_id: str) -> RunWork:
        """The run's work as ``fleetfix run`` builds it (``engine.launch.run_work``), cached."""
        with self._lock:
            cached = self._works.get(run_id)
            if cached is not None:
                self._works.move_to_end(run_id)
                return cached
        built = run_work(self.settings, self.store, get_run(self.store, run_id), holder=self.holder)
        with self._lock:
            self._works[run_id] = built
            while len(self._works) > RUN_WORK_CACHE:
                self._works.popitem(last=False)
        return built


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def worker_context(settings: Settings) -> WorkerContext:
    """This process's context, built on first use (and again after a fork)."""
    global _context  # noqa: PLW0603 (one context per process)
    with _context_lock:
        if _context is None or _context.pid != os.getpid() or _context.settings is not settings:
            _context = WorkerContext(settings, os.getpid(), open_worker_store(settings), worker_holder())
        return _context


def reset_worker_context() -> None:
    """Forget the context (tests; a process that changes settings)."""
    global _context  # noqa: PLW0603
    with _context_lock:
        if _context is not None and _context.pid == os.getpid():
            _context.store.close()
        _context = None


__all__ = ["WorkerContext", "open_worker_store", "reset_worker_context", "worker_context", "worker_holder"]
