"""Check findings as the store keeps them, and both as JSON.  Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from orchestrator.checks.model import Finding, Severity, thaw
from orchestrator.store.sweeps import FindingRecord


def finding_record(finding: Finding) -> FindingRecord:
    return FindingRecord(
        host=finding.host,
        check_id=finding.check_id,
        severity=finding.severity.value,
        title=finding.title,
        message=finding.message,
        subject=finding.subject,
        reason=finding.reason,
        fingerprint=finding.fingerprint,
        evidence=thaw(finding.evidence),
        error_codes=tuple(finding.error_codes),
        playbook=finding.playbook,
        advice=finding.advice,
    )


def finding_document(record: FindingRecord, *, status: str | None = None) -> dict[str, Any]:
    """One finding in ``sweep`` and ``findings list`` JSON (docs/cli-json.md)."""
    document: dict[str, Any] = {
        "fingerprint": record.fingerprint,
        "check_id": record.check_id,
        "host": record.host,
        "severity": record.severity,
        "title": record.title,
        "message": record.message,
        "subject": record.subject,
        "reason": record.reason,
        "evidence": record.evidence,
        "error_codes": list(record.error_codes),
        "playbook": record.playbook,
        "advice": record.advice,
    }
    if status is not None:
        document["status"] = status
    return document


def severity_rank(severity: str) -> int:
    """Critical first; an unknown severity (a newer fleetfix wrote it) last."""
    try:
        return Severity(severity).rank
    except ValueError:
        return len(Severity)


def by_severity(records: Iterable[FindingRecord]) -> dict[str, int]:
    """Counts per severity, every severity present (zeros included), critical first."""
    counts = Counter(record.severity for record in records)
    return {severity.value: counts.get(severity.value, 0) for severity in Severity}


def sort_key(record: FindingRecord) -> tuple[int, str, str, str]:
    return (severity_rank(record.severity), record.host.casefold(), record.check_id, record.subject)


__all__ = ["by_severity", "finding_document", "finding_record", "severity_rank", "sort_key"]
