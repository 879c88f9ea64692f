"""Endpoint actions: host-bit VPN routes fixed on the device, missing CA certificates installed, and a
new device certificate from machine autoenrollment.

``endpoint.fix-vpn-routes`` replaces each split-tunnel route with host bits set (``172.21.12.0/21``)
by the network it names (``172.21.8.0/21``) in the VPN connections configured on the device
(EP-ROUTE-01).  Only routes put there locally are changed: a route that came with the ProfileXML
Intune delivered would come back at the next MDM delivery, so it is left to Intune
(``intune.fix-vpn-routes`` fixes the profile, ``intune.sync-device`` brings it to the device).

``endpoint.install-ca-certificates`` imports the root and intermediate CA certificates an endpoint
lacks to build its own or the VPN servers' chains (EP-CERT-04, IKEv2 error 13806).  The DER comes
from the fleet's facts (a CA host's own certificate, another host's stores), never from outside.

``endpoint.cert-autoenroll`` triggers machine certificate autoenrollment when the device
certificate is missing, unfit, revoked or about to expire (EP-CERT-01, EP-CERT-02 revoked,
EP-CERT-05).  A certificate cannot be
un-enrolled, so the action is not reversible.

All three follow :mod:`orchestrator.actions.model`: ``plan`` reads only facts and findings, and the
scripts ``apply`` runs read the host's state first and change nothing that is already right.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from orchestrator.actions.model import (
    ActionPlan,
    ApplyResult,
    ArgSpec,
    Change,
    Connection,
    PlanContext,
    TargetKind,
)
from orchestrator.actions.registry import register
from orchestrator.checks.model import Finding, FrozenJson
from orchestrator.checks.prefixes import PrefixProblem, judge_cidr, judge_prefix
from orchestrator.checks.trust import safe_parse
from orchestrator.errors import ActionFailedError, BadOutputError, FleetfixError, InputError
from orchestrator.facts.ca import CaFacts
from orchestrator.facts.endpoint import EndpointFacts, VpnConnection
from orchestrator.facts.fleet import FleetFacts
from orchestrator.facts.x509 import CertView, normalize_thumbprint
from orchestrator.scripts.action_schemas import CertPulseResult, SetVpnRouteResult
from orchestrator.scripts.catalog import CERT_PULSE, IMPORT_CERTIFICATE, REMOVE_CERTIFICATE, SET_VPN_ROUTE
from orchestrator.transport.graph.profilexml import ProfileXmlError, route_texts

FIX_ROUTES_NAME = "endpoint.fix-vpn-routes"
INSTALL_CA_NAME = "endpoint.install-ca-certificates"
AUTOENROLL_NAME = "endpoint.cert-autoenroll"
EP_ROUTE_01 = "EP-ROUTE-01"
EP_CERT_01 = "EP-CERT-01"
EP_CERT_02 = "EP-CERT-02"
EP_CERT_04 = "EP-CERT-04"
EP_CERT_05 = "EP-CERT-05"
CA_STORES = ("Root", "CA")
DEVICE_CERT_FIELD = "Cert:\\LocalMachine\\My (device certificate)"


# -- reading plan arguments and journal entries (JSON a user may have edited) --------------------------


def _items(data: Mapping[str, FrozenJson], key: str) -> tuple[Mapping[str, FrozenJson], ...]:
    value = data.get(key) or ()
    if not isinstance(value, tuple) or not all(isinstance(item, Mapping) for item in value):
        raise InputError(f"{key} must be a list of objects", field=key)
    return tuple(item for item in value if isinstance(item, Mapping))


def _string(item: Mapping[str, FrozenJson], key: str, *, field: str, empty: bool = False) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (not value and not empty):
        raise InputError(f"{key} must be a {'' if empty else 'non-empty '}string", field=field)
    return value


def _flag(item: Mapping[str, FrozenJson], key: str, *, field: str) -> bool:
    value = item.get(key)
    if not isinstance(value, bool):
        raise InputError(f"{key} must be true or false", field=field)
    return value


def _endpoint_facts(ctx: PlanContext, action: str) -> EndpointFacts:
    if not isinstance(ctx.facts, EndpointFacts):
        raise InputError(
            f"{action} plans from an endpoint's facts, not {type(ctx.facts).__name__}", field="target"
        )
    return ctx.facts


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# == endpoint.fix-vpn-routes ============================================================================


def _intended_routes(facts: EndpointFacts) -> dict[str, frozenset[str] | None]:
    """Routes of the ProfileXML Intune delivered, by connection name (case-folded); None when the
    profile came from Intune but its routes cannot be read (then every route counts as Intune's)."""
    intended: dict[str, frozenset[str] | None] = {}
    for profile in facts.mdm_vpn_profiles or ():
        key = profile.name.casefold()
        try:
            texts = route_texts(profile.profile_xml) if profile.profile_xml is not None else None
        except ProfileXmlError:
            texts = None
        if texts is None:
            intended[key] = None
            continue
        routes = frozenset(judge_prefix(text.address, text.prefix_size).text for text in texts)
        known = intended.get(key, frozenset())
        intended[key] = None if known is None else known | routes
    return intended


@dataclass
class _RoutePlan:
    routes: list[FrozenJson] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)


