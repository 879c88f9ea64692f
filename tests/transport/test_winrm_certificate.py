"""``auth: certificate`` through pypsrp's real client-certificate path (mutual TLS + mutual header).

The lab has no certificate authentication yet, so :class:`CertificateGateway` plays the
listener's certificate mapping in front of a lab host (see its module docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import FleetConfig, HostConfig, Lab
from lab.config import LAB_PASSWORD, LAB_USERNAME
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.errors import AuthFailedError, TLSError
from orchestrator.inventory.models import Host
from orchestrator.scripts import DIAG_ECHO, HOST_INFO
from orchestrator.transport.winrm import WinRMSession
from tests.transport.certgateway import CertificateGateway, GatewayPki, make_pki

KEY_PASSPHRASE = "Client-Key-Passphrase"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    # Basic over HTTP from the gateway only: the gateway is the listener's certificate mapping.
    with Lab(FleetConfig(hosts=(HostConfig(name="EP-CERT", allow_unencrypted=True),))) as running:
        yield running


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GatewayPki:
    return make_pki(tmp_path_factory.mktemp("pki"), client_name="svc-fleetfix", key_passphrase=KEY_PASSPHRASE)


@pytest.fixture
def gateway(lab: Lab, pki: GatewayPki) -> Iterator[CertificateGateway]:
    endpoint = lab.info.endpoint("EP-CERT")
    assert endpoint.http_port is not None
    accounts = {"svc-fleetfix": (LAB_USERNAME, LAB_PASSWORD)}
    with CertificateGateway(pki, (endpoint.address, endpoint.http_port), accounts) as running:
        yield running


def certificate_host(gateway: CertificateGateway, pki: GatewayPki, **winrm: object) -> Host:
    settings = {
        "transport": "https",
        "port": gateway.port,
        "auth": "certificate",
        "ca_bundle": str(pki.ca_bundle),
        "client_certificate": str(pki.client_certificate),
        "client_key": str(pki.client_key),
    } | winrm
    return Host.model_validate(
        {
            "name": "EP-CERT",
            "role": "endpoint",
            "address": "127.0.0.1",
            "winrm": settings,
            "credential": "vault:cert",
        }
    )


# For certificate auth the credential's secret is the passphrase of the client key.
KEY_CREDENTIAL = Credential("svc-fleetfix", Secret(KEY_PASSPHRASE))


def test_certificate_auth_runs_probes(lab: Lab, gateway: CertificateGateway, pki: GatewayPki) -> None:
    with WinRMSession(certificate_host(gateway, pki), KEY_CREDENTIAL) as session:
        assert session.run(HOST_INFO.bind()).value.computer_name == "EP-CERT"
        assert session.run(DIAG_ECHO.bind(Value="mutual")).value.value == "mutual"
    assert lab.stats("EP-CERT")["Create"] >= 1


def test_certificate_from_an_unknown_ca_is_a_tls_error(
    gateway: CertificateGateway, pki: GatewayPki, tmp_path: Path
) -> None:
    other = make_pki(tmp_path, client_name="svc-fleetfix", key_passphrase=KEY_PASSPHRASE)
    host = certificate_host(
        gateway, pki, client_certificate=str(other.client_certificate), client_key=str(other.client_key)
    )
    with pytest.raises(TLSError), WinRMSession(host, KEY_CREDENTIAL):
        pass


@pytest.fixture
def unmapped_gateway(lab: Lab, pki: GatewayPki) -> Iterator[CertificateGateway]:
    """A gateway that trusts the client certificate but maps it to no account."""
    endpoint = lab.info.endpoint("EP-CERT")
    assert endpoint.http_port is not None
    with CertificateGateway(pki, (endpoint.address, endpoint.http_port), accounts={}) as running:
        yield running


def test_certificate_mapped_to_no_account_is_an_auth_failure(
    unmapped_gateway: CertificateGateway, pki: GatewayPki
) -> None:
    host = certificate_host(unmapped_gateway, pki)
    with (
        pytest.raises(AuthFailedError, match="certificate authentication"),
        WinRMSession(host, KEY_CREDENTIAL),
    ):
        pass


def test_wrong_key_passphrase_is_a_tls_error_without_the_passphrase(
    gateway: CertificateGateway, pki: GatewayPki
) -> None:
    wrong = Credential("svc-fleetfix", Secret("Not-The-Passphrase"))
    with pytest.raises(TLSError) as caught, WinRMSession(certificate_host(gateway, pki), wrong):
        pass
    assert "Not-The-Passphrase" not in str(caught.value)
