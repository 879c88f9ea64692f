"""Who runs what: one job per selected host, its role's fact probe, its credential.  Pure.

Collecting a host costs one WinRM session whatever the number of checks: the role's fact probe
(:data:`orchestrator.scripts.FACT_PROBES`) gathers everything in one document (docs/facts.md).
Credentials are named by reference here and resolved once per distinct reference later
(:mod:`.credentials`), so a thousand hosts sharing ``vault:fleet-admin`` open the vault once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.credentials.reference import CredentialRef
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import FACT_PROBES, Invocation

DEFAULT_CONCURRENCY = 32
"""Hosts collected at once: Invoke-Command's default -ThrottleLimit, and what one core of client
CPU keeps busy at LAN latencies (bench/README.md)."""
DEFAULT_DEADLINE_S = 60.0


@dataclass(frozen=True)
class CollectOptions:
    """How a collection runs: parallelism, the per-host session deadline, probe parameters."""

    concurrency: int = DEFAULT_CONCURRENCY
    deadline_s: float = DEFAULT_DEADLINE_S
    event_days: int = 7
    max_events: int = 200

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.deadline_s <= 0:
            raise ValueError("concurrency must be at least 1 and deadline_s positive")


DEFAULT_OPTIONS = CollectOptions()


@dataclass(frozen=True)
class CredentialKey:
    """A credential as hosts name it: the reference and the username the host overrides it with."""

    reference: CredentialRef
    username: str | None

    def __str__(self) -> str:
        return f"{self.reference}" + (f" as {self.username}" if self.username else "")


@dataclass(frozen=True)
class HostJob:
    """One host to collect: the probe invocation for its role and the credential it logs in with."""

    host: Host
    invocation: Invocation[Any]
    credential: CredentialKey

    @property
    def name(self) -> str:
        return self.host.name


def fact_invocation(role: Role, options: CollectOptions) -> Invocation[Any]:
    """The role's fact probe with its parameters bound (checked before any connection)."""
    spec = FACT_PROBES[role]
    if role is Role.ENDPOINT:
        return spec.bind(EventDays=options.event_days, MaxEvents=options.max_events)
    return spec.bind()


def plan_collection(hosts: Iterable[Host], options: CollectOptions) -> tuple[HostJob, ...]:
    """A job per host, sorted by name (results come back in this order, whatever finishes first)."""
    invocations = {role: fact_invocation(role, options) for role in Role}
    return tuple(
        HostJob(host, invocations[host.role], CredentialKey(host.credential, host.winrm.username))
        for host in sorted(hosts, key=lambda host: host.name.casefold())
    )


def credential_keys(jobs: Iterable[HostJob]) -> tuple[CredentialKey, ...]:
    """Each distinct credential once, in first-use order."""
    return tuple(dict.fromkeys(job.credential for job in jobs))


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_OPTIONS",
    "CollectOptions",
    "CredentialKey",
    "HostJob",
    "credential_keys",
    "fact_invocation",
    "plan_collection",
]
