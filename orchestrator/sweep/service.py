"""The compliance sweep: collect every selected host (and the tenant, and CRLs), run the checks,
store the run with its host results and findings, and say what changed since the previous sweep.

Every edge is a field of :class:`SweepIO`, so tests drive the whole flow with fakes and the CLI,
the demo and the benchmark with the real thing (:func:`default_io`).  The order of one sweep:

1. the run is recorded as ``running`` (a killed sweep stays visible);
2. credentials are resolved once per distinct reference, hosts collected in a bounded pool;
3. the tenant is read once (when Graph is configured), the CRLs the certificates name are fetched;
4. the checks judge the assembled :class:`FleetFacts` at an injected time;
5. one transaction writes the audit entry, every host result and finding, and ``succeeded``.

An error that stops the sweep itself (the store, a defect) marks the run ``failed`` and is
raised; a host or the tenant failing is data in the result, never an exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.checks.model import Finding
from orchestrator.config import Settings
from orchestrator.credentials.vault import Vault
from orchestrator.errors import FleetfixError
from orchestrator.facts.fleet import CollectionError, CrlFetch, FleetFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory.models import Host
from orchestrator.store import RunStatus, Store, append_audit
from orchestrator.store.sweeps import (
    FindingRecord,
    HostRecord,
    SweepRun,
    complete_sweep,
    fail_sweep,
    start_sweep,
)
from orchestrator.sweep.assemble import fleet_facts, fleet_wide_facts, host_facts, host_record
from orchestrator.sweep.collect import HostOutcome, collect_hosts, winrm_session
from orchestrator.sweep.credentials import Resolved, resolve_all
from orchestrator.sweep.crls import DEFAULT_CRL_POLICY, CrlFetchPolicy, cdp_urls, fetch_crls
from orchestrator.sweep.diff import FindingsDiff
from orchestrator.sweep.findings import finding_record, sort_key
from orchestrator.sweep.history import diff_against_previous
from orchestrator.sweep.plan import (
    DEFAULT_OPTIONS,
    CollectOptions,
    CredentialKey,
    HostJob,
    credential_keys,
    plan_collection,
)
from orchestrator.sweep.summary import TenantOutcome, summarize

log = logging.getLogger("fleetfix.sweep")

Outcomes = tuple[HostOutcome, ...]
AUDIT_DONE = "sweep.complete"
AUDIT_FAILED = "sweep.failed"


@dataclass(frozen=True)
class SweepRequest:
    """What to sweep and how; ``selector`` is the ``--limit`` text, kept on the run for the record."""

    hosts: tuple[Host, ...]
    requested_by: str
    selector: str | None = None
    options: CollectOptions = DEFAULT_OPTIONS


@dataclass(frozen=True)
class SweepIO:
    """The edges of a sweep (network, clock, the checks), each replaceable in tests."""

    resolve: Callable[[Sequence[CredentialKey]], Resolved]
    collect: Callable[[Sequence[HostJob], Resolved, CollectOptions], Outcomes]
    tenant: Callable[[datetime], TenantOutcome]
    crls: Callable[[Sequence[str]], tuple[CrlFetch, ...]]
    checks: Callable[[FleetFacts, datetime], Sequence[Finding]]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: the run, what each host gave, the findings and how they changed."""

    run: SweepRun
    hosts: tuple[HostRecord, ...]
    tenant: TenantOutcome
    crls: tuple[CrlFetch, ...]
    findings: tuple[FindingRecord, ...]
    diff: FindingsDiff[FindingRecord]
    summary: dict[str, Any]

    @property
    def compliant(self) -> bool:
        return bool(self.summary["compliant"])


def run_sweep(store: Store, request: SweepRequest, io: SweepIO) -> SweepResult:
    """One sweep end to end (module docstring); raises only when the sweep itself cannot go on."""
    started = time.monotonic()
    with store.transaction() as session:
        run = start_sweep(
            session,
            requested_by=request.requested_by,
            selector=request.selector,
            parameters=_parameters(request),
            started_at=io.clock(),
        )
    try:
        return _sweep(store, run, request, io, started)
    except BaseException as exc:
        _record_failure(store, run, exc, io.clock())
        raise


