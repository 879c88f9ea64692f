"""The simulated enterprise PKI: root and issuing CAs, device and VPN server certificates, CRLs.

Everything is deterministic from the seed: keys are P-256 keys derived with ``HKDF(seed, label)``
(:func:`lab.pki.derive_key`), serial numbers are hashes of the label, validity windows are fixed
dates and signatures are deterministic ECDSA (RFC 6979), so one seed always gives byte-identical
certificates.  CRLs depend on time by nature: given the same seed and the same issue time they are
byte-identical too.

What the certificates carry follows an AD CS deployment for Always On VPN (catalogue §1.4, §9):

* the **root CA** (offline) and the **issuing CA** it signs;
* **device certificates**: subject CN and SAN = the device FQDN, Client Authentication EKU;
* **VPN server certificates**: subject CN and SAN = the public FQDN clients dial, Server
  Authentication and IP security IKE intermediate EKUs;
* a CRL distribution point (and the issuer's certificate in the AIA) on the lab's CRL server, the
  URL layout AD CS uses by default (``/CertEnroll/<CA name>.crl``, delta ``<CA name>+.crl``).

Besides the trusted hierarchy there is a *legacy* root (left behind by a PKI migration: it is
what a wrong ``RootCertificateNameToAccept`` points at) and a *foreign* CA nobody trusts (a device
certificate from it has an untrusted chain).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from lab.pki import derive_key

CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string  # 1.3.6.1.5.5.7.3.2
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string  # 1.3.6.1.5.5.7.3.1
IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"  # IP security IKE intermediate
NEXT_CRL_PUBLISH_OID = ObjectIdentifier("1.3.6.1.4.1.311.21.4")  # Microsoft "Next CRL Publish"

# Fixed windows keep certificates reproducible.  Healthy certificates outlive any lab run;
# "expired" ones ended before this lab code was written, so they are expired whenever it runs.
VALID_FROM = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
ROOT_UNTIL = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)
ISSUING_UNTIL = datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC)
LEAF_UNTIL = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC)
EXPIRED_FROM = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
EXPIRED_UNTIL = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def _serial(seed: str, label: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00serial\x00{label}".encode()).digest()
    return int.from_bytes(digest[:16], "big") >> 1  # positive, at most 127 bits (RFC 5280)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def thumbprint(certificate: x509.Certificate) -> str:
    """The SHA-1 thumbprint Windows shows (upper-case hex)."""
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 (Windows' identifier)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA of the lab PKI: its certificate and key, and where its CRLs are published."""

    label: str
    name: str  # the AD CS CA name, which names its CRL files
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    crl_url: str
    delta_crl_url: str | None

    @property
    def der(self) -> bytes:
        return der(self.certificate)

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.certificate)

    @property
    def crl_file(self) -> str:
        return f"{self.name}.crl"

    @property
    def delta_crl_file(self) -> str:
        return f"{self.name}+.crl"


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise


@dataclass(frozen=True)
class CertRequest:
    """What a leaf certificate should look like; the defaults make a valid one."""

    subject: str
    dns_names: tuple[str, ...]
    ekus: tuple[str, ...]
    not_before: datetime.datetime = VALID_FROM
    not_after: datetime.datetime = LEAF_UNTIL


