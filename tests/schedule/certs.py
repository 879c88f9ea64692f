"""Signing material for the signing tests, made with ``cryptography``: RSA keys and self-signed
certificates (Celery trusts a signer by its certificate's presence in the store, not by a chain)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Signer:
    key: Path
    certificate: Path


def make_signer(
    directory: Path,
    name: str,
    *,
    valid_days: int = 365,
    expired: bool = False,
    password: bytes | None = None,
    curve: bool = False,
) -> Signer:
    """A key (mode 0600) and its self-signed certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1()) if curve else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fleetfix {name}")])
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=30), now - timedelta(days=1))
        if expired
        else (now - timedelta(days=1), now + timedelta(days=valid_days))
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_path = directory / f"{name}.key"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    os.chmod(key_path, 0o600)
    certificate_path = directory / f"{name}.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Signer(key_path, certificate_path)


def trust(store: Path, *signers: Signer) -> Path:
    """A trusted-certificates directory holding the signers' certificates."""
    store.mkdir(parents=True, exist_ok=True)
    for signer in signers:
        (store / signer.certificate.name).write_bytes(signer.certificate.read_bytes())
    return store
