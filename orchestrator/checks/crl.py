"""CA and CRL checks: CRLs expired or expiring, on the CA and at HTTP distribution points
(CA-CRL-01, CA-CRL-04 for offline roots), CDPs unreachable or stale (CA-CRL-03), overlap too short
(CA-CRL-02), CA certificates expiring (CA-CERT-01)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from orchestrator.checks.context import CheckContext
from orchestrator.checks.model import CheckSpec, Finding, Severity
from orchestrator.checks.registry import FLEET_HOST, fleet_check, host_check
from orchestrator.checks.trust import safe_parse
from orchestrator.facts.ca import CaFacts, CrlSchedule
from orchestrator.facts.x509 import CertView, CrlView, FactsParseError, parse_crl
from orchestrator.inventory.models import Role

CA = (Role.CA,)
MIN_OVERLAP = timedelta(hours=1)
DELTA_SHARE = 0.2
_PERIODS = {"hours": timedelta(hours=1), "days": timedelta(days=1), "weeks": timedelta(weeks=1),
            "months": timedelta(days=30), "years": timedelta(days=365)}  # fmt: skip

CRL_REASONS = {
    "expired": "nextUpdate has passed: chains that need this CRL fail revocation checks",
    "expiring": "nextUpdate is closer than crl_expiry_margin (delta CRLs: or than a fifth of their lifetime)",
    "schedule_overdue": "the CA's 'Next CRL Publish' time has passed and no newer CRL was published",
}
CA_CRL_01 = CheckSpec(
    id="CA-CRL-01",
    title="Issuing CA CRL expired or expiring",
    severity=Severity.CRITICAL,
    roles=CA,
    reasons=CRL_REASONS,
    error_codes=("13806", "0x80092013"),
    playbook="republish-crl",
)
CA_CRL_04 = CheckSpec(
    id="CA-CRL-04",
    title="Offline root CA CRL expired or expiring",
    severity=Severity.HIGH,
    roles=CA,
    reasons=CRL_REASONS,
    error_codes=("13806",),
    advice="Power on the offline root, run certutil -crl, copy the CRL to every CDP and AD "
    "(certutil -dspublish -f <root.crl>), and schedule the next one before nextUpdate.",
)
CA_CRL_03 = CheckSpec(
    id="CA-CRL-03",
    title="CRL distribution point unreachable or stale",
    severity=Severity.HIGH,
    roles=CA,
    reasons={
        "unreachable": "the CRL could not be fetched from the distribution point URL",
        "unreadable": "the distribution point answered with something that is not a CRL",
        "stale_copy": "the distribution point serves an older CRL than the CA published",
    },
    error_codes=("0x80092013", "13806"),
    advice="Fix the web server, DNS or copy job behind the CDP URL; after a new CRL is published, "
    "flush the RRAS servers' cache (certutil -urlcache * delete).",
    cross_host=True,
)
CA_CRL_02 = CheckSpec(
    id="CA-CRL-02",
    title="CRL validity overlap too short",
    severity=Severity.LOW,
    roles=CA,
    reasons={"short_overlap": "the base CRL is valid for less than an hour beyond its publication period"},
    advice="certutil -setreg CA\\CRLOverlapUnits 12; certutil -setreg CA\\CRLOverlapPeriod Hours; "
    "Restart-Service CertSvc; certutil -crl",
)
CA_CERT_01 = CheckSpec(
    id="CA-CERT-01",
    title="CA certificate expired or expiring",
    severity=Severity.MEDIUM,
    roles=CA,
    reasons={
        "expired": "the CA certificate has expired: nothing it issued validates",
        "expiring": "the CA certificate expires within ca_cert_expiry_warning",
    },
    advice="Plan the CA certificate renewal: a major change, the new chain reaches every host first.",
)


@dataclass(frozen=True)
class CrlSource:
    """A CRL and where fleetfix read it: a CA host's file or a CDP URL."""

    host: str
    subject: str
    where: str
    crl: CrlView


def _issuer_host(crl: CrlView, ctx: CheckContext) -> str:
    """The inventory CA host whose certificate signed ``crl``; FLEET_HOST for a CA outside it."""
    for host, facts in ctx.fleet.facts_of(CaFacts):
        for der in facts.ca_certificates or ():
            cert = safe_parse(der)
            if cert is not None and crl.issued_by(cert):
                return host
    return FLEET_HOST


