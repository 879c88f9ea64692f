"""RRAS and CA actions: the root RRAS accepts, a RemoteAccess restart, a CRL published.

``rras.set-root-certificate`` (host, reversible) sets ``RootCertificateNameToAccept`` to the
enterprise root (RRAS-AUTH-01: every device tunnel landing on a server that pins another root fails
with 13806).  RRAS reads that setting when RemoteAccess starts, so the change is *stored* at once
and *in effect* after a restart: ``rras.restart-remoteaccess`` (host) is the step after it.

``ca.publish-crl`` (host, not reversible) runs ``certutil -crl`` on an issuing CA whose CRL expired
or is about to (CA-CRL-01).

Retries.  The engine re-plans a step that an attempt left half-done, so the scripts' ``NotBefore``
is derived from data that stays the same across re-plans, never from the plan's clock alone:

* the restart's is the host time the earlier step reported for its change (``changed_at`` of
  ``rras.set-root-cert``): a RemoteAccess start at or after it already runs with the change, so a
  restart that a dead attempt completed is not repeated, and no clock but the host's is compared
  with the host's.  Only when an earlier step did not report that time is the plan time used.
* the CRL publication's is one second after the ``thisUpdate`` of the base CRL the plan saw: any
  newer base CRL (ours from a dead attempt, or the CA's own schedule's) makes a retry a no-op,
  whatever the clocks, and AD CS back-dating ``thisUpdate`` by its clock skew cannot defeat it.

Rollback.  The engine rolls back newest first, so a restart's "rollback" would run *before* the
setting is restored and put nothing into effect.  The restart is therefore not reversible (a restart
leaves nothing to undo) and ``rras.set-root-certificate``'s rollback restarts RemoteAccess itself
after restoring the root, so the restored root is the one in effect.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from orchestrator.actions.model import (
    ActionPlan,
    ApplyResult,
    ArgSpec,
    ArgType,
    Change,
    Connection,
    PlanContext,
    TargetKind,
)
from orchestrator.actions.registry import register
from orchestrator.checks.context import CheckContext, CheckOptions
from orchestrator.checks.model import FrozenJson
from orchestrator.checks.trust import ChainStatus, StoreSet, build_chain, safe_parse, same_ca
from orchestrator.errors import ActionFailedError, InputError
from orchestrator.facts.ca import CaFacts
from orchestrator.facts.fleet import FleetFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.x509 import (
    CertView,
    CrlView,
    FactsParseError,
    normalize_thumbprint,
    parse_crl,
    thumbprint,
)
from orchestrator.scripts.action_schemas import (
    CrlSummary,
    PublishCrlResult,
    RestartServiceResult,
    SetRootCertResult,
)
from orchestrator.scripts.catalog import PUBLISH_CRL, RESTART_SERVICE, SET_ROOT_CERT

SET_ROOT_NAME = "rras.set-root-certificate"
RESTART_NAME = "rras.restart-remoteaccess"
PUBLISH_CRL_NAME = "ca.publish-crl"
ROOT_FIELD = "VpnAuthProtocol.RootCertificateNameToAccept"
REMOTE_ACCESS = "RemoteAccess"
RRAS_AUTH_01 = "RRAS-AUTH-01"
CA_CRL_01 = "CA-CRL-01"
CRL_REASONS = ("expired", "expiring", "schedule_overdue")
"""The CA-CRL-01 reasons a fresh CRL fixes."""

_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
_ROOT_REASONS = ("mismatch", "unset")


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with ``Z``, as the scripts' ``NotBefore`` takes it (fractions kept)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: FrozenJson) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _der_thumbprint(der_b64: str | None) -> str | None:
    if der_b64 is None:
        return None
    try:
        return thumbprint(base64.b64decode(der_b64, validate=True))
    except (binascii.Error, ValueError):
        return None


def _text_arg(args: Mapping[str, FrozenJson], name: str) -> str:
    value = args.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", field=name)
    return value.strip()


# -- rras.set-root-certificate ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wanted:
    """The root to accept: its thumbprint in the server's Root store, and where it came from."""

    thumbprint: str
    source: str
    view: CertView | None = None


