"""Endpoint certificate checks: the device certificate (EP-CERT-01/02/03/05) and the CA
certificates an endpoint must hold for its own and the VPN servers' chains (EP-CERT-04)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.checks.certs import Candidate, assess, best, expires_within, personal_certificates
from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import host_check
from orchestrator.checks.rrascerts import server_certificate
from orchestrator.checks.trust import ChainStatus, Revocation, StoreSet, build_chain
from orchestrator.checks.tunnels import needs_machine_certificate, uses_ikev2
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.x509 import CLIENT_AUTH, IKE_INTERMEDIATE, CertView
from orchestrator.inventory.models import Role

DEVICE_CERT = "device-certificate"
ENDPOINT = (Role.ENDPOINT,)

EP_CERT_01 = CheckSpec(
    id="EP-CERT-01",
    title="Device certificate missing or invalid for the device tunnel",
    severity=Severity.HIGH,
    roles=ENDPOINT,
    reasons={
        "missing": "no certificate in LocalMachine\\My issued by the internal PKI for this device",
        "wrong_eku": "the device certificate lacks Client Authentication (1.3.6.1.5.5.7.3.2)",
        "subject_mismatch": "neither the subject CN nor a DNS SAN is the device's FQDN",
        "expired": "the device certificate has expired",
        "not_yet_valid": "the device certificate is not valid yet (clock or issuance problem)",
        "no_private_key": "the device certificate has no private key on this device",
    },
    error_codes=("13806",),
    playbook="device-cert-reenroll",
)
EP_CERT_02 = CheckSpec(
    id="EP-CERT-02",
    title="Device certificate chain untrusted or certificate revoked",
    severity=Severity.HIGH,
    roles=ENDPOINT,
    reasons={
        "revoked": "a CRL of the issuing CA lists the device certificate",
        "untrusted_root": "the chain ends in a root that neither the device nor the fleet's CAs know",
        "partial_chain": "an issuing CA certificate is missing and unknown to the fleet's CAs",
        "ca_expired": "a CA certificate in the chain has expired",
    },
    error_codes=("13806", "13801", "0x80092010"),
    playbook="device-cert-reenroll",
)
EP_CERT_03 = CheckSpec(
    id="EP-CERT-03",
    title="Several Client Authentication certificates (intermittent 13801)",
    severity=Severity.MEDIUM,
    roles=ENDPOINT,
    reasons={
        "multiple_client_auth": "valid Client Authentication certificates from several issuers, none with "
        "the IKE intermediate EKU that would make Windows prefer the VPN one",
    },
    error_codes=("13801",),
    advice="Add the IP security IKE intermediate EKU (1.3.6.1.5.5.8.2.2) to the device certificate "
    "template and re-enroll, or set a machine certificate EKU/issuer filter in the VPN profile.",
)
EP_CERT_04 = CheckSpec(
    id="EP-CERT-04",
    title="Root or intermediate CA certificate missing on the endpoint",
    severity=Severity.HIGH,
    roles=(Role.ENDPOINT, Role.RRAS, Role.CA),
    reasons={
        "missing_root": "a root of the device's or the VPN server's certificate chain is not in Root",
        "missing_intermediate": "an intermediate CA of such a chain is not in the CA store",
    },
    error_codes=("13801", "13806", "0x800B0109", "864"),
    playbook="install-ca-chain",
    cross_host=True,
)
EP_CERT_05 = CheckSpec(
    id="EP-CERT-05",
    title="Device certificate expiring soon",
    severity=Severity.LOW,
    roles=ENDPOINT,
    reasons={"expiring": "the device certificate expires within the warning window (cert_expiry_warning)"},
    playbook="device-cert-reenroll",
)


def device_candidates(host: str, facts: EndpointFacts, ctx: CheckContext) -> tuple[Candidate, ...]:
    """Certificates that look meant for this device, judged (memoised per run)."""

    def compute() -> tuple[Candidate, ...]:
        stores = StoreSet.from_entries(facts.certificates or ())
        return tuple(
            assess(cert, has_key, ekus=(CLIENT_AUTH,), names=(facts.fqdn,), stores=stores, ctx=ctx)
            for cert, has_key in personal_certificates(facts.certificates or ())
            if _looks_like_device_certificate(cert, facts.fqdn) and ctx.is_internal(cert)
        )

    return ctx.memo(("device-candidates", host), compute)


def _looks_like_device_certificate(cert: CertView, fqdn: str) -> bool:
    """Issued for client authentication, or to this device's name (then a wrong EKU is a finding)."""
    ekus = cert.ekus or ()
    return CLIENT_AUTH in ekus or IKE_INTERMEDIATE in ekus or cert.matches_name(fqdn) or "2.5.29.37.0" in ekus


