"""Tokens from the lab's Entra ID through real msal: secret, certificate (PEM and PFX), caching,
refusals, an outage of the token endpoint, and a token that stops working mid-run."""

from __future__ import annotations

import httpx
import pytest

from lab.graph import AppCertificate, Faults, TenantLab
from orchestrator.errors import AuthFailedError, ForbiddenError, ProtocolError, ServiceError
from orchestrator.logs import redact
from orchestrator.transport.graph import IntuneClient
from orchestrator.transport.graph.auth import HttpxForMsal, MsalTokenSource
from orchestrator.transport.graph.translate import HostNotAllowed
from tests.graph.support import (
    CERT_APP,
    READER_APP,
    SECRET,
    SECRET_APP,
    cert_credential,
    graph_client,
    intune,
    tls,
    token_source,
)


def test_secret_token_is_cached_and_reused(tenant: TenantLab) -> None:
    tokens = token_source(tenant.info)
    client = IntuneClient(graph_client(tenant.info, tokens=tokens))
    devices = list(client.managed_devices())
    assert len(devices) == 25
    assert client.managed_device(devices[0].id) == devices[0]
    assert tokens.requests == 1  # three pages and one GET, one token
    assert redact(tokens.token()) == "********"  # the token is registered for redaction


@pytest.mark.parametrize("pfx", [False, True], ids=["pem", "pfx"])
def test_certificate_assertion(tenant: TenantLab, app_cert: AppCertificate, pfx: bool) -> None:
    tokens = token_source(tenant.info, CERT_APP, cert_credential(app_cert, pfx=pfx))
    assert [d.device_name for d in IntuneClient(graph_client(tenant.info, tokens=tokens)).managed_devices()][
        :2
    ] == [
        "EP-0001",
        "EP-0002",
    ]


def test_wrong_secret_and_unknown_app_are_auth_failures(tenant: TenantLab) -> None:
    with pytest.raises(AuthFailedError, match=r"invalid_client.*AADSTS7000215") as caught:
        token_source(tenant.info, credential="not-the-secret").token()
    assert caught.value.request_id  # Entra's trace id, for a support ticket
    with pytest.raises(AuthFailedError, match="AADSTS700016"):
        token_source(tenant.info, client_id="44444444-4444-4444-4444-444444444444").token()


def test_certificate_of_another_app_is_refused(tenant: TenantLab, app_cert: AppCertificate) -> None:
    tokens = token_source(tenant.info, SECRET_APP, cert_credential(app_cert))
    with pytest.raises(AuthFailedError, match="AADSTS700027"):
        tokens.token()


def test_missing_role_is_forbidden_with_request_id(tenant: TenantLab) -> None:
    client = intune(tenant.info, tokens=token_source(tenant.info, READER_APP))
    assert len(list(client.managed_devices())) == 25  # reading is allowed
    with pytest.raises(ForbiddenError, match="PrivilegedOperations") as caught:
        client.sync_device("dev-0001")
    assert caught.value.request_id is not None
    assert caught.value.to_dict()["request_id"] == caught.value.request_id


def test_token_revoked_mid_run_is_refreshed_once(tenant: TenantLab) -> None:
    tokens = token_source(tenant.info)
    client = graph_client(tenant.info, tokens=tokens)
    pages = client.iter_collection("/deviceManagement/managedDevices")
    first = [next(pages) for _ in range(10)]  # the first page
    tenant.control.revoke_tokens()
    rest = list(pages)  # the second page answers 401, a new token follows
    assert len(first) + len(rest) == 25
    assert client.stats.token_refreshes == 1
    assert tokens.requests == 2


def test_token_expiring_by_itself_mid_run(app_cert: AppCertificate) -> None:
    from tests.graph.support import make_tenant_config  # noqa: PLC0415

    # msal believes the token lasts an hour; the service stops honouring it after 1.5 s.
    with TenantLab(make_tenant_config(app_cert, token_validity_s=1.5)) as lab:
        tokens = token_source(lab.info)
        client = intune(lab.info, tokens=tokens)
        assert len(list(client.managed_devices())) == 25
        import time  # noqa: PLC0415

        time.sleep(1.6)
        assert len(list(client.managed_devices())) == 25
        assert tokens.requests == 2
        assert client.graph.stats.token_refreshes == 1


def test_token_endpoint_outage_is_waited_out(app_cert: AppCertificate) -> None:
    from tests.graph.support import make_tenant_config  # noqa: PLC0415

    with TenantLab(make_tenant_config(app_cert, faults=Faults(token_failures=2))) as lab:
        tokens = token_source(lab.info, sleep=lambda _: __import__("time").sleep(1.05))
        assert tokens.token()
        assert lab.control.state()["tokens_issued"] == 1


def test_token_endpoint_outage_that_lasts_fails_as_service_error(tenant: TenantLab) -> None:
    tenant.control.set_faults(Faults(token_failures=50))
    try:
        tokens = token_source(tenant.info, client_id=CERT_APP, credential="x" * 8, sleep=lambda _: None)
        with pytest.raises(ServiceError, match=r"503|temporarily"):
            tokens.token()
    finally:
        tenant.control.set_faults(Faults())


def test_no_request_leaves_the_configured_hosts(tenant: TenantLab) -> None:
    contacted: set[str] = set()
    http = httpx.Client(
        verify=tls(tenant.info), event_hooks={"request": [lambda request: contacted.add(request.url.host)]}
    )
    tokens = MsalTokenSource(
        client_id=SECRET_APP,
        authority=tenant.info.authority,
        credential=SECRET,
        scope=f"{tenant.info.base_url}/.default",
        http=http,
    )
    client = graph_client(tenant.info, tokens=tokens)
    assert len(list(client.iter_collection("/deviceManagement/managedDevices"))) == 25
    assert contacted == {"127.0.0.1"}  # no instance discovery, no region probe, no public cloud
    with pytest.raises(ProtocolError, match="refusing to follow"):
        client.request("GET", "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices")
    guard = HttpxForMsal(http, frozenset({"127.0.0.1"}))
    with pytest.raises(HostNotAllowed):
        guard.get("https://login.microsoftonline.com/common/discovery/instance")
    assert contacted == {"127.0.0.1"}
