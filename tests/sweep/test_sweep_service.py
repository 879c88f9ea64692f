"""The sweep service end to end with fake edges, on both store backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.config import Settings
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.errors import AuthFailedError, UnreachableError
from orchestrator.facts import FleetFacts
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import Invocation
from orchestrator.store import RunStatus, Store, list_audit
from orchestrator.store.sweeps import get_sweep, sweep_findings, sweep_hosts
from orchestrator.sweep.collect import collect_hosts
from orchestrator.sweep.diff import Change
from orchestrator.sweep.history import stored_diff
from orchestrator.sweep.service import AUDIT_DONE, AUDIT_FAILED, SweepIO, SweepRequest, read_tenant, run_sweep
from orchestrator.sweep.summary import NOT_CONFIGURED_NOTE, TenantOutcome
from tests.sweep.support import T0, FakeSessions, facts_document, inventory_host

CHECK = CheckSpec(id="T-01", title="test check", severity=Severity.HIGH, roles=(Role.ENDPOINT,),
                  reasons={"bad": "it is bad"}, advice="fix it")  # fmt: skip
CRED = Credential("svc", Secret("a long enough secret"))


class World:
    """Which hosts answer and which have the problem; the fake checks read ``bad`` from it."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.bad: set[str] = set()
        self.clock = (T0 + timedelta(seconds=n) for n in itertools.count())

    def behaviour(self, host: Host, invocation: Invocation[Any]) -> Any:
        if host.name in self.down:
            raise UnreachableError("connection refused", host=host.name)
        return facts_document(host.role, host.name)

    def checks(self, fleet: FleetFacts, at: datetime) -> Sequence[Finding]:
        return [
            CHECK.finding(host.name, reason="bad", subject="thing", message=f"{host.name} is bad")
            for host in fleet.hosts
            if host.facts is not None and host.name in self.bad
        ]

    def io(self, **overrides: Any) -> SweepIO:
        sessions = FakeSessions(self.behaviour)
        parts: dict[str, Any] = {
            "resolve": lambda keys: dict.fromkeys(keys, CRED),
            "collect": lambda jobs, creds, options: collect_hosts(
                jobs, creds, options, session_factory=sessions
            ),
            "tenant": lambda at: TenantOutcome(configured=False),
            "crls": lambda urls: (),
            "checks": self.checks,
            "clock": lambda: next(self.clock),
        }
        return SweepIO(**{**parts, **overrides})


HOSTS = tuple(inventory_host(name) for name in ("WS-1", "WS-2", "WS-3"))


@pytest.fixture
def store(store_engine: Engine) -> Store:
    return Store.from_engine(store_engine)


def sweep(store: Store, world: World, **overrides: Any) -> Any:
    return run_sweep(
        store, SweepRequest(HOSTS, requested_by="alice@adm", selector="role:endpoint"), world.io(**overrides)
    )


def test_two_sweeps_store_results_and_report_what_changed(store: Store, store_engine: Engine) -> None:
    world = World()
    world.down, world.bad = {"WS-2"}, {"WS-1", "WS-3"}
    first = sweep(store, world)
    assert first.summary["hosts"] == {"selected": 3, "ok": 2, "unreachable": 1, "failed": 0}
    assert first.summary["findings"]["total"] == 2
    assert first.summary["findings"]["new"] == 2
    assert first.summary["notes"] == [NOT_CONFIGURED_NOTE]
    assert first.summary["tenant"] == "not_configured"
    assert not first.compliant
    assert first.run.status is RunStatus.SUCCEEDED

    world.down, world.bad = set(), {"WS-2", "WS-3"}  # WS-1 fixed, WS-2 back and bad
    second = sweep(store, world)
    assert second.diff.previous_run == first.run.id
    assert second.diff.counts() == {"new": 1, "still_open": 1, "resolved": 1, "unverified": 0}
    assert [f.host for f in second.diff.of(Change.RESOLVED)] == ["WS-1"]
    assert [f.host for f in second.diff.of(Change.NEW)] == ["WS-2"]

    with store.transaction() as session:
        run = get_sweep(session, second.run.id)
        assert run.status is RunStatus.SUCCEEDED
        assert run.selector == "role:endpoint"
        assert run.summary == second.summary
        assert [f.fingerprint for f in sweep_findings(session, run.id)] == [
            f.fingerprint for f in second.findings
        ]
        assert {h.status.value for h in sweep_hosts(session, run.id)} == {"ok"}
        assert stored_diff(session, run).counts() == second.diff.counts()
    audit = list_audit(store_engine, action=AUDIT_DONE)
    assert [entry.target for entry in audit] == [first.run.id, second.run.id]
    assert audit[1].details["findings"]["total"] == 2
    assert audit[1].actor == "alice@adm"


def test_a_compliant_fleet(store: Store) -> None:
    result = sweep(store, World())
    assert result.compliant
    assert result.findings == ()


def test_an_error_that_stops_the_sweep_marks_it_failed(store: Store, store_engine: Engine) -> None:
    def broken(fleet: FleetFacts, at: datetime) -> Sequence[Finding]:
        raise RuntimeError("a defect")

    with pytest.raises(RuntimeError, match="a defect"):
        sweep(store, World(), checks=broken)
    (entry,) = list_audit(store_engine, action=AUDIT_FAILED)
    with store.transaction() as session:
        run = get_sweep(session, entry.target or "")
    assert run.status is RunStatus.FAILED
    assert run.summary is not None
    assert run.summary["error"]["kind"] == "internal"
    # a failed sweep is never "the previous sweep"
    assert sweep(store, World()).diff.previous_run is None


def test_a_tenant_that_cannot_be_read_is_a_note_and_an_incomplete_sweep(store: Store, tmp_path: Any) -> None:
    settings = Settings(
        data_dir=tmp_path, graph={"tenant_id": "t", "client_id": "c", "client_secret": "env:GRAPH_SECRET"}
    )

    @contextmanager
    def refused() -> Iterator[Any]:
        raise AuthFailedError("AADSTS7000215: invalid client secret", host="login.test")
        yield

    outcome = read_tenant(settings, None, T0, open_client=refused)  # type: ignore[arg-type]
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.kind == "auth_failed"
    result = sweep(store, World(), tenant=lambda at: outcome)
    assert result.summary["complete"] is False
    assert not result.compliant
    assert result.summary["notes"][0].startswith("Intune could not be read (auth_failed)")
    assert read_tenant(Settings(data_dir=tmp_path), None, T0).status == "not_configured"  # type: ignore[arg-type]
