"""The RRAS and CA actions on data: plans from the facts the lab prints for a built estate, apply and
rollback against a fake connection that records the scripts and parameters it was asked to run."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lab.estate.build import BuiltEstate, build_estate
from lab.scenarios import load_scenario
from lab.windows.certsvc import CertificationAuthority
from orchestrator.actions import ActionPlan, ApplyResult, PlanContext, get_action
from orchestrator.actions.server import (
    PUBLISH_CRL_ACTION,
    RESTART_REMOTEACCESS,
    ROOT_FIELD,
    SET_ROOT_CERTIFICATE,
    awaiting_restart,
    enterprise_roots,
)
from orchestrator.checks import run_checks
from orchestrator.checks.model import Finding
from orchestrator.errors import ActionFailedError, InputError
from orchestrator.facts.ca import CaFacts
from orchestrator.facts.common import SectionError
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.fleet import FleetFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory.models import Role
from orchestrator.scripts.action_schemas import PublishCrlResult, RestartServiceResult, SetRootCertResult
from orchestrator.scripts.spec import Invocation
from tests.lab.minisweep import fleet_facts

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=3)
CHANGED_AT = "2026-03-01T02:05:07Z"


def build(scenario: str = "seed-article") -> BuiltEstate:
    return build_estate(load_scenario(scenario), cdp_base_url="http://127.0.0.1:9", clock=lambda: NOW)


@dataclass(frozen=True)
class Seen:
    """A fleet as a sweep would see it: facts from the lab handlers, findings from the checks."""

    built: BuiltEstate
    fleet: FleetFacts
    findings: tuple[Finding, ...]

    def context(
        self,
        host: str,
        *,
        at: datetime = NOW,
        prior: Mapping[str, ApplyResult] | None = None,
        findings: tuple[Finding, ...] | None = None,
        facts: EndpointFacts | RrasFacts | CaFacts | TenantFacts | None = None,
        fleet: FleetFacts | None = None,
    ) -> PlanContext:
        entry = next(item for item in self.fleet.hosts if item.name == host)
        own = facts if facts is not None else entry.facts
        assert own is not None, f"{host} has no facts"
        return PlanContext(
            target=host,
            facts=own,
            fleet=fleet or self.fleet,
            findings=findings if findings is not None else tuple(f for f in self.findings if f.host == host),
            at=at,
            prior=prior or {},
        )


def seen(built: BuiltEstate) -> Seen:
    fleet = fleet_facts(built, NOW)
    return Seen(built, fleet, run_checks(fleet, at=NOW))


@pytest.fixture(scope="module")
def article() -> Seen:
    """seed-article: RRAS-05 pins the 2015 root, CA-01's base CRL expired."""
    return seen(build())


@dataclass
class FakeConnection:
    """Records (script id, parameters) and answers with the given outputs, in order."""

    outputs: list[Any]
    target: str = "RRAS-05"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    host: None = None
    now: datetime = LATER

    def run(self, invocation: Invocation[Any], /) -> Any:
        self.calls.append((invocation.script_id, dict(invocation.params)))
        return self.outputs.pop(0)

    @property
    def intune(self) -> Any:
        raise AssertionError("RRAS and CA actions never talk to Intune")


def set_root_output(**values: Any) -> SetRootCertResult:
    document = {
        "changed": True,
        "before_thumbprint": "1" * 40,
        "after_thumbprint": "2" * 40,
        "pending_restart": True,
        "changed_at": CHANGED_AT,
    } | values
    return SetRootCertResult.model_validate_json(json.dumps(document))


def restart_output(**values: Any) -> RestartServiceResult:
    document = {
        "name": "RemoteAccess",
        "changed": True,
        "status": "Running",
        "started_at": "2026-03-01T02:05:09Z",
        "sessions_dropped": 4,
    } | values
    return RestartServiceResult.model_validate_json(json.dumps(document))


