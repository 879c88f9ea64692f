"""Intune actions: host-bit split-tunnel routes fixed in the tenant, and a device asked to check in.

``intune.fix-vpn-routes`` (tenant) rewrites every split-tunnel route whose prefix has host bits set
(``172.21.12.0/21``) to the network it names (``172.21.8.0/21``), in native VPN profiles
(``windows10VpnConfiguration`` routes) and in custom profiles' VPNv2 ProfileXML.  Windows keeps
such a route in the profile but never puts it in the routing table (INT-PROF-02), so every device
the profile reaches misses the network; fixing the profile in Intune fixes it at the source, and
devices follow at their next check-in.

``intune.sync-device`` (host) asks Intune to make the host's managed device check in now: the cure
for a profile Windows deleted while Intune still intends it (EP-PROF-01, the bug KB5008353 fixed),
and how a route fixed in Intune reaches a device sooner (EP-ROUTE-01 on an MDM-delivered profile).
A sync is a request: Intune queues a push and the device checks in later, so the action reports
"sync requested", never "fixed"; the playbook's verification waits for the check-in.

Both follow the contract of :mod:`orchestrator.actions.model`: ``plan`` reads only the facts, and
``apply`` reads the profile through Graph again before it writes, changes only what the plan named
and sends no PATCH at all when the profile is already right.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from xml.etree import ElementTree

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
from orchestrator.checks.model import Finding, FrozenJson, freeze
from orchestrator.checks.prefixes import PrefixProblem, PrefixVerdict, judge_prefix
from orchestrator.errors import BadOutputError, FleetfixError, InputError, ProtocolError
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.tenant import IntuneProfileXml, IntuneVpnProfile, TenantFacts
from orchestrator.transport.graph.profilexml import ProfileXmlError, VpnRoute, route_texts

if TYPE_CHECKING:
    from orchestrator.transport.graph.intune import IntuneClient

FIX_ROUTES_NAME = "intune.fix-vpn-routes"
SYNC_DEVICE_NAME = "intune.sync-device"
INT_PROF_02 = "INT-PROF-02"
EP_ROUTE_01 = "EP-ROUTE-01"
EP_PROF_01 = "EP-PROF-01"
_MDM_SOURCE = "mdm_profile_xml"  # EP-ROUTE-01 evidence: the route came with a ProfileXML Intune delivered

RouteKey = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


# -- routes as text ------------------------------------------------------------------------------------


def _route_text(route: VpnRoute) -> str:
    return f"{route.prefix}/{route.prefix_size}"


def _route_key(route: VpnRoute) -> RouteKey:
    """What makes two routes the same route: ``FD00::`` and ``fd00::`` are one prefix."""
    return ipaddress.ip_address(route.prefix), route.prefix_size


def _keys(routes: Iterable[VpnRoute]) -> list[RouteKey]:
    return [_route_key(route) for route in routes]


def _parse_route(text: str, *, field: str) -> VpnRoute:
    """``address/size`` as written in a plan or a journal entry."""
    address, _, size = text.partition("/")
    try:
        return VpnRoute(address, int(size))
    except ValueError:
        raise InputError(f"{text!r} is not a route (address/size)", field=field) from None


# -- reading a plan's arguments and a journal's ``before`` (JSON a user may have edited) ------------------


def _items(data: Mapping[str, FrozenJson], key: str, *, field: str) -> tuple[Mapping[str, FrozenJson], ...]:
    value = data.get(key) or ()
    if not isinstance(value, tuple) or not all(isinstance(item, Mapping) for item in value):
        raise InputError(f"{key} must be a list of objects", field=field)
    return tuple(item for item in value if isinstance(item, Mapping))


def _string(item: Mapping[str, FrozenJson], key: str, *, field: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{key} must be a non-empty string", field=field)
    return value


def _strings(item: Mapping[str, FrozenJson], key: str, *, field: str) -> tuple[str, ...]:
    value = item.get(key)
    if value is None:
        return ()
    if not isinstance(value, tuple) or not all(isinstance(part, str) for part in value):
        raise InputError(f"{key} must be a list of strings", field=field)
    return tuple(part for part in value if isinstance(part, str))


def _replacements(item: Mapping[str, FrozenJson], *, field: str) -> dict[str, str]:
    """``[{before, after}]`` as a mapping from the route as written to the network it names."""
    return {
        _string(pair, "before", field=field): _string(pair, "after", field=field)
        for pair in _items(item, "replacements", field=field)
    }


# -- ProfileXML: the routes rewritten in place ------------------------------------------------------------

# The edit is textual so that everything else in the customer's ProfileXML (comments, the XML
# declaration, indentation, attribute order) reaches Intune unchanged: re-serialising through
# ElementTree would drop comments and the declaration.  The result is then checked against the same
# edit made on the parsed tree, so a ProfileXML the text edit cannot handle is refused, not mangled.
_ROUTE_ELEMENT = re.compile(r"<Route(?:\s[^>]*)?>.*?</Route>", re.DOTALL)
_ADDRESS = re.compile(r"<Address(?:\s[^>]*)?>([^<]*)</Address>")
_PREFIX_SIZE = re.compile(r"<PrefixSize(?:\s[^>]*)?>([^<]*)</PrefixSize>")


def _padded(raw: str, address: str) -> str:
    """``address`` in the whitespace ``raw`` had around its text."""
    stripped = raw.strip()
    if not stripped:
        return address
    start = raw.index(stripped)
    return raw[:start] + address + raw[start + len(stripped) :]


def _replacement_for(address: str, size: str, replacements: Mapping[str, str]) -> str | None:
    after = replacements.get(judge_prefix(address, size).text)
    return None if after is None else after.partition("/")[0]


def rewrite_profile_xml_routes(xml: str, replacements: Mapping[str, str]) -> str:
    """``xml`` with the ``Address`` of every ``Route`` written as a key of ``replacements``
    (``"172.21.12.0/21"``) changed to its value's address; nothing else changes.

    Raises :class:`ProfileXmlError` for a ProfileXML that does not parse, or whose routes the text
    edit cannot change exactly as the parsed document says they are (entities, CDATA).
    """
    route_texts(xml)  # a VPNProfile without a DTD, or ProfileXmlError

    def rewrite(match: re.Match[str]) -> str:
        element = match.group(0)
        address, size = _ADDRESS.search(element), _PREFIX_SIZE.search(element)
        if address is None or size is None:
            return element
        new = _replacement_for(address.group(1), size.group(1), replacements)
        if new is None:
            return element
        return element[: address.start(1)] + _padded(address.group(1), new) + element[address.end(1) :]

    rewritten = _ROUTE_ELEMENT.sub(rewrite, xml)
    if _canonical(rewritten) != _canonical(xml, replacements):
        raise ProfileXmlError("the ProfileXML's routes cannot be rewritten in place; fix it by hand")
    return rewritten


def _canonical(xml: str, replacements: Mapping[str, str] | None = None) -> str:
    """The parsed document (comments dropped), with ``replacements`` made on the tree."""
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 (route_texts refused DTDs: no entity expansion)
    except ElementTree.ParseError as exc:
        raise ProfileXmlError(f"ProfileXML is not well-formed: {exc}") from None
    for element in root.findall("Route") if replacements else ():
        address, size = element.find("Address"), element.findtext("PrefixSize")
        if address is None or address.text is None or size is None:
            continue
        new = _replacement_for(address.text, size, replacements or {})
        if new is not None:
            address.text = _padded(address.text, new)
    return ElementTree.tostring(root, encoding="unicode")


# -- planning the route fix ---------------------------------------------------------------------------------


def _host_bit_fixes(verdicts: Iterable[PrefixVerdict]) -> dict[str, str]:
    """Route as written -> the network it names, for every route with host bits set (first seen first)."""
    return {
        verdict.text: verdict.corrected
        for verdict in verdicts
        if verdict.problem is PrefixProblem.HOST_BITS and verdict.corrected is not None
    }


def _pairs(fixes: Mapping[str, str]) -> tuple[FrozenJson, ...]:
    return tuple({"before": before, "after": after} for before, after in fixes.items())


@dataclass
class _RoutePlan:
    """What planning collects across profiles."""

    native: list[FrozenJson] = field(default_factory=list)
    profile_xml: list[FrozenJson] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def add(self, profile_id: str, field_name: str, fixes: Mapping[str, str]) -> None:
        for before, after in fixes.items():
            self.changes.append(Change(field=field_name, before=before, after=after))
            self.subjects.add(f"{profile_id}:{before}")


def _plan_native(profile: IntuneVpnProfile, plan: _RoutePlan) -> None:
    verdicts = [judge_prefix(route.destination_prefix, route.prefix_size) for route in profile.routes]
    fixes = _host_bit_fixes(verdicts)
    if not fixes:
        return
    invalid = [verdict.text for verdict in verdicts if verdict.problem is PrefixProblem.INVALID]
    if invalid:
        # A PATCH replaces the whole collection: the fixed list would have to carry these routes,
        # and Graph's vpnRoute cannot be written from text fleetfix cannot parse.
        plan.notes.append(
            f"{profile.id} ({profile.display_name}): not planned: route(s) {', '.join(invalid)} do not "
            "parse; fix them by hand first"
        )
        return
    routes: list[str] = []
    seen: set[RouteKey] = set()
    for verdict in verdicts:
        route = _parse_route(fixes.get(verdict.text, verdict.text), field="routes")
        if _route_key(route) not in seen:  # a fixed route may already be there: keep it once
            seen.add(_route_key(route))
            routes.append(_route_text(route))
    if len(routes) < len(verdicts):
        plan.notes.append(f"{profile.id}: a fixed route was already present; it is kept once")
    plan.native.append({"profile_id": profile.id, "routes": tuple(routes), "replacements": _pairs(fixes)})
    plan.add(profile.id, f"deviceConfigurations/{profile.id}.routes", fixes)


def _plan_profile_xml(profile: IntuneVpnProfile, setting: IntuneProfileXml, plan: _RoutePlan) -> None:
    where = f"{profile.id} {setting.oma_uri}"
    if setting.xml is None:
        plan.notes.append(
            f"{where}: ProfileXML could not be read ({setting.error or 'unknown'}); not planned"
        )
        return
    try:
        texts = route_texts(setting.xml)
        fixes = _host_bit_fixes(judge_prefix(text.address, text.prefix_size) for text in texts)
        if fixes:
            rewrite_profile_xml_routes(setting.xml, fixes)  # refused here rather than at apply
    except ProfileXmlError as exc:
        plan.notes.append(f"{where}: not planned: {exc}")
        return
    if not fixes:
        return
    plan.profile_xml.append(
        {"profile_id": profile.id, "oma_uri": setting.oma_uri, "replacements": _pairs(fixes)}
    )
    plan.add(
        profile.id,
        f"deviceConfigurations/{profile.id}.omaSettings[{setting.oma_uri}].ProfileXML.Route",
        fixes,
    )


def _finding_notes(findings: Iterable[Finding], plan: _RoutePlan, only: frozenset[str]) -> Iterator[str]:
    """What the fresh INT-PROF-02 findings say that the plan does not cover."""
    unparsable: list[str] = []
    for finding in findings:
        profile_id = finding.evidence.get("profile_id")
        if only and profile_id not in only:
            continue
        if finding.reason != PrefixProblem.HOST_BITS.value:
            unparsable.append(finding.subject)
        elif finding.subject not in plan.subjects:
            yield f"INT-PROF-02 {finding.subject}: not in this plan (see above)"
    if unparsable:
        yield f"INT-PROF-02 {', '.join(sorted(unparsable))}: prefixes that do not parse need a hand fix"


def _tenant_facts(ctx: PlanContext) -> TenantFacts:
    if not isinstance(ctx.facts, TenantFacts):
        raise InputError(
            f"{FIX_ROUTES_NAME} plans from the tenant's facts, not {type(ctx.facts).__name__}", field="target"
        )
    return ctx.facts


# -- applying and rolling back the route fix ----------------------------------------------------------------


@dataclass
class _Writes:
    """The profiles one apply (or rollback) wrote: their values before and after, in journal shape."""

    before_native: list[FrozenJson] = field(default_factory=list)
    after_native: list[FrozenJson] = field(default_factory=list)
    before_xml: list[FrozenJson] = field(default_factory=list)
    after_xml: list[FrozenJson] = field(default_factory=list)
    xml_profiles: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        """Profiles written (each native entry and each ProfileXML profile is one PATCH)."""
        return len(self.before_native) + len(self.xml_profiles)

    def native(self, profile_id: str, before: list[VpnRoute], after: list[VpnRoute]) -> None:
        self.before_native.append({"profile_id": profile_id, "routes": tuple(map(_route_text, before))})
        self.after_native.append({"profile_id": profile_id, "routes": tuple(map(_route_text, after))})

    def xml(self, profile_id: str, oma_uri: str, before: str, after: str) -> None:
        self.xml_profiles.add(profile_id)
        self.before_xml.append({"profile_id": profile_id, "oma_uri": oma_uri, "xml": before})
        self.after_xml.append({"profile_id": profile_id, "oma_uri": oma_uri, "xml": after})

    def before(self) -> dict[str, FrozenJson]:
        return {"native": tuple(self.before_native), "profile_xml": tuple(self.before_xml)}

    def after(self) -> dict[str, FrozenJson]:
        return {"native": tuple(self.after_native), "profile_xml": tuple(self.after_xml)}


def _current_routes(intune: IntuneClient, profile_id: str, target: str) -> list[VpnRoute]:
    try:
        return list(intune.vpn_profile(profile_id).routes)
    except ValueError as exc:  # VpnRoute refuses a prefix that does not parse
        raise BadOutputError(f"{profile_id}: a route in Intune does not parse ({exc})", host=target) from None


def _write_routes(intune: IntuneClient, profile_id: str, routes: list[VpnRoute], target: str) -> None:
    stored = intune.set_vpn_routes(profile_id, routes)
    if _keys(stored.routes) != _keys(routes):  # Intune answered 204 but kept something else
        raise ProtocolError(f"{profile_id}: Intune stored routes other than the ones sent", host=target)


def _grouped(
    entries: Iterable[Mapping[str, FrozenJson]], *, field: str
) -> dict[str, list[Mapping[str, FrozenJson]]]:
    """ProfileXML entries by profile, so that each profile gets one read and one PATCH."""
    grouped: dict[str, list[Mapping[str, FrozenJson]]] = {}
    for entry in entries:
        grouped.setdefault(_string(entry, "profile_id", field=field), []).append(entry)
    return grouped


def _profile_churn_note(tenant: TenantFacts) -> list[str]:
    """Devices where updating a VPN profile deletes it (Windows 11 21H2 before KB5008353): the
    admin must know before approving, and resync them after (the intune-resync playbook)."""
    from orchestrator.checks.os import intune_build, loses_updated_profiles  # noqa: PLC0415

    names = []
    for device in tenant.devices:
        build = intune_build(device.os_version)
        if build is not None and loses_updated_profiles(*build):
            names.append(device.device_name)
    if not names:
        return []
    shown = ", ".join(sorted(names)[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return [
        f"{len(names)} Windows 11 21H2 devices without KB5008353 ({shown}) lose an updated VPN profile "
        "until their next sync: run intune-resync after this, and install the cumulative update"
    ]


class FixVpnRoutes:
    """``intune.fix-vpn-routes``: host-bit routes in Intune VPN profiles, rewritten to their networks."""

    name: ClassVar[str] = FIX_ROUTES_NAME
    summary: ClassVar[str] = (
        "Rewrite split-tunnel routes with host bits set (172.21.12.0/21) to their network (172.21.8.0/21) "
        "in Intune VPN profiles: native routes and ProfileXML"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.TENANT
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec(
            "profile_ids",
            ArgType.STRING_LIST,
            "only these Intune profile ids (default: every VPN profile with a host-bit route)",
            default=(),
        ),
    )
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        tenant = _tenant_facts(ctx)
        only = frozenset(_strings(args, "profile_ids", field="profile_ids"))
        plan = _RoutePlan()
        for profile in tenant.vpn_profiles:
            if only and profile.id not in only:
                continue
            if profile.kind == "native":
                _plan_native(profile, plan)
            for setting in profile.profile_xml:
                _plan_profile_xml(profile, setting, plan)
        plan.notes += _finding_notes(ctx.findings_of(INT_PROF_02), plan, only)
        if only - {profile.id for profile in tenant.vpn_profiles}:
            plan.notes.append(
                f"unknown profile ids: {', '.join(sorted(only - {p.id for p in tenant.vpn_profiles}))}"
            )
        if not plan.changes:
            plan.notes.insert(0, "no VPN profile route has host bits set")
        else:
            plan.notes += _profile_churn_note(tenant)
        arguments: dict[str, FrozenJson] = {
            "native": tuple(plan.native),
            "profile_xml": tuple(plan.profile_xml),
        }
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments=arguments if plan.changes else {},
            changes=tuple(plan.changes),
            note="; ".join(plan.notes),
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """Each profile: read it, rewrite the planned routes in what is there now, PATCH if that
        differs.  A route someone added since planning is kept; a planned route already fixed is
        left alone.  ``before`` holds every value written over (route lists, ProfileXML texts)."""
        natives = _items(plan.arguments, "native", field="native")
        xml_groups = _grouped(_items(plan.arguments, "profile_xml", field="profile_xml"), field="profile_xml")
        writes = _Writes()
        try:
            for entry in natives:
                self._apply_native(conn, entry, writes)
            for profile_id, entries in xml_groups.items():
                self._apply_profile_xml(conn, profile_id, entries, writes)
        except FleetfixError as exc:
            if not writes.count:
                raise  # nothing written: a plain failure
            # Earlier PATCHes stand: the journal must get their previous values, or nothing could
            # roll them back.  Verification then finds what is still wrong, and rollback restores.
            after = writes.after() | {"failed": {"kind": exc.kind, "message": str(exc)}}
            return ApplyResult(
                changed=True,
                before=writes.before(),
                after=after,
                message=f"stopped after {writes.count} profile(s): {exc}",
            )
        if not writes.count:
            return ApplyResult(changed=False, message="every planned route is already right: nothing sent")
        return ApplyResult(
            changed=True,
            before=writes.before(),
            after=writes.after(),
            message=f"routes rewritten in {writes.count} profile(s); devices get them at their next check-in",
        )

    def _apply_native(self, conn: Connection, entry: Mapping[str, FrozenJson], writes: _Writes) -> None:
        profile_id = _string(entry, "profile_id", field="native")
        planned = [_parse_route(text, field="native") for text in _strings(entry, "routes", field="native")]
        fixes = {
            _route_key(_parse_route(before, field="native")): _parse_route(after, field="native")
            for before, after in _replacements(entry, field="native").items()
        }
        current = _current_routes(conn.intune, profile_id, conn.target)
        if _keys(current) == _keys(planned):
            return
        routes: list[VpnRoute] = []
        for route in current:
            fixed = fixes.get(_route_key(route), route)
            if _route_key(fixed) not in _keys(routes):
                routes.append(fixed)
        if _keys(routes) == _keys(current):
            return
        _write_routes(conn.intune, profile_id, routes, conn.target)
        writes.native(profile_id, current, routes)

    def _apply_profile_xml(
        self, conn: Connection, profile_id: str, entries: list[Mapping[str, FrozenJson]], writes: _Writes
    ) -> None:
        current = conn.intune.profile_xml(profile_id)
        updates: dict[str, str] = {}
        for entry in entries:
            oma_uri = _string(entry, "oma_uri", field="profile_xml")
            if oma_uri not in current:
                raise BadOutputError(
                    f"{profile_id} has no ProfileXML setting {oma_uri} any more", host=conn.target
                )
            rewritten = rewrite_profile_xml_routes(
                current[oma_uri], _replacements(entry, field="profile_xml")
            )
            if rewritten != current[oma_uri]:
                updates[oma_uri] = rewritten
        if not updates:
            return
        conn.intune.set_profile_xmls(profile_id, updates)
        for oma_uri, xml in updates.items():
            writes.xml(profile_id, oma_uri, current[oma_uri], xml)

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Write the previous route lists and ProfileXML texts back, each only if it differs now
        (so a rollback run twice, or after a half-done one, writes nothing more)."""
        writes = _Writes()
        for entry in _items(before, "native", field="native"):
            self._restore_native(conn, entry, writes)
        groups = _grouped(_items(before, "profile_xml", field="profile_xml"), field="profile_xml")
        for profile_id, entries in groups.items():
            self._restore_profile_xml(conn, profile_id, entries, writes)
        if not writes.count:
            return ApplyResult(changed=False, message="every profile already holds its previous routes")
        return ApplyResult(
            changed=True,
            before=writes.before(),
            after=writes.after(),
            message=f"previous routes restored in {writes.count} profile(s)",
        )

    def _restore_native(self, conn: Connection, entry: Mapping[str, FrozenJson], writes: _Writes) -> None:
        profile_id = _string(entry, "profile_id", field="native")
        previous = [_parse_route(text, field="native") for text in _strings(entry, "routes", field="native")]
        current = _current_routes(conn.intune, profile_id, conn.target)
        if _keys(current) != _keys(previous):
            _write_routes(conn.intune, profile_id, previous, conn.target)
            writes.native(profile_id, current, previous)

    def _restore_profile_xml(
        self, conn: Connection, profile_id: str, entries: list[Mapping[str, FrozenJson]], writes: _Writes
    ) -> None:
        current = conn.intune.profile_xml(profile_id)
        previous = {
            _string(entry, "oma_uri", field="profile_xml"): _string(entry, "xml", field="profile_xml")
            for entry in entries
        }
        updates = {uri: xml for uri, xml in previous.items() if current.get(uri) != xml}
        if not updates:
            return
        conn.intune.set_profile_xmls(profile_id, updates)  # NotFoundError for a setting gone since
        for uri, xml in updates.items():
            writes.xml(profile_id, uri, current[uri], xml)


