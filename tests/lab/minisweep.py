"""A sweep without WinRM: the lab handlers' documents, the tenant's Graph view and the CDP copies
assembled into ``FleetFacts``, run through the product's checks.

Truth (:mod:`lab.estate.truth`) and the checks are written independently; comparing them on the
same estate proves both, and is the same comparison the sweep makes over the wire.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from lab.estate.build import BuiltEstate
from lab.estate.pki import cdp_urls
from lab.graph.profiles import NATIVE_TYPE, delivered
from lab.graph.state import TenantState
from lab.handlers.ca import ca_facts
from lab.handlers.endpoint import endpoint_facts
from lab.handlers.rras import rras_facts
from lab.psjson import to_json
from lab.windows.certstore import CertificateStores
from orchestrator.checks import Finding, run_checks
from orchestrator.facts import FleetFacts

HANDLERS = {"endpoint": endpoint_facts, "rras": rras_facts, "ca": ca_facts}


def _hosts(built: BuiltEstate) -> list[dict[str, Any]]:
    return [
        {"name": state.name, "role": state.role, "facts": json.loads(to_json(HANDLERS[state.role](state)))}
        for state in sorted(built.estate.hosts.values(), key=lambda item: item.name)
    ]


def _crls(built: BuiltEstate, now: datetime.datetime) -> list[dict[str, Any]]:
    """Every CDP URL named by a certificate any host holds, fetched from the estate."""
    urls: set[str] = set()
    for state in built.estate.hosts.values():
        stores = state.find(CertificateStores)
        for _store, entry in stores.entries() if stores else ():
            urls.update(cdp_urls(entry.certificate))
    fetched = []
    for url in sorted(urls):
        crl = built.estate.crl_at(url)
        stamp = now.isoformat()
        if crl is None:
            fetched.append({"url": url, "error": "HTTP 404", "fetched_at": stamp})
        else:
            fetched.append({"url": url, "der": base64.b64encode(crl.der).decode(), "fetched_at": stamp})
    return fetched


def _tenant(tenant: TenantState, now: datetime.datetime) -> dict[str, Any]:
    profiles = []
    for profile_id, profile in tenant.profiles.items():
        statuses = [
            {
                "device_name": d.json["deviceName"],
                "status": tenant.device_status(d, profile_id),
                "last_reported": None,
            }
            for d in tenant.assigned_devices(profile_id)
        ]
        native = profile["@odata.type"] == NATIVE_TYPE
        xml = [] if native else [
            {"oma_uri": s["omaUri"], "scope": "device" if "/Device/" in s["omaUri"] else "user",
             "name": item.name, "xml": item.profile_xml, "error": None}
            for s, item in zip(profile["omaSettings"], delivered(profile, tenant.secrets), strict=True)
        ]  # fmt: skip
        profiles.append(
            {
                "id": profile_id,
                "display_name": profile["displayName"],
                "kind": "native" if native else "custom",
                "connection_name": profile.get("connectionName"),
                "routes": [{"destination_prefix": r["destinationPrefix"], "prefix_size": r["prefixSize"]}
                           for r in profile.get("routes", [])],
                "profile_xml": xml,
                "assigned": bool(tenant.assignments.get(profile_id)),
                "device_statuses": statuses,
            }
        )  # fmt: skip
    devices = [
        {"id": d.id, "device_name": d.json["deviceName"], "azure_ad_device_id": d.json["azureADDeviceId"],
         "os_version": d.json["osVersion"], "last_sync": d.json["lastSyncDateTime"]}
        for d in tenant.devices.values()
    ]  # fmt: skip
    return {
        "schema_version": 1,
        "collected_at": now.isoformat(),
        "devices": devices,
        "vpn_profiles": profiles,
    }


def fleet_facts(built: BuiltEstate, now: datetime.datetime) -> FleetFacts:
    data: dict[str, Any] = {"hosts": _hosts(built), "crls": _crls(built, now)}
    if built.tenant_state is not None:
        data["tenant"] = _tenant(built.tenant_state, now)
    return FleetFacts.from_json_data(data)


def sweep(built: BuiltEstate, now: datetime.datetime) -> tuple[Finding, ...]:
    return run_checks(fleet_facts(built, now), at=now)


def keys(findings: Any) -> set[tuple[str, str, str, str]]:
    return {(f.host, f.check_id, f.subject, f.reason) for f in findings}
