"""Chains and revocation from the facts: which CA certificates a host has, and what it would trust.

Windows builds a chain from the host's stores (``Root`` anchors, ``CA`` and ``My`` supply
intermediates); fleetfix does the same with ``cryptography``: an issuer is a certificate whose
subject is the child's issuer, whose subject key identifier matches the child's authority key
identifier (when both exist), and whose key verifies the child's signature.  AIA fetching is not
modelled: a Windows client may fetch a missing intermediate, but an IKEv2 client usually cannot
before the tunnel is up, so a missing intermediate is reported.

Revocation is read from the CRLs fleetfix has (the CA's own files and the copies fetched from
HTTP distribution points); a certificate is revoked when a CRL signed by its issuer lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchestrator.facts.common import CertificateEntry
from orchestrator.facts.x509 import CertView, CrlView, FactsParseError, parse_certificate

MAX_CHAIN = 8  # no real PKI is deeper; stops a loop of cross-signed certificates


class ChainStatus(StrEnum):
    OK = "ok"
    UNTRUSTED_ROOT = "untrusted_root"  # ends in a self-signed certificate that is not in Root
    PARTIAL_CHAIN = "partial_chain"  # an issuer is not in any store
    CA_EXPIRED = "ca_expired"  # every path goes through a CA certificate outside its validity


@dataclass(frozen=True)
class Chain:
    """The path from a certificate up to where building stopped, and why it stopped there."""

    path: tuple[CertView, ...]
    status: ChainStatus

    @property
    def top(self) -> CertView:
        return self.path[-1]

    def describe(self) -> list[str]:
        return [f"{cert.subject} ({cert.thumbprint})" for cert in self.path]


@dataclass(frozen=True)
class StoreSet:
    """The certificates one host can build chains from."""

    roots: tuple[CertView, ...]
    intermediates: tuple[CertView, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[CertificateEntry]) -> StoreSet:
        roots: list[CertView] = []
        intermediates: list[CertView] = []
        for entry in entries:
            view = safe_parse(entry.der)
            if view is None:
                continue
            if entry.store == "Root":
                roots.append(view)
            elif entry.store == "CA" or view.is_ca:
                intermediates.append(view)
        return cls(tuple(roots), tuple(intermediates))

    def holds(self, ca: CertView, *, as_root: bool) -> bool:
        """Whether this host has ``ca`` (or a re-issue of it with the same name and key)."""
        pool = self.roots if as_root else self.roots + self.intermediates
        return any(same_ca(ca, mine) for mine in pool)


def safe_parse(der_b64: str) -> CertView | None:
    try:
        return parse_certificate(der_b64)
    except FactsParseError:
        return None


def same_ca(a: CertView, b: CertView) -> bool:
    """The same certificate, or a re-issue with the same subject and key (verifies the same children)."""
    if a.thumbprint == b.thumbprint:
        return True
    return a.cert.subject == b.cert.subject and a.public_key_der == b.public_key_der


def build_chain(leaf: CertView, stores: StoreSet, at: datetime) -> Chain:
    """The best chain from ``leaf`` to a root in ``stores.roots``, the way CryptoAPI would try."""
    path = [leaf]
    expired_ca = False
    while len(path) <= MAX_CHAIN:
        current = path[-1]
        if any(same_ca(current, root) for root in stores.roots):
            return Chain(tuple(path), ChainStatus.CA_EXPIRED if expired_ca else ChainStatus.OK)
        issuer = _best_issuer(current, stores, path, at)
        if issuer is None:
            status = ChainStatus.UNTRUSTED_ROOT if current.self_issued else ChainStatus.PARTIAL_CHAIN
            return Chain(tuple(path), status)
        expired_ca = expired_ca or not issuer.valid_at(at)
        path.append(issuer)
    return Chain(tuple(path), ChainStatus.PARTIAL_CHAIN)


def _best_issuer(
    child: CertView, stores: StoreSet, path: Sequence[CertView], at: datetime
) -> CertView | None:
    seen = {cert.thumbprint for cert in path}
    candidates = [
        cert
        for cert in stores.roots + stores.intermediates
        if cert.thumbprint not in seen and child.issued_by(cert)
    ]
    if not candidates:
        return None
    # Prefer what Windows prefers: a currently valid issuer, then an anchored one, then the newest.
    return max(
        candidates,
        key=lambda cert: (cert.valid_at(at), any(same_ca(cert, r) for r in stores.roots), cert.not_after),
    )


class Revocation(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no CRL signed by the issuer is known to fleetfix
    OFFLINE = "offline"  # only expired CRLs: Windows reports the revocation server offline


@dataclass(frozen=True)
class RevocationResult:
    status: Revocation
    certificate: CertView | None = None
    crl: CrlView | None = None


def check_revocation(chain: Chain, crls: Sequence[CrlView], at: datetime) -> RevocationResult:
    """The first certificate of ``chain`` (below its anchor) that is revoked or cannot be checked."""
    worst = RevocationResult(Revocation.GOOD)
    for child, issuer in zip(chain.path, chain.path[1:], strict=False):
        signed = [crl for crl in crls if crl.issued_by(issuer)]
        if any(child.serial in crl.revoked_serials for crl in signed):
            crl = next(crl for crl in signed if child.serial in crl.revoked_serials)
            return RevocationResult(Revocation.REVOKED, child, crl)
        if worst.status is not Revocation.GOOD:
            continue
        if not signed:
            worst = RevocationResult(Revocation.UNKNOWN, child)
        elif not any(crl.next_update is None or crl.next_update > at for crl in signed):
            worst = RevocationResult(Revocation.OFFLINE, child, max(signed, key=lambda crl: crl.this_update))
    return worst


__all__ = [
    "Chain",
    "ChainStatus",
    "Revocation",
    "RevocationResult",
    "StoreSet",
    "build_chain",
    "check_revocation",
    "safe_parse",
    "same_ca",
]