def enterprise_roots(fleet: FleetFacts, at: datetime) -> tuple[CertView, ...]:
    """The self-signed roots the fleet's CA hosts' own certificates chain to (re-issues once).

    Chains are built from every CA certificate the fleet's stores hold, as the checks build them.
    """
    checks = CheckContext(fleet, at=at, options=CheckOptions())
    found: list[CertView] = []
    for ca in checks.issuing_cas:
        chain = build_chain(ca, checks.known_cas, at)
        if chain.status not in (ChainStatus.OK, ChainStatus.CA_EXPIRED) or not chain.top.self_issued:
            continue
        if not any(same_ca(chain.top, known) for known in found):
            found.append(chain.top)
    return tuple(found)


def _known_root(fleet: FleetFacts, at: datetime, wanted: str) -> CertView | None:
    roots = CheckContext(fleet, at=at, options=CheckOptions()).known_cas.roots
    return next((root for root in roots if root.thumbprint == wanted), None)


def _expected_by_check(ctx: PlanContext) -> str | None:
    """The one root RRAS-AUTH-01 expects here (its evidence honours ``expected_root_thumbprint``)."""
    expected: set[str] = set()
    for finding in ctx.findings_of(RRAS_AUTH_01):
        if finding.reason not in _ROOT_REASONS:
            continue
        thumbprints = finding.evidence.get("expected_thumbprints")
        if isinstance(thumbprints, tuple):
            expected.update(str(item) for item in thumbprints)
    return expected.pop() if len(expected) == 1 else None


def _wanted_root(ctx: PlanContext, given: str) -> _Wanted:
    """The argument, else the root RRAS-AUTH-01 expects, else the root the fleet's CAs chain to."""
    if given:
        wanted = normalize_thumbprint(given)
        if not _THUMBPRINT.fullmatch(wanted):
            raise InputError(f"{given!r} is not a certificate thumbprint (40 hex digits)", field="thumbprint")
        return _Wanted(wanted, "argument", _known_root(ctx.fleet, ctx.at, wanted))
    by_check = _expected_by_check(ctx)
    if by_check is not None:
        return _Wanted(by_check, f"{RRAS_AUTH_01} (expected root)", _known_root(ctx.fleet, ctx.at, by_check))
    roots = enterprise_roots(ctx.fleet, ctx.at)
    if not roots:
        raise InputError(
            "cannot tell the enterprise root: no inventoried CA host's certificate chains to a root in "
            "any Root store the fleet reported; pass the root's thumbprint",
            field="thumbprint",
        )
    if len(roots) > 1:
        names = ", ".join(f"{root.subject} ({root.thumbprint})" for root in roots)
        raise InputError(
            f"the fleet's CAs chain to {len(roots)} roots ({names}); pass the one to accept",
            field="thumbprint",
        )
    return _Wanted(roots[0].thumbprint, "enterprise root (the CA hosts' chain)", roots[0])


def _in_server_root(ctx: PlanContext, facts: RrasFacts, wanted: _Wanted) -> tuple[_Wanted, str]:
    """``wanted`` as the server's Root store holds it (a re-issue of a derived root counts); a note."""
    if facts.certificates is None:
        return wanted, " (the server's certificate stores were not read: the script checks Root itself)"
    roots = StoreSet.from_entries(facts.certificates).roots
    if any(root.thumbprint == wanted.thumbprint for root in roots):
        return wanted, ""
    if wanted.view is not None and wanted.source != "argument":
        reissue = next((root for root in roots if same_ca(root, wanted.view)), None)
        if reissue is not None:
            return _Wanted(reissue.thumbprint, f"{wanted.source}, as re-issued in Root", reissue), ""
    what = f"{wanted.view.subject} ({wanted.thumbprint})" if wanted.view else wanted.thumbprint
    raise InputError(
        f"{ctx.target}: the root to accept, {what}, is not in LocalMachine\\Root: import it first "
        "(install-ca-chain, or Import-Certificate -CertStoreLocation Cert:\\LocalMachine\\Root)",
        field="thumbprint",
    )


def _root_after(result: SetRootCertResult) -> dict[str, FrozenJson]:
    return {
        "thumbprint": result.after_thumbprint,
        "pending_restart": result.pending_restart,
        "changed_at": None if result.changed_at is None else iso(result.changed_at),
    }


