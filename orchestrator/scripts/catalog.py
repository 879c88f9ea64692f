"""Every script fleetfix ships, by id: kind, parameters and output schema.

Adding a script means three things that the contract tests check together: the ``.ps1`` file in
this package (header ``# fleetfix-script: <id>``), a :class:`ScriptSpec` here whose parameters
match the script's ``param()`` block, and a lab handler that prints what the schema accepts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from orchestrator.errors import InputError
from orchestrator.facts.ca import CaFacts
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.inventory.models import Role
from orchestrator.scripts.action_schemas import (
    CertPulseResult,
    ImportCertificateResult,
    PublishCrlResult,
    RemoveCertificateResult,
    RestartServiceResult,
    SetRootCertResult,
    SetVpnRouteResult,
)
from orchestrator.scripts.schemas import DiagEcho, HostInfo
from orchestrator.scripts.spec import ParamSpec, ParamType, ScriptKind, ScriptSpec

DIAG_ECHO = ScriptSpec(
    "diag.echo", ScriptKind.PROBE, DiagEcho, params=(ParamSpec("Value", ParamType.STRING),)
)
HOST_INFO = ScriptSpec("host.info", ScriptKind.PROBE, HostInfo)

# The fact probes: one per host role, each gathering everything in one session (docs/facts.md).
ENDPOINT_FACTS = ScriptSpec(
    "endpoint.facts",
    ScriptKind.PROBE,
    EndpointFacts,
    params=(ParamSpec("EventDays", ParamType.INT), ParamSpec("MaxEvents", ParamType.INT)),
)
RRAS_FACTS = ScriptSpec("rras.facts", ScriptKind.PROBE, RrasFacts)
CA_FACTS = ScriptSpec("ca.facts", ScriptKind.PROBE, CaFacts)

FACT_PROBES: Mapping[Role, ScriptSpec[Any]] = MappingProxyType(
    {Role.ENDPOINT: ENDPOINT_FACTS, Role.RRAS: RRAS_FACTS, Role.CA: CA_FACTS}
)
"""The probe that collects a host's facts, by the host's role."""

# The endpoint action scripts: each reads the current state first and changes nothing when it is right.
SET_VPN_ROUTE = ScriptSpec(
    "endpoint.set-vpn-route",
    ScriptKind.ACTION,
    SetVpnRouteResult,
    params=(
        ParamSpec("ConnectionName", ParamType.STRING, required=True),
        ParamSpec("OldPrefix", ParamType.STRING, required=True),
        ParamSpec("NewPrefix", ParamType.STRING, required=True),
        ParamSpec("AllUserConnection", ParamType.BOOL),
    ),
)
IMPORT_CERTIFICATE = ScriptSpec(
    "endpoint.import-certificate",
    ScriptKind.ACTION,
    ImportCertificateResult,
    params=(
        ParamSpec("Store", ParamType.STRING, required=True),
        ParamSpec("CertificateBase64", ParamType.STRING, required=True),
    ),
)
REMOVE_CERTIFICATE = ScriptSpec(
    "endpoint.remove-certificate",
    ScriptKind.ACTION,
    RemoveCertificateResult,
    params=(
        ParamSpec("Store", ParamType.STRING, required=True),
        ParamSpec("Thumbprint", ParamType.STRING, required=True),
    ),
)
CERT_PULSE = ScriptSpec(
    "endpoint.cert-pulse",
    ScriptKind.ACTION,
    CertPulseResult,
    params=(ParamSpec("NotBefore", ParamType.STRING, required=True),),
)
ENDPOINT_ACTIONS: tuple[ScriptSpec[Any], ...] = (
    SET_VPN_ROUTE,
    IMPORT_CERTIFICATE,
    REMOVE_CERTIFICATE,
    CERT_PULSE,
)

# The RRAS and CA action scripts (orchestrator/actions/server.py); NotBefore makes a retry a no-op.
SET_ROOT_CERT = ScriptSpec(
    "rras.set-root-cert",
    ScriptKind.ACTION,
    SetRootCertResult,
    params=(ParamSpec("Thumbprint", ParamType.STRING, required=True),),
)
RESTART_SERVICE = ScriptSpec(
    "rras.restart-service",
    ScriptKind.ACTION,
    RestartServiceResult,
    params=(ParamSpec("Name", ParamType.STRING, required=True), ParamSpec("NotBefore", ParamType.STRING)),
)
PUBLISH_CRL = ScriptSpec(
    "ca.publish-crl",
    ScriptKind.ACTION,
    PublishCrlResult,
    params=(ParamSpec("NotBefore", ParamType.STRING),),
)
SERVER_ACTIONS: tuple[ScriptSpec[Any], ...] = (SET_ROOT_CERT, RESTART_SERVICE, PUBLISH_CRL)

SHIPPED: tuple[ScriptSpec[Any], ...] = (
    DIAG_ECHO,
    HOST_INFO,
    ENDPOINT_FACTS,
    RRAS_FACTS,
    CA_FACTS,
    *ENDPOINT_ACTIONS,
    *SERVER_ACTIONS,
)
"""Every script spec, probes first; actions are added by family (one ``*FAMILY_ACTIONS`` line each)."""

CATALOG: Mapping[str, ScriptSpec[Any]] = MappingProxyType({spec.script_id: spec for spec in SHIPPED})


def get_script(script_id: str, *, kind: ScriptKind | None = None, field: str = "script") -> ScriptSpec[Any]:
    """The spec of ``script_id`` (of ``kind``, when given), or InputError naming the known ids.

    ``field`` is what the error names as the offending input (a command's argument name).
    """
    spec = CATALOG.get(script_id)
    if spec is not None and (kind is None or spec.kind is kind):
        return spec
    what = kind.value if kind is not None else "script"
    if spec is not None:
        raise InputError(f"{script_id} is a {spec.kind.value}; only {what}s are accepted here", field=field)
    known = sorted(sid for sid, item in CATALOG.items() if kind is None or item.kind is kind)
    close = difflib.get_close_matches(script_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"unknown {what} {script_id!r} (known: {', '.join(known)}){hint}", field=field)


__all__ = [
    "CATALOG",
    "CA_FACTS",
    "CERT_PULSE",
    "DIAG_ECHO",
    "ENDPOINT_ACTIONS",
    "ENDPOINT_FACTS",
    "FACT_PROBES",
    "HOST_INFO",
    "IMPORT_CERTIFICATE",
    "PUBLISH_CRL",
    "REMOVE_CERTIFICATE",
    "RESTART_SERVICE",
    "RRAS_FACTS",
    "SERVER_ACTIONS",
    "SET_ROOT_CERT",
    "SET_VPN_ROUTE",
    "get_script",
]
