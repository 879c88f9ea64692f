"""Every check spec case: facts in (YAML, certificates from certgen), the exact findings out."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from orchestrator.checks import Finding, catalogue, run_checks
from tests.checks.specrunner import Case, build, expected, known_check_ids, load_cases, observed

CASES = load_cases()


def _describe(findings: tuple[Finding, ...]) -> str:
    return "\n".join(f"{f.check_id} {f.host} {f.reason} {f.subject}: {f.message}" for f in findings)


def _explained_by(finding: Finding) -> list[str]:
    """The check ids of the findings that explain ``finding`` (its ``explained_by`` evidence)."""
    check_ids = []
    explaining = finding.evidence.get("explained_by", ())
    assert isinstance(explaining, tuple)
    for entry in explaining:
        assert isinstance(entry, Mapping)
        check_id = entry["check_id"]
        assert isinstance(check_id, str)
        check_ids.append(check_id)
    return check_ids


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_spec(case: Case) -> None:
    built = build(case.data)
    findings = run_checks(built.fleet, at=built.at, options=built.options, only=built.only)
    assert observed(findings) == expected(built.expect), _describe(findings)
    severities = {(f.check_id, f.subject): f.severity.value for f in findings}
    for item in built.expect:
        if "severity" in item:
            assert severities[(item["check"], item["subject"])] == item["severity"]
    explained = {f.subject: _explained_by(f) for f in findings}
    for subject, check_ids in case.data.get("explained_by", {}).items():
        assert explained[subject] == check_ids


def _expected_items() -> list[dict[str, object]]:
    return [item for case in CASES for item in case.data.get("expect", [])]


def test_every_check_has_a_spec_that_fires_it() -> None:
    assert known_check_ids() - {str(item["check"]) for item in _expected_items()} == set()


def test_every_documented_reason_is_exercised() -> None:
    seen = {(str(item["check"]), item.get("reason")) for item in _expected_items()}
    documented = {(spec.id, reason) for spec in catalogue() for reason in spec.reasons}
    assert documented - seen == set()
