"""pypsrp WSMan settings from inventory hosts: auth per host, TLS validation, encryption, no secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pypsrp.wsman import WSMan

from orchestrator.errors import InputError
from orchestrator.inventory.models import Host, Transport, WinRMAuth
from orchestrator.transport.winrm.options import wsman_options
from orchestrator.transport.winrm.policy import DEFAULT_POLICY, TransportPolicy


def host(**winrm: Any) -> Host:
    return Host.model_validate(
        {"name": "ep-001", "role": "endpoint", "address": "10.1.2.3", "winrm": winrm, "credential": "vault:x"}
    )


def test_defaults_are_https_negotiate_with_system_trust() -> None:
    options = wsman_options(host(), "CORP\\svc", DEFAULT_POLICY)
    assert dict(options.kwargs) == {
        "server": "10.1.2.3",
        "port": 5986,
        "ssl": True,
        "path": "wsman",
        "auth": "negotiate",
        "username": "CORP\\svc",
        "cert_validation": True,
        "encryption": "auto",
        "connection_timeout": 10.0,
        "read_timeout": 30.0,
        "operation_timeout": 20.0,
        "reconnection_retries": 1,
        "reconnection_backoff": 0.5,
        "no_proxy": True,
    }
    assert options.secret_kwarg == "password"
    assert options.endpoint == "https://10.1.2.3:5986/wsman"


def test_ca_bundle_is_what_the_listener_is_validated_against(tmp_path: Path) -> None:
    bundle = tmp_path / "corp-root.pem"
    options = wsman_options(host(ca_bundle=str(bundle)), "u", DEFAULT_POLICY)
    assert options.kwargs["cert_validation"] == str(bundle)
    skipped = wsman_options(host(ca_bundle=str(bundle), cert_validation=False), "u", DEFAULT_POLICY)
    assert skipped.kwargs["cert_validation"] is False


@pytest.mark.parametrize("auth", ["ntlm", "negotiate", "kerberos", "credssp"])
def test_plain_http_with_a_sealing_auth_uses_message_encryption(auth: str) -> None:
    options = wsman_options(host(transport="http", auth=auth), "u", DEFAULT_POLICY)
    assert options.kwargs["auth"] == auth  # passed through to pypsrp as is
    assert options.kwargs["encryption"] == "auto"  # pypsrp: auto over http = wrap every message
    assert options.kwargs["port"] == 5985
    assert options.endpoint == "http://10.1.2.3:5985/wsman"


def test_basic_over_http_only_when_the_inventory_allows_it() -> None:
    allowed = wsman_options(host(transport="http", auth="basic", allow_unencrypted=True), "u", DEFAULT_POLICY)
    assert allowed.kwargs["encryption"] == "never"
    # A Host built in code without the loader's validation still cannot send a password in clear.
    unsafe = host().model_copy(
        update={
            "winrm": host().winrm.model_copy(update={"transport": Transport.HTTP, "auth": WinRMAuth.BASIC})
        }
    )
    with pytest.raises(InputError, match="in the clear"):
        wsman_options(unsafe, "u", DEFAULT_POLICY)


def test_basic_over_https_relies_on_tls() -> None:
    options = wsman_options(host(auth="basic"), "u", DEFAULT_POLICY)
    assert options.kwargs["encryption"] == "auto"
    assert options.kwargs["ssl"] is True


def test_certificate_auth_sends_the_client_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    options = wsman_options(
        host(auth="certificate", client_certificate=str(cert), client_key=str(key)), "u", DEFAULT_POLICY
    )
    assert options.kwargs["certificate_pem"] == str(cert)
    assert options.kwargs["certificate_key_pem"] == str(key)
    assert options.secret_kwarg == "certificate_key_password"


def test_certificate_auth_needs_both_files() -> None:
    with pytest.raises(ValueError, match="client_certificate and client_key"):
        host(auth="certificate", client_certificate="c.pem")


def test_policy_sets_retries_and_proxy_use() -> None:
    policy = TransportPolicy(reconnection_retries=3, reconnection_backoff_s=0.2, use_proxy=True)
    options = wsman_options(host(), "u", policy)
    assert options.kwargs["reconnection_retries"] == 3
    assert options.kwargs["reconnection_backoff"] == 0.2
    assert options.kwargs["no_proxy"] is False


def test_ipv6_endpoint_is_bracketed() -> None:
    assert wsman_options(host().model_copy(update={"address": "fd00::5"}), "u", DEFAULT_POLICY).endpoint == (
        "https://[fd00::5]:5986/wsman"
    )


@pytest.mark.parametrize(
    "winrm",
    [
        {},
        {"transport": "http", "auth": "ntlm"},
        {"transport": "http", "auth": "basic", "allow_unencrypted": True},
        {"auth": "kerberos"},
        {"auth": "certificate", "client_certificate": "c.pem", "client_key": "k.pem"},
    ],
)
def test_pypsrp_accepts_every_combination(winrm: dict[str, Any]) -> None:
    # pypsrp checks auth/encryption combinations when the client is built (no I/O happens here).
    options = wsman_options(host(**winrm), "u", DEFAULT_POLICY)
    client = WSMan(**{**options.kwargs, options.secret_kwarg: "not-a-real-secret"})
    assert client.transport.auth == options.kwargs["auth"]
    assert "not-a-real-secret" not in repr(dict(options.kwargs))