# -- the device sync ----------------------------------------------------------------------------------------


def _device_of(ctx: PlanContext) -> tuple[str | None, str]:
    """The host's managed device id (the inventory's Intune ids, else the one tenant device of its
    name) and why, or None with why not."""
    if ctx.host is not None and ctx.host.intune is not None:
        return ctx.host.intune.managed_device_id, "inventory"
    tenant = ctx.fleet.tenant
    if tenant is None:
        return None, "the inventory has no Intune ids for it and no tenant facts were collected"
    names = {ctx.target.casefold()}
    if isinstance(ctx.facts, EndpointFacts):
        names |= {ctx.facts.computer_name.casefold(), ctx.facts.fqdn.split(".")[0].casefold()}
    matches = [device for device in tenant.devices if device.device_name.casefold() in names]
    if len(matches) == 1:
        return matches[0].id, "tenant device of the same name"
    if matches:  # re-enrolled machines leave stale records: syncing a guess is not a fix
        return None, f"{len(matches)} Intune devices carry its name ({', '.join(d.id for d in matches)})"
    return None, "it is not an Intune managed device (no Intune ids in the inventory, no device of its name)"


def _last_sync(ctx: PlanContext, device_id: str) -> str | None:
    tenant = ctx.fleet.tenant
    device = next((d for d in tenant.devices if d.id == device_id), None) if tenant else None
    if device is not None and device.last_sync:
        return device.last_sync
    return ctx.host.intune.last_sync if ctx.host is not None and ctx.host.intune is not None else None


