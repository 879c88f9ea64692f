"""Findings, specs, the registry and the runner: immutability, identity, failure isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from orchestrator.checks import CheckOptions, CheckRegistry, CheckSpec, Finding, Severity, run_checks
from orchestrator.checks.context import CheckContext
from orchestrator.checks.errorcodes import code_label, lookup
from orchestrator.checks.events import connection_name, failure_code
from orchestrator.errors import InputError
from orchestrator.facts import EndpointFacts, EventRecord, FleetFacts
from orchestrator.inventory.models import Role
from tests.checks.specrunner import build

AT = datetime(2025, 6, 1, tzinfo=UTC)
SPEC = CheckSpec(
    id="TEST-01",
    title="test",
    severity=Severity.MEDIUM,
    roles=(Role.ENDPOINT,),
    reasons={"odd": "something odd"},
    playbook="fix-it",
)


def finding(**changes: object) -> Finding:
    values: dict[str, object] = {
        "host": "ws1",
        "reason": "odd",
        "subject": "thing",
        "message": "odd thing",
        "evidence": {"when": AT, "items": [1, {"a": [2]}], "set": {"b", "a"}},
    }
    values.update(changes)
    return SPEC.finding(**values)  # type: ignore[arg-type]


def test_evidence_is_frozen_and_json_safe() -> None:
    item = finding()
    assert item.reason == "odd"
    assert item.evidence["items"] == (1, {"a": (2,)})
    assert item.evidence["when"] == "2025-06-01T00:00:00Z"
    assert item.evidence["set"] == ("a", "b")
    with pytest.raises(TypeError):
        item.evidence["reason"] = "other"  # type: ignore[index]
    assert json.loads(json.dumps(item.to_dict()))["evidence"]["items"] == [1, {"a": [2]}]
    with pytest.raises(TypeError):
        finding(evidence={"x": object()})
    assert hash(item) == hash(finding())


def test_fingerprint_is_host_check_and_subject() -> None:
    base = finding()
    same = finding(message="reworded", severity=Severity.LOW, host="WS1", evidence={"n": 2})
    assert base.fingerprint == same.fingerprint
    assert base.fingerprint != finding(subject="other").fingerprint
    assert base.fingerprint != finding(host="ws2").fingerprint
    assert len(base.fingerprint) == 32


def test_spec_rules() -> None:
    with pytest.raises(ValueError, match="undocumented reason"):
        finding(reason="unknown")
    with pytest.raises(ValueError, match="exactly one"):
        CheckSpec(id="X", title="x", severity=Severity.LOW, roles=(), reasons={}, playbook="p", advice="a")
    overridden = finding(playbook=None, advice="by hand")
    assert (overridden.playbook, overridden.advice) == (None, "by hand")
    assert (finding().playbook, finding().advice) == ("fix-it", None)


def _fleet() -> FleetFacts:
    return build({}).fleet


def test_a_check_that_raises_becomes_one_check_failed_finding() -> None:
    registry = CheckRegistry()

    @registry.host_check(SPEC, EndpointFacts)
    def broken(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
        yield SPEC.finding(host, reason="odd", subject="first", message="before the bug")
        raise RuntimeError("boom")

    found = run_checks(_fleet(), at=AT, registry=registry)
    assert [(f.check_id, f.host, f.reason, f.severity) for f in found] == [
        ("TEST-01", "ws1", "check_failed", Severity.INFO)
    ]
    assert "boom" in found[0].message
    with pytest.raises(ValueError, match="twice"):
        registry.fleet_check(SPEC)(lambda ctx: iter(()))


def test_runner_inputs_and_determinism() -> None:
    fleet = _fleet()
    with pytest.raises(InputError):
        run_checks(fleet, at=AT, only=["NOPE-01"])
    with pytest.raises(ValueError, match="timezone"):
        run_checks(fleet, at=datetime(2025, 6, 1))
    assert run_checks(fleet, at=AT) == run_checks(fleet, at=AT) == ()


def test_hosts_without_facts_are_skipped() -> None:
    data = json.loads(_fleet().model_dump_json())
    data["hosts"] = [{"name": "ws1", "role": "endpoint", "error": {"kind": "unreachable", "message": "x"}}]
    assert run_checks(FleetFacts.from_json_data(data), at=AT) == ()


def test_options() -> None:
    options = CheckOptions(expected_root_thumbprint="71 89 9a bf")
    assert options.expected_root_thumbprint == "71899ABF"
    with pytest.raises(ValueError, match="Extra inputs"):
        CheckOptions.model_validate({"unknown": 1})


@pytest.mark.parametrize(
    ("code", "label", "name"),
    [
        (13806, "13806", "ERROR_IPSEC_IKE_NO_CERT"),
        (-2146885613, "0x80092013", "CRYPT_E_REVOCATION_OFFLINE"),
        (-2146762495, "0x800B0101", "CERT_E_EXPIRED"),
        (0x800B0109, "0x800B0109", "CERT_E_UNTRUSTEDROOT"),
        (720, "720", None),
    ],
)
def test_error_codes(code: int, label: str, name: str | None) -> None:
    assert code_label(code) == label
    known = lookup(code)
    assert (known.name if known else None) == name


def test_event_parsing_prefers_data_over_the_message() -> None:
    event = EventRecord(
        event_id=20227,
        time=AT,
        data=("{id}", "CORP\\bob", "Tunnel", "-2146885613"),
        message="... failure is 13806.",
    )
    assert (failure_code(event), connection_name(event)) == (-2146885613, "Tunnel")
    localized = EventRecord(event_id=20227, time=AT, data=(), message="Verbindung fehlgeschlagen: 809.")
    assert (failure_code(localized), connection_name(localized)) == (809, "unknown")
