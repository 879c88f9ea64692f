"""Collecting hosts' facts over WinRM: a bounded thread pool, one session per host per thread.

The only module of the sweep that talks to hosts, and deliberately thin: what to run comes from
:mod:`.plan`, how results become facts from :mod:`.assemble`.  Every host ends as a
:class:`HostOutcome` -- its probe document, or the fleetfix error that stopped it -- never as an
exception across hosts: unreachable, refused logins, timeouts, bad output and even a fleetfix
defect (``internal``) are data on that host's outcome.

Time is bounded per host by the transport's deadline (:class:`TransportPolicy.deadline_s`); the
whole collection therefore takes at most about ``ceil(hosts / concurrency) * deadline``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from orchestrator.credentials.secret import Credential
from orchestrator.errors import CredentialError, FleetfixError
from orchestrator.facts.common import FactsDocument
from orchestrator.facts.fleet import CollectionError
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import Invocation
from orchestrator.sweep.plan import CollectOptions, CredentialKey, HostJob

log = logging.getLogger("fleetfix.sweep")


class _Result(Protocol):
    @property
    def value(self) -> Any: ...

    @property
    def errors(self) -> tuple[str, ...]: ...


class ProbeSession(Protocol):
    """What collection needs of a session (:class:`WinRMSession` has it; tests inject fakes)."""

    def run(self, invocation: Invocation[Any], /) -> _Result: ...


SessionFactory = Callable[[Host, Credential, float], AbstractContextManager[ProbeSession]]
"""``(host, credential, deadline_s) -> context manager yielding an open session``."""


@dataclass(frozen=True)
class HostOutcome:
    """One host's collection: the probe document or the error, and when it ran."""

    name: str
    role: Role
    facts: FactsDocument | None
    error: CollectionError | None
    started_at: datetime
    finished_at: datetime
    elapsed_s: float
    script_errors: tuple[str, ...] = ()
    """Non-terminating errors the probe wrote while still completing (kept for the record)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def winrm_session(
    host: Host, credential: Credential, deadline_s: float
) -> AbstractContextManager[ProbeSession]:
    """The real session factory.  pypsrp is imported here, on first use by a sweep."""
    from orchestrator.transport.winrm import TransportPolicy, WinRMSession  # noqa: PLC0415

    return WinRMSession(host, credential, policy=TransportPolicy(deadline_s=deadline_s))


def collect_host(
    job: HostJob,
    credential: Credential | CredentialError,
    *,
    deadline_s: float,
    session_factory: SessionFactory = winrm_session,
) -> HostOutcome:
    """Collect one host in one session; never raises (failures are the outcome's ``error``)."""
    started_at, started = utcnow(), time.perf_counter()
    facts: FactsDocument | None = None
    error: CollectionError | None = None
    script_errors: tuple[str, ...] = ()
    try:
        if isinstance(credential, CredentialError):
            raise credential
        with session_factory(job.host, credential, deadline_s) as session:
            result = session.run(job.invocation)
        facts, script_errors = result.value, tuple(result.errors)
    except FleetfixError as exc:
        error = CollectionError.from_error(exc)
    except Exception as exc:  # a fleetfix defect on one host must not stop the others
        log.debug("collecting %s failed unexpectedly", job.name, exc_info=True)
        error = CollectionError(kind="internal", message=f"{type(exc).__name__}: {exc}")
    return HostOutcome(
        name=job.name,
        role=job.host.role,
        facts=facts,
        error=error,
        started_at=started_at,
        finished_at=utcnow(),
        elapsed_s=time.perf_counter() - started,
        script_errors=script_errors,
    )


def collect_hosts(
    jobs: Sequence[HostJob],
    credentials: Mapping[CredentialKey, Credential | CredentialError],
    options: CollectOptions,
    *,
    session_factory: SessionFactory = winrm_session,
    on_done: Callable[[HostOutcome], None] | None = None,
) -> tuple[HostOutcome, ...]:
    """Every job's outcome, in job order; at most ``options.concurrency`` sessions at once.

    ``on_done`` is called (from worker threads) as each host finishes, for progress reports.
    """
    if not jobs:
        return ()

    def one(job: HostJob) -> HostOutcome:
        outcome = collect_host(
            job,
            credentials.get(job.credential) or CredentialError(f"{job.credential}: not resolved"),
            deadline_s=options.deadline_s,
            session_factory=session_factory,
        )
        if on_done is not None:
            on_done(outcome)
        return outcome

    workers = min(options.concurrency, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetfix-collect") as pool:
        return tuple(pool.map(one, jobs))


__all__ = ["HostOutcome", "ProbeSession", "SessionFactory", "collect_host", "collect_hosts", "winrm_session"]