def _is_root_crl(crl: CrlView, ctx: CheckContext) -> bool:
    return any(root.self_issued and crl.issued_by(root) for root in ctx.known_cas.roots)


def crl_sources(ctx: CheckContext) -> Iterator[CrlSource]:
    for host, facts in ctx.fleet.facts_of(CaFacts):
        for item in facts.crls or ():
            try:
                yield CrlSource(host, f"crl:{item.file}", item.file, parse_crl(item.der))
            except FactsParseError:
                continue
    for fetch in ctx.fleet.crls:
        if fetch.der is None:
            continue
        try:
            crl = parse_crl(fetch.der)
        except FactsParseError:
            continue
        yield CrlSource(_issuer_host(crl, ctx), f"cdp:{fetch.url}", fetch.url, crl)


def expiry_margin(crl: CrlView, margin: timedelta) -> timedelta:
    """The margin for ``crl``: the configured one; for a delta CRL (published daily, valid about a
    day) at most the last fifth of its lifetime, as pkiview's "Expiring" judges it -- a healthy delta
    CRL would otherwise always be "expiring"."""
    if not crl.is_delta or crl.next_update is None:
        return margin
    return min(margin, (crl.next_update - crl.this_update) * DELTA_SHARE)


def judge_crl(crl: CrlView, ctx: CheckContext) -> tuple[str, Severity] | None:
    """(reason, severity) for a CRL that needs attention at ``ctx.at``; None when it is fine."""
    at = ctx.at
    if crl.next_update is not None and crl.next_update <= at:
        return "expired", Severity.CRITICAL
    if crl.next_update is not None and crl.next_update - at < expiry_margin(
        crl, ctx.options.crl_expiry_margin
    ):
        return "expiring", Severity.HIGH
    if crl.next_publish is not None and crl.next_publish <= at:
        return "schedule_overdue", Severity.MEDIUM
    return None


def _superseded(source: CrlSource, sources: list[CrlSource]) -> bool:
    """An older CRL of the same issuer and kind next to a newer one (e.g. a leftover file)."""
    return any(
        other.crl.crl.issuer == source.crl.crl.issuer
        and other.crl.is_delta == source.crl.is_delta
        and other.where == source.where
        and other.crl.this_update > source.crl.this_update
        for other in sources
    )


@fleet_check(CA_CRL_01)
def issuing_ca_crls(ctx: CheckContext) -> Iterator[Finding]:
    return _crl_findings(ctx, root=False)


@fleet_check(CA_CRL_04)
def root_ca_crls(ctx: CheckContext) -> Iterator[Finding]:
    return _crl_findings(ctx, root=True)


def _crl_findings(ctx: CheckContext, *, root: bool) -> Iterator[Finding]:
    spec = CA_CRL_04 if root else CA_CRL_01
    sources = list(crl_sources(ctx))
    for source in sources:
        verdict = judge_crl(source.crl, ctx)
        if verdict is None or _is_root_crl(source.crl, ctx) != root or _superseded(source, sources):
            continue
        reason, severity = verdict
        next_update = source.crl.next_update
        yield spec.finding(
            source.host,
            reason=reason,
            subject=source.subject,
            severity=severity,
            message=f"{'delta ' if source.crl.is_delta else ''}CRL of {source.crl.issuer} at {source.where}: "
            f"{reason} (nextUpdate {next_update:%Y-%m-%d %H:%M:%S}Z)"
            if next_update
            else f"CRL of {source.crl.issuer} at {source.where}: {reason}",
            evidence={
                "where": source.where,
                "crl": source.crl.describe(),
                "enforced_by_rras": _enforcing(ctx),
            },
        )


def _enforcing(ctx: CheckContext) -> list[str]:
    """RRAS servers that check revocation: an expired CRL stops every device tunnel there."""
    return sorted(
        host for host, facts in ctx.rras_hosts() if facts.registry and facts.registry.cert_auth_flags == 4
    )