def _intune_profile_names(ctx: PlanContext) -> set[str]:
    """Connection names Intune delivers to devices: the NodeCache's and the tenant profiles'."""
    names: set[str] = set()
    if isinstance(ctx.facts, EndpointFacts):
        names |= {profile.name.casefold() for profile in ctx.facts.mdm_vpn_profiles or ()}
    for profile in ctx.fleet.tenant.vpn_profiles if ctx.fleet.tenant else ():
        names |= {name.casefold() for name in profile.connection_names()}
    return names


def _sync_reasons(ctx: PlanContext) -> list[str]:
    """The fresh findings on this host a check-in addresses."""
    mine = [f for f in ctx.findings if f.host.casefold() == ctx.target.casefold()]
    reasons = [f"{EP_PROF_01} {f.subject}" for f in mine if f.check_id == EP_PROF_01]
    delivered = _intune_profile_names(ctx)
    for finding in mine:
        if finding.check_id != EP_ROUTE_01:
            continue
        sources = finding.evidence.get("sources")
        profile = finding.evidence.get("profile")
        from_mdm = isinstance(sources, tuple) and _MDM_SOURCE in sources
        if from_mdm or (isinstance(profile, str) and profile.casefold() in delivered):
            reasons.append(f"{EP_ROUTE_01} {finding.subject} (an Intune-delivered profile)")
    return reasons