def selected_device_certificate(host: str, facts: EndpointFacts, ctx: CheckContext) -> Candidate | None:
    """The certificate IKEv2 would use: usable and trusted if any, else the best usable one."""
    usable = [c for c in device_candidates(host, facts, ctx) if c.usable]
    trusted = [c for c in usable if c.trusted]
    return best(trusted) or best(usable)


def _applies(facts: EndpointFacts) -> bool:
    return facts.certificates is not None and needs_machine_certificate(facts)


@host_check(EP_CERT_01, EndpointFacts)
def device_certificate(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if not _applies(facts):
        return
    candidates = device_candidates(host, facts, ctx)
    if any(c.usable for c in candidates):
        return
    closest = best(candidates)
    if closest is None:
        yield EP_CERT_01.finding(
            host,
            reason="missing",
            subject=DEVICE_CERT,
            message=f"no device certificate for {facts.fqdn} with Client Authentication in LocalMachine\\My",
            evidence={"fqdn": facts.fqdn},
        )
        return
    reason = closest.problems[0]
    yield EP_CERT_01.finding(
        host,
        reason=reason,
        subject=DEVICE_CERT,
        message=f"device certificate {closest.cert.thumbprint} ({closest.cert.subject}): "
        f"{', '.join(closest.problems)}",
        evidence={"fqdn": facts.fqdn, **closest.evidence()},
    )


@host_check(EP_CERT_02, EndpointFacts)
def device_certificate_trust(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if not _applies(facts):
        return
    selected = selected_device_certificate(host, facts, ctx)
    if selected is None or selected.trusted:
        return
    evidence = {"fqdn": facts.fqdn, **selected.evidence()}
    if selected.revocation is Revocation.REVOKED:
        message = f"device certificate {selected.cert.thumbprint} is revoked by its issuing CA"
        yield EP_CERT_02.finding(
            host, reason="revoked", subject=DEVICE_CERT, message=message, evidence=evidence
        )
        return
    stores = StoreSet.from_entries(facts.certificates or ())
    if missing_cas(selected.cert, stores, ctx):
        return  # the fleet knows the missing CA certificates: EP-CERT-04 reports what to install
    status = selected.chain.status
    yield EP_CERT_02.finding(
        host,
        reason=status.value,
        subject=DEVICE_CERT,
        message=f"device certificate {selected.cert.thumbprint}: {status.value}, chain stops at "
        f"{selected.chain.top.subject}",
        evidence=evidence,
        playbook=None,
        advice="The chain leads to a CA that no inventoried CA host or store knows: check which PKI issued "
        "the certificate, and add that CA's certificates to the endpoints (or re-enroll from the right CA).",
    )


@host_check(EP_CERT_03, EndpointFacts)
def several_client_certificates(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if not _applies(facts):
        return
    valid = [
        cert
        for cert, _ in personal_certificates(facts.certificates or ())
        if cert.ekus is not None and CLIENT_AUTH in cert.ekus and cert.valid_at(ctx.at)
    ]
    issuers = sorted({cert.issuer for cert in valid})
    if len(issuers) < 2 or any(IKE_INTERMEDIATE in (cert.ekus or ()) for cert in valid):
        return
    yield EP_CERT_03.finding(
        host,
        reason="multiple_client_auth",
        subject="client-auth-certificates",
        message=f"{len(valid)} Client Authentication certificates from {len(issuers)} issuers; "
        "Windows may pick the wrong one for IKEv2",
        evidence={"issuers": issuers, "thumbprints": sorted(cert.thumbprint for cert in valid)},
    )


@host_check(EP_CERT_05, EndpointFacts)
def device_certificate_expiring(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if not _applies(facts):
        return
    selected = selected_device_certificate(host, facts, ctx)
    window = ctx.options.cert_expiry_warning
    if selected is None or not expires_within(selected.cert, ctx.at, window.total_seconds()):
        return
    left = selected.cert.not_after - ctx.at
    yield EP_CERT_05.finding(
        host,
        reason="expiring",
        subject=DEVICE_CERT,
        message=f"device certificate {selected.cert.thumbprint} expires in {left.days} days",
        evidence={"certificate": selected.cert.describe(), "days_left": left.days},
    )


# -- EP-CERT-04: CA certificates the endpoint lacks ------------------------------------------------------


def missing_cas(leaf: CertView, stores: StoreSet, ctx: CheckContext) -> list[tuple[str, CertView]]:
    """``(store, CA certificate)`` the host lacks to chain ``leaf``, judged against the fleet's CAs.

    Empty when the host has them all, or when even the fleet cannot complete the chain (then the
    missing piece is unknown and EP-CERT-02 / RRAS-CERT-01 report the chain instead).
    """
    pool = StoreSet(ctx.known_cas.roots + stores.roots, ctx.known_cas.intermediates + stores.intermediates)
    full = build_chain(leaf, pool, ctx.at)
    if full.status not in (ChainStatus.OK, ChainStatus.CA_EXPIRED):
        return []
    missing = []
    cas = full.path[1:]
    for index, ca in enumerate(cas):
        as_root = index == len(cas) - 1
        if not stores.holds(ca, as_root=as_root):
            missing.append(("Root" if as_root else "CA", ca))
    return missing


@host_check(EP_CERT_04, EndpointFacts)
def missing_ca_certificates(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[Finding]:
    if facts.certificates is None:
        return
    stores = StoreSet.from_entries(facts.certificates)
    needed_for: dict[tuple[str, str], tuple[CertView, list[str]]] = {}
    for what, leaf in _leaves_to_trust(host, facts, ctx):
        for store, ca in missing_cas(leaf, stores, ctx):
            needed_for.setdefault((store, ca.thumbprint), (ca, []))[1].append(what)
    for (store, thumb), (ca, purposes) in sorted(needed_for.items()):
        reason = "missing_root" if store == "Root" else "missing_intermediate"
        yield EP_CERT_04.finding(
            host,
            reason=reason,
            subject=f"{store}:{thumb}",
            message=f"{ca.subject} ({thumb}) is not in LocalMachine\\{store}; needed: {', '.join(purposes)}",
            evidence={"store": store, "ca_certificate": ca.describe(), "needed_for": purposes},
        )


def _leaves_to_trust(host: str, facts: EndpointFacts, ctx: CheckContext) -> Iterator[tuple[str, CertView]]:
    """The device certificate (when it needs one) and every VPN server's IKEv2 certificate."""
    if needs_machine_certificate(facts):
        candidates = device_candidates(host, facts, ctx)
        device = best([c for c in candidates if c.usable]) or best(candidates)
        if device is not None:
            yield DEVICE_CERT, device.cert
    for rras_host, rras in ctx.rras_hosts() if uses_ikev2(facts) else ():
        server = server_certificate(rras_host, rras, ctx)
        if server is not None:
            yield f"the VPN server certificate of {rras_host}", server.cert


__all__ = [
    "DEVICE_CERT",
    "EP_CERT_01",
    "EP_CERT_02",
    "EP_CERT_03",
    "EP_CERT_04",
    "EP_CERT_05",
    "device_candidates",
    "missing_cas",
    "selected_device_certificate",
]
