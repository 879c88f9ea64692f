"""RRAS VPN server checks: the IKEv2 certificate (RRAS-CERT-01), the SSTP certificate
(RRAS-CERT-02), the root certificate RRAS accepts (RRAS-AUTH-01, cross-host) and the accepted
authentication protocols (RRAS-AUTH-02, cross-host)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.checks.certs import expires_within
from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.pki import selected_device_certificate
from orchestrator.checks.registry import host_check
from orchestrator.checks.rrascerts import server_candidates, server_certificate
from orchestrator.checks.trust import ChainStatus, Revocation, StoreSet, build_chain, safe_parse, same_ca
from orchestrator.checks.tunnels import device_tunnels, uses_eap
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.x509 import CertView
from orchestrator.inventory.models import Role

RRAS = (Role.RRAS,)
_SERVER_CERT_ADVICE = (
    "Enroll a certificate from the 'VPN Server Authentication' template (Server Authentication + IP "
    "security IKE intermediate EKUs, subject and DNS SAN = the public VPN FQDN) into LocalMachine\\My, "
    "keep the old one until clients connect, then restart RemoteAccess one array node at a time."
)

RRAS_CERT_01 = CheckSpec(
    id="RRAS-CERT-01",
    title="VPN server IKEv2 certificate missing or invalid",
    severity=Severity.CRITICAL,
    roles=RRAS,
    reasons={
        "missing": "no certificate for IKEv2 in LocalMachine\\My",
        "wrong_eku": "lacks Server Authentication (1.3.6.1.5.5.7.3.1) or IP security IKE intermediate "
        "(1.3.6.1.5.5.8.2.2)",
        "subject_mismatch": "subject CN / DNS SAN is not the public FQDN clients connect to",
        "expired": "the certificate has expired",
        "not_yet_valid": "the certificate is not valid yet",
        "no_private_key": "the certificate has no private key",
        "untrusted_root": "the chain ends in a root the server does not trust",
        "partial_chain": "an issuing CA certificate is missing on the server",
        "ca_expired": "a CA certificate of the chain has expired",
        "revoked": "a CRL of the issuing CA lists the certificate",
        "expiring": "valid, but expires within the warning window (cert_expiry_warning)",
    },
    error_codes=("13801", "13806", "0x80070040"),
    advice=_SERVER_CERT_ADVICE,
)
RRAS_CERT_02 = CheckSpec(
    id="RRAS-CERT-02",
    title="SSTP TLS certificate expired or expiring",
    severity=Severity.CRITICAL,
    roles=RRAS,
    reasons={
        "expired": "every SSTP connection fails while IKEv2 keeps working",
        "expiring": "expires within the SSTP warning window (sstp_expiry_warning)",
    },
    error_codes=("0x800B0101",),
    advice="Renew the SSTP certificate (public CA preferred), assign it: Set-RemoteAccess -SslCertificate "
    "(never in IIS), restart RemoteAccess per node, and update a TLS-offloading load balancer.",
)
RRAS_AUTH_01 = CheckSpec(
    id="RRAS-AUTH-01",
    title="Root certificate RRAS accepts (RootCertificateNameToAccept) is wrong or unset",
    severity=Severity.CRITICAL,
    roles=(Role.RRAS, Role.ENDPOINT, Role.CA),
    reasons={
        "mismatch": "the accepted root is not the root the device certificates chain to",
        "unset": "no root is pinned: RRAS accepts device certificates from any trusted root",
        "duplicate_root": "the server's Root store holds several roots with the accepted root's name; "
        "Set-VpnAuthProtocol may silently pick another one",
    },
    error_codes=("13806",),
    playbook="rras-root-thumbprint",
    cross_host=True,
)
RRAS_AUTH_02 = CheckSpec(
    id="RRAS-AUTH-02",
    title="RRAS does not accept an authentication protocol the clients use",
    severity=Severity.HIGH,
    roles=(Role.RRAS, Role.ENDPOINT),
    reasons={
        "certificate_not_accepted": "device tunnels authenticate with machine certificates, "
        "but UserAuthProtocolAccepted lacks Certificate",
        "eap_not_accepted": "user tunnels use EAP, but UserAuthProtocolAccepted lacks EAP",
    },
    error_codes=("812",),
    advice="Set-VpnAuthProtocol -UserAuthProtocolAccepted with the missing protocol added, then restart "
    "RemoteAccess (drops every session on the server: one node at a time).",
    cross_host=True,
)


@host_check(RRAS_CERT_01, RrasFacts)
def ikev2_certificate(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.certificates is None:
        return
    names, names_source = ctx.public_names
    selected = server_certificate(host, facts, ctx)
    evidence: dict[str, object] = {"public_names": list(names), "public_names_source": names_source}
    if selected is None:
        yield RRAS_CERT_01.finding(
            host, reason="missing", subject="ike-certificate", evidence=evidence,
            message="no certificate with Server Authentication and IKE intermediate in LocalMachine\\My",
        )  # fmt: skip
        return
    reason = _server_problem(selected.problems, selected.chain.status, selected.revocation)
    window = ctx.options.cert_expiry_warning.total_seconds()
    if reason is None and expires_within(selected.cert, ctx.at, window):
        reason = "expiring"
    if reason is None:
        return
    yield RRAS_CERT_01.finding(
        host,
        reason=reason,
        subject="ike-certificate",
        severity=Severity.MEDIUM if reason == "expiring" else None,
        message=f"IKEv2 certificate {selected.cert.thumbprint} ({selected.cert.subject}): {reason}",
        evidence={**evidence, **selected.evidence(), "candidates": len(server_candidates(host, facts, ctx))},
    )


def _server_problem(problems: tuple[str, ...], chain: ChainStatus, revocation: Revocation) -> str | None:
    if problems:
        return problems[0]
    if chain is not ChainStatus.OK:
        return chain.value
    return "revoked" if revocation is Revocation.REVOKED else None


@host_check(RRAS_CERT_02, RrasFacts)
def sstp_certificate(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    cert = safe_parse(facts.sstp_certificate_der) if facts.sstp_certificate_der else None
    if cert is None:
        return
    if ctx.at >= cert.not_after:
        reason, severity = "expired", Severity.CRITICAL
    elif expires_within(cert, ctx.at, ctx.options.sstp_expiry_warning.total_seconds()):
        reason, severity = "expiring", Severity.MEDIUM
    else:
        return
    yield RRAS_CERT_02.finding(
        host,
        reason=reason,
        subject=f"sstp:{cert.thumbprint}",
        severity=severity,
        message=f"SSTP certificate {cert.thumbprint} ({cert.subject}) {reason} ({cert.not_after:%Y-%m-%d})",
        evidence={"certificate": cert.describe()},
    )


# -- RRAS-AUTH-01: the accepted root against the PKI that issued the device certificates ---------------


def expected_roots(ctx: CheckContext) -> tuple[tuple[CertView, ...], tuple[str, ...], str]:
    """The roots RRAS should accept: certificates (when known), thumbprints, and where they came from."""
    option = ctx.options.expected_root_thumbprint
    if option:
        known = tuple(root for root in ctx.known_cas.roots if root.thumbprint == option)
        return known, (option,), "option"
    roots = _device_roots(ctx)
    source = "device_certificates"
    if not roots:
        roots, source = _issuing_ca_roots(ctx), "ca_hosts"
    unique = {root.thumbprint: root for root in roots}
    return tuple(unique.values()), tuple(sorted(unique)), source


def _top_root(leaf: CertView, ctx: CheckContext) -> CertView | None:
    chain = build_chain(leaf, ctx.known_cas, ctx.at)
    return chain.top if chain.status in (ChainStatus.OK, ChainStatus.CA_EXPIRED) else None


def _device_roots(ctx: CheckContext) -> list[CertView]:
    roots = []
    for host, facts in ctx.endpoints():
        selected = selected_device_certificate(host, facts, ctx)
        root = _top_root(selected.cert, ctx) if selected else None
        if root is not None:
            roots.append(root)
    return roots


def _issuing_ca_roots(ctx: CheckContext) -> list[CertView]:
    return [root for ca in ctx.issuing_cas if (root := _top_root(ca, ctx)) is not None]


def accepts(facts: RrasFacts, protocol: str) -> bool:
    accepted = facts.auth_protocol.user_auth_protocol_accepted if facts.auth_protocol else ()
    return any(item.casefold() == protocol.casefold() for item in accepted)


@host_check(RRAS_AUTH_01, RrasFacts)
def accepted_root(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    protocol = facts.auth_protocol
    if protocol is None or not accepts(facts, "Certificate"):
        return  # RootCertificateNameToAccept applies only to certificate authentication
    roots, thumbprints, source = expected_roots(ctx)
    evidence: dict[str, object] = {"expected_thumbprints": list(thumbprints), "expected_source": source}
    configured = safe_parse(protocol.root_certificate_der) if protocol.root_certificate_der else None
    if configured is None:
        yield RRAS_AUTH_01.finding(
            host, reason="unset", subject="root-certificate", severity=Severity.MEDIUM, evidence=evidence,
            message="RootCertificateNameToAccept is unset: device certificates of any root are accepted",
        )  # fmt: skip
        return
    evidence["configured"] = configured.describe()
    matches = configured.thumbprint in thumbprints or any(same_ca(configured, root) for root in roots)
    if thumbprints and not matches:
        yield RRAS_AUTH_01.finding(
            host,
            reason="mismatch",
            subject="root-certificate",
            message=f"RRAS accepts root {configured.thumbprint} ({configured.subject}), "
            f"the device certificates chain to {', '.join(thumbprints)}",
            evidence=evidence,
        )
    yield from _duplicate_roots(host, facts, configured, evidence)


def _duplicate_roots(
    host: str, facts: RrasFacts, configured: CertView, evidence: dict[str, object]
) -> Iterator[Finding]:
    stores = StoreSet.from_entries(facts.certificates or ())
    namesakes = [root for root in stores.roots if root.cert.subject == configured.cert.subject]
    # Re-issues of one root (same key) validate the same chains; only different keys are ambiguous.
    keys = {root.public_key_der for root in [*namesakes, configured]}
    if len(keys) < 2:
        return
    thumbprints = sorted({root.thumbprint for root in namesakes} | {configured.thumbprint})
    yield RRAS_AUTH_01.finding(
        host,
        reason="duplicate_root",
        subject="duplicate-roots",
        severity=Severity.MEDIUM,
        message=f"{len(keys)} different roots named {configured.subject} in LocalMachine\\Root",
        evidence={**evidence, "thumbprints": thumbprints},
        playbook=None,
        advice="Remove the stale root (and the GPO that publishes it; publish roots through the AD "
        "Certification Authorities container), then set the root again and read it back.",
    )


@host_check(RRAS_AUTH_02, RrasFacts)
def accepted_protocols(host: str, facts: RrasFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.auth_protocol is None:
        return
    accepted = list(facts.auth_protocol.user_auth_protocol_accepted)
    device_users = sorted(name for name, ep in ctx.endpoints() if device_tunnels(ep))
    eap_users = sorted(
        name for name, ep in ctx.endpoints() if any(uses_eap(c) for c in ep.vpn_connections or ())
    )
    for protocol, users, reason in (
        ("Certificate", device_users, "certificate_not_accepted"),
        ("EAP", eap_users, "eap_not_accepted"),
    ):
        if users and not accepts(facts, protocol):
            yield RRAS_AUTH_02.finding(
                host,
                reason=reason,
                subject=f"protocol:{protocol}",
                message=f"UserAuthProtocolAccepted is {accepted}; {len(users)} endpoints need {protocol}",
                evidence={"accepted": accepted, "endpoints": users[:20], "endpoint_count": len(users)},
            )


__all__ = ["RRAS_AUTH_01", "RRAS_AUTH_02", "RRAS_CERT_01", "RRAS_CERT_02", "accepts", "expected_roots"]