def _plan_connection(
    connection: VpnConnection,
    wanted: set[str],
    intended: Mapping[str, frozenset[str] | None],
    plan: _RoutePlan,
) -> None:
    key = connection.name.casefold()
    for route in connection.routes:
        verdict = judge_cidr(route.destination_prefix)
        subject = f"{connection.name}:{verdict.text}"
        if subject not in wanted or verdict.problem is not PrefixProblem.HOST_BITS:
            continue
        plan.handled.add(subject)
        if key in intended:
            from_intune = intended[key]
            if from_intune is None or verdict.text in from_intune:
                plan.notes.append(
                    f"{subject}: not changed here, Intune owns this route (its ProfileXML) and would put it "
                    "back; intune.fix-vpn-routes fixes the profile and intune.sync-device delivers it"
                )
                continue
            plan.notes.append(
                f"{subject}: added locally to a profile Intune delivered; fixed here (a later Intune "
                "delivery rewrites the profile as Intune intends it)"
            )
        old = route.destination_prefix
        new = str(ipaddress.ip_network(old.strip(), strict=False))
        plan.routes.append(
            {
                "connection": connection.name,
                "old": old,
                "new": new,
                "all_user": connection.all_user_connection,
            }
        )
        plan.changes.append(Change(field=f"VpnConnection[{connection.name}].Route", before=old, after=new))


def _unplanned_notes(findings: Iterable[Finding], plan: _RoutePlan) -> Iterator[str]:
    for finding in findings:
        if finding.subject in plan.handled:
            continue
        if finding.reason != PrefixProblem.HOST_BITS.value:
            yield f"{finding.subject}: the prefix does not parse; fix it by hand"
        else:
            yield (
                f"{finding.subject}: only in a ProfileXML Intune delivered (no connection on the device "
                "carries it where WinRM can change it); intune.fix-vpn-routes and intune.sync-device fix it"
            )


@dataclass
class _RouteRun:
    """What one apply (or rollback) did, connection by connection, in journal shape."""

    before: dict[str, tuple[str, ...]] = field(default_factory=dict)
    after: dict[str, tuple[str, ...]] = field(default_factory=dict)
    done: list[FrozenJson] = field(default_factory=list)

    def record(self, result: SetVpnRouteResult) -> None:
        self.before.setdefault(result.connection, result.routes_before)  # the first look is the original
        self.after[result.connection] = result.routes_after

    def result(self, message: str, failure: FleetfixError | None = None) -> ApplyResult:
        after: dict[str, FrozenJson] = {"routes": dict(self.after)}
        if failure is not None:
            after["failed"] = {"kind": failure.kind, "message": str(failure)}
        return ApplyResult(
            changed=bool(self.done),
            before={"routes": dict(self.before), "replaced": tuple(self.done)},
            after=after,
            message=message,
        )


def _set_route(conn: Connection, connection: str, old: str, new: str, all_user: bool) -> SetVpnRouteResult:
    result: SetVpnRouteResult = conn.run(
        SET_VPN_ROUTE.bind(
            ConnectionName=connection, OldPrefix=old, NewPrefix=new, AllUserConnection=all_user
        )
    )
    return result


def _holds(routes: Iterable[str], prefix: str) -> bool:
    return any(route.casefold() == prefix.casefold() for route in routes)


