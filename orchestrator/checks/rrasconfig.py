"""RRAS configuration checks: CRL enforcement, IKEv2 crypto, fragmentation, service health, and
drift across the RRAS array (RRAS-CRL-01, RRAS-IPSEC-01/02, RRAS-FRAG-01, RRAS-SVC-01, RRAS-DRIFT-01)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from orchestrator.checks.context import CheckContext
from orchestrator.checks.ipsec import as_dict, server_policy, weak_values
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import fleet_check, host_check
from orchestrator.checks.trust import safe_parse
from orchestrator.facts.rras import RrasFacts
from orchestrator.inventory.models import Role

RRAS = (Role.RRAS,)
CRL_CHECK_ENFORCED = 4
FRAGMENTATION_MIN_BUILD = 17134  # Windows Server 1803
_RESTART = "then restart RemoteAccess, one array node at a time (drain it at the load balancer first)."

RRAS_CRL_01 = CheckSpec(
    id="RRAS-CRL-01",
    title="IKEv2 revocation check not enforced",
    severity=Severity.LOW,
    roles=RRAS,
    reasons={"not_enforced": "CertAuthFlags is not 4: revoked device certificates still connect"},
    error_codes=("13801",),
    advice="Set HKLM\\SYSTEM\\CurrentControlSet\\Services\\RemoteAccess\\Parameters\\Ikev2\\CertAuthFlags "
    "= 4 (DWORD) only with CRL monitoring in place (an expired CRL then blocks every device tunnel), "
    + _RESTART,
)
RRAS_IPSEC_01 = CheckSpec(
    id="RRAS-IPSEC-01",
    title="Weak or default IKEv2 cryptography",
    severity=Severity.MEDIUM,
    roles=RRAS,
    reasons={
        "default_policy": "no custom policy: Windows negotiates 3DES / SHA-1 / DH group 2",
        "weak_algorithm": "the custom policy uses DES, 3DES, MD5, SHA-1 or a 1024-bit DH group",
    },
    advice="Roll a CryptographySuite to every client profile first, then Set-VpnServerConfiguration "
    "-CustomPolicy with the same values (e.g. GCMAES128/GCMAES128/Group14/GCMAES128/SHA256/ECP256), "
    + _RESTART,
)
RRAS_IPSEC_02 = CheckSpec(
    id="RRAS-IPSEC-02",
    title="IKEv2 policy differs across the RRAS array",
    severity=Severity.HIGH,
    roles=RRAS,
    reasons={"drift": "this server's IKEv2 policy differs from the majority of the array"},
    error_codes=("13868",),
    advice="Converge every node on one policy (Set-VpnServerConfiguration -CustomPolicy), " + _RESTART,
    cross_host=True,
)
RRAS_DRIFT_01 = CheckSpec(
    id="RRAS-DRIFT-01",
    title="RRAS configuration drift across the array",
    severity=Severity.MEDIUM,
    roles=RRAS,
    reasons={"drift": "a setting differs from the majority of the RRAS servers"},
    advice="Converge on the majority (golden) node's value for the setting, " + _RESTART,
    cross_host=True,
)
RRAS_FRAG_01 = CheckSpec(
    id="RRAS-FRAG-01",
    title="IKEv2 server fragmentation not enabled",
    severity=Severity.LOW,
    roles=RRAS,
    reasons={
        "disabled": "EnableServerFragmentation is not 1: large IKE_AUTH packets get dropped on some paths"
    },
    error_codes=("809",),
    advice="Set the DWORD EnableServerFragmentation = 1 under "
    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\RemoteAccess\\Parameters\\Ikev2, " + _RESTART,
)
RRAS_SVC_01 = CheckSpec(
    id="RRAS-SVC-01",
    title="RemoteAccess service not running",
    severity=Severity.CRITICAL,
    roles=RRAS,
    reasons={"not_running": "the RemoteAccess service is not running: no VPN on this server"},
    advice="Start RemoteAccess and read the System log (event 7024). If IPv6 was disabled with "
    "Tcpip6\\Parameters\\DisabledComponents, remove that value and reboot.",
)


@host_check(RRAS_CRL_01, RrasFacts)
def crl_enforcement(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.registry is None or facts.registry.cert_auth_flags == CRL_CHECK_ENFORCED:
        return
    yield RRAS_CRL_01.finding(
        host,
        reason="not_enforced",
        subject="CertAuthFlags",
        message=f"CertAuthFlags is {facts.registry.cert_auth_flags}: IKEv2 does not check revocation",
        evidence={"cert_auth_flags": facts.registry.cert_auth_flags},
    )


@host_check(RRAS_IPSEC_01, RrasFacts)
def ikev2_crypto(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    policy = facts.ikev2_policy
    if policy is None:
        return
    if server_policy(policy) is None:
        yield RRAS_IPSEC_01.finding(
            host, reason="default_policy", subject="ikev2-policy",
            message="no custom IKEv2 policy: clients negotiate 3DES / SHA-1 / DH group 2",
        )  # fmt: skip
        return
    weak = weak_values(policy)
    if weak:
        yield RRAS_IPSEC_01.finding(
            host,
            reason="weak_algorithm",
            subject="ikev2-policy",
            message=f"the custom IKEv2 policy uses {', '.join(weak)}",
            evidence={"weak": weak, "policy": as_dict(server_policy(policy))},
        )


@host_check(RRAS_FRAG_01, RrasFacts)
def server_fragmentation(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    registry = facts.registry
    if (
        registry is None
        or facts.os.build < FRAGMENTATION_MIN_BUILD
        or registry.enable_server_fragmentation == 1
    ):
        return
    yield RRAS_FRAG_01.finding(
        host,
        reason="disabled",
        subject="EnableServerFragmentation",
        message="IKEv2 server fragmentation is off",
        evidence={"enable_server_fragmentation": registry.enable_server_fragmentation},
    )


@host_check(RRAS_SVC_01, RrasFacts)
def remote_access_service(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    service = next((s for s in facts.services or () if s.name.casefold() == "remoteaccess"), None)
    if facts.services is None or (service is not None and service.status == "Running"):
        return
    disabled = facts.registry.ipv6_disabled_components if facts.registry else None
    yield RRAS_SVC_01.finding(
        host,
        reason="not_running",
        subject="service:RemoteAccess",
        message=f"RemoteAccess is {service.status if service else 'not installed'}",
        evidence={
            "status": service.status if service else None,
            "start_type": service.start_type if service else None,
            "ipv6_disabled_components": disabled,
        },
    )


# -- drift across the array ----------------------------------------------------------------------------

Setting = Callable[[RrasFacts], object]
DRIFT_SETTINGS: dict[str, Setting] = {
    "root_certificate": lambda f: (
        view.thumbprint
        if f.auth_protocol and f.auth_protocol.root_certificate_der
        and (view := safe_parse(f.auth_protocol.root_certificate_der))
        else None
    ),
    "user_auth_protocol_accepted": lambda f: (
        tuple(sorted(p.casefold() for p in f.auth_protocol.user_auth_protocol_accepted))
        if f.auth_protocol
        else None
    ),
    "cert_auth_flags": lambda f: f.registry.cert_auth_flags if f.registry else None,
    "enable_server_fragmentation": lambda f: f.registry.enable_server_fragmentation if f.registry else None,
}  # fmt: skip


def _policy(facts: RrasFacts) -> object:
    return server_policy(facts.ikev2_policy) if facts.ikev2_policy else None


def _drift(ctx: CheckContext, spec: CheckSpec, settings: dict[str, Setting]) -> Iterator[Finding]:
    """Findings for every server whose value of a setting differs from the array's majority."""
    hosts = list(ctx.rras_hosts())
    if len(hosts) < 2:
        return
    for name, read in settings.items():
        values = {host: read(facts) for host, facts in hosts}
        counts = Counter(repr(value) for value in values.values())
        if len(counts) < 2:
            continue
        majority, _ = counts.most_common(1)[0]
        for host, value in values.items():
            if repr(value) != majority:
                yield spec.finding(
                    host,
                    reason="drift",
                    subject=f"setting:{name}",
                    message=f"{name} differs from the other RRAS servers",
                    evidence={"setting": name, "value": repr(value), "majority": majority},
                )


@fleet_check(RRAS_IPSEC_02)
def ipsec_policy_drift(ctx: CheckContext) -> Iterator[Finding]:
    return _drift(ctx, RRAS_IPSEC_02, {"ikev2_policy": _policy})


@fleet_check(RRAS_DRIFT_01)
def configuration_drift(ctx: CheckContext) -> Iterator[Finding]:
    return _drift(ctx, RRAS_DRIFT_01, DRIFT_SETTINGS)


__all__ = [
    "RRAS_CRL_01",
    "RRAS_DRIFT_01",
    "RRAS_FRAG_01",
    "RRAS_IPSEC_01",
    "RRAS_IPSEC_02",
    "RRAS_SVC_01",
]
