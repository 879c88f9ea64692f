"""Certificates and CRLs from probe facts (base64 DER) -> small immutable views.  Pure.

Probes print DER; everything a check needs is computed here with ``cryptography``, once per
distinct DER (a fleet shares a handful of CA certificates and CRLs across thousands of hosts, so
the parse is cached by the base64 text).

Windows conventions kept on purpose:

* thumbprints are the SHA-1 of the DER in upper-case hex without spaces, as ``Cert:\\`` shows them;
* names are matched without case (DNS names are case-insensitive);
* a certificate without an EKU extension is valid for every purpose, as CryptoAPI treats it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID

CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"
ANY_EKU = "2.5.29.37.0"
EKU_NAMES = {
    CLIENT_AUTH: "Client Authentication",
    SERVER_AUTH: "Server Authentication",
    IKE_INTERMEDIATE: "IP security IKE intermediate",
    ANY_EKU: "Any Purpose",
}
NEXT_CRL_PUBLISH = x509.ObjectIdentifier("1.3.6.1.4.1.311.21.4")
"""AD CS puts the time it will publish the next CRL into every CRL (before ``nextUpdate``)."""

_CACHE_SIZE = 4096
_SIGNATURES_KEPT = 200_000  # verified (signed, signer) pairs remembered; about 20 MB at most

# Whether a signer's key verifies a certificate's or CRL's signature never changes, and a sweep
# asks the same question many times (every check that builds the same chain), so answers are kept.
_signatures: dict[tuple[str, str], bool] = {}


def _remembered(signed: str, signer: str, verify: Callable[[], bool]) -> bool:
    key = (signed, signer)
    known = _signatures.get(key)
    if known is None:
        if len(_signatures) >= _SIGNATURES_KEPT:
            _signatures.clear()
        known = _signatures[key] = verify()
    return known


class FactsParseError(ValueError):
    """A certificate or CRL in the facts is not base64 DER that ``cryptography`` can read."""


def thumbprint(der: bytes) -> str:
    """Windows' certificate thumbprint: SHA-1 of the DER, upper-case hex, no spaces."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def normalize_thumbprint(text: str) -> str:
    """``"71 89 9a ..."`` or ``"71899a..."`` -> ``"71899A..."`` (what admins paste varies)."""
    return "".join(char for char in text if not char.isspace()).upper()