CRL = {"file": "Contoso Issuing CA 01.crl", "crl_number": 9, "this_update": "2026-03-01T04:50:00Z",
       "next_update": "2026-03-11T05:00:00Z"}  # fmt: skip


def publish_output(**values: Any) -> PublishCrlResult:
    document = {
        "changed": True,
        "previous_base": CRL | {"crl_number": 3, "this_update": "2026-02-18T01:50:00Z"},
        "base": CRL,
        "delta": CRL | {"file": "Contoso Issuing CA 01+.crl", "crl_number": 10},
        "published_to": ["C:\\Windows\\system32\\CertSrv\\CertEnroll\\Contoso Issuing CA 01.crl"],
    } | values
    return PublishCrlResult.model_validate_json(json.dumps(document))


def test_the_actions_are_registered() -> None:
    assert get_action("rras.set-root-certificate") is SET_ROOT_CERTIFICATE
    assert get_action("rras.restart-remoteaccess") is RESTART_REMOTEACCESS
    assert get_action("ca.publish-crl") is PUBLISH_CRL_ACTION
    assert [
        action.reversible for action in (SET_ROOT_CERTIFICATE, RESTART_REMOTEACCESS, PUBLISH_CRL_ACTION)
    ] == [
        True,
        False,  # nothing to undo; the setting's rollback restarts (newest-first rollback order)
        False,
    ]
    assert all(a.target_kind.value == "host" for a in (SET_ROOT_CERTIFICATE, RESTART_REMOTEACCESS))


# -- rras.set-root-certificate: plan ------------------------------------------------------------------


def test_the_mismatched_server_gets_the_enterprise_root(article: Seen) -> None:
    pki = article.built.estate.pki
    plan = SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05"), {})
    assert plan.arguments == {"thumbprint": pki.root.thumbprint}
    assert [change.to_dict() for change in plan.changes] == [
        {"field": ROOT_FIELD, "before": pki.legacy_root.thumbprint, "after": pki.root.thumbprint}
    ]
    assert "RemoteAccess restart" in plan.note
    # the plan depends on the facts only: planned later, it is the same plan (no drift)
    assert SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05", at=LATER), {}).digest() == plan.digest()


@pytest.mark.parametrize("host", ["RRAS-01", "RRAS-02", "RRAS-03", "RRAS-04", "RRAS-06"])
def test_a_server_that_accepts_the_enterprise_root_is_left_alone(article: Seen, host: str) -> None:
    plan = SET_ROOT_CERTIFICATE.plan(article.context(host), {"thumbprint": ""})
    assert plan.noop
    assert plan.arguments == {"thumbprint": article.built.estate.pki.root.thumbprint}


def test_without_a_finding_the_root_is_the_one_the_issuing_ca_chains_to(article: Seen) -> None:
    pki = article.built.estate.pki
    assert [root.thumbprint for root in enterprise_roots(article.fleet, NOW)] == [pki.root.thumbprint]
    plan = SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05", findings=()), {})
    assert plan.changes[0].after == pki.root.thumbprint
    assert "enterprise root" in plan.note


def test_the_root_the_check_expects_wins_over_the_derived_one(article: Seen) -> None:
    # e.g. [checks] expected_root_thumbprint names the 2015 root: the check, and so the action, want it
    legacy = article.built.estate.pki.legacy_root.thumbprint
    finding = next(f for f in article.findings if f.host == "RRAS-05" and f.check_id == "RRAS-AUTH-01")
    expecting = Finding(
        **{**vars(finding), "evidence": {**finding.evidence, "expected_thumbprints": (legacy,)}}
    )
    assert SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05", findings=(expecting,)), {}).noop


def test_a_given_thumbprint_is_normalised(article: Seen) -> None:
    root = article.built.estate.pki.root.thumbprint
    spaced = " ".join(root[i : i + 2] for i in range(0, 40, 2)).lower()
    plan = SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05"), {"thumbprint": spaced})
    assert plan.arguments == {"thumbprint": root}
    assert plan.changes[0].after == root


