"""Split-tunnel route checks: prefixes with host bits set (EP-ROUTE-01 on the device, INT-PROF-02 in
Intune) and configured routes missing from the routing table while connected (EP-ROUTE-02)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.prefixes import IPNetwork, PrefixVerdict, judge_cidr, judge_prefix, route_network
from orchestrator.checks.registry import fleet_check, host_check
from orchestrator.facts.endpoint import EndpointFacts, VpnConnection
from orchestrator.facts.tenant import IntuneVpnProfile
from orchestrator.inventory.models import Role
from orchestrator.transport.graph.profilexml import ProfileXmlError, route_texts

INTUNE_HOST = "intune"
"""The ``host`` of findings about the Intune tenant's configuration."""

PREFIX_REASONS = {
    "host_bits": "the prefix has host bits set (172.21.12.0/21 for 172.21.8.0/21): Windows never routes it",
    "invalid_prefix": "the prefix does not parse, has leading zeros, or its size is out of range",
}
EP_ROUTE_01 = CheckSpec(
    id="EP-ROUTE-01",
    title="Split-tunnel route with host bits set in a VPN profile on the device",
    severity=Severity.MEDIUM,
    roles=(Role.ENDPOINT,),
    reasons=PREFIX_REASONS,
    playbook="fix-route-prefixes",
)
INT_PROF_02 = CheckSpec(
    id="INT-PROF-02",
    title="Split-tunnel route with host bits set in an Intune VPN profile",
    severity=Severity.HIGH,  # every device the profile reaches misses the network
    roles=(),
    reasons=PREFIX_REASONS,
    playbook="fix-route-prefixes",
)
EP_ROUTE_02 = CheckSpec(
    id="EP-ROUTE-02",
    title="Configured VPN route missing from the routing table",
    severity=Severity.MEDIUM,
    roles=(Role.ENDPOINT,),
    reasons={"missing_from_routing_table": "the connection is up, the route is valid, but it is not routed"},
    advice="Reconnect the tunnel (rasdial NAME /disconnect, then let it reconnect); if it stays missing, "
    "compare the profile with Intune (DisableClassBasedDefaultRoute requires explicit routes).",
)


@dataclass(frozen=True)
class ProfileRoute:
    """A route as one source configures it; ``verdict`` says what Windows does with it."""

    profile: str
    source: str
    verdict: PrefixVerdict


def _connection_routes(connection: VpnConnection) -> Iterator[ProfileRoute]:
    for route in connection.routes:
        yield ProfileRoute(connection.name, "vpn_connection", judge_cidr(route.destination_prefix))


def _xml_routes(profile: str, source: str, xml: str | None) -> Iterator[ProfileRoute]:
    if xml is None:
        return
    try:
        texts = route_texts(xml)
    except ProfileXmlError:
        return  # an unreadable ProfileXML is a profile problem, not a route problem
    for text in texts:
        yield ProfileRoute(profile, source, judge_prefix(text.address, text.prefix_size))


def endpoint_routes(facts: EndpointFacts) -> Iterator[ProfileRoute]:
    """Routes of the local profiles and of the ProfileXML Intune delivered to the device."""
    for connection in facts.vpn_connections or ():
        yield from _connection_routes(connection)
    for profile in facts.mdm_vpn_profiles or ():
        yield from _xml_routes(profile.name, "mdm_profile_xml", profile.profile_xml)


def _prefix_finding(spec: CheckSpec, host: str, subject: str, routes: list[ProfileRoute]) -> Finding:
    verdict = routes[0].verdict
    assert verdict.problem is not None
    fix = f"; use {verdict.corrected}" if verdict.corrected else ""
    return spec.finding(
        host,
        reason=verdict.problem.value,
        subject=subject,
        message=f"route {verdict.text} in {routes[0].profile}: {verdict.detail}{fix}",
        evidence={
            "profile": routes[0].profile,
            "configured": verdict.text,
            "corrected": verdict.corrected,
            "detail": verdict.detail,
            "sources": sorted({route.source for route in routes}),
        },
    )


@host_check(EP_ROUTE_01, EndpointFacts)
def endpoint_route_prefixes(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    bad: dict[str, list[ProfileRoute]] = {}
    for route in endpoint_routes(facts):
        if route.verdict.problem is not None:
            bad.setdefault(f"{route.profile}:{route.verdict.text}", []).append(route)
    for subject, routes in sorted(bad.items()):
        yield _prefix_finding(EP_ROUTE_01, host, subject, routes)


def tenant_routes(profile: IntuneVpnProfile) -> Iterator[ProfileRoute]:
    for route in profile.routes:
        verdict = judge_prefix(route.destination_prefix, route.prefix_size)
        yield ProfileRoute(profile.display_name, "intune_native", verdict)
    for setting in profile.profile_xml:
        yield from _xml_routes(setting.name, "intune_profile_xml", setting.xml)


@fleet_check(INT_PROF_02)
def intune_route_prefixes(ctx: CheckContext) -> Iterator[Finding]:
    tenant = ctx.fleet.tenant
    for profile in tenant.vpn_profiles if tenant else ():
        seen: set[str] = set()
        for route in tenant_routes(profile):
            subject = f"{profile.id}:{route.verdict.text}"
            if route.verdict.problem is None or subject in seen:
                continue
            seen.add(subject)
            finding = _prefix_finding(INT_PROF_02, INTUNE_HOST, subject, [route])
            yield _with_profile(finding, profile)


def _with_profile(finding: Finding, profile: IntuneVpnProfile) -> Finding:
    return replace(
        finding, evidence={**finding.evidence, "profile_id": profile.id, "profile_kind": profile.kind}
    )


@host_check(EP_ROUTE_02, EndpointFacts)
def routes_in_table(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.routes is None:
        return
    for connection in facts.vpn_connections or ():
        if (connection.connection_status or "").casefold() != "connected" or not connection.split_tunneling:
            continue
        routed = _routed_networks(facts, connection.name)
        for route in _connection_routes(connection):
            network = route.verdict.network
            if network is None or network in routed:
                continue  # a bad prefix is EP-ROUTE-01's finding
            yield EP_ROUTE_02.finding(
                host,
                reason="missing_from_routing_table",
                subject=f"{connection.name}:{network}",
                message=f"{network} is configured on {connection.name} (connected) but not routed",
                evidence={
                    "connection": connection.name,
                    "route": str(network),
                    "routed": sorted(map(str, routed)),
                },
            )


def _routed_networks(facts: EndpointFacts, interface_alias: str) -> set[IPNetwork]:
    wanted = interface_alias.casefold()
    networks = (
        route_network(row.destination_prefix)
        for row in facts.routes or ()
        if row.interface_alias.casefold() == wanted
    )
    return {network for network in networks if network is not None}


__all__ = ["EP_ROUTE_01", "EP_ROUTE_02", "INTUNE_HOST", "INT_PROF_02", "endpoint_routes", "tenant_routes"]
