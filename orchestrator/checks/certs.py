"""Judging a host's own certificates (device, VPN server): candidates, problems, the best one.

A host passes when *one* certificate meets every rule, since Windows picks a usable certificate
and ignores the rest; when none does, the check reports the candidate closest to usable (fewest
problems, from the inventory's CAs, latest expiry), which is the one an admin would look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.checks.context import CheckContext
from orchestrator.checks.trust import (
    Chain,
    ChainStatus,
    Revocation,
    StoreSet,
    build_chain,
    check_revocation,
    safe_parse,
)
from orchestrator.facts.common import CertificateEntry
from orchestrator.facts.x509 import EKU_NAMES, CertView

# Problems in the order a check reports the first of them: what the certificate *is* before
# whether it is still valid, before where it chains to.
STATIC_PROBLEMS = ("wrong_eku", "subject_mismatch", "expired", "not_yet_valid", "no_private_key")


@dataclass(frozen=True)
class Candidate:
    """A certificate from ``My`` with everything the checks judge about it."""

    cert: CertView
    has_private_key: bool
    problems: tuple[str, ...]
    """Static problems (:data:`STATIC_PROBLEMS`), in that order; empty when usable."""
    missing_ekus: tuple[str, ...]
    chain: Chain
    revocation: Revocation
    internal: bool

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def trusted(self) -> bool:
        return self.chain.status is ChainStatus.OK and self.revocation is not Revocation.REVOKED

    def evidence(self) -> dict[str, object]:
        return {
            "certificate": self.cert.describe(),
            "has_private_key": self.has_private_key,
            "problems": list(self.problems),
            "missing_ekus": [f"{oid} ({EKU_NAMES.get(oid, oid)})" for oid in self.missing_ekus],
            "chain": self.chain.describe(),
            "chain_status": self.chain.status.value,
        }


def personal_certificates(entries: Iterable[CertificateEntry]) -> list[tuple[CertView, bool]]:
    """End-entity certificates of ``My`` (CA certificates there are not candidates)."""
    found = []
    for entry in entries:
        if entry.store != "My":
            continue
        view = safe_parse(entry.der)
        if view is not None and not view.is_ca:
            found.append((view, entry.has_private_key))
    return found


def assess(
    cert: CertView,
    has_private_key: bool,
    *,
    ekus: Sequence[str],
    names: Sequence[str] | None,
    stores: StoreSet,
    ctx: CheckContext,
) -> Candidate:
    """Everything wrong with ``cert`` for a role that needs ``ekus`` and one of ``names``."""
    at = ctx.at
    missing = tuple(
        oid for oid in ekus if not cert.has_eku(oid, any_purpose_counts=ctx.options.any_eku_satisfies)
    )
    problems = [
        "wrong_eku" if missing else None,
        "subject_mismatch" if names and not any(cert.matches_name(name) for name in names) else None,
        "expired" if at >= cert.not_after else None,
        "not_yet_valid" if at < cert.not_before else None,
        None if has_private_key else "no_private_key",
    ]
    chain = build_chain(cert, stores, at)
    return Candidate(
        cert=cert,
        has_private_key=has_private_key,
        problems=tuple(problem for problem in problems if problem),
        missing_ekus=missing,
        chain=chain,
        revocation=check_revocation(chain, ctx.crls, at).status,
        internal=ctx.is_internal(cert),
    )


def best(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate an admin would look at first (see module doc)."""
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda c: (len(c.problems), not c.internal, not c.trusted, -c.cert.not_after.timestamp()),
    )


def expires_within(cert: CertView, at: datetime, window_s: float) -> bool:
    return at < cert.not_after and (cert.not_after - at).total_seconds() < window_s


__all__ = ["STATIC_PROBLEMS", "Candidate", "assess", "best", "expires_within", "personal_certificates"]