def test_a_root_missing_from_the_servers_root_store_is_refused(article: Seen) -> None:
    foreign = article.built.estate.pki.foreign_root.thumbprint
    with pytest.raises(InputError, match=r"not in LocalMachine\\Root: import it first") as raised:
        SET_ROOT_CERTIFICATE.plan(article.context("RRAS-01"), {"thumbprint": foreign})
    assert raised.value.field == "thumbprint"
    with pytest.raises(InputError, match="not a certificate thumbprint"):
        SET_ROOT_CERTIFICATE.plan(article.context("RRAS-01"), {"thumbprint": "xyz"})
    with pytest.raises(InputError, match="expected a string"):
        SET_ROOT_CERTIFICATE.plan(article.context("RRAS-01"), {"thumbprint": 5})


def test_an_unset_root_is_set_and_the_plan_says_it_cannot_be_unset_again(article: Seen) -> None:
    facts = article.context("RRAS-01").facts
    assert isinstance(facts, RrasFacts)
    assert facts.auth_protocol is not None
    unset = facts.model_copy(
        update={"auth_protocol": facts.auth_protocol.model_copy(update={"root_certificate_der": None})}
    )
    plan = SET_ROOT_CERTIFICATE.plan(article.context("RRAS-01", facts=unset, findings=()), {})
    assert [change.to_dict() for change in plan.changes] == [
        {"field": ROOT_FIELD, "before": None, "after": article.built.estate.pki.root.thumbprint}
    ]
    assert "not reversible to unset" in plan.note


def test_set_root_needs_rras_facts_and_a_known_root(article: Seen) -> None:
    facts = article.context("RRAS-01").facts
    assert isinstance(facts, RrasFacts)
    failed = facts.model_copy(
        update={
            "auth_protocol": None,
            "errors": (SectionError(section="auth_protocol", message="The term 'Get-VpnAuthProtocol' ..."),),
        }
    )
    with pytest.raises(InputError, match="Get-VpnAuthProtocol could not be read: The term"):
        SET_ROOT_CERTIFICATE.plan(article.context("RRAS-01", facts=failed), {})
    with pytest.raises(InputError, match="not an RRAS server"):
        SET_ROOT_CERTIFICATE.plan(article.context("CA-01"), {})
    without_ca = FleetFacts(hosts=tuple(h for h in article.fleet.hosts if h.role is not Role.CA))
    with pytest.raises(InputError, match="cannot tell the enterprise root"):
        SET_ROOT_CERTIFICATE.plan(article.context("RRAS-05", fleet=without_ca, findings=()), {})


# -- rras.set-root-certificate: apply and rollback ----------------------------------------------------


def test_apply_runs_set_root_cert_with_the_planned_thumbprint() -> None:
    plan = ActionPlan("rras.set-root-certificate", "RRAS-05", {"thumbprint": "2" * 40}, ())
    conn = FakeConnection([set_root_output()])
    result = SET_ROOT_CERTIFICATE.apply(conn, plan)
    assert conn.calls == [("rras.set-root-cert", {"Thumbprint": "2" * 40})]
    assert result.to_dict() == {
        "changed": True,
        "before": {"thumbprint": "1" * 40},
        "after": {"thumbprint": "2" * 40, "pending_restart": True, "changed_at": CHANGED_AT},
        "message": "set and read back; RemoteAccess keeps the old root until it restarts",
    }


def test_apply_on_a_server_already_right_reports_no_change() -> None:
    plan = ActionPlan("rras.set-root-certificate", "RRAS-05", {"thumbprint": "2" * 40}, ())
    output = set_root_output(changed=False, before_thumbprint="2" * 40, pending_restart=None, changed_at=None)
    result = SET_ROOT_CERTIFICATE.apply(FakeConnection([output]), plan)
    assert not result.changed
    assert dict(result.after) == {"thumbprint": "2" * 40, "pending_restart": None, "changed_at": None}