@fleet_check(CA_CRL_03)
def distribution_points(ctx: CheckContext) -> Iterator[Finding]:
    published = {
        (source.crl.crl.issuer, source.crl.is_delta): source.crl
        for source in crl_sources(ctx)
        if source.subject.startswith("crl:")
    }
    for fetch in ctx.fleet.crls:
        subject = f"cdp:{fetch.url}"
        if fetch.der is None:
            yield CA_CRL_03.finding(
                _url_host(fetch.url, ctx), reason="unreachable", subject=subject,
                message=f"{fetch.url}: {fetch.error}", evidence={"url": fetch.url, "error": fetch.error},
            )  # fmt: skip
            continue
        try:
            crl = parse_crl(fetch.der)
        except FactsParseError as exc:
            yield CA_CRL_03.finding(
                _url_host(fetch.url, ctx), reason="unreadable", subject=subject,
                message=f"{fetch.url}: {exc}", evidence={"url": fetch.url},
            )  # fmt: skip
            continue
        newest = published.get((crl.crl.issuer, crl.is_delta))
        if (
            newest is not None
            and newest.crl_number is not None
            and (crl.crl_number or -1) < newest.crl_number
        ):
            yield CA_CRL_03.finding(
                _issuer_host(crl, ctx),
                reason="stale_copy",
                subject=subject,
                severity=Severity.MEDIUM,
                message=f"{fetch.url} serves CRL number {crl.crl_number}, the CA has {newest.crl_number}",
                evidence={"url": fetch.url, "served": crl.describe(), "published": newest.describe()},
            )


def _url_host(url: str, ctx: CheckContext) -> str:
    """The CA host whose certificates point at ``url`` (a CDP of the certificates it issued)."""
    for host, facts in ctx.fleet.facts_of(CaFacts):
        for der in facts.ca_certificates or ():
            ca = safe_parse(der)
            if ca is not None and _points_at(url, ca, ctx):
                return host
    return FLEET_HOST


def _points_at(url: str, ca: CertView, ctx: CheckContext) -> bool:
    for host in ctx.fleet.hosts:
        for entry in getattr(host.facts, "certificates", None) or ():
            cert = safe_parse(entry.der)
            if cert is not None and url in cert.crl_urls and cert.cert.issuer == ca.cert.subject:
                return True
    return False


@host_check(CA_CRL_02, CaFacts)
def crl_overlap(host: str, facts: CaFacts, ctx: CheckContext) -> Iterator[Finding]:
    period = _period(facts.crl_schedule)
    if period is None:
        return
    for item in facts.crls or ():
        try:
            crl = parse_crl(item.der)
        except FactsParseError:
            continue
        if crl.is_delta or crl.next_update is None:
            continue
        overlap = crl.next_update - crl.this_update - period
        if overlap < MIN_OVERLAP:
            yield CA_CRL_02.finding(
                host,
                reason="short_overlap",
                subject=f"crl:{item.file}",
                message=f"{item.file} is valid {overlap} beyond its publication period of {period}",
                evidence={"period": str(period), "overlap": str(overlap), "crl": crl.describe()},
            )


def _period(schedule: CrlSchedule | None) -> timedelta | None:
    if schedule is None or not schedule.crl_period_units or not schedule.crl_period:
        return None
    unit = _PERIODS.get(schedule.crl_period.casefold())
    return unit * schedule.crl_period_units if unit else None


@host_check(CA_CERT_01, CaFacts)
def ca_certificate(host: str, facts: CaFacts, ctx: CheckContext) -> Iterator[Finding]:
    certs = [cert for cert in map(safe_parse, facts.ca_certificates or ()) if cert is not None]
    if not certs:
        return
    current = max(certs, key=lambda cert: cert.not_after)  # the latest renewal is what issues now
    if ctx.at >= current.not_after:
        reason, severity = "expired", Severity.CRITICAL
    elif current.not_after - ctx.at < ctx.options.ca_cert_expiry_warning:
        reason, severity = "expiring", Severity.MEDIUM
    else:
        return
    yield CA_CERT_01.finding(
        host,
        reason=reason,
        subject=f"ca-certificate:{current.thumbprint}",
        severity=severity,
        message=f"CA certificate {current.subject} ({current.thumbprint}) {reason}: not after "
        f"{current.not_after:%Y-%m-%d}",
        evidence={"certificate": current.describe()},
    )


__all__ = ["CA_CERT_01", "CA_CRL_01", "CA_CRL_02", "CA_CRL_03", "CA_CRL_04", "crl_sources", "judge_crl"]
