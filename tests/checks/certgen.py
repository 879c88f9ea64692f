"""Deterministic certificates and CRLs for check specs, made with ``cryptography``.

Keys are Ed25519 derived from a seed (the certificate's name unless ``key`` says otherwise), and
Ed25519 signatures are deterministic, so the same spec gives byte-identical DER -- and the same
thumbprints -- in every run.  Specs refer to certificates and CRLs by name.

A certificate spec (all keys optional except ``cn``)::

    cn: ws1.corp.contoso.com      # subject CN
    issuer: issuing               # another certificate's name; absent = self-signed
    ca: true                      # basicConstraints CA
    eku: [client_auth, any]       # names or OIDs; absent = no EKU extension
    san: [ws1.corp.contoso.com]   # DNS names
    not_before: 2024-01-01T00:00:00Z
    not_after: 2027-01-01T00:00:00Z
    serial: 4242                  # default: derived from the name
    key: other-seed               # another key with the same name (a re-keyed or rogue CA)
    cdp: [http://pki.contoso.com/cdp/issuing.crl]

A CRL spec::

    issuer: issuing
    this_update: 2025-05-28T00:00:00Z
    next_update: 2025-06-05T12:00:00Z
    next_publish: 2025-06-04T00:00:00Z   # AD CS "Next CRL Publish" extension
    number: 7
    revoked: [ws1]                        # certificate names
    delta: false
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.facts.x509 import NEXT_CRL_PUBLISH, thumbprint

EKUS = {
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "ike_intermediate": x509.ObjectIdentifier("1.3.6.1.5.5.8.2.2"),
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}
DEFAULT_NOT_BEFORE = "2024-01-01T00:00:00Z"
DEFAULT_NOT_AFTER = "2027-01-01T00:00:00Z"


def when(value: Any) -> datetime:
    """A spec time: ISO text (YAML may already have made it a datetime)."""
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def private_key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"fleetfix-test:{seed}".encode()).digest())


def _serial(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") | 1


def _eku(name: str) -> x509.ObjectIdentifier:
    return EKUS.get(name) or x509.ObjectIdentifier(name)


class TestPki:
    """Certificates and CRLs built on first use from their specs."""

    __test__ = False  # not a pytest class

    def __init__(self, certs: Mapping[str, Mapping[str, Any]], crls: Mapping[str, Mapping[str, Any]]) -> None:
        self.cert_specs = dict(certs)
        self.crl_specs = dict(crls)
        self._certs: dict[str, x509.Certificate] = {}
        self._crls: dict[str, x509.CertificateRevocationList] = {}

    def cert(self, name: str) -> x509.Certificate:
        if name not in self._certs:
            self._certs[name] = self._build_cert(name, self.cert_specs[name])
        return self._certs[name]

    def crl(self, name: str) -> x509.CertificateRevocationList:
        if name not in self._crls:
            self._crls[name] = self._build_crl(self.crl_specs[name])
        return self._crls[name]

    def cert_b64(self, name: str) -> str:
        return base64.b64encode(self.cert(name).public_bytes(Encoding.DER)).decode()

    def crl_b64(self, name: str) -> str:
        return base64.b64encode(self.crl(name).public_bytes(Encoding.DER)).decode()

    def thumbprint(self, name: str) -> str:
        return thumbprint(self.cert(name).public_bytes(Encoding.DER))

    def _key(self, name: str) -> Ed25519PrivateKey:
        return private_key(str(self.cert_specs[name].get("key", name)))

    @cached_property
    def _names(self) -> dict[str, x509.Name]:
        return {
            name: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(spec["cn"]))])
            for name, spec in self.cert_specs.items()
        }

    def _build_cert(self, name: str, spec: Mapping[str, Any]) -> x509.Certificate:
        issuer = str(spec.get("issuer", name))
        key = self._key(name)
        issuer_key = self._key(issuer)
        builder = (
            x509.CertificateBuilder()
            .subject_name(self._names[name])
            .issuer_name(self._names[issuer])
            .public_key(key.public_key())
            .serial_number(int(spec.get("serial", _serial(name))))
            .not_valid_before(when(spec.get("not_before", DEFAULT_NOT_BEFORE)))
            .not_valid_after(when(spec.get("not_after", DEFAULT_NOT_AFTER)))
            .add_extension(
                x509.BasicConstraints(ca=bool(spec.get("ca", False)), path_length=None), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        if "eku" in spec:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([_eku(e) for e in spec["eku"]]), critical=False
            )
        if spec.get("san"):
            names = [x509.DNSName(str(dns)) for dns in spec["san"]]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if spec.get("cdp"):
            points = [
                x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
                for url in spec["cdp"]
            ]
            builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
        return builder.sign(issuer_key, None)

    def _build_crl(self, spec: Mapping[str, Any]) -> x509.CertificateRevocationList:
        issuer = str(spec["issuer"])
        this_update = when(spec["this_update"])
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._names[issuer])
            .last_update(this_update)
            .next_update(when(spec["next_update"]))
            .add_extension(x509.CRLNumber(int(spec.get("number", 1))), critical=False)
        )
        if spec.get("delta"):
            builder = builder.add_extension(x509.DeltaCRLIndicator(int(spec.get("base", 1))), critical=True)
        if "next_publish" in spec:
            stamp = when(spec["next_publish"]).strftime("%y%m%d%H%M%SZ").encode()
            raw = bytes([0x17, len(stamp)]) + stamp  # DER UTCTime, as AD CS writes it
            builder = builder.add_extension(x509.UnrecognizedExtension(NEXT_CRL_PUBLISH, raw), critical=False)
        for revoked in spec.get("revoked", ()):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(self.cert(str(revoked)).serial_number)
                .revocation_date(this_update)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self._key(issuer), None)


__all__ = ["EKUS", "TestPki", "private_key", "when"]
