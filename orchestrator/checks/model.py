"""What a check is and what it finds: :class:`CheckSpec`, :class:`Finding`, :class:`Severity`.

Findings are immutable values that the sweep stores and diffs: ``fingerprint`` identifies "the same
problem on the same thing" across sweeps (host + check id + subject), so a finding can be new,
still open, or resolved.  Evidence is JSON-safe and frozen (mappings become read-only, lists
become tuples) so a finding can be hashed, compared, and printed as JSON unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from orchestrator.inventory.models import Role

_FROM_SPEC: Any = object()  # sentinel: a finding keeps its spec's playbook / advice

JsonScalar = str | int | float | bool | None
FrozenJson = JsonScalar | tuple["FrozenJson", ...] | Mapping[str, "FrozenJson"]


class Severity(StrEnum):
    """How urgent a finding is; ``rank`` orders them (critical first)."""

    CRITICAL = "critical"  # VPN down for many users (expired CRL with enforcement, wrong RRAS root)
    HIGH = "high"  # VPN down for a host or a tunnel (device certificate missing)
    MEDIUM = "medium"  # degraded or intermittent (a route never installed, multiple client certs)
    LOW = "low"  # hygiene, expiring within the warning window
    INFO = "info"  # worth knowing, no action needed now

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


def freeze(value: Any) -> FrozenJson:
    """A JSON-safe, immutable copy: mappings read-only, sequences tuples, datetimes ISO strings."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return MappingProxyType({str(key): freeze(item) for key, item in value.items()})
    if isinstance(value, Sequence | frozenset | set):
        items = sorted(value, key=str) if isinstance(value, frozenset | set) else value
        return tuple(freeze(item) for item in items)
    raise TypeError(f"evidence must be JSON-safe, got {type(value).__name__}")


def thaw(value: FrozenJson) -> Any:
    """Plain JSON data (dicts and lists) from frozen evidence."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class Finding:
    """One problem on one thing (``subject``) of one host, found by one check."""

    check_id: str
    host: str
    severity: Severity
    title: str
    message: str
    subject: str
    evidence: Mapping[str, FrozenJson] = field(default_factory=lambda: MappingProxyType({}))
    error_codes: tuple[str, ...] = ()
    playbook: str | None = None
    advice: str | None = None

    def __post_init__(self) -> None:
        frozen = freeze(self.evidence)
        if not isinstance(frozen, Mapping):  # pragma: no cover - freeze keeps mappings mappings
            raise TypeError("evidence must be a mapping")
        object.__setattr__(self, "evidence", frozen)

    def __hash__(self) -> int:
        return hash((self.check_id, self.host, self.subject, self.severity, self.message))

    @property
    def reason(self) -> str | None:
        """Why the check fired (``evidence["reason"]``): one check id may have several reasons."""
        reason = self.evidence.get("reason")
        return reason if isinstance(reason, str) else None

    @property
    def fingerprint(self) -> str:
        """Stable identity across sweeps: SHA-256 of host (case-folded), check id and subject."""
        key = "\x1f".join((self.host.casefold(), self.check_id, self.subject))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON data (``fleetfix sweep --output json``, the store)."""
        return {
            "fingerprint": self.fingerprint,
            "check_id": self.check_id,
            "host": self.host,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "subject": self.subject,
            "reason": self.reason,
            "evidence": thaw(self.evidence),
            "error_codes": list(self.error_codes),
            "playbook": self.playbook,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class CheckSpec:
    """A check as the catalogue documents it (``fleetfix checks list``)."""

    id: str
    title: str
    severity: Severity
    roles: tuple[Role, ...]
    """Roles whose facts the check reads; ``()`` for checks on the Intune tenant only."""
    reasons: Mapping[str, str]
    """Every reason the check may report, with what it means."""
    error_codes: tuple[str, ...] = ()
    playbook: str | None = None
    advice: str | None = None
    cross_host: bool = False
    """True when the truth spans hosts (the check reads the whole fleet)."""

    def __post_init__(self) -> None:
        if (self.playbook is None) == (self.advice is None):
            raise ValueError(f"{self.id}: give exactly one of playbook and advice")
        object.__setattr__(self, "reasons", MappingProxyType(dict(self.reasons)))

    def finding(
        self,
        host: str,
        *,
        reason: str,
        subject: str,
        message: str,
        severity: Severity | None = None,
        evidence: Mapping[str, Any] | None = None,
        playbook: str | None = _FROM_SPEC,
        advice: str | None = _FROM_SPEC,
    ) -> Finding:
        """A finding of this check; ``reason`` must be one the spec documents.

        ``playbook`` and ``advice`` default to the spec's; a reason whose fix differs (a revoked
        certificate is re-enrolled, not re-chained) passes its own.
        """
        if reason not in self.reasons:
            raise ValueError(f"{self.id}: undocumented reason {reason!r}")
        return Finding(
            check_id=self.id,
            host=host,
            severity=severity or self.severity,
            title=self.title,
            message=message,
            subject=subject,
            evidence={"reason": reason, **(evidence or {})},
            error_codes=self.error_codes,
            playbook=self.playbook if playbook is _FROM_SPEC else playbook,
            advice=self.advice if advice is _FROM_SPEC else advice,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "roles": [role.value for role in self.roles],
            "cross_host": self.cross_host,
            "reasons": dict(self.reasons),
            "error_codes": list(self.error_codes),
            "playbook": self.playbook,
            "advice": self.advice,
        }


__all__ = ["CheckSpec", "Finding", "FrozenJson", "JsonScalar", "Severity", "freeze", "thaw"]
