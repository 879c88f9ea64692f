"""Operating system checks: Windows 11 21H2 without KB5008353 (EP-OS-01, from the host or from
Intune), device tunnel prerequisites (EP-OS-03)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import fleet_check, host_check
from orchestrator.checks.tunnels import device_tunnels
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.inventory.models import Role

WIN11_21H2 = 22000
KB5008353_UBR = (
    469  # KB5008353 = build 22000.469 (2022-01-25): fixes Intune VPN profiles deleted and re-added
)
DEVICE_TUNNEL_EDITIONS = frozenset(
    {"enterprise", "education", "enterprises", "enterprisen", "educationn", "iotenterprise"}
)

EP_OS_01 = CheckSpec(
    id="EP-OS-01",
    title="Windows 11 21H2 without KB5008353: Intune VPN profiles deleted and re-added",
    severity=Severity.HIGH,
    roles=(Role.ENDPOINT,),
    reasons={"missing_kb5008353": "build 22000 with an update build revision below 469"},
    advice="Install KB5008353 or any later Windows 11 cumulative update (a reboot), then resync the "
    "device with Intune (the intune-resync playbook). Compare build.UBR, not Get-HotFix: later updates "
    "supersede the KB.",
    cross_host=True,
)
EP_OS_03 = CheckSpec(
    id="EP-OS-03",
    title="Device tunnel prerequisites not met",
    severity=Severity.MEDIUM,
    roles=(Role.ENDPOINT,),
    reasons={
        "not_domain_joined": "a device tunnel needs a domain-joined device",
        "unsupported_edition": "a device tunnel needs Windows Enterprise or Education",
        "multiple_device_tunnels": "Windows supports one device tunnel per machine",
    },
    advice="No automatic fix: join the domain, move to Enterprise/Education, or remove a device tunnel.",
)


def loses_updated_profiles(build: int, ubr: int) -> bool:
    """Windows 11 21H2 before KB5008353: an updated Intune VPN profile is deleted until the next sync."""
    return build == WIN11_21H2 and ubr < KB5008353_UBR


def intune_build(os_version: str) -> tuple[int, int] | None:
    """``(build, ubr)`` of an Intune ``osVersion`` (``10.0.22000.469``), or None when it is not one."""
    parts = os_version.split(".")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[2]), int(parts[3])


def _os_finding(host: str, build: int, ubr: int, source: str) -> Finding:
    return EP_OS_01.finding(
        host,
        reason="missing_kb5008353",
        subject="os-build",
        message=f"Windows 11 build {build}.{ubr} predates KB5008353 ({WIN11_21H2}.{KB5008353_UBR})",
        evidence={"build": build, "ubr": ubr, "source": source},
    )


@fleet_check(EP_OS_01)
def windows11_profile_churn(ctx: CheckContext) -> Iterator[Finding]:
    """From each endpoint's facts; from Intune for devices fleetfix has no facts of."""
    seen: set[str] = set()
    for host, facts in ctx.endpoints():
        seen |= {host.casefold(), facts.computer_name.casefold()}
        if loses_updated_profiles(facts.os.build, facts.os.ubr):
            yield _os_finding(host, facts.os.build, facts.os.ubr, "host")
    tenant = ctx.fleet.tenant
    for device in tenant.devices if tenant else ():
        build = intune_build(device.os_version)
        if device.device_name.casefold() in seen or build is None:
            continue
        if loses_updated_profiles(*build):
            yield _os_finding(device.device_name, *build, "intune")


@host_check(EP_OS_03, EndpointFacts)
def device_tunnel_prerequisites(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    tunnels = device_tunnels(facts)
    if not tunnels:
        return
    names = [tunnel.name for tunnel in tunnels]
    edition = facts.os.edition_id
    problems = [
        ("not_domain_joined", not facts.part_of_domain, "the device is not domain-joined"),
        ("unsupported_edition", edition is not None and edition.casefold() not in DEVICE_TUNNEL_EDITIONS,
         f"edition {edition} does not support a device tunnel"),
        ("multiple_device_tunnels", len(tunnels) > 1, f"{len(tunnels)} device tunnels: {', '.join(names)}"),
    ]  # fmt: skip
    for reason, applies, message in problems:
        if applies:
            yield EP_OS_03.finding(
                host, reason=reason, subject=f"device-tunnel:{reason}", message=message,
                evidence={"device_tunnels": names, "edition_id": edition,
                          "part_of_domain": facts.part_of_domain},
            )  # fmt: skip


__all__ = ["EP_OS_01", "EP_OS_03", "KB5008353_UBR", "WIN11_21H2", "intune_build", "loses_updated_profiles"]