def _decode(der_b64: str) -> bytes:
    try:
        return base64.b64decode(der_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FactsParseError(f"not base64: {exc}") from None


def _extension(extensions: x509.Extensions, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _crl_urls(extensions: x509.Extensions) -> tuple[str, ...]:
    cdp = _extension(extensions, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    if not isinstance(cdp, x509.CRLDistributionPoints):
        return ()
    urls = [
        general.value
        for point in cdp
        for general in point.full_name or ()
        if isinstance(general, x509.UniformResourceIdentifier)
    ]
    return tuple(urls)


@dataclass(frozen=True)
class CertView:
    """What the checks read from one certificate."""

    der: bytes = field(repr=False)
    thumbprint: str
    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    serial: int
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ekus: tuple[str, ...] | None
    """OIDs of the EKU extension; None when there is no such extension (every purpose)."""
    is_ca: bool
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    crl_urls: tuple[str, ...]
    cert: x509.Certificate = field(repr=False, compare=False)

    @functools.cached_property
    def public_key_der(self) -> bytes:
        """The SubjectPublicKeyInfo, DER: equal for re-issues of a CA certificate with the same key."""
        return self.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @property
    def self_issued(self) -> bool:
        return self.cert.subject == self.cert.issuer

    @property
    def names(self) -> tuple[str, ...]:
        """The names a peer matches: SAN DNS names, and the subject CN."""
        cn = (self.subject_cn,) if self.subject_cn else ()
        return self.dns_names + cn

    def matches_name(self, name: str) -> bool:
        wanted = name.strip().rstrip(".").casefold()
        return any(candidate.rstrip(".").casefold() == wanted for candidate in self.names)

    def has_eku(self, oid: str, *, any_purpose_counts: bool = False) -> bool:
        """True when the certificate may be used for ``oid``.

        No EKU extension means every purpose.  ``anyExtendedKeyUsage`` counts only when asked:
        RFC 5280 lets applications require the explicit OID, and fleetfix does by default.
        """
        if self.ekus is None:
            return True
        return oid in self.ekus or (any_purpose_counts and ANY_EKU in self.ekus)

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at < self.not_after

    def issued_by(self, issuer: CertView) -> bool:
        """``issuer``'s name and key identifiers match, and its key verifies this signature."""
        if self.cert.issuer != issuer.cert.subject:
            return False
        if self.authority_key_id and issuer.subject_key_id and self.authority_key_id != issuer.subject_key_id:
            return False
        return _remembered(self.thumbprint, issuer.thumbprint, lambda: self._verified_by(issuer))

    def _verified_by(self, issuer: CertView) -> bool:
        try:
            self.cert.verify_directly_issued_by(issuer.cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def describe(self) -> dict[str, object]:
        """JSON-safe evidence about the certificate."""
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "dns_names": list(self.dns_names),
            "ekus": None if self.ekus is None else list(self.ekus),
        }


@dataclass(frozen=True)
class CrlView:
    """What the checks read from one CRL."""

    der: bytes = field(repr=False)
    fingerprint: str
    """SHA-1 of the DER, upper-case hex (identifies the CRL like a thumbprint)."""
    issuer: str
    issuer_cn: str | None
    this_update: datetime
    next_update: datetime | None
    next_publish: datetime | None
    crl_number: int | None
    is_delta: bool
    authority_key_id: bytes | None
    revoked_serials: frozenset[int]
    crl: x509.CertificateRevocationList = field(repr=False, compare=False)

    def issued_by(self, issuer: CertView) -> bool:
        if self.crl.issuer != issuer.cert.subject:
            return False
        return _remembered(self.fingerprint, issuer.thumbprint, lambda: self._verified_by(issuer))

    def _verified_by(self, issuer: CertView) -> bool:
        try:
            return self.crl.is_signature_valid(issuer.cert.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def describe(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "this_update": _iso(self.this_update),
            "next_update": _iso(self.next_update) if self.next_update else None,
            "next_publish": _iso(self.next_publish) if self.next_publish else None,
            "crl_number": self.crl_number,
            "delta": self.is_delta,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_certificate(der_b64: str) -> CertView:
    """The view of a base64 DER certificate; FactsParseError when it is not one."""
    der = _decode(der_b64)
    try:
        cert = x509.load_der_x509_certificate(der)
        return _cert_view(der, cert)
    except ValueError as exc:
        raise FactsParseError(f"not a DER certificate: {exc}") from None


def _cert_view(der: bytes, cert: x509.Certificate) -> CertView:
    extensions = cert.extensions
    san = _extension(extensions, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    eku = _extension(extensions, ExtensionOID.EXTENDED_KEY_USAGE)
    basic = _extension(extensions, ExtensionOID.BASIC_CONSTRAINTS)
    ski = _extension(extensions, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki = _extension(extensions, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    return CertView(
        der=der,
        thumbprint=thumbprint(der),
        subject=cert.subject.rfc4514_string(),
        subject_cn=_common_name(cert.subject),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=_common_name(cert.issuer),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=tuple(san.get_values_for_type(x509.DNSName))
        if isinstance(san, x509.SubjectAlternativeName)
        else (),
        ekus=tuple(oid.dotted_string for oid in eku) if isinstance(eku, x509.ExtendedKeyUsage) else None,
        is_ca=isinstance(basic, x509.BasicConstraints) and basic.ca,
        subject_key_id=ski.digest if isinstance(ski, x509.SubjectKeyIdentifier) else None,
        authority_key_id=aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None,
        crl_urls=_crl_urls(extensions),
        cert=cert,
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_crl(der_b64: str) -> CrlView:
    """The view of a base64 DER CRL; FactsParseError when it is not one."""
    der = _decode(der_b64)
    try:
        crl = x509.load_der_x509_crl(der)
        extensions = crl.extensions
        number = _extension(extensions, ExtensionOID.CRL_NUMBER)
        aki = _extension(extensions, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        return CrlView(
            der=der,
            fingerprint=thumbprint(der),
            issuer=crl.issuer.rfc4514_string(),
            issuer_cn=_common_name(crl.issuer),
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
            next_publish=_next_publish(extensions),
            crl_number=number.crl_number if isinstance(number, x509.CRLNumber) else None,
            is_delta=_extension(extensions, ExtensionOID.DELTA_CRL_INDICATOR) is not None,
            authority_key_id=aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None,
            revoked_serials=frozenset(entry.serial_number for entry in crl),
            crl=crl,
        )
    except ValueError as exc:
        raise FactsParseError(f"not a DER CRL: {exc}") from None


def _next_publish(extensions: x509.Extensions) -> datetime | None:
    """AD CS's "Next CRL Publish" extension: a DER UTCTime (tag 0x17) such as ``250314080000Z``."""
    value = _extension(extensions, NEXT_CRL_PUBLISH)
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    raw = value.value
    if len(raw) < 2 or raw[0] != 0x17 or raw[1] != len(raw) - 2:
        return None
    try:
        return datetime.strptime(raw[2:].decode("ascii"), "%y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except (UnicodeDecodeError, ValueError):
        return None


__all__ = [
    "ANY_EKU",
    "CLIENT_AUTH",
    "EKU_NAMES",
    "IKE_INTERMEDIATE",
    "NEXT_CRL_PUBLISH",
    "SERVER_AUTH",
    "CertView",
    "CrlView",
    "FactsParseError",
    "normalize_thumbprint",
    "parse_certificate",
    "parse_crl",
    "thumbprint",
]