def test_rollback_restores_the_previous_root_and_restarts_remoteaccess() -> None:
    restored = set_root_output(before_thumbprint="2" * 40, after_thumbprint="1" * 40)
    conn = FakeConnection([restored, restart_output()])
    result = SET_ROOT_CERTIFICATE.rollback(conn, {"thumbprint": "1" * 40})
    assert conn.calls == [
        ("rras.set-root-cert", {"Thumbprint": "1" * 40}),
        ("rras.restart-service", {"Name": "RemoteAccess", "NotBefore": CHANGED_AT}),
    ]
    assert result.changed
    assert result.after["thumbprint"] == "1" * 40
    assert result.after["restart"] == {
        "service": "RemoteAccess",
        "status": "Running",
        "started_at": "2026-03-01T02:05:09Z",
        "sessions_dropped": 4,
    }


def test_rollback_without_a_change_does_not_restart() -> None:
    already = set_root_output(changed=False, before_thumbprint="1" * 40, after_thumbprint="1" * 40,
                              pending_restart=None, changed_at=None)  # fmt: skip
    conn = FakeConnection([already])
    result = SET_ROOT_CERTIFICATE.rollback(conn, {"thumbprint": "1" * 40})
    assert [call[0] for call in conn.calls] == ["rras.set-root-cert"]
    assert not result.changed


def test_an_unset_root_cannot_be_restored() -> None:
    conn = FakeConnection([])
    with pytest.raises(ActionFailedError, match="cannot unset it"):
        SET_ROOT_CERTIFICATE.rollback(conn, {"thumbprint": None})
    assert conn.calls == []


# -- rras.restart-remoteaccess ------------------------------------------------------------------------


def changed_root(changed_at: str | None = CHANGED_AT) -> ApplyResult:
    return ApplyResult(
        changed=True,
        before={"thumbprint": "1" * 40},
        after={"thumbprint": "2" * 40, "pending_restart": True, "changed_at": changed_at},
    )


def restarted() -> ApplyResult:
    return ApplyResult(
        changed=True,
        before={"service": "RemoteAccess", "not_before": CHANGED_AT},
        after={"service": "RemoteAccess", "status": "Running", "started_at": "2026-03-01T02:06:00Z"},
    )


def test_no_restart_without_an_earlier_change(article: Seen) -> None:
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05"), {})
    assert plan.noop
    unchanged = ApplyResult(changed=False, after={"thumbprint": "2" * 40})
    assert RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior={"set-root": unchanged}), {}).noop


def test_a_change_is_followed_by_one_restart_not_before_the_change(article: Seen) -> None:
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior={"set-root": changed_root()}), {})
    assert plan.arguments == {"service": "RemoteAccess", "not_before": CHANGED_AT}
    assert [change.to_dict() for change in plan.changes] == [
        {"field": "Service[RemoteAccess]", "before": "Running", "after": "restarted"}
    ]
    assert plan.note.startswith("for set-root: restart unless RemoteAccess started at or after")
    # re-planned by a retry later on, the restart keeps its NotBefore: a restart done is not repeated
    again = RESTART_REMOTEACCESS.plan(
        article.context("RRAS-05", at=LATER, prior={"set-root": changed_root()}), {}
    )
    assert again.digest() == plan.digest()


def test_the_plan_time_is_the_fallback_when_no_change_time_is_known(article: Seen) -> None:
    would_change = ApplyResult(changed=True)  # what --check passes for a step that would change
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior={"set-root": would_change}), {})
    assert plan.arguments["not_before"] == "2026-03-01T02:00:00Z"
    assert "the plan time" in plan.note


