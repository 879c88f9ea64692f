"""The check registry: a decorator registers a function under its :class:`CheckSpec`.

Two shapes of check, both pure:

* a **host check** reads one host's facts of one kind: ``fn(host, facts, ctx) -> findings``; the
  runner calls it for every host whose facts are of that kind;
* a **fleet check** reads the whole fleet (cross-host truths, the Intune tenant):
  ``fn(ctx) -> findings``.

A check that raises does not stop the run: it becomes one ``check_failed`` finding for the host
(or the fleet) with the exception's text, so a bug or an unforeseen fact shows up in the report
instead of hiding every other finding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.facts.common import FactsDocument

F = TypeVar("F", bound=FactsDocument)
HostCheck = Callable[[str, F, CheckContext], Iterable[Finding]]
FleetCheck = Callable[[CheckContext], Iterable[Finding]]
FLEET_HOST = "fleet"
"""The ``host`` of findings that belong to no single host (the fleet as a whole)."""
CHECK_FAILED = "check_failed"


@dataclass(frozen=True)
class RegisteredCheck:
    spec: CheckSpec
    run: Callable[[CheckContext], Iterator[Finding]]


class CheckRegistry:
    """Checks by id, in registration order."""

    def __init__(self) -> None:
        self._checks: dict[str, RegisteredCheck] = {}

    def host_check(self, spec: CheckSpec, facts: type[F]) -> Callable[[HostCheck[F]], HostCheck[F]]:
        def register(fn: HostCheck[F]) -> HostCheck[F]:
            def run(ctx: CheckContext) -> Iterator[Finding]:
                for host, host_facts in ctx.fleet.facts_of(facts):
                    yield from _guarded(spec, host, functools.partial(fn, host, host_facts, ctx))

            self._add(RegisteredCheck(spec, run))
            return fn

        return register

    def fleet_check(self, spec: CheckSpec) -> Callable[[FleetCheck], FleetCheck]:
        def register(fn: FleetCheck) -> FleetCheck:
            def run(ctx: CheckContext) -> Iterator[Finding]:
                yield from _guarded(spec, FLEET_HOST, lambda: fn(ctx))

            self._add(RegisteredCheck(spec, run))
            return fn

        return register

    def _add(self, check: RegisteredCheck) -> None:
        if check.spec.id in self._checks:
            raise ValueError(f"check {check.spec.id} is registered twice")
        self._checks[check.spec.id] = check

    def __iter__(self) -> Iterator[RegisteredCheck]:
        return iter(self._checks.values())

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def __len__(self) -> int:
        return len(self._checks)

    def get(self, check_id: str) -> RegisteredCheck | None:
        return self._checks.get(check_id)

    def specs(self) -> tuple[CheckSpec, ...]:
        return tuple(check.spec for check in self._checks.values())


def _guarded(spec: CheckSpec, host: str, produce: Callable[[], Iterable[Finding]]) -> Iterator[Finding]:
    """The check's findings, or one ``check_failed`` finding when it raises."""
    try:
        found = list(produce())
    except Exception as exc:  # one broken check must not hide the others' findings
        yield _failed(spec, host, exc)
        return
    yield from found


def _failed(spec: CheckSpec, host: str, exc: Exception) -> Finding:
    evidence: dict[str, Any] = {"reason": CHECK_FAILED, "exception": type(exc).__name__}
    return Finding(
        check_id=spec.id,
        host=host,
        severity=Severity.INFO,
        title=spec.title,
        message=f"the check could not judge this host's facts: {exc}",
        subject=CHECK_FAILED,
        evidence=evidence,
        advice="a fleetfix defect or unforeseen facts; report it with the host's facts",
    )


REGISTRY = CheckRegistry()
"""The shipped checks; the domain modules register on it when :mod:`orchestrator.checks` loads."""
host_check = REGISTRY.host_check
fleet_check = REGISTRY.fleet_check

__all__ = [
    "CHECK_FAILED",
    "FLEET_HOST",
    "REGISTRY",
    "CheckRegistry",
    "FleetCheck",
    "HostCheck",
    "RegisteredCheck",
    "fleet_check",
    "host_check",
]
