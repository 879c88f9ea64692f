"""How the catalogue judges a host's own certificates, applied to lab state (truth's side of it).

A host is fine when *one* certificate of ``My`` meets every rule; otherwise the candidate closest
to usable is reported (fewest problems, trusted first, latest expiry).  Candidates are the
certificates that look meant for the purpose (its EKU, or the right name) and, for devices, come
from the internal PKI (the CA hosts' certificates).  Chains are built from the host's own ``Root``
and ``CA`` stores; a certificate is revoked when any CRL its issuer published lists it (expired
CRLs included: they still say what was revoked).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509

from lab.estate import chain
from lab.estate.model import Estate
from lab.estate.pki import CLIENT_AUTH, IKE_INTERMEDIATE, SERVER_AUTH, der, ekus, subject_names
from lab.state import HostState
from lab.windows.certstore import CertificateStores, StoredCertificate
from lab.windows.certsvc import CertificationAuthority

SERVER_EKUS = (SERVER_AUTH, IKE_INTERMEDIATE)
KnownCas = tuple[list[x509.Certificate], list[x509.Certificate]]


@dataclass(frozen=True)
class Candidate:
    entry: StoredCertificate
    problems: tuple[str, ...]
    chain_status: str  # "ok", "partial_chain", "untrusted_root"
    revoked: bool
    internal: bool

    @property
    def certificate(self) -> x509.Certificate:
        return self.entry.certificate

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def trusted(self) -> bool:
        return self.chain_status == "ok" and not self.revoked


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def problems(
    entry: StoredCertificate, required: Sequence[str], names: Sequence[str], now: datetime.datetime
) -> tuple[str, ...]:
    """Static problems in the catalogue's order: what it is, then when it is valid, then its key."""
    cert = entry.certificate
    wanted = {name.lower() for name in names}
    found = (
        "wrong_eku" if not set(required) <= set(ekus(cert)) else None,
        "subject_mismatch" if wanted and not wanted & set(subject_names(cert)) else None,
        "expired" if now >= cert.not_valid_after_utc else None,
        "not_yet_valid" if now < cert.not_valid_before_utc else None,
        None if entry.has_private_key else "no_private_key",
    )
    return tuple(problem for problem in found if problem)


def chain_status(certificate: x509.Certificate, stores: CertificateStores) -> tuple[str, x509.Certificate]:
    """``ok``, ``partial_chain`` or ``untrusted_root`` from the host's stores, and the chain's top."""
    roots = [entry.certificate for entry in stores.certificates("Root")]
    intermediates = [entry.certificate for entry in stores.certificates("CA")]
    intermediates += [entry.certificate for entry in stores.certificates("My") if is_ca(entry.certificate)]
    path, status = chain.build(certificate, roots, intermediates)
    if chain.PARTIAL_CHAIN in status:
        return "partial_chain", path[-1]
    if chain.UNTRUSTED_ROOT in status:
        return "untrusted_root", path[-1]
    return "ok", path[-1]


def issuing_certificates(estate: Estate) -> list[x509.Certificate]:
    """The CA hosts' own certificates: what "the internal PKI" issues from."""
    found = []
    for state in estate.by_role("ca"):
        ca = state.find(CertificationAuthority)
        if ca is not None:
            found.append(ca.authority.certificate)
    return found


def internal(certificate: x509.Certificate, estate: Estate) -> bool:
    issuers = issuing_certificates(estate)
    return not issuers or any(certificate.issuer == issuer.subject for issuer in issuers)


def revoked(certificate: x509.Certificate, estate: Estate) -> bool:
    """Listed by any CRL the estate's CAs published (in CertEnroll or at their CDP)."""
    for ca in estate.authorities():
        if ca.authority.certificate.subject != certificate.issuer:
            continue
        for crl in (*ca.cert_enroll.values(), *ca.cdp.values()):
            if certificate.serial_number in chain.revoked_serials(crl.der):
                return True
    return False