def test_a_retried_step_that_found_its_change_made_still_gets_its_restart(article: Seen) -> None:
    # the dead attempt set the root; the retry found it set (changed false, restart state unknown)
    retried = ApplyResult(
        changed=False, after={"thumbprint": "2" * 40, "pending_restart": None, "changed_at": None}
    )
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior={"set-root": retried}), {})
    assert not plan.noop
    assert plan.arguments["not_before"] == "2026-03-01T02:00:00Z"


def test_a_restart_settles_the_changes_before_it(article: Seen) -> None:
    prior = {"set-root": changed_root(), "restart": restarted()}
    assert awaiting_restart(prior, "RemoteAccess") == []
    assert RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior=prior), {}).noop
    later = changed_root("2026-03-01T02:09:00Z")
    prior = {**prior, "set-auth": later}
    assert awaiting_restart(prior, "remoteaccess") == [("set-auth", later)]
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior=prior), {})
    assert plan.arguments["not_before"] == "2026-03-01T02:09:00Z"


def test_the_latest_change_time_counts(article: Seen) -> None:
    prior = {"a": changed_root("2026-03-01T02:09:00Z"), "b": changed_root("2026-03-01T02:01:00Z")}
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior=prior), {})
    assert plan.arguments["not_before"] == "2026-03-01T02:09:00Z"


def test_an_unknown_service_is_refused_by_the_plan(article: Seen) -> None:
    prior = {"set-root": changed_root()}
    with pytest.raises(InputError, match="has no service 'W3SVC'"):
        RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior=prior), {"service": "W3SVC"})
    plan = RESTART_REMOTEACCESS.plan(article.context("RRAS-05", prior=prior), {"service": "IKEEXT"})
    assert plan.arguments["service"] == "IKEEXT"


def test_restart_apply_passes_name_and_not_before() -> None:
    plan = ActionPlan(
        "rras.restart-remoteaccess", "RRAS-05", {"service": "RemoteAccess", "not_before": CHANGED_AT}, ()
    )
    conn = FakeConnection([restart_output()])
    result = RESTART_REMOTEACCESS.apply(conn, plan)
    assert conn.calls == [("rras.restart-service", {"Name": "RemoteAccess", "NotBefore": CHANGED_AT})]
    assert result.changed
    assert dict(result.before) == {"service": "RemoteAccess", "not_before": CHANGED_AT}
    assert dict(result.after) == {
        "service": "RemoteAccess",
        "status": "Running",
        "started_at": "2026-03-01T02:05:09Z",
        "sessions_dropped": 4,
    }
    assert result.message == "restarted; 4 sessions dropped"
    # its after is what settles earlier changes for a later restart step
    assert awaiting_restart({"set-root": changed_root(), "restart": result}, "RemoteAccess") == []


def test_restart_apply_after_a_restart_already_done() -> None:
    plan = ActionPlan(
        "rras.restart-remoteaccess", "RRAS-05", {"service": "RemoteAccess", "not_before": CHANGED_AT}, ()
    )
    result = RESTART_REMOTEACCESS.apply(
        FakeConnection([restart_output(changed=False, sessions_dropped=None)]), plan
    )
    assert not result.changed
    assert result.message.startswith("not restarted: running since 2026-03-01T02:05:09Z")
    with pytest.raises(ActionFailedError, match="not reversible"):
        RESTART_REMOTEACCESS.rollback(FakeConnection([]), dict(result.before))


# -- ca.publish-crl -----------------------------------------------------------------------------------


