"""Helpers for the Graph tests: tenant configs and product clients wired to a lab tenant."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from lab.graph import (
    AppCertificate,
    AppRegistration,
    CustomVpnProfile,
    Device,
    NativeVpnProfile,
    Route,
    TenantConfig,
    TenantInfo,
    numbered_devices,
)
from lab.graph.config import ROLE_CONFIG_READ, ROLE_DEVICES_READ
from orchestrator.transport.graph import BudgetLimits, GraphClient, IntuneClient, RetryPolicy
from orchestrator.transport.graph.auth import ClientCredential, MsalTokenSource, certificate_credential
from orchestrator.transport.graph.budget import LocalBudget, RequestBudget

SECRET = "lab-app-secret-0123456789"  # lab material, loopback only
CERT_PASSWORD = "lab-pfx-password"
SECRET_APP = "11111111-1111-1111-1111-111111111111"
CERT_APP = "22222222-2222-2222-2222-222222222222"
READER_APP = "33333333-3333-3333-3333-333333333333"
NATIVE_ID = "vpn-native"
CUSTOM_ID = "vpn-custom"
OLD_WIN11 = "dev-old"  # Windows 11 21H2 before KB5008353
PROFILE_XML = (
    "<VPNProfile><NativeProfile><Servers>vpn.contoso.example</Servers>"
    "<NativeProtocolType>IKEv2</NativeProtocolType><RoutingPolicyType>SplitTunnel</RoutingPolicyType>"
    "</NativeProfile><Route><Address>10.0.0.0</Address><PrefixSize>8</PrefixSize></Route>"
    "<Route><Address>172.21.12.0</Address><PrefixSize>21</PrefixSize></Route></VPNProfile>"
)
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay_s=0.05, max_delay_s=0.5)


def apps(cert: AppCertificate) -> tuple[AppRegistration, ...]:
    return (
        AppRegistration(client_id=SECRET_APP, secret=SECRET),
        AppRegistration(client_id=CERT_APP, certificate_pem=cert.certificate_pem),
        AppRegistration(client_id=READER_APP, secret=SECRET, roles=(ROLE_DEVICES_READ, ROLE_CONFIG_READ)),
    )


def make_tenant_config(cert: AppCertificate, **overrides: Any) -> TenantConfig:
    devices = (*numbered_devices(24), Device(id=OLD_WIN11, device_name="EP-OLD", os_version="10.0.22000.318"))
    profiles = (
        NativeVpnProfile(id=NATIVE_ID, routes=(Route(destination_prefix="10.0.0.0", prefix_size=8),)),
        CustomVpnProfile(
            id=CUSTOM_ID,
            oma_uri="./User/Vendor/MSFT/VPNv2/Contoso%20User%20Tunnel/ProfileXML",
            profile_xml=PROFILE_XML,
        ),
    )
    values: dict[str, Any] = {"apps": apps(cert), "devices": devices, "profiles": profiles, "page_size": 10}
    return TenantConfig(**(values | overrides))


def tls(info: TenantInfo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(info.ca_bundle))


def token_source(
    info: TenantInfo, client_id: str = SECRET_APP, credential: ClientCredential = SECRET, **kwargs: Any
) -> MsalTokenSource:
    return MsalTokenSource(
        client_id=client_id,
        authority=info.authority,
        credential=credential,
        scope=f"{info.base_url}/.default",
        http=httpx.Client(verify=tls(info), timeout=30),
        **kwargs,
    )


def cert_credential(cert: AppCertificate, *, pfx: bool = False) -> ClientCredential:
    path: Path = cert.pfx_path if pfx else cert.pem_path
    return certificate_credential(path, CERT_PASSWORD)


def graph_client(
    info: TenantInfo,
    *,
    tokens: MsalTokenSource | None = None,
    budget: RequestBudget | None = None,
    retry: RetryPolicy = FAST_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    **http: Any,
) -> GraphClient:
    return GraphClient(
        httpx.Client(verify=tls(info), **({"timeout": 30.0} | http)),
        tokens or token_source(info),
        base_url=info.base_url,
        budget=budget,
        retry=retry,
        sleep=sleep,
    )


def intune(info: TenantInfo, **kwargs: Any) -> IntuneClient:
    return IntuneClient(graph_client(info, **kwargs))


def scaled_budget(window_s: float, **limits: int) -> LocalBudget:
    return LocalBudget(BudgetLimits(window_s=window_s, **limits))
