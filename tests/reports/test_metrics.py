"""Prometheus text exposition, read back with prometheus_client's own parser."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.reports.metrics import MetricsData, SweepMetrics, escape_label, metrics_text

FINISHED = datetime(2026, 3, 1, 2, 1, 4, 500000, tzinfo=UTC)
HOSTILE = 'EP-"quoted"\\back\nslash'


def sweep(**fields: object) -> SweepMetrics:
    values: dict[str, object] = {
        "run_id": "run-1",
        "finished_at": FINISHED,
        "duration_s": 64.757,
        "compliant": False,
        "hosts_by_status": {"ok": 996, "unreachable": 3, "failed": 1},
        "compliant_hosts": 960,
        "findings": {("EP-CERT-01", "high"): 30, (HOSTILE, "critical"): 1},
        "checks": (("EP-CERT-01", "high"), ("CA-CRL-01", "critical")),
        "changes": {"new": 5, "still_open": 37, "resolved": 2, "unverified": 0},
        **fields,
    }
    return SweepMetrics(**values)  # type: ignore[arg-type]


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            families.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return families


def test_every_family_parses_with_help_and_type() -> None:
    text = metrics_text(
        MetricsData(runs={("sweep", "succeeded"): 12, ("sweep", "running"): 1}, sweep=sweep())
    )
    assert text.endswith("\n")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == {
        "fleetfix_runs",  # the parser drops a counter's _total
        "fleetfix_runs_active",
        "fleetfix_findings",
        "fleetfix_hosts",
        "fleetfix_compliant_hosts",
        "fleetfix_compliant",
        "fleetfix_findings_changes",
        "fleetfix_sweep_duration_seconds",
        "fleetfix_sweep_timestamp_seconds",
    }
    assert families["fleetfix_runs"].type == "counter"
    assert all(family.documentation for family in families.values())
    for name in families:
        metric = name if name != "fleetfix_runs" else "fleetfix_runs_total"
        assert f"# HELP {metric} " in text
        assert f"# TYPE {metric} " in text


def test_values() -> None:
    values = parse(metrics_text(MetricsData(runs={("sweep", "succeeded"): 12}, sweep=sweep())))
    assert values["fleetfix_runs_total"][(("kind", "sweep"), ("status", "succeeded"))] == 12
    assert values["fleetfix_runs_total"][(("kind", "playbook"), ("status", "failed"))] == 0
    assert values["fleetfix_runs_active"][(("kind", "sweep"), ("status", "running"))] == 0
    findings = values["fleetfix_findings"]
    assert findings[(("check_id", "EP-CERT-01"), ("severity", "high"))] == 30
    assert findings[(("check_id", "CA-CRL-01"), ("severity", "critical"))] == 0  # a check without findings
    assert values["fleetfix_hosts"] == {
        (("state", "ok"),): 996,
        (("state", "failed"),): 1,
        (("state", "unreachable"),): 3,
        (("state", "skipped"),): 0,
    }
    assert values["fleetfix_compliant"][()] == 0
    assert values["fleetfix_compliant_hosts"][()] == 960
    assert values["fleetfix_findings_changes"][(("change", "new"),)] == 5
    assert values["fleetfix_sweep_duration_seconds"][()] == 64.757
    assert values["fleetfix_sweep_timestamp_seconds"][()] == FINISHED.timestamp()


def test_hostile_label_values_round_trip() -> None:
    text = metrics_text(MetricsData(runs={}, sweep=sweep()))
    assert 'check_id="EP-\\"quoted\\"\\\\back\\nslash"' in text
    assert "\nslash" not in text  # a line feed never breaks a sample line
    findings = parse(text)["fleetfix_findings"]
    assert findings[(("check_id", HOSTILE), ("severity", "critical"))] == 1
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_without_a_sweep_only_runs_are_written() -> None:
    text = metrics_text(MetricsData(runs={("playbook", "failed"): 2}, sweep=None))
    assert set(parse(text)) == {"fleetfix_runs_total", "fleetfix_runs_active"}
    assert parse(text)["fleetfix_runs_total"][(("kind", "playbook"), ("status", "failed"))] == 2


def test_a_compliant_sweep_without_duration() -> None:
    values = parse(
        metrics_text(MetricsData(runs={}, sweep=sweep(compliant=True, duration_s=None, changes={})))
    )
    assert values["fleetfix_compliant"][()] == 1
    assert "fleetfix_sweep_duration_seconds" not in values
    assert "fleetfix_findings_changes" not in values
