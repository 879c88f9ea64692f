"""Sweep collection on Celery workers: the ``collect`` edge of :class:`~.service.SweepIO`, spread out.

:func:`~.service.run_sweep` keeps its flow; only *collect* changes hands:

* **coordinator side** (:class:`DistributedCollect`, a ``SweepIO.collect``): names the collection
  (a fresh id), sends the hosts in batches of ``batch_size`` as ``collect_batch`` tasks, waits until
  the ``collected_hosts`` ledger holds a row for every host, reads the rows back as
  :class:`~.collect.HostOutcome` values in job order and deletes them. The checks, the store writes
  and the diff then run exactly as for an in-process sweep.
* **worker side** (:class:`CollectBatch`, run by the ``collect_batch`` task): collects the batch's
  hosts on a bounded thread pool and writes each result to the ledger as it lands (buffered: a few
  rows per statement).

Messages carry each host's inventory entry (address, WinRM settings, the credential *reference*)
and the collection options, never a secret: workers resolve credentials from their own vault, so
the coordinator resolves nothing (``resolve`` is a no-op in :func:`distributed_io`).

Nothing is lost and nothing counts twice: a batch whose worker died is delivered again (acks-late)
and collects only the hosts the ledger does not have yet; a row exists at most once per
(collection, host), the first result standing. A batch nobody touched for ``redispatch_after_s``
(its message lost) is sent again for its missing hosts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orchestrator.config import Settings
from orchestrator.errors import CredentialError, FleetfixError, InputError
from orchestrator.facts.fleet import FACTS_BY_ROLE, CollectionError
from orchestrator.inventory.models import Host, Role
from orchestrator.store.db import Store
from orchestrator.store.engine import store_errors
from orchestrator.store.models import CollectedHost
from orchestrator.store.types import utcnow
from orchestrator.sweep.collect import HostOutcome, SessionFactory, collect_host, winrm_session
from orchestrator.sweep.credentials import Resolved
from orchestrator.sweep.plan import CollectOptions, HostJob, credential_keys, plan_collection
from orchestrator.sweep.service import Outcomes, SweepIO, SweepRequest, SweepResult, default_io, run_sweep

log = logging.getLogger("fleetfix.sweep")

COLLECT_BATCH_TASK = "fleetfix.sweeps.collect_batch"
"""The collection task; routed to the ``winrm`` queue."""

STALE_AFTER = timedelta(days=7)
"""Ledger rows of a collection whose coordinator died are deleted after this long."""


# --- pure: what travels and what the ledger holds ------------------------------------------------------


def options_to_json(options: CollectOptions) -> dict[str, Any]:
    return {
        "concurrency": options.concurrency,
        "deadline_s": options.deadline_s,
        "event_days": options.event_days,
        "max_events": options.max_events,
    }


def options_from_json(data: Mapping[str, Any]) -> CollectOptions:
    return CollectOptions(
        concurrency=int(data["concurrency"]),
        deadline_s=float(data["deadline_s"]),
        event_days=int(data["event_days"]),
        max_events=int(data["max_events"]),
    )


def host_to_json(host: Host) -> dict[str, Any]:
    """A host as a message carries it: its inventory entry, the credential as its reference."""
    return host.model_dump(mode="json")


def host_from_json(data: Mapping[str, Any]) -> Host:
    return Host.model_validate(dict(data))


def outcome_row(outcome: HostOutcome, collection: str, collected_by: str) -> dict[str, Any]:
    """A ledger row for ``outcome`` (facts as JSON)."""
    return {
        "collection": collection,
        "host": outcome.name,
        "role": outcome.role.value,
        "facts": outcome.facts.model_dump(mode="json") if outcome.facts is not None else None,
        "error_kind": outcome.error.kind if outcome.error is not None else None,
        "error_message": outcome.error.message if outcome.error is not None else None,
        "script_errors": list(outcome.script_errors),
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "elapsed_s": outcome.elapsed_s,
        "collected_by": collected_by,
        "written_at": utcnow(),
    }


def outcome_from_row(row: Any) -> HostOutcome:
    """The :class:`HostOutcome` a ledger row stands for (the facts validated again)."""
    role = Role(row.role)
    # probe documents validate as JSON (strict models: datetimes and tuples from their JSON forms)
    facts = FACTS_BY_ROLE[role].model_validate_json(json.dumps(row.facts)) if row.facts is not None else None
    error = (
        CollectionError(kind=row.error_kind, message=row.error_message or "")
        if row.error_kind is not None
        else None
    )
    if facts is None and error is None:
        error = CollectionError(kind="internal", message="the worker recorded neither facts nor an error")
    return HostOutcome(
        name=row.host,
        role=role,
        facts=facts,
        error=error,
        started_at=row.started_at,
        finished_at=row.finished_at,
        elapsed_s=row.elapsed_s,
        script_errors=tuple(row.script_errors or ()),
    )


def split_hosts(hosts: Sequence[Host], batch_size: int) -> list[list[Host]]:
    if batch_size < 1:
        raise InputError("must be at least 1", field="celery.batch_size")
    return [list(hosts[start : start + batch_size]) for start in range(0, len(hosts), batch_size)]


# --- the ledger --------------------------------------------------------------------------------------


def _insert_ignoring_duplicates(store: Store) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on (collection, host): the first result stands."""
    if store.engine.dialect.name == "postgresql":
        return pg_insert(CollectedHost).on_conflict_do_nothing(index_elements=["collection", "host"])
    if store.engine.dialect.name == "sqlite":
        return sqlite_insert(CollectedHost).on_conflict_do_nothing(index_elements=["collection", "host"])
    return insert(CollectedHost)


