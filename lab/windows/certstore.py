"""LocalMachine certificate stores: ``My`` (with the private-key flag), ``Root`` and ``CA``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

from lab.estate.pki import load_der, thumbprint

StoreName = Literal["My", "Root", "CA"]
STORE_NAMES: tuple[StoreName, ...] = ("My", "Root", "CA")


@dataclass(frozen=True)
class StoredCertificate:
    """A certificate in a store.  The private key is the one fact the DER cannot carry."""

    der: bytes
    has_private_key: bool = False

    @property
    def certificate(self) -> x509.Certificate:
        return load_der(self.der)

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.certificate)


@dataclass
class CertificateStores:
    """The three LocalMachine stores of one host, each in insertion order (as ``Get-ChildItem`` lists)."""

    stores: dict[str, list[StoredCertificate]] = field(
        default_factory=lambda: {name: [] for name in STORE_NAMES}
    )

    def add(self, store: StoreName, der: bytes, *, has_private_key: bool = False) -> bool:
        """Import a certificate; False when the store already holds it (as ``Import-Certificate``)."""
        entry = StoredCertificate(der, has_private_key)
        if self.find(store, entry.thumbprint) is not None:
            return False
        self.stores[store].append(entry)
        return True

    def remove(self, store: StoreName, thumb: str) -> StoredCertificate | None:
        found = self.find(store, thumb)
        if found is not None:
            self.stores[store].remove(found)
        return found

    def find(self, store: StoreName, thumb: str) -> StoredCertificate | None:
        wanted = thumb.upper()
        return next((entry for entry in self.stores[store] if entry.thumbprint == wanted), None)

    def contains(self, store: StoreName, der: bytes) -> bool:
        return any(entry.der == der for entry in self.stores[store])

    def certificates(self, store: StoreName) -> tuple[StoredCertificate, ...]:
        return tuple(self.stores[store])

    def entries(self) -> Iterator[tuple[StoreName, StoredCertificate]]:
        """Every certificate with its store, ``My``, ``Root``, ``CA`` in that order."""
        for name in STORE_NAMES:
            for entry in self.stores[name]:
                yield name, entry


__all__ = ["STORE_NAMES", "CertificateStores", "StoreName", "StoredCertificate"]