def test_the_expired_crl_is_republished(article: Seen) -> None:
    ca = article.built.estate.host("CA-01").component(CertificationAuthority)
    assert ca.base is not None
    plan = PUBLISH_CRL_ACTION.plan(article.context("CA-01"), {})
    not_before = (ca.base.this_update + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert plan.arguments == {"not_before": not_before}
    assert [change.to_dict() for change in plan.changes] == [
        {
            "field": "CRL[Contoso Issuing CA 01]",
            "before": {
                "crl_number": ca.base.number,
                "this_update": ca.base.this_update.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "next_update": ca.base.next_update.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "after": "republished (certutil -crl)",
        }
    ]
    assert "crl:Contoso Issuing CA 01.crl: expired" in plan.note
    # from the facts alone: the same plan later, so a saved plan does not drift and a retry is a no-op
    assert PUBLISH_CRL_ACTION.plan(article.context("CA-01", at=LATER), {}).digest() == plan.digest()


def test_fresh_crls_need_nothing() -> None:
    built = build()
    ca = built.estate.host("CA-01").component(CertificationAuthority)
    ca.publish(NOW)
    fresh = seen(built)
    assert not [f for f in fresh.findings if f.check_id == "CA-CRL-01"]
    plan = PUBLISH_CRL_ACTION.plan(fresh.context("CA-01"), {})
    assert plan.noop
    assert plan.note == "no CA-CRL-01 finding: the CRLs are fine"


def test_without_a_base_crl_in_the_facts_the_publication_is_unconditional(article: Seen) -> None:
    facts = article.context("CA-01").facts
    empty = facts.model_copy(update={"crls": ()})
    plan = PUBLISH_CRL_ACTION.plan(article.context("CA-01", facts=empty), {})
    assert plan.arguments == {}
    assert plan.changes[0].before is None
    assert "a retry publishes again" in plan.note


def test_publish_needs_a_ca(article: Seen) -> None:
    with pytest.raises(InputError, match="no certification authority"):
        PUBLISH_CRL_ACTION.plan(article.context("RRAS-01"), {})
    facts = article.context("CA-01").facts
    with pytest.raises(InputError, match="no certification authority"):
        PUBLISH_CRL_ACTION.plan(
            article.context("CA-01", facts=facts.model_copy(update={"ca_name": None})), {}
        )


def test_publish_apply_passes_not_before_and_reports_the_new_crl() -> None:
    plan = ActionPlan("ca.publish-crl", "CA-01", {"not_before": "2026-02-18T01:50:01Z"}, ())
    conn = FakeConnection([publish_output()], target="CA-01")
    result = PUBLISH_CRL_ACTION.apply(conn, plan)
    assert conn.calls == [("ca.publish-crl", {"NotBefore": "2026-02-18T01:50:01Z"})]
    assert result.changed
    assert result.to_dict()["before"] == {
        "base": CRL | {"crl_number": 3, "this_update": "2026-02-18T01:50:00Z"}
    }
    assert result.to_dict()["after"]["base"] == CRL
    assert result.to_dict()["after"]["published_to"] == [
        "C:\\Windows\\system32\\CertSrv\\CertEnroll\\Contoso Issuing CA 01.crl"
    ]
    assert result.message == ("published CRL 9 (Contoso Issuing CA 01.crl), next update 2026-03-11T05:00:00Z")


def test_publish_apply_without_not_before_and_as_a_no_op() -> None:
    conn = FakeConnection([publish_output(changed=False, published_to=[])], target="CA-01")
    result = PUBLISH_CRL_ACTION.apply(conn, ActionPlan("ca.publish-crl", "CA-01"))
    assert conn.calls == [("ca.publish-crl", {})]
    assert not result.changed
    assert result.message.startswith("not published again")
    with pytest.raises(ActionFailedError, match="cannot be withdrawn"):
        PUBLISH_CRL_ACTION.rollback(conn, dict(result.before))


def _plans(seen_: Seen) -> Iterator[ActionPlan]:
    for host in ("RRAS-05", "CA-01"):
        for action in (SET_ROOT_CERTIFICATE, PUBLISH_CRL_ACTION):
            try:
                yield action.plan(seen_.context(host), {})
            except InputError:
                continue


def test_plans_survive_a_json_round_trip(article: Seen) -> None:
    plans = list(_plans(article))
    assert len(plans) == 2
    for plan in plans:
        again = ActionPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
        assert again.digest() == plan.digest()
