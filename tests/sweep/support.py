"""Facts documents, certificates and fake WinRM sessions for sweep tests."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from orchestrator.credentials.secret import Credential
from orchestrator.facts import FACTS_BY_ROLE, FactsDocument
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import Invocation

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
_SECTIONS: dict[Role, tuple[str, ...]] = {
    Role.ENDPOINT: (
        "domain", "certificates", "vpn_connections", "phonebook_entries", "mdm_vpn_profiles", "routes",
        "ras_events", "mdm_events", "rasman",
    ),
    Role.RRAS: (
        "certificates", "auth_protocol", "ikev2_policy", "registry", "sstp_certificate_der", "services",
    ),
    Role.CA: (
        "ca_name", "ca_certificates", "certificates", "crls", "crl_schedule", "publication_urls", "services",
    ),
}  # fmt: skip


def facts_document(role: Role, name: str, **sections: Any) -> FactsDocument:
    """A valid probe document of ``role``: every section null (not collected) unless given."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "collected_at": "2026-03-01T02:00:00Z",
        "computer_name": name.upper()[:15],
        "fqdn": f"{name.lower()}.corp.contoso.test",
        "os": {"caption": "Windows", "build": 22631, "ubr": 1, "display_version": None, "edition_id": None},
        **dict.fromkeys(_SECTIONS[role]),
        **sections,
    }
    if role is Role.ENDPOINT:
        data.setdefault("part_of_domain", False)
    return FACTS_BY_ROLE[role].model_validate_json(json.dumps(data))  # strict: JSON as probes print it


def inventory_host(name: str, role: Role = Role.ENDPOINT, credential: str = "vault:admin") -> Host:
    return Host.model_validate({"name": name, "role": role, "address": "127.0.0.1", "credential": credential})


_KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


def certificate_b64(cn: str, cdp: tuple[str, ...] = ()) -> str:
    """A self-signed certificate naming ``cdp`` as CRL distribution points, base64 DER."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(int.from_bytes(cn.encode()[:8].ljust(8, b"."), "big"))
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=365))
    )
    if cdp:
        points = [x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in cdp]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    return base64.b64encode(builder.sign(_KEY, None).public_bytes(Encoding.DER)).decode()


def crl_bytes(encoding: Encoding = Encoding.DER) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(T0)
        .next_update(T0 + timedelta(days=7))
    )
    return builder.sign(_KEY, None).public_bytes(encoding)


@dataclass
class FakeResult:
    value: Any
    errors: tuple[str, ...] = ()


class FakeSessions:
    """A session factory: ``behaviour(host)`` returns the document or raises; counts concurrency."""

    def __init__(self, behaviour: Callable[[Host, Invocation[Any]], Any]) -> None:
        self.behaviour = behaviour
        self.opened: list[str] = []
        self.credentials: dict[str, Credential] = {}
        self.deadlines: set[float] = set()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, host: Host, credential: Credential, deadline_s: float) -> Iterator[FakeSession]:
        with self._lock:
            self.opened.append(host.name)
            self.credentials[host.name] = credential
            self.deadlines.add(deadline_s)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            yield FakeSession(self, host)
        finally:
            with self._lock:
                self.active -= 1


@dataclass
class FakeSession:
    sessions: FakeSessions
    host: Host

    def run(self, invocation: Invocation[Any], /) -> FakeResult:
        return FakeResult(self.sessions.behaviour(self.host, invocation))