def candidates(
    state: HostState,
    estate: Estate,
    now: datetime.datetime,
    *,
    required: Sequence[str],
    names: Sequence[str],
    looks_right: Callable[[x509.Certificate], bool],
    internal_only: bool,
) -> list[Candidate]:
    stores = state.component(CertificateStores)
    found = []
    for entry in stores.certificates("My"):
        cert = entry.certificate
        if is_ca(cert) or not looks_right(cert):
            continue
        inside = internal(cert, estate)
        if internal_only and not inside:
            continue
        status, _top = chain_status(cert, stores)
        found.append(
            Candidate(entry, problems(entry, required, names, now), status, revoked(cert, estate), inside)
        )
    return found


def best(items: Sequence[Candidate]) -> Candidate | None:
    if not items:
        return None
    return min(
        items,
        key=lambda c: (
            len(c.problems),
            not c.internal,
            not c.trusted,
            -c.certificate.not_valid_after_utc.timestamp(),
        ),
    )


def device_candidates(state: HostState, estate: Estate, now: datetime.datetime) -> list[Candidate]:
    fqdn = state.fqdn

    def looks_right(cert: x509.Certificate) -> bool:
        usages = ekus(cert)
        return CLIENT_AUTH in usages or IKE_INTERMEDIATE in usages or fqdn in subject_names(cert)

    return candidates(
        state,
        estate,
        now,
        required=(CLIENT_AUTH,),
        names=(fqdn,),
        looks_right=looks_right,
        internal_only=True,
    )


def server_candidates(state: HostState, estate: Estate, now: datetime.datetime) -> list[Candidate]:
    public = estate.public_fqdn.lower()

    def looks_right(cert: x509.Certificate) -> bool:
        usages = ekus(cert)
        return SERVER_AUTH in usages or IKE_INTERMEDIATE in usages or public in subject_names(cert)

    return candidates(
        state,
        estate,
        now,
        required=SERVER_EKUS,
        names=(public,),
        looks_right=looks_right,
        internal_only=False,
    )


def selected(items: Sequence[Candidate]) -> Candidate | None:
    """What Windows would use: usable and trusted if any, else the best usable one."""
    usable = [c for c in items if c.usable]
    return best([c for c in usable if c.trusted]) or best(usable)


def known_cas(estate: Estate) -> KnownCas:
    """Every CA certificate any host holds (roots, intermediates), plus the CA hosts' own."""
    roots: dict[bytes, x509.Certificate] = {}
    intermediates: dict[bytes, x509.Certificate] = {}
    for state in estate.hosts.values():
        stores = state.find(CertificateStores)
        if stores is None:
            continue
        for entry in stores.certificates("Root"):
            roots[entry.der] = entry.certificate
        for entry in stores.certificates("CA"):
            if is_ca(entry.certificate):
                intermediates[entry.der] = entry.certificate
    for cert in issuing_certificates(estate):
        intermediates.setdefault(der(cert), cert)
    return list(roots.values()), list(intermediates.values())


def missing_cas(
    leaf: x509.Certificate, stores: CertificateStores, known: KnownCas
) -> list[tuple[str, x509.Certificate]]:
    """``(store, CA)`` the host lacks to chain ``leaf``, when the fleet's CAs (``known``) complete it."""
    fleet_roots, fleet_intermediates = known
    roots = fleet_roots + [e.certificate for e in stores.certificates("Root")]
    intermediates = fleet_intermediates + [e.certificate for e in stores.certificates("CA")]
    path, status = chain.build(leaf, roots, intermediates)
    if status:
        return []
    held_roots = {e.der for e in stores.certificates("Root")}
    held_any = (
        held_roots
        | {e.der for e in stores.certificates("CA")}
        | {e.der for e in stores.certificates("My") if is_ca(e.certificate)}
    )
    missing = []
    cas = path[1:]
    for index, ca in enumerate(cas):
        as_root = index == len(cas) - 1
        ca_der = der(ca)
        if ca_der not in (held_roots if as_root else held_any):
            missing.append(("Root" if as_root else "CA", ca))
    return missing


__all__ = [
    "SERVER_EKUS",
    "Candidate",
    "best",
    "chain_status",
    "device_candidates",
    "internal",
    "is_ca",
    "missing_cas",
    "problems",
    "revoked",
    "selected",
    "server_candidates",
]