class EnterprisePKI:
    """The lab's AD CS hierarchy for one seed, publishing to ``cdp_base_url`` (``http://host:port``)."""

    def __init__(self, seed: str, cdp_base_url: str, organization: str = "Contoso") -> None:
        self.seed = seed
        self.cdp_base_url = cdp_base_url.rstrip("/")
        self.organization = organization
        self.root = self._self_signed("root", f"{organization} Root CA")
        self.issuing = self._subordinate("issuing", f"{organization} Issuing CA 01", self.root)
        self.legacy_root = self._self_signed("legacy-root", f"{organization} Root CA 2015")
        foreign_root = self._self_signed("foreign-root", "Fabrikam Root CA")
        self.foreign = self._subordinate("foreign-issuing", "Fabrikam Issuing CA", foreign_root)
        self.foreign_root = foreign_root

    # -- CAs -----------------------------------------------------------------------------------

    def url(self, file_name: str) -> str:
        # AD CS writes "+" (delta CRLs) literally; IIS needs allowDoubleEscaping for it.
        return f"{self.cdp_base_url}/CertEnroll/{quote(file_name, safe='+')}"

    def _identity(
        self, label: str, name: str, certificate: x509.Certificate, *, delta: bool
    ) -> CertificateAuthority:
        return CertificateAuthority(
            label=label,
            name=name,
            certificate=certificate,
            key=derive_key(self.seed, f"enterprise:{label}"),
            crl_url=self.url(f"{name}.crl"),
            delta_crl_url=self.url(f"{name}+.crl") if delta else None,
        )

    def _self_signed(self, label: str, name: str) -> CertificateAuthority:
        key = derive_key(self.seed, f"enterprise:{label}")
        subject = _name(name, self.organization if not label.startswith("foreign") else "Fabrikam")
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(_serial(self.seed, label))
            .not_valid_before(VALID_FROM)
            .not_valid_after(ROOT_UNTIL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        # An offline root publishes a base CRL only (no delta), by hand.
        return self._identity(label, name, certificate, delta=False)

    def _subordinate(self, label: str, name: str, parent: CertificateAuthority) -> CertificateAuthority:
        key = derive_key(self.seed, f"enterprise:{label}")
        public = key.public_key()
        organization = parent.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name, str(organization[0].value) if organization else None))
            .issuer_name(parent.certificate.subject)
            .public_key(public)
            .serial_number(_serial(self.seed, label))
            .not_valid_before(VALID_FROM)
            .not_valid_after(ISSUING_UNTIL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
            .add_extension(_cdp(parent.crl_url), critical=False)
            .sign(parent.key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        return self._identity(label, name, certificate, delta=True)

    def authorities(self) -> tuple[CertificateAuthority, ...]:
        return (self.root, self.issuing, self.legacy_root, self.foreign_root, self.foreign)

    def authority(self, label: str) -> CertificateAuthority:
        for ca in self.authorities():
            if ca.label == label:
                return ca
        raise KeyError(label)

    # -- leaf certificates -------------------------------------------------------------------------

    def issue(
        self, label: str, request: CertRequest, issuer: CertificateAuthority | None = None
    ) -> x509.Certificate:
        """A leaf certificate for ``label`` (its key and serial derive from it), signed by ``issuer``."""
        ca = issuer or self.issuing
        public = derive_key(self.seed, f"leaf:{label}").public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(request.subject))
            .issuer_name(ca.certificate.subject)
            .public_key(public)
            .serial_number(_serial(self.seed, f"leaf:{label}"))
            .not_valid_before(request.not_before)
            .not_valid_after(request.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
            )
            .add_extension(_cdp(ca.crl_url), critical=False)
            .add_extension(_aia(self.url(f"{ca.name}.crt")), critical=False)
        )
        if request.ekus:
            usages = [ObjectIdentifier(oid) for oid in request.ekus]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if request.dns_names:
            names = [x509.DNSName(name) for name in request.dns_names]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca.key, hashes.SHA256(), ecdsa_deterministic=True)

    def device_request(self, fqdn: str) -> CertRequest:
        """A valid device-tunnel certificate: CN and SAN = the device FQDN, Client Authentication."""
        return CertRequest(subject=fqdn, dns_names=(fqdn,), ekus=(CLIENT_AUTH,))

    def server_request(self, public_fqdn: str) -> CertRequest:
        """A valid IKEv2 VPN server certificate: the public FQDN, Server Auth + IKE intermediate."""
        return CertRequest(
            subject=public_fqdn, dns_names=(public_fqdn,), ekus=(SERVER_AUTH, IKE_INTERMEDIATE)
        )

    # -- CRLs ------------------------------------------------------------------------------------

    def crl(
        self,
        ca: CertificateAuthority,
        revoked: Iterable[RevokedEntry],
        *,
        number: int,
        this_update: datetime.datetime,
        next_update: datetime.datetime,
        next_publish: datetime.datetime | None = None,
        delta_of: int | None = None,
    ) -> x509.CertificateRevocationList:
        """A base CRL, or with ``delta_of`` (the base CRL number) a delta CRL, signed by ``ca``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
            )
        )
        if delta_of is not None:
            builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
        elif ca.delta_crl_url is not None:
            builder = builder.add_extension(x509.FreshestCRL([_point(ca.delta_crl_url)]), critical=False)
        if next_publish is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(NEXT_CRL_PUBLISH_OID, _utc_time(next_publish)), critical=False
            )
        for entry in sorted(revoked, key=lambda item: item.serial):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
                .add_extension(x509.CRLReason(entry.reason), critical=False)
                .build()
            )
        return builder.sign(ca.key, hashes.SHA256(), ecdsa_deterministic=True)


def _point(url: str) -> x509.DistributionPoint:
    return x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
    )


def _cdp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([_point(url)])


def _aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
            )
        ]
    )


def _utc_time(moment: datetime.datetime) -> bytes:
    """DER UTCTime, the value of the "Next CRL Publish" extension AD CS writes."""
    text = moment.astimezone(datetime.UTC).strftime("%y%m%d%H%M%SZ").encode()
    return b"\x17" + bytes([len(text)]) + text


def cdp_urls(certificate: x509.Certificate) -> tuple[str, ...]:
    """The HTTP URLs of a certificate's CRL distribution points."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def ekus(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(oid.dotted_string for oid in usage)


def subject_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """Subject CN and SAN DNS names, lower case (how Windows matches a name to a certificate)."""
    names = [str(a.value).lower() for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [name.lower() for name in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    return tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=4096)
def load_der(data: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(data)


def load_certificates(data: bytes) -> Sequence[x509.Certificate]:
    """Certificates from PEM (one or several) or DER bytes, as a customer hands them over."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


__all__ = [
    "CLIENT_AUTH",
    "EXPIRED_FROM",
    "EXPIRED_UNTIL",
    "IKE_INTERMEDIATE",
    "SERVER_AUTH",
    "CertRequest",
    "CertificateAuthority",
    "EnterprisePKI",
    "RevokedEntry",
    "cdp_urls",
    "der",
    "ekus",
    "load_certificates",
    "load_crl",
    "load_der",
    "subject_names",
    "thumbprint",
]
