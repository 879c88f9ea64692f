"""Intune intent against the devices: a profile assigned but missing on the device (EP-PROF-01,
cross-host), profile deployment errors (INT-PROF-01)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import fleet_check
from orchestrator.checks.routes import INTUNE_HOST
from orchestrator.checks.tunnels import present_profile_names
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.tenant import IntuneVpnProfile
from orchestrator.inventory.models import Role

NOT_TARGETED = frozenset({"notapplicable", "notassigned"})
FAILED = {"error": "error", "conflict": "conflict"}

EP_PROF_01 = CheckSpec(
    id="EP-PROF-01",
    title="VPN profile assigned in Intune but missing on the device",
    severity=Severity.HIGH,
    roles=(Role.ENDPOINT,),
    reasons={
        "missing_on_device": "Intune targets the device with the profile (or delivered its ProfileXML), "
        "but no VPN connection of that name exists",
    },
    playbook="intune-resync",
    cross_host=True,
)
INT_PROF_01 = CheckSpec(
    id="INT-PROF-01",
    title="VPN profile deployment failed on a device",
    severity=Severity.MEDIUM,
    roles=(),
    reasons={
        "error": "Intune reports the profile in error on the device",
        "conflict": "another profile sets the same VPN settings on the device",
    },
    advice="Read the device's DeviceManagement-Enterprise-Diagnostics-Provider/Admin event 404; fix the "
    "ProfileXML (Windows 11: element order, <Servers> listed twice, <MachineMethod> present), then sync.",
    cross_host=True,
)


def _endpoint_index(ctx: CheckContext) -> dict[str, tuple[str, EndpointFacts]]:
    """Endpoints by every name Intune may use for them (host name, NetBIOS name), case-folded."""
    index: dict[str, tuple[str, EndpointFacts]] = {}
    for host, facts in ctx.endpoints():
        for name in (host, facts.computer_name, facts.fqdn.split(".")[0]):
            index.setdefault(name.casefold(), (host, facts))
    return index


def _expected(ctx: CheckContext, facts: EndpointFacts, host: str) -> dict[str, list[str]]:
    """Profile names the device should have, with why (Intune targeting, the MDM node cache)."""
    expected: dict[str, list[str]] = {}
    for cached in facts.mdm_vpn_profiles or ():
        expected.setdefault(cached.name, []).append("mdm_node_cache")
    tenant = ctx.fleet.tenant
    for profile in tenant.vpn_profiles if tenant else ():
        if profile.assigned and _targets(profile, {host.casefold(), facts.computer_name.casefold()}):
            for name in profile.connection_names():
                expected.setdefault(name, []).append(f"intune:{profile.id}")
    return expected


def _targets(profile: IntuneVpnProfile, names: set[str]) -> bool:
    return any(
        status.device_name.casefold() in names and status.status.casefold() not in NOT_TARGETED
        for status in profile.device_statuses or ()
    )


@fleet_check(EP_PROF_01)
def profiles_on_devices(ctx: CheckContext) -> Iterator[Finding]:
    for host, facts in ctx.endpoints():
        present = present_profile_names(facts)
        if present is None:
            continue
        for name, sources in sorted(_expected(ctx, facts, host).items()):
            if name.casefold() in present:
                continue
            yield EP_PROF_01.finding(
                host,
                reason="missing_on_device",
                subject=f"profile:{name}",
                message=f"VPN profile {name!r} is intended here ({', '.join(sources)}) but not present",
                evidence={"profile": name, "sources": sources, "present": sorted(present)},
            )


@fleet_check(INT_PROF_01)
def deployment_errors(ctx: CheckContext) -> Iterator[Finding]:
    tenant = ctx.fleet.tenant
    index = _endpoint_index(ctx)
    for profile in tenant.vpn_profiles if tenant else ():
        for status in profile.device_statuses or ():
            reason = FAILED.get(status.status.casefold())
            if reason is None:
                continue
            host = index.get(status.device_name.casefold(), (status.device_name or INTUNE_HOST, None))[0]
            yield INT_PROF_01.finding(
                host,
                reason=reason,
                subject=f"profile:{profile.id}",
                message=f"Intune profile {profile.display_name!r}: {status.status} on {status.device_name}",
                evidence={
                    "profile_id": profile.id,
                    "profile": profile.display_name,
                    "device_name": status.device_name,
                    "last_reported": status.last_reported,
                },
            )


__all__ = ["EP_PROF_01", "INT_PROF_01"]
