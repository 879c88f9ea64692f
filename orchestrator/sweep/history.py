"""A sweep against the one before it, from the store: what is new, still open, resolved.

The comparison itself is :func:`orchestrator.sweep.diff.diff_findings` (pure); this module reads
what it needs.  The sweep service calls :func:`diff_against_previous` with the findings it is
about to store, ``fleetfix findings list`` with the stored ones, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from orchestrator.store.models import HostStatus
from orchestrator.store.sweeps import (
    FindingRecord,
    HostRecord,
    SweepRun,
    latest_sweep,
    sweep_findings,
    sweep_hosts,
)
from orchestrator.sweep.diff import Coverage, FindingsDiff, diff_findings

COMPLETE_KEY = "complete"
"""``runs.summary`` key: the sweep collected every host it selected and the tenant (if configured)."""


def coverage_of(hosts: Sequence[HostRecord], *, complete: bool) -> Coverage:
    return Coverage.of((record.host for record in hosts if record.status is HostStatus.OK), complete=complete)


def diff_against_previous(
    session: Session,
    run: SweepRun,
    current: Sequence[FindingRecord],
    hosts: Sequence[HostRecord],
    *,
    complete: bool,
) -> FindingsDiff[FindingRecord]:
    """``current`` (the findings of ``run``, stored or about to be) against the previous sweep."""
    previous = latest_sweep(session, before=run)
    previous_findings = sweep_findings(session, previous.id) if previous else None
    previous_hosts = sweep_hosts(session, previous.id) if previous else ()
    return diff_findings(
        current,
        previous_findings,
        coverage=coverage_of(hosts, complete=complete),
        inventory_hosts=[record.host for record in (*hosts, *previous_hosts)],
        previous_run=previous.id if previous else None,
    )


def stored_diff(session: Session, run: SweepRun) -> FindingsDiff[FindingRecord]:
    """The diff of a stored sweep, as it was reported when it ran."""
    complete = bool((run.summary or {}).get(COMPLETE_KEY))
    return diff_against_previous(
        session, run, sweep_findings(session, run.id), sweep_hosts(session, run.id), complete=complete
    )


__all__ = ["COMPLETE_KEY", "coverage_of", "diff_against_previous", "stored_diff"]
