"""Certificate chain building and revocation, the way a Windows host judges a certificate.

:func:`judge` builds the chain of a certificate from one host's ``Root`` and ``CA`` stores (no AIA
retrieval: the estate's hosts are configured completely or not at all, and a missing intermediate
is exactly the seed article's "ensure all necessary root and intermediate certificates are
installed"), checks time validity, and checks revocation of every non-root element against the
CRL its distribution point serves *now* (an expired CRL is as good as none: revocation unknown,
offline).  The result carries Windows' ``X509ChainStatusFlags`` names.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from lab.estate.pki import cdp_urls
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import PublishedCrl

NOT_TIME_VALID = "NotTimeValid"
PARTIAL_CHAIN = "PartialChain"
UNTRUSTED_ROOT = "UntrustedRoot"
REVOKED = "Revoked"
REVOCATION_UNKNOWN = "RevocationStatusUnknown"
OFFLINE_REVOCATION = "OfflineRevocation"

CrlSource = Callable[[str], PublishedCrl | None]


@dataclass(frozen=True)
class ChainResult:
    """The chain from the leaf upwards, and every problem found on the way."""

    chain: tuple[x509.Certificate, ...]
    status: frozenset[str]

    @property
    def ok(self) -> bool:
        return not self.status

    @property
    def top(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def trusted(self) -> bool:
        return not self.status & {PARTIAL_CHAIN, UNTRUSTED_ROOT}


@functools.lru_cache(maxsize=65536)
def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _self_signed(certificate: x509.Certificate) -> bool:
    return _issued_by(certificate, certificate)


def build(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate]
) -> tuple[tuple[x509.Certificate, ...], frozenset[str]]:
    """The chain from ``leaf`` as far as the stores allow; PartialChain/UntrustedRoot when it stops short."""
    chain = [leaf]
    candidates = [*intermediates, *roots]
    while not _self_signed(chain[-1]) and len(chain) < 8:
        issuer = next((cert for cert in candidates if _issued_by(chain[-1], cert)), None)
        if issuer is None:
            return tuple(chain), frozenset({PARTIAL_CHAIN})
        chain.append(issuer)
    if chain[-1] not in roots:
        return tuple(chain), frozenset({UNTRUSTED_ROOT})
    return tuple(chain), frozenset()


@functools.lru_cache(maxsize=256)
def _parsed(der: bytes) -> tuple[frozenset[int], tuple[str, ...]]:
    """A CRL's revoked serials and its delta CRL URLs (FreshestCRL)."""
    crl = x509.load_der_x509_crl(der)
    try:
        freshest = crl.extensions.get_extension_for_class(x509.FreshestCRL).value
        deltas = tuple(
            name.value
            for point in freshest
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        )
    except x509.ExtensionNotFound:
        deltas = ()
    return frozenset(entry.serial_number for entry in crl), deltas


def revoked_serials(der: bytes) -> frozenset[int]:
    """The serial numbers a CRL (DER) lists."""
    return _parsed(der)[0]


def _current(crls: CrlSource, url: str, now: datetime.datetime) -> PublishedCrl | None:
    crl = crls(url)
    return crl if crl is not None and crl.this_update <= now < crl.next_update else None


def revocation(chain: Sequence[x509.Certificate], crls: CrlSource, now: datetime.datetime) -> frozenset[str]:
    """Revocation problems of every element below the root: revoked, or no current base CRL.

    A base CRL that expired cannot be made good by a fresh delta: the delta only lists changes
    since its base.
    """
    status: set[str] = set()
    for certificate in chain[:-1]:
        urls = cdp_urls(certificate)
        if not urls:
            continue
        bases = [crl for crl in (_current(crls, url, now) for url in urls) if crl is not None]
        if not bases:
            status |= {REVOCATION_UNKNOWN, OFFLINE_REVOCATION}
            continue
        serials: set[int] = set()
        for base in bases:
            revoked, delta_urls = _parsed(base.der)
            serials |= revoked
            for delta in (_current(crls, url, now) for url in delta_urls):
                if delta is not None:
                    serials |= _parsed(delta.der)[0]
        if certificate.serial_number in serials:
            status.add(REVOKED)
    return frozenset(status)


def judge(
    certificate: x509.Certificate,
    stores: CertificateStores,
    crls: CrlSource,
    now: datetime.datetime,
) -> ChainResult:
    """What ``X509Chain.Build`` with online revocation reports on this host for ``certificate``."""
    roots = [entry.certificate for entry in stores.certificates("Root")]
    intermediates = [entry.certificate for entry in stores.certificates("CA")]
    chain, status = build(certificate, roots, intermediates)
    problems = set(status)
    if any(not (c.not_valid_before_utc <= now < c.not_valid_after_utc) for c in chain):
        problems.add(NOT_TIME_VALID)
    if not status:
        problems |= revocation(chain, crls, now)
    return ChainResult(chain, frozenset(problems))


__all__ = [
    "NOT_TIME_VALID",
    "OFFLINE_REVOCATION",
    "PARTIAL_CHAIN",
    "REVOCATION_UNKNOWN",
    "REVOKED",
    "UNTRUSTED_ROOT",
    "ChainResult",
    "CrlSource",
    "build",
    "judge",
    "revocation",
    "revoked_serials",
]