def write_outcomes(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    with store.transaction() as session:
        session.execute(_insert_ignoring_duplicates(store), [dict(row) for row in rows])


def collected_names(store: Store, collection: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` the ledger already holds for ``collection``."""
    wanted = list(names)
    found: set[str] = set()
    with store_errors(store.engine.url), store.sessions() as session:
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            found.update(
                session.execute(
                    select(CollectedHost.host).where(
                        CollectedHost.collection == collection, CollectedHost.host.in_(chunk)
                    )
                ).scalars()
            )
    return found


class _LedgerWriter:
    """Buffers outcomes and writes them every ``every`` rows or ``interval_s`` seconds (and at
    :meth:`flush`): a worker that dies loses at most the buffer, which its redelivery re-collects."""

    def __init__(
        self, store: Store, collection: str, holder: str, *, every: int = 25, interval_s: float = 1.0
    ):
        self.store = store
        self.collection = collection
        self.holder = holder
        self.every = every
        self.interval_s = interval_s
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self.written: list[str] = []
        self.write_s = 0.0

    def add(self, outcome: HostOutcome) -> None:
        with self._lock:
            self._rows.append(outcome_row(outcome, self.collection, self.holder))
            due = len(self._rows) >= self.every or time.monotonic() - self._last >= self.interval_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:  # held while writing: rows leave the buffer only once they are stored
            rows, self._rows = self._rows, []
            started = time.perf_counter()
            try:
                write_outcomes(self.store, rows)
            except BaseException:
                self._rows = rows + self._rows
                raise
            finally:
                self.write_s += time.perf_counter() - started
            self._last = time.monotonic()
            self.written.extend(row["host"] for row in rows)


# --- worker side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectReport:
    """What one delivery of a collection batch did."""

    collected: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    """hosts an earlier delivery had already written (not collected again)"""
    abandoned: tuple[str, ...] = ()
    """hosts still in progress when the batch had to stop, written as timed out"""
    left: tuple[Host, ...] = ()
    """hosts not started when the batch had to stop (to be sent again)"""

    def counts(self) -> dict[str, int]:
        return {
            "collected": len(self.collected),
            "already": len(self.already),
            "abandoned": len(self.abandoned),
            "left": len(self.left),
        }


class CollectBatch:
    """One delivery of a collection batch on a worker (see the module docstring).

    ``resolve`` turns credential keys into credentials (the worker's vault); ``session_factory``
    opens WinRM sessions. :meth:`abandon` is for a batch that must stop now (its soft time limit):
    hosts in progress are written as ``timed_out`` with ``message``, the rest are returned.
    """

    def __init__(
        self,
        store: Store,
        collection: str,
        hosts: Sequence[Host],
        options: CollectOptions,
        *,
        resolve: Callable[[Sequence[Any]], Resolved],
        holder: str,
        session_factory: SessionFactory = winrm_session,
    ):
        self.store = store
        self.collection = collection
        self.hosts = tuple(hosts)
        self.options = options
        self.resolve = resolve
        self.holder = holder
        self.session_factory = session_factory
        self._writer = _LedgerWriter(store, collection, holder)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_progress: dict[str, HostJob] = {}
        self._futures: dict[str, Future[None]] = {}
        self._already: tuple[str, ...] = ()
        self._pool: ThreadPoolExecutor | None = None
        self.timings: dict[str, float] = {}
        """``started_at`` (epoch), ``setup_s`` (ledger check, credentials), ``collect_s`` (the hosts,
        ledger writes included) and ``write_s`` (the ledger writes alone), for the worker's log."""

    def _one(self, job: HostJob, resolved: Resolved) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._in_progress[job.name] = job
        try:
            credential = resolved.get(job.credential) or CredentialError(f"{job.credential}: not resolved")
            outcome = collect_host(
                job, credential, deadline_s=self.options.deadline_s, session_factory=self.session_factory
            )
            with self._lock:
                if job.name not in self._in_progress:  # abandoned meanwhile: already written
                    return
            self._writer.add(outcome)
        finally:
            with self._lock:
                self._in_progress.pop(job.name, None)

    def run(self) -> CollectReport:
        self.timings["started_at"] = time.time()
        begun = time.perf_counter()
        present = collected_names(self.store, self.collection, (host.name for host in self.hosts))
        self._already = tuple(host.name for host in self.hosts if host.name in present)
        todo = [host for host in self.hosts if host.name not in present]
        jobs = plan_collection(todo, self.options)
        resolved = self.resolve(credential_keys(jobs)) if jobs else {}
        collecting = time.perf_counter()
        self.timings["setup_s"] = collecting - begun
        if jobs:
            self._pool = ThreadPoolExecutor(
                max_workers=min(self.options.concurrency, len(jobs)), thread_name_prefix="fleetfix-collect"
            )
            try:
                for job in jobs:
                    self._futures[job.name] = self._pool.submit(self._one, job, resolved)
                pending = set(self._futures.values())
                while pending:  # a future cancelled by abandon() never completes a plain wait()
                    _, pending = wait(pending, timeout=0.5)
                    pending = {future for future in pending if not future.done()}
            finally:
                self._pool.shutdown(wait=False, cancel_futures=True)
            for future in self._futures.values():
                if not future.cancelled() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
        self._writer.flush()
        self.timings["collect_s"] = time.perf_counter() - collecting
        self.timings["write_s"] = self._writer.write_s
        return CollectReport(tuple(self._writer.written), self._already)

    def abandon(self, message: str) -> CollectReport:
        """Stop now: write hosts in progress as timed out, return the untouched ones."""
        self._stop.set()
        for future in self._futures.values():
            future.cancel()
        with self._lock:
            stuck = list(self._in_progress.values())
            self._in_progress.clear()
        now = utcnow()
        for job in stuck:
            self._writer.add(
                HostOutcome(
                    name=job.name,
                    role=job.host.role,
                    facts=None,
                    error=CollectionError(kind="timed_out", message=message),
                    started_at=now,
                    finished_at=now,
                    elapsed_s=0.0,
                )
            )
        self._writer.flush()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        done = set(self._writer.written) | set(self._already)
        left = tuple(host for host in self.hosts if host.name not in done)
        abandoned = tuple(job.name for job in stuck)
        collected = tuple(name for name in self._writer.written if name not in abandoned)
        return CollectReport(collected, self._already, abandoned, left)


# --- coordinator side --------------------------------------------------------------------------------


@dataclass
class _Sent:
    hosts: list[Host]
    sent: bool = False
    failures: int = 0
    next_send: float = 0.0
    last_change: float = 0.0
    missing: set[str] = field(default_factory=set)


class DistributedCollect:
    """A ``SweepIO.collect`` that collects on Celery workers and waits on the ledger.

    ``app`` is a Celery app whose workers serve :data:`COLLECT_BATCH_TASK`
    (``tasks.app.make_app``). ``on_progress(done, total)`` is told as rows arrive.
    """

    def __init__(
        self,
        store: Store,
        app: Any,
        *,
        batch_size: int = 100,
        poll_s: float = 1.0,
        redispatch_after_s: float = 7200.0,
        on_progress: Callable[[int, int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if batch_size < 1:
            raise InputError("must be at least 1", field="celery.batch_size")
        self.store = store
        self.app = app
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.redispatch_after_s = redispatch_after_s
        self.on_progress = on_progress
        self.sleep = sleep
        self.monotonic = monotonic
        self.sent_batches = 0
        self.collection: str | None = None
        self.timings: dict[str, float] = {}
        """Seconds spent sending, waiting on the ledger and reading it back (the last collection)."""

    def __call__(self, jobs: Sequence[HostJob], resolved: Resolved, options: CollectOptions) -> Outcomes:
        del resolved  # workers resolve credentials themselves; nothing secret leaves this process
        if not jobs:
            return ()
        collection = str(uuid.uuid4())
        self.collection = collection
        self._purge_stale()
        started = self.monotonic()
        batches = [_Sent(hosts) for hosts in split_hosts([job.host for job in jobs], self.batch_size)]
        for batch in batches:
            batch.missing = {host.name for host in batch.hosts}
            self._send(collection, batch, options)
        sent = self.monotonic()
        self._wait(collection, batches, options, total=len(jobs))
        waited = self.monotonic()
        outcomes = self._read_back(collection, jobs)
        self.timings = {
            "send_s": sent - started,
            "wait_s": waited - sent,
            "read_s": self.monotonic() - waited,
        }
        return outcomes

    def _send(self, collection: str, batch: _Sent, options: CollectOptions) -> None:
        hosts = [host for host in batch.hosts if host.name in batch.missing]
        now = self.monotonic()
        try:
            self.app.send_task(
                COLLECT_BATCH_TASK,
                args=(collection, [host_to_json(host) for host in hosts], options_to_json(options)),
                argsrepr=f"({collection!r}, <{len(hosts)} hosts>)",
            )
        except Exception as exc:  # the broker is away: try again later, never assume it arrived
            batch.failures += 1
            batch.next_send = now + min(self.poll_s * 2**batch.failures, 60.0)
            log.warning("could not send a batch of %d hosts (%s); retrying", len(hosts), type(exc).__name__)
            return
        batch.sent = True
        batch.failures = 0
        batch.last_change = now
        self.sent_batches += 1

    def _wait(self, collection: str, batches: list[_Sent], options: CollectOptions, *, total: int) -> None:
        owner = {host.name: batch for batch in batches for host in batch.hosts}
        last_id = 0
        done = 0
        while True:
            with store_errors(self.store.engine.url), self.store.sessions() as session:
                rows = session.execute(
                    select(CollectedHost.id, CollectedHost.host)
                    .where(CollectedHost.collection == collection, CollectedHost.id > last_id)
                    .order_by(CollectedHost.id)
                ).all()
            tick = self.monotonic()
            for row in rows:
                last_id = max(last_id, row.id)
                batch = owner.get(row.host)
                if batch is not None and row.host in batch.missing:
                    batch.missing.discard(row.host)
                    batch.last_change = tick
                    done += 1
            if rows and self.on_progress is not None:
                self.on_progress(done, total)
            if done >= total:
                return
            for batch in batches:
                if not batch.missing:
                    continue
                if not batch.sent:
                    if tick >= batch.next_send:
                        self._send(collection, batch, options)
                elif tick - batch.last_change >= self.redispatch_after_s:
                    log.warning(
                        "no worker touched %d hosts for %.0f s; sending them again (is a worker running?)",
                        len(batch.missing),
                        tick - batch.last_change,
                    )
                    batch.sent = False
                    self._send(collection, batch, options)
            self.sleep(self.poll_s)

    def _read_back(self, collection: str, jobs: Sequence[HostJob]) -> Outcomes:
        with self.store.transaction() as session:
            rows = session.execute(
                select(CollectedHost).where(CollectedHost.collection == collection)
            ).scalars()
            by_name = {row.host: outcome_from_row(row) for row in rows}
            session.execute(delete(CollectedHost).where(CollectedHost.collection == collection))
        return tuple(by_name[job.name] for job in jobs)

    def _purge_stale(self) -> None:
        """Rows of collections whose coordinator died long ago (a sweep never reads them again)."""
        try:
            with self.store.transaction() as session:
                session.execute(
                    delete(CollectedHost).where(CollectedHost.written_at < utcnow() - STALE_AFTER)
                )
        except FleetfixError:
            log.warning("could not remove old collected_hosts rows", exc_info=True)


def distributed_io(io: SweepIO, collect: DistributedCollect) -> SweepIO:
    """``io`` with collection on Celery workers; credentials are resolved by the workers."""
    return replace(io, resolve=lambda keys: {}, collect=collect)


def run_distributed_sweep(
    settings: Settings,
    store: Store,
    app: Any,
    request: SweepRequest,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SweepResult:
    """One sweep with collection on ``app``'s workers: :func:`~.service.run_sweep` with
    :class:`DistributedCollect` as its ``collect`` (the tenant and CRLs are read here)."""
    celery = settings.celery
    collect = DistributedCollect(
        store,
        app,
        batch_size=celery.batch_size,
        poll_s=min(celery.poll_s, 1.0),
        redispatch_after_s=celery.redispatch_after,
        on_progress=on_progress,
    )
    return run_sweep(store, request, distributed_io(default_io(settings, environ=environ), collect))


__all__ = [
    "COLLECT_BATCH_TASK",
    "CollectBatch",
    "CollectReport",
    "DistributedCollect",
    "collected_names",
    "distributed_io",
    "host_from_json",
    "host_to_json",
    "options_from_json",
    "options_to_json",
    "outcome_from_row",
    "outcome_row",
    "run_distributed_sweep",
    "split_hosts",
    "write_outcomes",
]
