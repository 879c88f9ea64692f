"""Collection plumbing without a network: planning, credentials once, the bounded pool, outcomes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.credentials.secret import Credential, Secret
from orchestrator.credentials.vault import Vault
from orchestrator.errors import (
    AuthFailedError,
    BadOutputError,
    CredentialError,
    TimedOutError,
    UnreachableError,
)
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import Invocation
from orchestrator.store import HostStatus
from orchestrator.sweep.assemble import fleet_facts, host_record, host_status
from orchestrator.sweep.collect import collect_hosts
from orchestrator.sweep.credentials import resolve_all
from orchestrator.sweep.plan import CollectOptions, CredentialKey, credential_keys, plan_collection
from tests.sweep.support import FakeSessions, facts_document, inventory_host

CRED = Credential("CORP\\svc", Secret("correct horse battery"))


def test_plan_gives_each_role_its_fact_probe_sorted_by_name() -> None:
    hosts = [inventory_host("WS-2"), inventory_host("ca01", Role.CA), inventory_host("RRAS01", Role.RRAS)]
    jobs = plan_collection(hosts, CollectOptions(event_days=3, max_events=50))
    assert [(job.name, job.invocation.script_id) for job in jobs] == [
        ("ca01", "ca.facts"),
        ("RRAS01", "rras.facts"),
        ("WS-2", "endpoint.facts"),
    ]
    assert dict(jobs[2].invocation.params) == {"EventDays": 3, "MaxEvents": 50}


def test_credentials_are_resolved_once_per_reference_and_the_vault_opened_once() -> None:
    hosts = [inventory_host(f"WS-{n}") for n in range(5)] + [inventory_host("X", credential="vault:other")]
    keys = credential_keys(plan_collection(hosts, CollectOptions()))
    assert len(keys) == 2
    opened: list[int] = []

    class OneVault:
        def get(self, name: str) -> Credential:
            if name == "other":
                raise CredentialError("vault:other: no such entry")
            return CRED

    def open_vault() -> Vault:
        opened.append(1)
        return OneVault()  # type: ignore[return-value]

    resolved = resolve_all(keys, open_vault=open_vault)
    assert opened == [1]
    assert resolved[keys[0]] == CRED
    assert isinstance(resolved[keys[1]], CredentialError)


def test_a_vault_that_cannot_open_fails_only_vault_references() -> None:
    env_host = Host.model_validate(
        {"name": "E", "role": "endpoint", "address": "127.0.0.1", "credential": "env:SECRET_X",
         "winrm": {"username": "svc"}}
    )  # fmt: skip
    keys = credential_keys(plan_collection([inventory_host("V"), env_host], CollectOptions()))

    def broken() -> Vault:
        raise CredentialError("no master key")

    resolved = resolve_all(keys, open_vault=broken, environ={"SECRET_X": "a long enough secret"})
    by_scheme = {key.reference.scheme: value for key, value in resolved.items()}
    assert isinstance(by_scheme["vault"], CredentialError)
    assert isinstance(by_scheme["env"], Credential)


def behaviour(host: Host, invocation: Invocation[Any]) -> Any:
    """WS-1 fine, WS-2 refused, WS-3 times out, WS-4 bad login, WS-5 bad output, WS-6 a defect."""
    errors: dict[str, Exception] = {
        "WS-2": UnreachableError("connection refused", host="WS-2"),
        "WS-3": TimedOutError("deadline spent", host="WS-3"),
        "WS-4": AuthFailedError("401", host="WS-4"),
        "WS-5": BadOutputError("not JSON", host="WS-5"),
        "WS-6": KeyError("surprise"),
    }
    if host.name in errors:
        raise errors[host.name]
    return facts_document(host.role, host.name)


def test_every_failure_is_an_outcome_never_an_exception() -> None:
    hosts = [inventory_host(f"WS-{n}") for n in range(1, 8)]
    hosts[6] = inventory_host("WS-7", credential="vault:missing")
    jobs = plan_collection(hosts, CollectOptions(deadline_s=7))
    resolved: dict[CredentialKey, Credential | CredentialError] = {job.credential: CRED for job in jobs}
    resolved[CredentialKey(hosts[6].credential, None)] = CredentialError("vault:missing: no such entry")
    sessions = FakeSessions(behaviour)
    outcomes = collect_hosts(jobs, resolved, CollectOptions(deadline_s=7), session_factory=sessions)
    kinds = {outcome.name: outcome.error.kind if outcome.error else None for outcome in outcomes}
    assert kinds == {
        "WS-1": None,
        "WS-2": "unreachable",
        "WS-3": "timed_out",
        "WS-4": "auth_failed",
        "WS-5": "bad_output",
        "WS-6": "internal",
        "WS-7": "credential",
    }
    assert "WS-7" not in sessions.opened  # no connection without a credential
    assert sessions.deadlines == {7}
    statuses = {outcome.name: host_status(outcome.error) for outcome in outcomes}
    assert statuses["WS-2"] is statuses["WS-3"] is HostStatus.UNREACHABLE
    assert {statuses[name] for name in ("WS-4", "WS-5", "WS-6", "WS-7")} == {HostStatus.FAILED}
    fleet = fleet_facts(outcomes)
    assert [host.name for host in fleet.hosts if host.facts is not None] == ["WS-1"]
    record = host_record(outcomes[0])
    assert record.status is HostStatus.OK
    assert record.facts is not None
    assert record.facts["computer_name"] == "WS-1"
    assert host_record(outcomes[1]).error_message == "WS-2: connection refused"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_at_most_concurrency_sessions_at_once_and_results_in_job_order(concurrency: int) -> None:
    def slow(host: Host, invocation: Invocation[Any]) -> Any:
        time.sleep(0.02)
        return facts_document(host.role, host.name)

    hosts = [inventory_host(f"WS-{n:02}") for n in range(16)]
    options = CollectOptions(concurrency=concurrency)
    jobs = plan_collection(reversed(hosts), options)
    sessions = FakeSessions(slow)
    done: list[str] = []
    outcomes = collect_hosts(
        jobs,
        {job.credential: CRED for job in jobs},
        options,
        session_factory=sessions,
        on_done=lambda o: done.append(o.name),
    )
    assert sessions.max_active == concurrency
    assert [outcome.name for outcome in outcomes] == [host.name for host in hosts]
    assert sorted(done) == [host.name for host in hosts]


def test_no_hosts_no_pool() -> None:
    assert collect_hosts((), {}, CollectOptions()) == ()