class SetRootCertificate:
    """``rras.set-root-certificate``: pin the enterprise root for IKEv2 machine certificates."""

    name: ClassVar[str] = SET_ROOT_NAME
    summary: ClassVar[str] = (
        "Set the root RRAS accepts for IKEv2 machine certificates (RootCertificateNameToAccept) to the "
        "enterprise root, read it back; in effect after a RemoteAccess restart"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec(
            "thumbprint",
            ArgType.STRING,
            "the root's SHA-1 thumbprint (in the server's LocalMachine\\Root); empty: the root "
            "RRAS-AUTH-01 expects, else the self-signed root the fleet's issuing CA chains to",
        ),
    )
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        facts = ctx.facts
        if not isinstance(facts, RrasFacts):
            raise InputError(f"{ctx.target} is not an RRAS server (no rras.facts)", field="target")
        protocol = facts.auth_protocol
        if protocol is None:
            why = next((e.message for e in facts.errors if e.section == "auth_protocol"), "not collected")
            raise InputError(f"{ctx.target}: Get-VpnAuthProtocol could not be read: {why}", field="target")
        wanted, stores_note = _in_server_root(ctx, facts, _wanted_root(ctx, _text_arg(args, "thumbprint")))
        current = _der_thumbprint(protocol.root_certificate_der)
        arguments = {"thumbprint": wanted.thumbprint}
        configured = safe_parse(protocol.root_certificate_der) if protocol.root_certificate_der else None
        equivalent = (
            wanted.source != "argument"
            and configured is not None
            and wanted.view is not None
            and same_ca(configured, wanted.view)
        )
        if current == wanted.thumbprint or equivalent:
            return ActionPlan(
                action=self.name,
                target=ctx.target,
                arguments=arguments,
                note=f"RRAS already accepts {current} ({wanted.source})",
            )
        note = f"{current or 'unset'} -> {wanted.thumbprint} ({wanted.source}){stores_note}; in effect after "
        note += "a RemoteAccess restart"
        if current is None:
            note += "; not reversible to unset: Set-VpnAuthProtocol cannot clear RootCertificateNameToAccept"
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments=arguments,
            changes=(Change(field=ROOT_FIELD, before=current, after=wanted.thumbprint),),
            note=note,
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        wanted = plan.arguments.get("thumbprint")
        if not isinstance(wanted, str) or not wanted:
            raise InputError("the plan names no thumbprint", field="thumbprint")
        result: SetRootCertResult = conn.run(SET_ROOT_CERT.bind(Thumbprint=wanted))
        message = "already set" if not result.changed else "set and read back"
        if result.pending_restart:
            message += "; RemoteAccess keeps the old root until it restarts"
        elif not result.changed:
            message += "; if an earlier attempt set it, a RemoteAccess restart may still be due"
        return ApplyResult(
            changed=result.changed,
            before={"thumbprint": result.before_thumbprint},
            after=_root_after(result),
            message=message,
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Set the previous root again and restart RemoteAccess so that it is the one in effect."""
        previous = before.get("thumbprint")
        if not isinstance(previous, str) or not previous:
            raise ActionFailedError(
                "RootCertificateNameToAccept was unset before: Set-VpnAuthProtocol cannot unset it, so it "
                "was left as it is; clear it by hand if RRAS must accept any trusted root again",
                host=conn.target,
            )
        result: SetRootCertResult = conn.run(SET_ROOT_CERT.bind(Thumbprint=previous))
        after = _root_after(result)
        if not result.changed:
            return ApplyResult(
                changed=False,
                before={"thumbprint": result.before_thumbprint},
                after=after,
                message="the previous root is already set; if it was restored by an earlier attempt that "
                "did not restart RemoteAccess, restart it",
            )
        message = "previous root restored"
        if result.pending_restart:
            # Stamped by the host right after the restore: a start at or after it runs with it.
            not_before = "" if result.changed_at is None else iso(result.changed_at)
            restart: RestartServiceResult = conn.run(
                RESTART_SERVICE.bind(Name=REMOTE_ACCESS, NotBefore=not_before)
            )
            after["restart"] = _restart_after(restart)
            message += f"; RemoteAccess restarted ({restart.sessions_dropped or 0} sessions dropped)"
        return ApplyResult(
            changed=True, before={"thumbprint": result.before_thumbprint}, after=after, message=message
        )


# -- rras.restart-remoteaccess ------------------------------------------------------------------------


def _is_restart_of(after: Mapping[str, FrozenJson], service: str) -> bool:
    name = after.get("service")
    return isinstance(name, str) and name.casefold() == service.casefold() and "started_at" in after


def _restart_unknown(result: ApplyResult) -> bool:
    """The step reports that it cannot tell whether a restart is still due (``pending_restart`` null)."""
    return "pending_restart" in result.after and result.after["pending_restart"] is None


def awaiting_restart(prior: Mapping[str, ApplyResult], service: str) -> list[tuple[str, ApplyResult]]:
    """Earlier steps of this run whose change waits for ``service`` to start again.

    A step counts when it changed something, or when it reports ``pending_restart`` as unknown (it
    found the change already made, by an attempt that died before the journal knew); a restart of
    the service in between settles every step before it.
    """
    waiting: list[tuple[str, ApplyResult]] = []
    for step, result in prior.items():
        if _is_restart_of(result.after, service):
            waiting = []
        elif result.changed or _restart_unknown(result):
            waiting.append((step, result))
    return waiting


def _change_times(waiting: Iterable[tuple[str, ApplyResult]]) -> list[datetime] | None:
    """The host times the waiting steps reported for their changes; None when one did not."""
    times = []
    for _step, result in waiting:
        moment = _parse_time(result.after.get("changed_at"))
        if moment is None:
            return None
        times.append(moment)
    return times


def _service_status(ctx: PlanContext, service: str) -> str:
    """The service's status per the fresh facts; InputError when the facts show it does not exist."""
    services = getattr(ctx.facts, "services", None)
    if services is None:
        return "unknown (services not collected)"
    state = next((item for item in services if item.name.casefold() == service.casefold()), None)
    if state is None:
        raise InputError(f"{ctx.target} has no service {service!r} (per its facts)", field="service")
    return str(state.status)


def _restart_after(result: RestartServiceResult) -> dict[str, FrozenJson]:
    return {
        "service": result.name,
        "status": result.status,
        "started_at": None if result.started_at is None else iso(result.started_at),
        "sessions_dropped": result.sessions_dropped,
    }


class RestartRemoteAccess:
    """``rras.restart-remoteaccess``: restart RemoteAccess once after the changes that need it."""

    name: ClassVar[str] = RESTART_NAME
    summary: ClassVar[str] = (
        "Restart the RemoteAccess service so that stored RRAS settings take effect (drops every VPN "
        "session on the server); only after an earlier step of the run changed something, at most once"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec("service", ArgType.STRING, "the service to restart", default=REMOTE_ACCESS),
    )
    reversible: ClassVar[bool] = False  # nothing to undo; a setting's own rollback restarts (module doc)

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        service = _text_arg(args, "service") or REMOTE_ACCESS
        waiting = awaiting_restart(ctx.prior, service)
        if not waiting:
            return ActionPlan(
                action=self.name,
                target=ctx.target,
                arguments={"service": service},
                note="no earlier step of this run changed a setting that waits for a restart",
            )
        status = _service_status(ctx, service)
        times = _change_times(waiting)
        if times:
            not_before, basis = max(times), "the host time of the last change"
        else:
            not_before, basis = ctx.at, "the plan time: an earlier step reported no change time"
        steps = ", ".join(step for step, _ in waiting)
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments={"service": service, "not_before": iso(not_before)},
            changes=(Change(field=f"Service[{service}]", before=status, after="restarted"),),
            note=f"for {steps}: restart unless {service} started at or after {iso(not_before)} ({basis}); "
            "every VPN session on the server drops",
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        service = plan.arguments.get("service")
        if not isinstance(service, str) or not service:
            raise InputError("the plan names no service", field="service")
        not_before = plan.arguments.get("not_before")
        if not isinstance(not_before, str):
            raise InputError("the plan has no not_before time", field="not_before")
        result: RestartServiceResult = conn.run(RESTART_SERVICE.bind(Name=service, NotBefore=not_before))
        if result.changed:
            dropped = "unknown" if result.sessions_dropped is None else str(result.sessions_dropped)
            message = f"restarted; {dropped} sessions dropped"
        else:
            message = f"not restarted: running since {iso(result.started_at) if result.started_at else '?'}"
            message += f", not before {not_before}"
        return ApplyResult(
            changed=result.changed,
            before={"service": service, "not_before": not_before},
            after=_restart_after(result),
            message=message,
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        raise ActionFailedError(
            f"{self.name} is not reversible: a restart leaves nothing to undo (a setting's rollback restarts "
            "the service itself)",
            host=conn.target,
        )


# -- ca.publish-crl -----------------------------------------------------------------------------------


def current_base_crl(facts: CaFacts) -> CrlView | None:
    """The CA's newest base CRL in CertEnroll (issued under its current certificate), per the facts."""
    certificates = [cert for cert in map(safe_parse, facts.ca_certificates or ()) if cert is not None]
    current = certificates[-1] if certificates else None  # oldest renewal first
    newest: CrlView | None = None
    for item in facts.crls or ():
        try:
            crl = parse_crl(item.der)
        except FactsParseError:
            continue
        if crl.is_delta or (current is not None and crl.crl.issuer != current.cert.subject):
            continue
        if newest is None or crl.this_update > newest.this_update:
            newest = crl
    return newest


def _crl_state(crl: CrlView) -> dict[str, FrozenJson]:
    return {
        "crl_number": crl.crl_number,
        "this_update": iso(crl.this_update),
        "next_update": None if crl.next_update is None else iso(crl.next_update),
    }


def _summary(crl: CrlSummary | None) -> FrozenJson:
    if crl is None:
        return None
    return {
        "file": crl.file,
        "crl_number": crl.crl_number,
        "this_update": iso(crl.this_update),
        "next_update": None if crl.next_update is None else iso(crl.next_update),
    }


class PublishCrl:
    """``ca.publish-crl``: ``certutil -crl`` on a CA whose CRL expired, is expiring or is overdue."""

    name: ClassVar[str] = PUBLISH_CRL_NAME
    summary: ClassVar[str] = (
        "Publish a fresh base and delta CRL on the issuing CA (certutil -crl) when CA-CRL-01 reports "
        "one expired, expiring or overdue; at most once per plan"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = False

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        facts = ctx.facts
        if not isinstance(facts, CaFacts) or facts.ca_name is None:
            raise InputError(f"{ctx.target} has no certification authority installed", field="target")
        findings = [f for f in ctx.findings_of(CA_CRL_01) if f.reason in CRL_REASONS]
        if not findings:
            return ActionPlan(
                action=self.name, target=ctx.target, note="no CA-CRL-01 finding: the CRLs are fine"
            )
        base = current_base_crl(facts)
        why = "; ".join(sorted({f"{finding.subject}: {finding.reason}" for finding in findings}))
        if base is None:
            arguments: dict[str, FrozenJson] = {}
            before: FrozenJson = None
            why += "; no base CRL seen in CertEnroll, so a retry publishes again"
        else:
            # Any base CRL newer than the one seen makes the publication (or its retry) a no-op.
            arguments = {"not_before": iso(base.this_update + timedelta(seconds=1))}
            before = _crl_state(base)
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments=arguments,
            changes=(
                Change(field=f"CRL[{facts.ca_name}]", before=before, after="republished (certutil -crl)"),
            ),
            note=why,
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        not_before = plan.arguments.get("not_before")
        invocation = (
            PUBLISH_CRL.bind(NotBefore=not_before) if isinstance(not_before, str) else PUBLISH_CRL.bind()
        )
        result: PublishCrlResult = conn.run(invocation)
        if result.changed:
            next_update = "none" if result.base.next_update is None else iso(result.base.next_update)
            message = (
                f"published CRL {result.base.crl_number} ({result.base.file}), next update {next_update}"
            )
        else:
            message = f"not published again: {result.base.file} of {iso(result.base.this_update)} is newer"
        return ApplyResult(
            changed=result.changed,
            before={"base": _summary(result.previous_base)},
            after={
                "base": _summary(result.base),
                "delta": _summary(result.delta),
                "published_to": result.published_to,
            },
            message=message,
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        raise ActionFailedError(
            f"{self.name} is not reversible: a published CRL cannot be withdrawn", host=conn.target
        )


SET_ROOT_CERTIFICATE = register(SetRootCertificate())
RESTART_REMOTEACCESS = register(RestartRemoteAccess())
PUBLISH_CRL_ACTION = register(PublishCrl())

__all__ = [
    "CRL_REASONS",
    "PUBLISH_CRL_ACTION",
    "PUBLISH_CRL_NAME",
    "RESTART_NAME",
    "RESTART_REMOTEACCESS",
    "ROOT_FIELD",
    "SET_ROOT_CERTIFICATE",
    "SET_ROOT_NAME",
    "PublishCrl",
    "RestartRemoteAccess",
    "SetRootCertificate",
    "awaiting_restart",
    "current_base_crl",
    "enterprise_roots",
    "iso",
]