class FixVpnRoutes:
    """``endpoint.fix-vpn-routes``: host-bit routes of the device's own VPN connections fixed in place."""

    name: ClassVar[str] = FIX_ROUTES_NAME
    summary: ClassVar[str] = (
        "Replace split-tunnel routes with host bits set (172.21.12.0/21) by their network (172.21.8.0/21) "
        "in VPN connections configured on the device; routes Intune delivered are left to Intune"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        facts = _endpoint_facts(ctx, self.name)
        findings = ctx.findings_of(EP_ROUTE_01)
        plan = _RoutePlan()
        wanted = {finding.subject for finding in findings}
        intended = _intended_routes(facts)
        for connection in facts.vpn_connections or ():
            _plan_connection(connection, wanted, intended, plan)
        if facts.vpn_connections is None and findings:
            plan.notes.append("the VPN connections could not be read (an endpoint.facts section failed)")
        plan.notes += _unplanned_notes(findings, plan)
        if not findings:
            plan.notes.append("no EP-ROUTE-01 finding: every route of the device's connections is a network")
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments={"routes": tuple(plan.routes)} if plan.changes else {},
            changes=tuple(plan.changes),
            note="; ".join(plan.notes),
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """One ``endpoint.set-vpn-route`` per planned route.  ``before`` keeps each connection's
        route list as first seen and, per route changed, whether the new one was added and the old
        one removed (a new route that was already there is not removed by a rollback)."""
        run = _RouteRun()
        for item in _items(plan.arguments, "routes"):
            connection = _string(item, "connection", field="routes")
            old, new = _string(item, "old", field="routes"), _string(item, "new", field="routes")
            all_user = _flag(item, "all_user", field="routes")
            try:
                result = _set_route(conn, connection, old, new, all_user)
            except FleetfixError as exc:
                if not run.done:
                    raise
                return run.result(f"stopped after {len(run.done)} route(s): {exc}", exc)
            run.record(result)
            if result.changed:
                run.done.append(
                    {"connection": result.connection, "old": old, "new": new, "all_user": all_user,
                     "added": not _holds(result.routes_before, new),
                     "removed": _holds(result.routes_before, old)}
                )  # fmt: skip
        if not run.done:
            return run.result("every planned route is already right: nothing changed")
        return run.result(f"{len(run.done)} route(s) replaced by their network")

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Undo each replacement, newest first: the old route back if it was removed, the new one
        gone if it was added.  Each call is idempotent, so a second rollback changes nothing."""
        run = _RouteRun()
        for item in reversed(_items(before, "replaced")):
            connection = _string(item, "connection", field="replaced")
            restore = (
                _string(item, "old", field="replaced") if _flag(item, "removed", field="replaced") else ""
            )
            drop = _string(item, "new", field="replaced") if _flag(item, "added", field="replaced") else ""
            if not restore and not drop:
                continue
            result = _set_route(conn, connection, drop, restore, _flag(item, "all_user", field="replaced"))
            run.record(result)
            if result.changed:
                run.done.append({"connection": result.connection, "old": drop, "new": restore})
        if not run.done:
            return run.result("every connection already holds its previous routes")
        return run.result(f"{len(run.done)} route(s) restored")


# == endpoint.install-ca-certificates ====================================================================


def fleet_certificates(fleet: FleetFacts) -> dict[str, CertView]:
    """Every certificate any host's facts carry, by thumbprint: CA hosts' own, every store."""
    found: dict[str, CertView] = {}
    for host in fleet.hosts:
        facts = host.facts
        texts = [entry.der for entry in getattr(facts, "certificates", None) or ()]
        if isinstance(facts, CaFacts):
            texts += list(facts.ca_certificates or ())
        for text in texts:
            view = safe_parse(text)
            if view is not None:
                found.setdefault(view.thumbprint, view)
    return found


def _ca_subject(subject: str) -> tuple[str, str]:
    store, sep, thumb = subject.partition(":")
    thumbprint = normalize_thumbprint(thumb)
    if not sep or store not in CA_STORES or len(thumbprint) != 40:
        raise InputError(
            f"EP-CERT-04 subject {subject!r} is not Root:<thumbprint> or CA:<thumbprint>", field=EP_CERT_04
        )
    return store, thumbprint


def _checked_ca(store: str, thumbprint: str, known: Mapping[str, CertView]) -> CertView:
    """The fleet's copy of a CA certificate, fit for ``store``; InputError naming it otherwise."""
    cert = known.get(thumbprint)
    if cert is None:
        raise InputError(
            f"{store} certificate {thumbprint} is in no host's facts: collect the CA host's facts (or a host "
            "that holds it) first; fleetfix installs only certificates it has seen in the fleet",
            field=EP_CERT_04,
        )
    if not cert.is_ca:
        raise InputError(
            f"{thumbprint} ({cert.subject}) is not a CA certificate (basicConstraints)", field=EP_CERT_04
        )
    if store == "Root" and not (cert.self_issued and cert.issued_by(cert)):
        raise InputError(f"{thumbprint} ({cert.subject}) is not self-signed: not a root", field=EP_CERT_04)
    return cert


def _held(facts: EndpointFacts) -> set[tuple[str, str]]:
    """``(store, thumbprint)`` of the CA stores the fresh facts list."""
    held: set[tuple[str, str]] = set()
    for entry in facts.certificates or ():
        view = safe_parse(entry.der)
        if view is not None:
            held.add((entry.store, view.thumbprint))
    return held


class InstallCaCertificates:
    """``endpoint.install-ca-certificates``: the root and intermediate CA certificates a host lacks."""

    name: ClassVar[str] = INSTALL_CA_NAME
    summary: ClassVar[str] = (
        "Import the root (LocalMachine\\Root) and intermediate (LocalMachine\\CA) certificates the device "
        "needs to chain its own and the VPN servers' certificates, from the fleet's CA certificates"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        facts = _endpoint_facts(ctx, self.name)
        known = fleet_certificates(ctx.fleet)
        held = _held(facts)
        certificates: dict[tuple[str, str], FrozenJson] = {}
        changes: list[Change] = []
        notes: list[str] = []
        for finding in sorted(ctx.findings_of(EP_CERT_04), key=lambda item: item.subject):
            store, thumbprint = _ca_subject(finding.subject)
            if (store, thumbprint) in certificates:
                continue
            cert = _checked_ca(store, thumbprint, known)
            if (store, thumbprint) in held:
                notes.append(f"{finding.subject}: already in LocalMachine\\{store} by the fresh facts")
                continue
            der = base64.b64encode(cert.der).decode("ascii")
            certificates[store, thumbprint] = {"store": store, "thumbprint": thumbprint, "der": der}
            changes.append(
                Change(field=f"Cert:\\LocalMachine\\{store}\\{thumbprint}", before=None, after=cert.subject)
            )
        if not changes and not notes:
            notes.append("no EP-CERT-04 finding: the host holds every CA certificate its chains need")
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments={"certificates": tuple(certificates.values())} if changes else {},
            changes=tuple(changes),
            note="; ".join(notes),
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """Import each certificate (the script leaves one already there alone).  ``before`` lists
        exactly the certificates this call added: all a rollback may remove."""
        imported: list[FrozenJson] = []
        installed: list[FrozenJson] = []
        for item in _items(plan.arguments, "certificates"):
            store, thumbprint = (
                _string(item, "store", field="certificates"),
                _string(item, "thumbprint", field="certificates"),
            )
            try:
                result = conn.run(
                    IMPORT_CERTIFICATE.bind(
                        Store=store, CertificateBase64=_string(item, "der", field="certificates")
                    )
                )
                if result.thumbprint != thumbprint:
                    raise BadOutputError(
                        f"imported {result.thumbprint}, planned {thumbprint}", host=conn.target
                    )
            except FleetfixError as exc:
                if not imported:
                    raise
                return ApplyResult(
                    changed=True,
                    before={"imported": tuple(imported)},
                    after={
                        "certificates": tuple(installed),
                        "failed": {"kind": exc.kind, "message": str(exc)},
                    },
                    message=f"stopped after {len(imported)} certificate(s): {exc}",
                )
            installed.append(
                {"store": result.store, "thumbprint": result.thumbprint, "subject": result.subject}
            )
            if result.changed:
                imported.append({"store": result.store, "thumbprint": result.thumbprint})
        message = (
            f"{len(imported)} CA certificate(s) imported"
            if imported
            else "every CA certificate was already there"
        )
        return ApplyResult(
            changed=bool(imported),
            before={"imported": tuple(imported)},
            after={"certificates": tuple(installed)},
            message=message,
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Remove what the apply imported, and nothing else (a certificate that was there before the
        apply is not in ``before``)."""
        removed: list[FrozenJson] = []
        for item in reversed(_items(before, "imported")):
            store, thumbprint = (
                _string(item, "store", field="imported"),
                _string(item, "thumbprint", field="imported"),
            )
            result = conn.run(REMOVE_CERTIFICATE.bind(Store=store, Thumbprint=thumbprint))
            if result.changed:
                removed.append({"store": result.store, "thumbprint": result.thumbprint})
        return ApplyResult(
            changed=bool(removed),
            before={"imported": _items(before, "imported")},
            after={"removed": tuple(removed)},
            message=f"{len(removed)} CA certificate(s) removed"
            if removed
            else "nothing imported is left to remove",
        )


# == endpoint.cert-autoenroll =============================================================================


def _problem(finding: Finding, fqdn: str) -> str:
    """``expired: CN=ep-0004.corp.contoso.test, 3F2A...`` or ``missing: no device certificate for ...``."""
    certificate = finding.evidence.get("certificate")
    if isinstance(certificate, Mapping):
        return f"{finding.reason}: {certificate.get('subject')}, {certificate.get('thumbprint')}"
    return f"{finding.reason}: no device certificate for {fqdn}"


class CertAutoenroll:
    """``endpoint.cert-autoenroll``: a new device certificate through machine autoenrollment."""

    name: ClassVar[str] = AUTOENROLL_NAME
    summary: ClassVar[str] = (
        "Trigger machine certificate autoenrollment (Certificate Services Client task, as certutil -pulse) "
        "for a device certificate that is missing, unfit, revoked or expiring; superseded ones are archived"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = False

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        facts = _endpoint_facts(ctx, self.name)
        problems: list[str] = []
        notes: list[str] = []
        for finding in ctx.findings_of(EP_CERT_01, EP_CERT_02, EP_CERT_05):
            if finding.check_id == EP_CERT_02 and finding.reason != "revoked":
                notes.append(f"EP-CERT-02 {finding.reason}: a chain problem, not fixed by a new certificate")
                continue
            problems.append(_problem(finding, facts.fqdn))
        if not problems:
            notes.insert(
                0, "no EP-CERT-01, revoked EP-CERT-02 or EP-CERT-05 finding: the device certificate is fine"
            )
            return ActionPlan(action=self.name, target=ctx.target, note="; ".join(notes))
        if not facts.part_of_domain:
            notes.insert(
                0,
                f"{facts.fqdn} is not domain-joined: machine autoenrollment needs Active Directory; "
                "an Intune device gets its certificate from a PKCS or SCEP profile",
            )
            return ActionPlan(action=self.name, target=ctx.target, note="; ".join(notes))
        not_before = _iso(ctx.at)
        notes.insert(
            0,
            "the enterprise CA must publish a computer template with Autoenroll for this device; "
            f"a certificate issued since {not_before} counts as the new one",
        )
        change = Change(
            field=DEVICE_CERT_FIELD, before="; ".join(problems), after="new certificate from autoenrollment"
        )
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments={"not_before": not_before},
            changes=(change,),
            note="; ".join(notes),
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """Pulse autoenrollment (not again when a certificate issued since planning is there) and
        report the new certificate; none arriving in time is a failure of the step."""
        not_before = _string(plan.arguments, "not_before", field="not_before")
        result: CertPulseResult = conn.run(CERT_PULSE.bind(NotBefore=not_before))
        if result.certificate is None:
            raise ActionFailedError(
                "autoenrollment was triggered but no new device certificate arrived in time: check the "
                "computer template's Autoenroll permission and that the enterprise CA is reachable",
                host=conn.target,
            )
        certificate = {
            "thumbprint": result.certificate.thumbprint,
            "subject": result.certificate.subject,
            "not_after": _iso(result.certificate.not_after),
        }
        if not result.changed:
            return ApplyResult(
                changed=False,
                after={"certificate": certificate},
                message=f"a device certificate issued since {not_before} is already there: "
                f"{certificate['thumbprint']}",
            )
        return ApplyResult(
            changed=True,
            before={"not_before": not_before},
            after={"certificate": certificate},
            message=f"new device certificate {certificate['thumbprint']} "
            f"valid until {certificate['not_after']}",
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Nothing to undo: an issued certificate cannot be un-enrolled (revoke it at the CA if needed)."""
        return ApplyResult(changed=False, message="autoenrollment cannot be undone: not reversible")


FIX_VPN_ROUTES = register(FixVpnRoutes())
INSTALL_CA_CERTIFICATES = register(InstallCaCertificates())
CERT_AUTOENROLL = register(CertAutoenroll())

__all__ = [
    "AUTOENROLL_NAME",
    "CERT_AUTOENROLL",
    "FIX_ROUTES_NAME",
    "FIX_VPN_ROUTES",
    "INSTALL_CA_CERTIFICATES",
    "INSTALL_CA_NAME",
    "CertAutoenroll",
    "FixVpnRoutes",
    "InstallCaCertificates",
    "fleet_certificates",
]
