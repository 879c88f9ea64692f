"""Certificates for app registrations: what an admin makes with ``New-SelfSignedCertificate``.

Entra accepts client assertions signed with RSA keys only, so these are RSA-2048 and self-signed,
unlike the lab CA's P-256 server certificates.  :func:`write_app_certificate` writes the two forms
fleetfix reads: a PEM file with key and certificate, and a password-protected PFX.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from lab.pki import NOT_BEFORE, SERVER_NOT_AFTER


@dataclass(frozen=True)
class AppCertificate:
    certificate_pem: str  # what the app registration holds (public part)
    pem_path: Path  # private key + certificate, optionally encrypted with the password
    pfx_path: Path  # PKCS#12 with the password
    sha1_thumbprint: str


def write_app_certificate(directory: Path, name: str, password: str) -> AppCertificate:
    """Make a self-signed RSA certificate for app ``name`` and write ``<name>.pem`` and ``<name>.pfx``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(min(SERVER_NOT_AFTER, NOT_BEFORE + datetime.timedelta(days=3650)))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    encryption = serialization.BestAvailableEncryption(password.encode())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    pem_path = directory / f"{name}.pem"
    pem_path.write_bytes(key_pem + cert_pem)
    pfx_path = directory / f"{name}.pfx"
    pfx_path.write_bytes(pkcs12.serialize_key_and_certificates(name.encode(), key, cert, None, encryption))
    for path in (pem_path, pfx_path):
        path.chmod(0o600)
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 (Entra's x5t is SHA-1)
    return AppCertificate(cert_pem.decode(), pem_path, pfx_path, thumbprint)


__all__ = ["AppCertificate", "write_app_certificate"]