class SyncDevice:
    """``intune.sync-device``: ask Intune to push a check-in to the host's managed device."""

    name: ClassVar[str] = SYNC_DEVICE_NAME
    summary: ClassVar[str] = (
        "Ask Intune to make the host's managed device check in now (a profile Windows lost, a route "
        "fixed in Intune); the device follows later"
    )
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec(
            "always",
            ArgType.BOOL,
            "sync even without an EP-PROF-01 or Intune-profile EP-ROUTE-01 finding on the host",
            default=False,
        ),
    )
    reversible: ClassVar[bool] = False

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        always = args.get("always", False)
        if not isinstance(always, bool):
            raise InputError("always must be true or false", field="always")
        device_id, why = _device_of(ctx)
        if device_id is None:
            return ActionPlan(action=self.name, target=ctx.target, note=f"nothing to sync: {why}")
        reasons = _sync_reasons(ctx) + (["always"] if always else [])
        if not reasons:
            note = "no EP-PROF-01 or Intune-profile EP-ROUTE-01 finding here: a check-in would change nothing"
            return ActionPlan(action=self.name, target=ctx.target, note=note)
        last_sync = _last_sync(ctx, device_id)
        change = Change(
            field=f"managedDevices/{device_id}/syncDevice",
            before=f"last sync {last_sync or 'unknown'}",
            after="sync requested",
        )
        return ActionPlan(
            action=self.name,
            target=ctx.target,
            arguments={"device_id": device_id},
            changes=(change,),
            note=f"device {device_id} ({why}) for: {'; '.join(reasons)}; the check-in follows the request",
        )

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        """Read the device (it must still exist; its last check-in goes to the journal), then
        request the sync.  Always ``changed``: a request is sent each time, and it is harmless."""
        device_id = _string(plan.arguments, "device_id", field="device_id")
        device = conn.intune.managed_device(device_id)
        conn.intune.sync_device(device_id)
        return ApplyResult(
            changed=True,
            before={"device_id": device_id, "last_sync": device.last_sync},
            after={"device_id": device_id, "sync_requested_at": freeze(conn.now)},
            message="sync requested: the device checks in later; verification waits for the check-in",
        )

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        """Nothing to undo: a sync request changes no setting."""
        return ApplyResult(changed=False, message="a sync request changes no setting: nothing to roll back")


FIX_VPN_ROUTES = register(FixVpnRoutes())
SYNC_DEVICE = register(SyncDevice())

__all__ = [
    "FIX_ROUTES_NAME",
    "FIX_VPN_ROUTES",
    "SYNC_DEVICE",
    "SYNC_DEVICE_NAME",
    "FixVpnRoutes",
    "SyncDevice",
    "rewrite_profile_xml_routes",
]