def _sweep(store: Store, run: SweepRun, request: SweepRequest, io: SweepIO, started: float) -> SweepResult:
    jobs = plan_collection(request.hosts, request.options)
    outcomes = io.collect(jobs, io.resolve(credential_keys(jobs)), request.options)
    tenant = io.tenant(io.clock())
    crls = io.crls(cdp_urls(host_facts(outcome) for outcome in outcomes))
    fleet = fleet_facts(outcomes, tenant=tenant.facts, tenant_error=tenant.error, crls=crls)
    at = io.clock()
    findings = tuple(sorted((finding_record(f) for f in io.checks(fleet, at)), key=sort_key))
    hosts = tuple(host_record(outcome) for outcome in outcomes)
    complete = tenant.error is None and all(outcome.error is None for outcome in outcomes)
    with store.transaction() as session:
        diff = diff_against_previous(session, run, findings, hosts, complete=complete)
    summary = summarize(hosts, findings, diff, tenant, crls, complete=complete)
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    finished_at = io.clock()
    with store.transaction() as session:
        # the audit entry first: on SQLite it takes the write lock before anything else is written
        append_audit(session, run.requested_by, AUDIT_DONE, run.id, _audit_details(summary))
        complete_sweep(
            session,
            run.id,
            hosts=hosts,
            findings=findings,
            fleet_facts=fleet_wide_facts(fleet),
            summary=summary,
            finished_at=finished_at,
            observed_at=at,
        )
    done = replace(run, status=RunStatus.SUCCEEDED, finished_at=finished_at, summary=summary)
    return SweepResult(done, hosts, tenant, crls, findings, diff, summary)


def _parameters(request: SweepRequest) -> dict[str, Any]:
    options = request.options
    return {
        "hosts": len(request.hosts),
        "concurrency": options.concurrency,
        "deadline_s": options.deadline_s,
        "event_days": options.event_days,
        "max_events": options.max_events,
    }


def _audit_details(summary: dict[str, Any]) -> dict[str, Any]:
    """Counts only: names of hosts and findings are in the run, the audit log stays small."""
    return {key: summary[key] for key in ("hosts", "findings", "tenant", "compliant")}


def _record_failure(store: Store, run: SweepRun, exc: BaseException, at: datetime) -> None:
    error = exc.to_dict() if isinstance(exc, FleetfixError) else {"kind": "internal", "message": repr(exc)}
    try:
        with store.transaction() as session:
            append_audit(session, run.requested_by, AUDIT_FAILED, run.id, {"error": error})
            fail_sweep(session, run.id, finished_at=at, summary={"error": error, "compliant": False})
    except FleetfixError:  # the store itself may be what failed; the original error is what matters
        log.warning("could not record sweep %s as failed", run.id, exc_info=True)


# --- the real edges ---------------------------------------------------------------------------------


def default_io(
    settings: Settings,
    *,
    on_host_done: Callable[[HostOutcome], None] | None = None,
    check: Callable[[FleetFacts, datetime], Sequence[Finding]] | None = None,
    crl_policy: CrlFetchPolicy = DEFAULT_CRL_POLICY,
    environ: Mapping[str, str] | None = None,
) -> SweepIO:
    """WinRM sessions, the configured vault and tenant, httpx for CRLs, the shipped checks.

    ``environ`` (default ``os.environ``) is where ``env:`` references and ``FLEETFIX_MASTER_KEY``
    are read; the demo passes ``{}`` so that a shell's settings cannot point it elsewhere.
    """
    vault = Vault.from_settings(settings, environ)  # opened (the key read) on first use, once

    def collect(jobs: Sequence[HostJob], resolved: Resolved, options: CollectOptions) -> Outcomes:
        return collect_hosts(jobs, resolved, options, session_factory=winrm_session, on_done=on_host_done)

    return SweepIO(
        resolve=lambda keys: resolve_all(keys, open_vault=lambda: vault, environ=environ),
        collect=collect,
        tenant=lambda at: read_tenant(settings, vault, at),
        crls=lambda urls: fetch_crls(urls, crl_policy),
        checks=check or shipped_checks,
    )


def shipped_checks(fleet: FleetFacts, at: datetime) -> Sequence[Finding]:
    from orchestrator.checks import run_checks  # noqa: PLC0415 (the catalogue loads on first use)

    return run_checks(fleet, at=at)


def read_tenant(
    settings: Settings,
    vault: Vault,
    at: datetime,
    *,
    open_client: Callable[[], AbstractContextManager[Any]] | None = None,
) -> TenantOutcome:
    """The tenant's facts through Graph, or why not; not configured is not an error."""
    if not settings.graph.configured:
        return TenantOutcome(configured=False)
    from orchestrator.sweep.tenant import collect_tenant  # noqa: PLC0415 (msal only when configured)
    from orchestrator.transport.graph import open_intune  # noqa: PLC0415

    opener = open_client or (lambda: open_intune(settings, vault=vault))
    try:
        with opener() as intune:
            facts: TenantFacts = collect_tenant(intune, at=at)
    except FleetfixError as exc:
        return TenantOutcome(configured=True, error=CollectionError.from_error(exc))
    return TenantOutcome(configured=True, facts=facts)


__all__ = [
    "AUDIT_DONE",
    "AUDIT_FAILED",
    "SweepIO",
    "SweepRequest",
    "SweepResult",
    "default_io",
    "read_tenant",
    "run_sweep",
    "shipped_checks",
]
