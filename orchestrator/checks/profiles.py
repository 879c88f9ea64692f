"""VPN profile checks on the endpoint: device tunnel sanity (EP-PROF-02), client IPsec policy
against the servers' (EP-PROF-03, cross-host), IKEv2 fragmentation disabled (EP-PROF-04),
auto-connect switched off by the user (EP-PROF-05), RegisterDNS on both tunnels (EP-DNS-02)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.checks.context import CheckContext
from orchestrator.checks.ipsec import Policy, as_dict, policy_tuple, server_policy
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import host_check
from orchestrator.checks.tunnels import IKEV2_TUNNELS, device_tunnels, is_true, xml_flag
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.inventory.models import Role

ENDPOINT = (Role.ENDPOINT,)
_PROFILE_FIX = "Correct the profile at its source (Intune or the deployment script), then sync the device."

EP_PROF_02 = CheckSpec(
    id="EP-PROF-02",
    title="Device tunnel profile is not IKEv2 split tunnel",
    severity=Severity.MEDIUM,
    roles=ENDPOINT,
    reasons={
        "not_ikev2": "a device tunnel must use IKEv2",
        "force_tunnel": "a device tunnel supports split tunneling only",
    },
    advice=_PROFILE_FIX,
)
EP_PROF_03 = CheckSpec(
    id="EP-PROF-03",
    title="Client IKEv2 policy does not match the VPN servers'",
    severity=Severity.HIGH,
    roles=(Role.ENDPOINT, Role.RRAS),
    reasons={"policy_mismatch": "the connection's IPsec policy matches no RRAS server's custom policy"},
    error_codes=("13868",),
    advice="Align the profile's CryptographySuite with the servers' policy (normalise the enum spellings); "
    "a local Set-VpnConnectionIPsecConfiguration is only a stopgap until the next re-provision.",
    cross_host=True,
)
EP_PROF_04 = CheckSpec(
    id="EP-PROF-04",
    title="IKEv2 fragmentation disabled in the profile",
    severity=Severity.LOW,
    roles=ENDPOINT,
    reasons={
        "fragmentation_disabled": "DisableIKEv2Fragmentation is true: IKE fragments get dropped on some paths"
    },
    error_codes=("809",),
    advice="Set <DisableIKEv2Fragmentation>false</DisableIKEv2Fragmentation> in the ProfileXML and enable "
    "server fragmentation on RRAS (RRAS-FRAG-01).",
)
EP_DNS_02 = CheckSpec(
    id="EP-DNS-02",
    title="RegisterDNS set on both the device and the user tunnel",
    severity=Severity.LOW,
    roles=ENDPOINT,
    reasons={"register_dns_twice": "both tunnels register the device in DNS (set RegisterDNS on one)"},
    advice="Remove <RegisterDNS>true</RegisterDNS> from the user tunnel's ProfileXML; keep the device's.",
)
EP_PROF_05 = CheckSpec(
    id="EP-PROF-05",
    title="VPN profile no longer connects automatically",
    severity=Severity.MEDIUM,
    roles=ENDPOINT,
    reasons={"auto_trigger_disabled": "the profile is in RasMan's AutoTriggerDisabledProfilesList"},
    advice="Clear-AutoTriggerDisabledProfile (AOVPNTools) while the user is disconnected: it restarts "
    "RasMan, which drops every tunnel on the device.",
)


@host_check(EP_PROF_02, EndpointFacts)
def device_tunnel_profile(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    for tunnel in device_tunnels(facts):
        checks = (
            (
                "not_ikev2",
                (tunnel.tunnel_type or "").casefold() != "ikev2",
                f"tunnel type {tunnel.tunnel_type}",
            ),
            ("force_tunnel", not tunnel.split_tunneling, "split tunneling is off"),
        )
        for reason, applies, detail in checks:
            if applies:
                yield EP_PROF_02.finding(
                    host,
                    reason=reason,
                    subject=f"{tunnel.name}:{reason}",
                    message=f"device tunnel {tunnel.name}: {detail}",
                    evidence={"connection": tunnel.name, "tunnel_type": tunnel.tunnel_type,
                              "split_tunneling": tunnel.split_tunneling},
                )  # fmt: skip


@host_check(EP_PROF_03, EndpointFacts)
def client_ipsec_policy(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    custom = ctx.memo("rras-custom-policies", lambda: _custom_policies(ctx))
    if not custom:
        return  # servers on Windows' defaults negotiate with any client default
    for connection in facts.vpn_connections or ():
        if (connection.tunnel_type or "").casefold() not in IKEV2_TUNNELS:
            continue
        client = policy_tuple(connection.ipsec_custom_policy) if connection.ipsec_custom_policy else None
        if client in custom.values():
            continue
        yield EP_PROF_03.finding(
            host,
            reason="policy_mismatch",
            subject=f"{connection.name}:ipsec-policy",
            message=f"{connection.name}: IPsec policy {'default' if client is None else 'custom'} matches no "
            f"VPN server's ({', '.join(sorted(custom))})",
            evidence={"connection": connection.name, "client": as_dict(client),
                      "servers": {name: as_dict(policy) for name, policy in sorted(custom.items())}},
        )  # fmt: skip


def _custom_policies(ctx: CheckContext) -> dict[str, Policy]:
    policies = {
        name: server_policy(rras.ikev2_policy) for name, rras in ctx.rras_hosts() if rras.ikev2_policy
    }
    return {name: policy for name, policy in policies.items() if policy is not None}


@host_check(EP_PROF_04, EndpointFacts)
def ikev2_fragmentation(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    for profile in facts.mdm_vpn_profiles or ():
        value = xml_flag(profile.profile_xml, "NativeProfile/DisableIKEv2Fragmentation")
        if is_true(value):
            yield EP_PROF_04.finding(
                host,
                reason="fragmentation_disabled",
                subject=f"{profile.name}:fragmentation",
                message=f"{profile.name}: DisableIKEv2Fragmentation is {value}",
                evidence={"profile": profile.name},
            )


@host_check(EP_DNS_02, EndpointFacts)
def register_dns(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    registering = sorted(
        profile.name
        for profile in facts.mdm_vpn_profiles or ()
        if is_true(xml_flag(profile.profile_xml, "RegisterDNS"))
    )
    tunnels = {
        is_true(xml_flag(p.profile_xml, "DeviceTunnel"))
        for p in facts.mdm_vpn_profiles or ()
        if p.name in registering
    }
    if len(registering) < 2 or tunnels != {True, False}:
        return
    yield EP_DNS_02.finding(
        host,
        reason="register_dns_twice",
        subject="register-dns",
        message=f"RegisterDNS is true in {', '.join(registering)}",
        evidence={"profiles": registering},
    )


@host_check(EP_PROF_05, EndpointFacts)
def auto_trigger(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.rasman is None:
        return
    for name in facts.rasman.auto_trigger_disabled_profiles:
        yield EP_PROF_05.finding(
            host,
            reason="auto_trigger_disabled",
            subject=f"{name}:auto-trigger",
            message=f"{name} is in AutoTriggerDisabledProfilesList ('Connect automatically' unticked)",
            evidence={"profile": name},
        )


__all__ = ["EP_DNS_02", "EP_PROF_02", "EP_PROF_03", "EP_PROF_04", "EP_PROF_05"]
