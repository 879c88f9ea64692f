"""Fault paths: the tenant in a child process, TLS trust, slow answers, 429 without Retry-After,
and the certificate assertion forms Entra accepts and refuses."""

from __future__ import annotations

import ssl
import time

import httpx
import jwt
import pytest

from lab.graph import AppCertificate, Faults, TenantConfig, TenantLab, TenantProcess, numbered_devices
from lab.graph.entra import ASSERTION_TYPE
from orchestrator.errors import TimedOutError, TLSError
from orchestrator.transport.graph import GraphClient, IntuneClient
from orchestrator.transport.graph.auth import certificate_credential
from tests.graph.support import CERT_APP, CERT_PASSWORD, SECRET_APP, apps, graph_client, intune, token_source


def test_tenant_in_a_child_process(app_cert: AppCertificate) -> None:
    config = TenantConfig(apps=apps(app_cert), devices=numbered_devices(30), page_size=7, sync_delay_s=0.05)
    with TenantProcess(config) as tenant:
        client = intune(tenant.info)
        assert len(list(client.managed_devices())) == 30
        assert client.sync_devices(["dev-0001", "dev-0002"]).synced == ("dev-0001", "dev-0002")
        assert tenant.control.writes() == {("syncDevice", "dev-0001"): 1, ("syncDevice", "dev-0002"): 1}
    with pytest.raises(RuntimeError, match="not running"):
        _ = tenant.info


def test_untrusted_certificate_is_a_tls_error(tenant: TenantLab) -> None:
    foreign = ssl.create_default_context()  # the system store does not know the lab CA
    tokens = token_source(tenant.info)
    client = GraphClient(httpx.Client(verify=foreign), tokens, base_url=tenant.info.base_url)
    with pytest.raises(TLSError, match="TLS handshake failed"):
        client.request("GET", "/deviceManagement/managedDevices", params={"$top": "1"})


def test_slow_answers_time_out(app_cert: AppCertificate) -> None:
    from tests.graph.support import make_tenant_config  # noqa: PLC0415

    with TenantLab(make_tenant_config(app_cert)) as lab:
        tokens = token_source(lab.info)
        tokens.token()  # a token before the tenant slows down
        client = intune(lab.info, tokens=tokens, timeout=httpx.Timeout(5.0, read=0.3))
        lab.control.set_faults(Faults(latency_ms=600))
        started = time.monotonic()
        with pytest.raises(TimedOutError, match="ReadTimeout"):
            client.managed_device("dev-0001")
        assert time.monotonic() - started < 2.0


def test_429_without_retry_after_backs_off(app_cert: AppCertificate) -> None:
    from lab.graph import BucketLimits, Limits  # noqa: PLC0415
    from tests.graph.support import make_tenant_config  # noqa: PLC0415

    limits = Limits(
        devices=BucketLimits(write_per_app=2, any_per_app=50, write_per_tenant=50, any_per_tenant=50)
    )
    faults = Faults(omit_retry_after=True)
    with TenantLab(make_tenant_config(app_cert, limits=limits, time_scale=0.01, faults=faults)) as lab:
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(seconds)

        client = IntuneClient(graph_client(lab.info, sleep=sleep))
        for device in ("dev-0001", "dev-0002", "dev-0003", "dev-0004"):
            client.sync_device(device)
        assert client.graph.stats.throttled >= 1
        assert sleeps  # exponential backoff stood in for the missing Retry-After
        assert all(count == 1 for count in lab.control.writes().values())


def _assertion(app_cert: AppCertificate, audience: str, *, thumbprint: str, expires_in: int = 600) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

    data = app_cert.pem_path.read_bytes()
    key = load_pem_private_key(data[: data.index(b"-----BEGIN CERTIFICATE")], CERT_PASSWORD.encode())
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": CERT_APP,
        "sub": CERT_APP,
        "exp": now + expires_in,
        "nbf": now,
        "jti": "x",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": thumbprint})  # type: ignore[arg-type]


def test_entra_checks_every_part_of_the_assertion(tenant: TenantLab, app_cert: AppCertificate) -> None:
    import base64  # noqa: PLC0415

    endpoint = f"{tenant.info.authority}/oauth2/v2.0/token"
    x5t = base64.urlsafe_b64encode(
        bytes.fromhex(app_cert.sha1_thumbprint)
    ).decode()  # padded, as msal sends it
    http = httpx.Client(verify=ssl.create_default_context(cafile=str(tenant.info.ca_bundle)))

    def post(assertion: str) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": CERT_APP,
            "scope": f"{tenant.info.base_url}/.default",
        }
        return http.post(
            endpoint, data=form | {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        )

    assert post(_assertion(app_cert, endpoint, thumbprint=x5t)).status_code == 200  # RS256 + SHA-1 x5t
    cases = {
        "wrong audience": _assertion(app_cert, "https://elsewhere/token", thumbprint=x5t),
        "expired": _assertion(app_cert, endpoint, thumbprint=x5t, expires_in=-120),
        "other thumbprint": _assertion(app_cert, endpoint, thumbprint="AAAA"),
        "not a JWT": "garbage",
    }
    for case, assertion in cases.items():
        answer = post(assertion)
        assert answer.status_code == 401, case
        assert answer.json()["error"] == "invalid_client", case


def test_rs256_thumbprint_credential_through_msal(tenant: TenantLab, app_cert: AppCertificate) -> None:
    credential = certificate_credential(app_cert.pem_path, CERT_PASSWORD)
    legacy = {
        "private_key": credential["private_key"],
        "thumbprint": app_cert.sha1_thumbprint,
        "passphrase": CERT_PASSWORD,
    }
    assert token_source(tenant.info, CERT_APP, legacy).token()
    assert token_source(tenant.info, SECRET_APP).token()
