"""Client-certificate authentication in front of a lab host (the lab does not simulate it yet).

WinRM's certificate auth is mutual TLS: the client presents a certificate in the handshake and
sends ``Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual``;
the listener maps the certificate to a local account.  :class:`CertificateGateway` does exactly
that on loopback -- it requires a client certificate from its own CA, checks the header, maps the
certificate's subject to a lab account -- and forwards each request to the lab host's plain-HTTP
listener with that account's Basic credentials.  So the real pypsrp certificate path (client
certificate and encrypted key through urllib3, the mutual header) runs over real sockets.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
_START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
_END = datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class GatewayPki:
    """Files of the gateway's PKI: the CA clients trust, the gateway's chain, one client identity."""

    ca_bundle: Path
    server_chain: Path
    client_certificate: Path
    client_key: Path  # encrypted with the passphrase given to make_pki


def make_pki(directory: Path, *, client_name: str, key_passphrase: str) -> GatewayPki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetfix test gateway CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        _builder(_cn("127.0.0.1"), ca_name, server_key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        _builder(_cn(client_name), ca_name, client_key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = GatewayPki(
        directory / "gateway-ca.pem",
        directory / "gateway.pem",
        directory / "client.pem",
        directory / "client.key",
    )
    pki.ca_bundle.write_bytes(_pem(ca))
    pki.server_chain.write_bytes(_pem(server) + _key_pem(server_key, None))
    pki.client_certificate.write_bytes(_pem(client))
    pki.client_key.write_bytes(_key_pem(client_key, key_passphrase.encode()))
    return pki


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_START)
        .not_valid_after(_END)
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


class CertificateGateway:
    """HTTPS on 127.0.0.1 with mandatory client certificates, forwarding to a lab HTTP listener.

    ``accounts`` maps a certificate's subject CN to the (username, password) it logs in as.
    """

    def __init__(
        self, pki: GatewayPki, upstream: tuple[str, int], accounts: Mapping[str, tuple[str, str]]
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_chain)
        context.load_verify_locations(cafile=pki.ca_bundle)
        context.verify_mode = ssl.CERT_REQUIRED
        handler = type("Handler", (_Handler,), {"upstream": upstream, "accounts": dict(accounts)})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="cert-gateway", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pypsrp expects
    upstream: tuple[str, int]
    accounts: dict[str, tuple[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        account = self._mapped_account()
        if account is None or self.headers.get("Authorization") != MUTUAL:
            self._answer(401, b"", "text/plain")
            return
        basic = base64.b64encode(f"{account[0]}:{account[1]}".encode()).decode()
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {
                "Content-Type": self.headers.get("Content-Type", ""),
                "Authorization": f"Basic {basic}",
            }
            upstream.request("POST", self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self._answer(response.status, response.read(), response.getheader("Content-Type", "text/plain"))
        finally:
            upstream.close()

    def _mapped_account(self) -> tuple[str, str] | None:
        assert isinstance(self.connection, ssl.SSLSocket)
        # CERT_REQUIRED: the handshake verified the certificate, so its DER is there to read.
        der = self.connection.getpeercert(binary_form=True)
        if der is None:
            return None
        subject = x509.load_der_x509_certificate(der).subject
        names = [attribute.value for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        name = names[0] if names else None
        return self.accounts.get(name) if isinstance(name, str) else None

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
