"""New, still open, resolved: one sweep's findings against the previous sweep's.  Pure.

Findings are compared by fingerprint (host + check id + subject).  A finding absent from this
sweep is *resolved* only where this sweep could have seen it again:

* a host finding, when this sweep collected that host's facts (a host that was unreachable, or
  outside this sweep's ``--limit``, proves nothing);
* a fleet-wide finding (one that belongs to no inventory host), when this sweep collected
  everything it selected -- every host and the tenant -- because such a finding may rest on any
  of them.

Previous findings that could not be verified are *unverified*: still believed open, not counted
as new or resolved.  Findings of a host that the previous sweep did not cover are new: fleetfix
has not seen them before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar


class HasFingerprint(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...


F = TypeVar("F", bound=HasFingerprint)


class Change(StrEnum):
    """A finding's status relative to the previous sweep."""

    NEW = "new"
    STILL_OPEN = "still_open"
    RESOLVED = "resolved"
    UNVERIFIED = "unverified"


class FindingStatus(StrEnum):
    """What ``findings list --status`` selects: ``open`` is everything wrong now (new included)."""

    OPEN = "open"
    NEW = "new"
    RESOLVED = "resolved"

    @property
    def changes(self) -> tuple[Change, ...]:
        if self is FindingStatus.OPEN:
            return (Change.NEW, Change.STILL_OPEN)
        return (Change(self.value),)


@dataclass(frozen=True)
class Coverage:
    """What a sweep saw: the hosts whose facts it collected (case-folded) and whether it saw all
    it selected (every host and the tenant)."""

    hosts: frozenset[str]
    complete: bool

    @classmethod
    def of(cls, collected: Iterable[str], *, complete: bool) -> Coverage:
        return cls(frozenset(name.casefold() for name in collected), complete)

    def covers(self, host: str, *, inventory_host: bool) -> bool:
        return host.casefold() in self.hosts if inventory_host else self.complete


@dataclass(frozen=True)
class FindingsDiff(Generic[F]):
    """This sweep's findings split by change, plus the previous findings it resolved or could not
    verify.  ``previous_run`` is None for the first sweep (then everything is new)."""

    new: tuple[F, ...]
    still_open: tuple[F, ...]
    resolved: tuple[F, ...]
    unverified: tuple[F, ...]
    previous_run: str | None

    def counts(self) -> dict[str, int]:
        return {change.value: len(self.of(change)) for change in Change}

    def of(self, change: Change) -> tuple[F, ...]:
        return {
            Change.NEW: self.new,
            Change.STILL_OPEN: self.still_open,
            Change.RESOLVED: self.resolved,
            Change.UNVERIFIED: self.unverified,
        }[change]

    def change_of(self) -> dict[str, Change]:
        """Fingerprint -> change, for every finding of the diff."""
        return {finding.fingerprint: change for change in Change for finding in self.of(change)}


def diff_findings(
    current: Sequence[F],
    previous: Sequence[F] | None,
    *,
    coverage: Coverage,
    inventory_hosts: Iterable[str],
    previous_run: str | None = None,
) -> FindingsDiff[F]:
    """Split ``current`` into new and still open, and ``previous`` into resolved and unverified.

    ``inventory_hosts`` names every host a finding may belong to (this sweep's and the previous
    one's); a finding on any other name (``fleet``) is fleet-wide.
    """
    before = {finding.fingerprint for finding in previous or ()}
    now = {finding.fingerprint for finding in current}
    hosts = {name.casefold() for name in inventory_hosts}
    gone = [finding for finding in previous or () if finding.fingerprint not in now]

    def verifiable(finding: F) -> bool:
        return coverage.covers(finding.host, inventory_host=finding.host.casefold() in hosts)

    return FindingsDiff(
        new=tuple(finding for finding in current if finding.fingerprint not in before),
        still_open=tuple(finding for finding in current if finding.fingerprint in before),
        resolved=tuple(finding for finding in gone if verifiable(finding)),
        unverified=tuple(finding for finding in gone if not verifiable(finding)),
        previous_run=previous_run,
    )


__all__ = ["Change", "Coverage", "FindingStatus", "FindingsDiff", "HasFingerprint", "diff_findings"]
