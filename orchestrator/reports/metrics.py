"""Prometheus metrics of the store as text exposition format 0.0.4.  Pure.

``fleetfix report metrics -o FILE`` writes this text atomically for node_exporter's textfile
collector (``--collector.textfile.directory``); the product needs no Prometheus library.  Sweep
figures are those of the newest completed sweep; without one only ``fleetfix_runs_*`` appear.
Every family has its HELP and TYPE lines; label values are escaped as the format requires
(backslash, double quote, line feed).  docs/reports.md lists the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.store.models import HostStatus, RunKind, RunStatus, TargetState

ENDED = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value)
ACTIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.PAUSED.value)
CHANGES = ("new", "still_open", "resolved", "unverified")


@dataclass(frozen=True)
class SweepMetrics:
    """The newest completed sweep in numbers."""

    run_id: str
    finished_at: datetime
    duration_s: float | None
    compliant: bool
    hosts_by_status: Mapping[str, int]
    compliant_hosts: int
    findings: Mapping[tuple[str, str], int]
    """(check id, severity) -> findings"""
    checks: tuple[tuple[str, str], ...] = ()
    """(check id, default severity) of the catalogue: checks without findings report 0"""
    changes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsData:
    runs: Mapping[tuple[str, str], int]
    """(kind, status) -> runs in the store"""
    sweep: SweepMetrics | None
    run_targets: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(playbook, target state) -> targets of the newest run of each playbook"""


def escape_label(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


Sample = tuple[Mapping[str, str], float]


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> Iterator[str]:
    """The lines of one metric family: HELP, TYPE, then its samples."""
    yield f"# HELP {name} {escape_help(help_text)}"
    yield f"# TYPE {name} {kind}"
    for labels, value in samples:
        if labels:
            rendered = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
            yield f"{name}{{{rendered}}} {_number(value)}"
        else:
            yield f"{name} {_number(value)}"


def metrics_text(data: MetricsData) -> str:
    """The whole exposition, ending with a newline."""
    lines = [*_run_families(data.runs)]
    if data.sweep is not None:
        lines.extend(_sweep_families(data.sweep))
    if data.run_targets:
        lines.extend(run_target_families(data.run_targets))
    return "\n".join(lines) + "\n"


def run_target_families(run_targets: Mapping[tuple[str, str], int]) -> Iterator[str]:
    """``fleetfix_run_targets{playbook,state}``: the newest run of each playbook, every target state
    (zeros included, so that a state that empties goes to 0 instead of vanishing)."""
    playbooks = sorted({playbook for playbook, _ in run_targets})
    states = [state.value for state in TargetState]
    states += sorted({state for _, state in run_targets} - set(states))
    yield from family(
        "fleetfix_run_targets",
        "gauge",
        "Targets of the newest run of each playbook, by state.",
        (({"playbook": p, "state": s}, run_targets.get((p, s), 0)) for p in playbooks for s in states),
    )


def _run_families(runs: Mapping[tuple[str, str], int]) -> Iterator[str]:
    kinds = sorted({kind.value for kind in RunKind} | {kind for kind, _ in runs})

    def samples(statuses: Iterable[str]) -> list[Sample]:
        # every kind and status, zeros included, so that a rate() has a series from the start
        return [({"kind": k, "status": s}, runs.get((k, s), 0)) for k in kinds for s in statuses]

    yield from family(
        "fleetfix_runs_total", "counter", "Runs in the store that ended, by kind and outcome.", samples(ENDED)
    )
    yield from family(
        "fleetfix_runs_active",
        "gauge",
        "Runs in the store that have not ended (pending, running, paused), by kind and status.",
        samples(ACTIVE),
    )


def _sweep_families(sweep: SweepMetrics) -> Iterator[str]:
    findings = dict(sweep.findings)
    seen = {check_id for check_id, _ in findings}
    for check_id, severity in sweep.checks:
        if check_id not in seen:
            findings[(check_id, severity)] = 0
    yield from family(
        "fleetfix_findings",
        "gauge",
        "Findings of the newest completed sweep, by check and severity.",
        (({"check_id": c, "severity": s}, n) for (c, s), n in sorted(findings.items())),
    )
    statuses = [status.value for status in HostStatus]
    statuses += sorted(set(sweep.hosts_by_status) - set(statuses))
    yield from family(
        "fleetfix_hosts",
        "gauge",
        "Hosts of the newest completed sweep, by collection state (ok: facts collected).",
        (({"state": s}, sweep.hosts_by_status.get(s, 0)) for s in statuses),
    )
    yield from family(
        "fleetfix_compliant_hosts",
        "gauge",
        "Hosts of the newest completed sweep that were collected and have no finding.",
        [({}, sweep.compliant_hosts)],
    )
    yield from family(
        "fleetfix_compliant",
        "gauge",
        "1 when the newest completed sweep was compliant (no finding, every host and the tenant read).",
        [({}, 1 if sweep.compliant else 0)],
    )
    if sweep.changes:
        yield from family(
            "fleetfix_findings_changes",
            "gauge",
            "Findings of the newest completed sweep against the one before it, by change.",
            (({"change": c}, sweep.changes[c]) for c in CHANGES if c in sweep.changes),
        )
    if sweep.duration_s is not None:
        yield from family(
            "fleetfix_sweep_duration_seconds",
            "gauge",
            "Wall time of the newest completed sweep.",
            [({}, round(sweep.duration_s, 3))],
        )
    yield from family(
        "fleetfix_sweep_timestamp_seconds",
        "gauge",
        "When the newest completed sweep finished, in seconds since the Unix epoch.",
        [({}, round(sweep.finished_at.timestamp(), 3))],
    )


__all__ = [
    "MetricsData",
    "SweepMetrics",
    "escape_help",
    "escape_label",
    "family",
    "metrics_text",
    "run_target_families",
]
