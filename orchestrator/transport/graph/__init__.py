"""Microsoft Graph and Intune: msal for tokens, httpx for HTTP, a shared budget for Intune's limits.

Entry points (what collectors, checks and actions call)::

    from orchestrator.transport.graph import open_intune

    with open_intune(settings, vault=vault) as intune:     # IntuneClient
        for device in intune.managed_devices(): ...
        intune.sync_devices(ids)                            # $batch, throttled items retried
        intune.set_vpn_routes(profile_id, routes)

Modules: :mod:`.client` (request loop, paging, ``$batch``), :mod:`.auth` (msal, credentials),
:mod:`.budget` (per-tenant request budget, in-process or Redis), :mod:`.policy` (retry, errors,
batch splitting), :mod:`.intune` (typed Intune operations), :mod:`.profilexml` (routes and
ProfileXML), :mod:`.translate` (httpx exceptions).  The design is in ``docs/graph.md``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from orchestrator.config import Settings
from orchestrator.credentials.vault import Vault
from orchestrator.errors import ConfigError
from orchestrator.transport.graph.auth import MsalTokenSource, TokenSource, client_credential
from orchestrator.transport.graph.budget import BudgetLimits, RequestBudget, budget_for
from orchestrator.transport.graph.client import BatchItem, BatchResult, GraphClient, GraphResponse, GraphStats
from orchestrator.transport.graph.intune import IntuneClient, ManagedDevice, NativeVpnProfile, SyncReport
from orchestrator.transport.graph.policy import RetryPolicy
from orchestrator.transport.graph.profilexml import VpnRoute

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """An explicit context: immune to REQUESTS_CA_BUNDLE/SSL_CERT_FILE, which would override it."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


def token_source(
    settings: Settings, *, vault: Vault | None = None, environ: Mapping[str, str] | None = None
) -> MsalTokenSource:
    """msal for the configured app, with its own loopback-safe HTTP client."""
    graph = settings.graph
    if not graph.tenant_id or not graph.client_id:
        raise ConfigError("Graph is not configured: set graph.tenant_id and graph.client_id", field="graph")
    credential = client_credential(
        client_secret=graph.client_secret,
        certificate=graph.certificate,
        certificate_password=graph.certificate_password,
        vault=vault,
        environ=environ,
    )
    ca = str(graph.ca_bundle) if graph.ca_bundle else None
    return MsalTokenSource(
        client_id=graph.client_id,
        authority=f"{graph.authority.rstrip('/')}/{graph.tenant_id}",
        credential=credential,
        scope=f"{graph.graph_url.rstrip('/')}/.default",
        http=httpx.Client(verify=tls_context(ca), timeout=DEFAULT_TIMEOUT),
    )


def open_graph(
    settings: Settings,
    *,
    vault: Vault | None = None,
    tokens: TokenSource | None = None,
    http: httpx.Client | None = None,
    budget: RequestBudget | None = None,
    limits: BudgetLimits | None = None,
    retry: RetryPolicy | None = None,
) -> GraphClient:
    """A :class:`GraphClient` for the configured tenant; every part may be injected instead."""
    graph = settings.graph
    ca = str(graph.ca_bundle) if graph.ca_bundle else None
    return GraphClient(
        http or httpx.Client(verify=tls_context(ca), timeout=DEFAULT_TIMEOUT),
        tokens or token_source(settings, vault=vault),
        base_url=graph.graph_url,
        budget=budget or budget_for(graph.tenant_id or "default", settings.broker_url, limits),
        retry=retry,
    )


@contextmanager
def open_intune(
    settings: Settings,
    *,
    vault: Vault | None = None,
    tokens: TokenSource | None = None,
    budget: RequestBudget | None = None,
    retry: RetryPolicy | None = None,
) -> Iterator[IntuneClient]:
    """An :class:`IntuneClient` over :func:`open_graph`, closed on exit."""
    client = open_graph(settings, vault=vault, tokens=tokens, budget=budget, retry=retry)
    try:
        yield IntuneClient(client)
    finally:
        client.close()


__all__ = [
    "BatchItem",
    "BatchResult",
    "BudgetLimits",
    "GraphClient",
    "GraphResponse",
    "GraphStats",
    "IntuneClient",
    "ManagedDevice",
    "NativeVpnProfile",
    "RetryPolicy",
    "SyncReport",
    "VpnRoute",
    "open_graph",
    "open_intune",
    "tls_context",
    "token_source",
]
