"""``fleetfix sweep`` and ``fleetfix findings list`` as JSON documents, and the findings filter.  Pure.

Shapes are documented in docs/cli-json.md; keys are only ever added.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.facts.fleet import CrlFetch
from orchestrator.store.sweeps import FindingRecord, HostRecord, SweepRun
from orchestrator.sweep.diff import Change, FindingsDiff, FindingStatus
from orchestrator.sweep.findings import finding_document, sort_key

if TYPE_CHECKING:  # the service (and the transports it names) load only for a sweep
    from orchestrator.sweep.service import SweepResult


def select_findings(
    diff: FindingsDiff[FindingRecord],
    status: FindingStatus,
    *,
    check_ids: Collection[str] = (),
    hosts: Collection[str] | None = None,
) -> list[tuple[FindingRecord, Change]]:
    """The findings of ``status``, of ``check_ids`` (all when empty), on ``hosts`` (all when None;
    fleet-wide findings belong to no host, so a host filter leaves them out), severity first."""
    wanted_hosts = None if hosts is None else {name.casefold() for name in hosts}
    wanted_checks = {check.casefold() for check in check_ids}
    selected = [
        (record, change)
        for change in status.changes
        for record in diff.of(change)
        if (not wanted_checks or record.check_id.casefold() in wanted_checks)
        and (wanted_hosts is None or record.host.casefold() in wanted_hosts)
    ]
    return sorted(selected, key=lambda pair: sort_key(pair[0]))


def iso(moment: datetime | None) -> str | None:
    """``2026-03-01T02:00:00.123Z``: UTC, as every fleetfix JSON document writes times."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _host_document(record: HostRecord) -> dict[str, Any]:
    error = {"kind": record.error_kind, "message": record.error_message} if record.error_kind else None
    return {"host": record.host, "role": record.role, "status": record.status.value, "error": error}


def _crl_document(fetch: CrlFetch) -> dict[str, Any]:
    return {"url": fetch.url, "ok": fetch.error is None, "error": fetch.error}


def _documents(records: Iterable[FindingRecord], change: Change) -> list[dict[str, Any]]:
    return [finding_document(record, status=change.value) for record in records]


def sweep_document(result: SweepResult) -> dict[str, Any]:
    """The JSON document of ``fleetfix sweep``."""
    run, summary, diff = result.run, result.summary, result.diff
    status_of = diff.change_of()
    return {
        "run_id": run.id,
        "previous_run": diff.previous_run,
        "selector": run.selector,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "elapsed_s": summary.get("elapsed_s"),
        "compliant": result.compliant,
        "counts": {"hosts": summary["hosts"], "findings": summary["findings"], "crls": summary["crls"]},
        "tenant": {
            "status": result.tenant.status,
            "error": result.tenant.error.model_dump() if result.tenant.error else None,
        },
        "notes": summary["notes"],
        "hosts": [_host_document(record) for record in result.hosts],
        "crls": [_crl_document(fetch) for fetch in result.crls],
        "findings": [
            finding_document(record, status=status_of[record.fingerprint].value) for record in result.findings
        ],
        "resolved": _documents(diff.resolved, Change.RESOLVED),
        "unverified": _documents(diff.unverified, Change.UNVERIFIED),
    }


def findings_document(
    run: SweepRun,
    diff: FindingsDiff[FindingRecord],
    selected: list[tuple[FindingRecord, Change]],
    status: FindingStatus,
) -> dict[str, Any]:
    """The JSON document of ``fleetfix findings list``."""
    return {
        "run_id": run.id,
        "previous_run": diff.previous_run,
        "finished_at": iso(run.finished_at),
        "status": status.value,
        "count": len(selected),
        "findings": [finding_document(record, status=change.value) for record, change in selected],
    }


__all__ = ["findings_document", "select_findings", "sweep_document"]
