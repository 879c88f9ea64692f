"""Is a host's own certificate the one it needs?  Device and VPN server certificate rules.

The rules are the seed article's: a device certificate has the Client Authentication EKU, names the
device FQDN, is within its validity period and has its private key; a VPN server certificate has
Server Authentication *and* IP security IKE intermediate, names the public FQDN clients dial, is
valid and has its private key.  When no certificate of ``My`` passes, the verdict names what the
closest one lacks (the first rule it breaks, in the order above).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509

from lab.estate.pki import CLIENT_AUTH, IKE_INTERMEDIATE, SERVER_AUTH, ekus, subject_names
from lab.windows.certstore import CertificateStores, StoredCertificate

MISSING = "missing"
WRONG_EKU = "wrong-eku"
SUBJECT_MISMATCH = "subject-mismatch"
EXPIRED = "expired"
NO_PRIVATE_KEY = "no-private-key"

Rule = tuple[str, Callable[[StoredCertificate], bool]]


@dataclass(frozen=True)
class LeafVerdict:
    """The certificate that fits (``reason`` None), or the closest one and what it lacks."""

    entry: StoredCertificate | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def certificate(self) -> x509.Certificate | None:
        return None if self.entry is None else self.entry.certificate


def _rules(required_ekus: Sequence[str], name: str, now: datetime.datetime) -> list[Rule]:
    def valid(entry: StoredCertificate) -> bool:
        cert = entry.certificate
        return cert.not_valid_before_utc <= now < cert.not_valid_after_utc

    return [
        (WRONG_EKU, lambda entry: set(required_ekus) <= set(ekus(entry.certificate))),
        (SUBJECT_MISMATCH, lambda entry: name.lower() in subject_names(entry.certificate)),
        (EXPIRED, valid),
        (NO_PRIVATE_KEY, lambda entry: entry.has_private_key),
    ]


def _verdict(stores: CertificateStores, rules: list[Rule]) -> LeafVerdict:
    best: tuple[int, StoredCertificate, str] | None = None
    for entry in stores.certificates("My"):
        failed = [reason for reason, passes in rules if not passes(entry)]
        if not failed:
            return LeafVerdict(entry, None)
        if best is None or len(failed) < best[0]:
            best = (len(failed), entry, failed[0])
    if best is None:
        return LeafVerdict(None, MISSING)
    return LeafVerdict(best[1], best[2])


def device_certificate(stores: CertificateStores, fqdn: str, now: datetime.datetime) -> LeafVerdict:
    return _verdict(stores, _rules((CLIENT_AUTH,), fqdn, now))


def server_certificate(stores: CertificateStores, public_fqdn: str, now: datetime.datetime) -> LeafVerdict:
    return _verdict(stores, _rules((SERVER_AUTH, IKE_INTERMEDIATE), public_fqdn, now))


__all__ = [
    "EXPIRED",
    "MISSING",
    "NO_PRIVATE_KEY",
    "SUBJECT_MISMATCH",
    "WRONG_EKU",
    "LeafVerdict",
    "device_certificate",
    "server_certificate",
]
