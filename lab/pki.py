"""The lab's PKI: one root CA and a server certificate per simulated host, deterministic from a seed.

Keys are P-256 keys derived from ``HKDF(seed, label)``, serial numbers are hashes of the label,
validity is a fixed window and signatures are deterministic ECDSA (RFC 6979), so the same seed
always gives byte-identical certificates.  A later issue builds the simulated enterprise CA on
this; for now the CA only signs WinRM listener certificates.

Private keys are lab material: they are written unencrypted next to the certificates, in the
directory the lab was given, and never leave loopback.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A fixed window keeps certificates reproducible; it is wide enough for any test run.
NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
CA_NOT_AFTER = datetime.datetime(2044, 1, 1, tzinfo=datetime.UTC)
SERVER_NOT_AFTER = datetime.datetime(2039, 1, 1, tzinfo=datetime.UTC)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derive_key(seed: str, label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key that depends only on ``seed`` and ``label``."""
    material = HKDF(
        algorithm=hashes.SHA256(), length=40, salt=b"fleetfix-lab-pki", info=label.encode()
    ).derive(seed.encode())
    # 40 bytes reduced modulo the group order: the bias is below 2^-64.
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _serial(seed: str, label: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{label}".encode()).digest()
    return int.from_bytes(digest[:16], "big") >> 1  # positive, at most 127 bits as RFC 5280 wants


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ServerIdentity:
    """Where one host's listener certificate lives on disk: ``chain`` holds cert, then key."""

    host: str
    chain_path: Path
    certificate: x509.Certificate


class LabCA:
    """The lab root CA.  ``LabCA(seed)`` is cheap to rebuild and always the same CA."""

    def __init__(self, seed: str, common_name: str = "fleetfix lab root CA") -> None:
        self.seed = seed
        self._key = derive_key(seed, "ca")
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fleetfix lab"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        public = self._key.public_key()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(_serial(seed, "ca"))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(CA_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256(), ecdsa_deterministic=True)
        )

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def server_certificate(
        self, host: str, dns_names: list[str], addresses: list[str]
    ) -> tuple[x509.Certificate, bytes]:
        """A TLS server certificate for ``host`` and the PEM of its private key."""
        key = derive_key(self.seed, f"host:{host.lower()}")
        public = key.public_key()
        san: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
        san += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(addresses)]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(_serial(self.seed, f"host:{host.lower()}"))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(SERVER_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        return cert, _pem_key(key)

    def write_bundle(self, directory: Path) -> Path:
        """Write the CA certificate as ``ca.pem`` (what clients pass as ``cert_validation``)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "ca.pem"
        path.write_bytes(self.pem)
        return path

    def write_server_identity(self, directory: Path, host: str, fqdn: str, address: str) -> ServerIdentity:
        """Issue and store the listener certificate of one host (valid for localhost and its address)."""
        cert, key_pem = self.server_certificate(
            host, dns_names=[fqdn, host.lower(), "localhost"], addresses=["127.0.0.1", address]
        )
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{host.lower()}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
        path.chmod(0o600)
        return ServerIdentity(host=host, chain_path=path, certificate=cert)
