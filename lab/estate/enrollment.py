"""Machine certificate autoenrollment: a device asks the estate's enterprise CA for a new certificate.

What ``certutil -pulse`` (the Certificate Services Client's machine task) does on a domain member:
the client enrolls for the computer template against an enterprise CA it can reach over RPC, gets
a certificate for its FQDN with Client Authentication and a private key it generated itself, and
*archives* the certificates of the same template that the new one supersedes.  Archived
certificates stay in the store but ``Cert:\\LocalMachine\\My`` (and every consumer, IKEv2
included) no longer lists them, so the lab removes them from ``My``.

Which certificates count as superseded is an approximation of "same template": every end-entity
certificate of ``My`` that looks meant for the device tunnel (Client Authentication or IP security
IKE intermediate, or the device's name), whatever CA issued it.  A certificate for another purpose
and another name (a web server's) is left alone.

The enrollment fails, with nothing changed, when no enterprise CA is reachable: the estate has no
CA host, or its CertSvc is not running.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

from cryptography import x509

from lab.estate.judge import is_ca
from lab.estate.model import Estate
from lab.estate.pki import CLIENT_AUTH, IKE_INTERMEDIATE, der, ekus, subject_names, thumbprint
from lab.state import HostState
from lab.windows.certstore import CertificateStores, StoredCertificate
from lab.windows.certsvc import CERTSVC, CertificationAuthority
from lab.windows.services import Services

VALIDITY = datetime.timedelta(days=365)
"""The validity period of the Computer template (and most copies of it): one year."""


class EnrollmentError(Exception):
    """The certificate request could not be made; nothing changed on the device."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A row of the CA database (``certutil -view``): what was issued, to whom, when."""

    serial: int
    thumbprint: str
    requester: str
    issued_at: datetime.datetime


@dataclass
class CaDatabase:
    """The certificates a CA host issued through enrollment since the estate started."""

    issued: list[IssuedCertificate] = field(default_factory=list)


@dataclass(frozen=True)
class Enrollment:
    """What one autoenrollment did: the new certificate and the ones it archived."""

    certificate: x509.Certificate
    archived: tuple[StoredCertificate, ...]

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.certificate)


def enterprise_ca(estate: Estate) -> tuple[HostState, CertificationAuthority]:
    """The CA host a device enrolls against, or EnrollmentError when none can be reached."""
    for state in sorted(estate.by_role("ca"), key=lambda item: item.name):
        ca = state.find(CertificationAuthority)
        services = state.find(Services)
        service = services.get(CERTSVC) if services is not None else None
        if ca is not None and service is not None and service.status == "Running":
            return state, ca
    raise EnrollmentError(
        "CertEnroll::CX509Enrollment::Enroll: The RPC server is unavailable. 0x800706ba "
        "(WIN32: 1722 RPC_S_SERVER_UNAVAILABLE): no enterprise CA could be reached"
    )


def superseded(entry: StoredCertificate, device: HostState) -> bool:
    """Does autoenrollment archive ``entry`` when the device gets a new certificate?"""
    certificate = entry.certificate
    if is_ca(certificate):
        return False
    usages = ekus(certificate)
    names = set(subject_names(certificate))
    own_names = {device.fqdn.lower(), device.name.lower()}
    return CLIENT_AUTH in usages or IKE_INTERMEDIATE in usages or bool(names & own_names)


def issue_device_certificate(estate: Estate, device: HostState, now: datetime.datetime) -> x509.Certificate:
    """A device certificate from the reachable enterprise CA, valid from ``now`` (EnrollmentError)."""
    ca_host, ca = enterprise_ca(estate)
    database = ca_host.component(CaDatabase)
    # The label derives the key pair and the serial: one per request the CA ever answered.
    label = f"autoenroll:{device.name.lower()}:{len(database.issued) + 1}"
    until = min(now + VALIDITY, ca.authority.certificate.not_valid_after_utc)
    request = replace(estate.pki.device_request(device.fqdn), not_before=now, not_after=until)
    certificate = estate.pki.issue(label, request, ca.authority)
    database.issued.append(
        IssuedCertificate(certificate.serial_number, thumbprint(certificate), device.fqdn, now)
    )
    return certificate


def autoenroll(estate: Estate, device: HostState, now: datetime.datetime) -> Enrollment:
    """Enroll ``device`` for a new machine certificate and archive the ones it supersedes."""
    certificate = issue_device_certificate(estate, device, now)  # raises before anything changes
    stores = device.component(CertificateStores)
    archived = tuple(entry for entry in stores.certificates("My") if superseded(entry, device))
    for entry in archived:
        stores.remove("My", entry.thumbprint)
    stores.add("My", der(certificate), has_private_key=True)
    return Enrollment(certificate, archived)


__all__ = [
    "VALIDITY",
    "CaDatabase",
    "Enrollment",
    "EnrollmentError",
    "IssuedCertificate",
    "autoenroll",
    "enterprise_ca",
    "issue_device_certificate",
    "superseded",
]
