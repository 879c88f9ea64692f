"""Ground truth: every finding a correct check catalogue must raise on the estate as it is now.

Truth is *derived from the state*, never listed next to the faults: each rule reads the simulated
hosts the way the checks read their facts (catalogue §2-§6, ``orchestrator/checks``) and says what
is wrong; :class:`Attribution` then names the injected fault that explains it.  So truth stays
exact after a playbook changed the state (a fixed host drops out), and a fault whose effect
reaches other hosts (an expired CRL stops every device tunnel: RasClient 20227 on each endpoint)
shows up wherever the effect is.  ``lab/README.md`` ("Ground truth") lists the rules.

This module does not import the product's checks: truth that ran the checks would agree with them
by construction and prove nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lab.estate import judge
from lab.estate.model import Estate, InjectedFault
from lab.estate.pki import load_der, thumbprint
from lab.estate.tunnels import TunnelLog, observe
from lab.graph.profiles import NATIVE_TYPE, ProfileError, delivered, parse_profile_xml
from lab.graph.state import TenantState
from lab.state import HostState
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import CertificationAuthority, PublishedCrl
from lab.windows.eventlog import APPLICATION, RAS_CONNECTED, RAS_FAILED, RASCLIENT, EventLog
from lab.windows.mdm import MdmNodeCache
from lab.windows.rras import RrasServer
from lab.windows.vpnclient import VpnClient

INTUNE = "intune"
EVENT_DAYS = 7
CRL_MARGIN = datetime.timedelta(days=2)

DEVICE_CERT_FAULTS = {
    "missing": ("device-cert-missing", "device-cert-untrusted"),
    "wrong_eku": ("device-cert-wrong-eku",),
    "subject_mismatch": ("device-cert-subject-mismatch",),
    "expired": ("device-cert-expired",),
    "no_private_key": ("device-cert-no-private-key",),
}
SERVER_CERT_FAULTS = {
    "wrong_eku": ("rras-cert-wrong-eku",),
    "subject_mismatch": ("rras-cert-subject-mismatch",),
    "expired": ("rras-cert-expired",),
    "partial_chain": ("rras-intermediate-missing",),
}
TUNNEL_CAUSES = {
    "network": ("ike-blocked",),
    "device-certificate": tuple(name for names in DEVICE_CERT_FAULTS.values() for name in names),
    "endpoint-trust": ("endpoint-root-missing", "endpoint-intermediate-missing"),
    "server-certificate": ("rras-cert-wrong-eku", "rras-cert-subject-mismatch", "rras-cert-expired"),
    "server-trust": ("rras-intermediate-missing",),
    "device-trust": ("device-cert-untrusted",),
    "rras-root": ("rras-root-mismatch",),
    "revoked": ("device-cert-revoked",),
    "crl": ("crl-expired",),
}


@dataclass(frozen=True, order=True)
class TruthEntry:
    """One finding the sweep must report, and the injected fault behind it."""

    host: str
    check_id: str
    subject: str
    reason: str
    fault: str
    playbook: str | None
    cause_host: str

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "fault": self.fault,
            "check_id": self.check_id,
            "reason": self.reason,
            "subject": self.subject,
            "playbook": self.playbook,
            "cause_host": self.cause_host,
        }


@dataclass(frozen=True)
class Expected:
    """A finding before attribution: which faults could explain it, and where to look for them."""

    host: str
    check_id: str
    subject: str
    reason: str
    playbook: str | None
    faults: tuple[str, ...]
    cause_host: str = ""


class Attribution:
    """The injected fault behind a finding: the first injected fault of a candidate kind on the
    cause host; outside material placed there; else ``unexplained`` (never, in a built-in scenario)."""

    def __init__(self, injected: Iterable[InjectedFault]) -> None:
        self._by_host: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}
        for item in injected:
            self._by_host.setdefault(item.host.lower(), []).append(item.fault)
            self._names[item.host.lower()] = item.host

    def fault(self, host: str, candidates: tuple[str, ...]) -> str:
        present = self._by_host.get(host.lower(), [])
        for name in (*candidates, "outside-certificate", "outside-crl"):
            if name in present:
                return name
        return "unexplained"

    def host_with(self, candidates: tuple[str, ...]) -> str | None:
        for host, names in sorted(self._by_host.items()):
            if any(name in candidates for name in names):
                return self._names[host]
        return None

    def entry(self, expected: Expected) -> TruthEntry:
        cause = expected.cause_host or expected.host
        return TruthEntry(
            host=expected.host,
            check_id=expected.check_id,
            subject=expected.subject,
            reason=expected.reason,
            fault=self.fault(cause, expected.faults),
            playbook=expected.playbook,
            cause_host=cause,
        )


# -- endpoints --------------------------------------------------------------------------------------


def _os(state: HostState) -> Iterator[Expected]:
    if state.os_build == 22000 and state.os_ubr < 469:
        yield Expected(
            state.name, "EP-OS-01", "os-build", "missing_kb5008353", None, ("win11-pre-kb5008353",)
        )


def _device_certificate(state: HostState, estate: Estate, now: datetime.datetime) -> Iterator[Expected]:
    found = judge.device_candidates(state, estate, now)
    if any(c.usable for c in found):
        chosen = judge.selected(found)
        if chosen is not None and chosen.revoked:
            yield Expected(
                state.name,
                "EP-CERT-02",
                "device-certificate",
                "revoked",
                "device-cert-reenroll",
                ("device-cert-revoked",),
            )
        return
    closest = judge.best(found)
    reason = "missing" if closest is None else closest.problems[0]
    yield Expected(
        state.name,
        "EP-CERT-01",
        "device-certificate",
        reason,
        "device-cert-reenroll",
        DEVICE_CERT_FAULTS.get(reason, ()),
    )


@dataclass(frozen=True)
class Fleetwide:
    """What every endpoint's rules share, computed once per truth run."""

    known: judge.KnownCas
    servers: tuple[judge.Candidate, ...]
    intune_names: dict[str, set[str]]
    """Connection names Intune assigns to each device, by lower-case device name."""


def fleetwide(estate: Estate, tenant: TenantState | None, now: datetime.datetime) -> Fleetwide:
    servers = [_server_choice(state, estate, now) for state in estate.rras_servers()]
    targets = {} if tenant is None else _intune_targets(tenant)
    return Fleetwide(judge.known_cas(estate), tuple(s for s in servers if s is not None), targets)


def _missing_cas(
    state: HostState, estate: Estate, shared: Fleetwide, now: datetime.datetime
) -> Iterator[Expected]:
    stores = state.component(CertificateStores)
    found = judge.device_candidates(state, estate, now)
    device = judge.best([c for c in found if c.usable]) or judge.best(found)
    leaves = ([device.certificate] if device is not None else []) + [
        server.certificate for server in shared.servers
    ]
    seen: set[str] = set()
    for leaf in leaves:
        for store, ca in judge.missing_cas(leaf, stores, shared.known):
            subject = f"{store}:{thumbprint(ca)}"
            if subject in seen:
                continue
            seen.add(subject)
            root = store == "Root"
            yield Expected(
                state.name,
                "EP-CERT-04",
                subject,
                "missing_root" if root else "missing_intermediate",
                "install-ca-chain",
                ("endpoint-root-missing",) if root else ("endpoint-intermediate-missing",),
            )


def _host_bits(prefix: str) -> bool | None:
    """True for host bits set, False for a network, None for an invalid prefix."""
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    return str(network.network_address) != prefix.split("/", 1)[0]


def _xml_routes(xml: str | None) -> list[str]:
    if xml is None:
        return []
    try:
        _servers, routes, _split = parse_profile_xml(xml)
    except ProfileError:
        return []
    return [f"{address}/{size}" for address, size in routes]


def _route_prefixes(state: HostState) -> Iterator[Expected]:
    client = state.component(VpnClient)
    cache = state.component(MdmNodeCache)
    intended: dict[str, set[str]] = {}
    for node in cache.all():
        intended.setdefault(node.name.lower(), set()).update(_xml_routes(node.profile_xml))
    configured = {(p.name, r.prefix) for p in client.all_user() for r in p.routes}
    configured |= {(node.name, prefix) for node in cache.all() for prefix in _xml_routes(node.profile_xml)}
    for name, prefix in sorted(configured):
        if not _host_bits(prefix):
            continue
        from_intune = prefix in intended.get(name.lower(), set())
        yield Expected(
            state.name,
            "EP-ROUTE-01",
            f"{name}:{prefix}",
            "host_bits",
            "fix-route-prefixes",
            ("intune-profilexml-host-bits",) if from_intune else ("route-host-bits",),
            INTUNE if from_intune else "",
        )


def _routing_table(state: HostState, connected: dict[str, bool]) -> Iterator[Expected]:
    client = state.component(VpnClient)
    table = client.routing_table(connected)
    for profile in client.all_user():
        if not connected.get(profile.name.lower()) or not profile.split_tunneling:
            continue
        routed = {
            ipaddress.ip_network(row.prefix, strict=False)
            for row in table
            if row.interface_alias == profile.name
        }
        for route in profile.routes:
            if not route.network_aligned:
                continue
            network = ipaddress.ip_network(route.prefix)
            if network not in routed:
                yield Expected(
                    state.name,
                    "EP-ROUTE-02",
                    f"{profile.name}:{network}",
                    "missing_from_routing_table",
                    None,
                    ("route-not-plumbed",),
                )


def _profiles_present(state: HostState, shared: Fleetwide) -> Iterator[Expected]:
    client = state.component(VpnClient)
    present = {profile.name.lower() for profile in client.profiles.values()}
    expected = {node.name for node in state.component(MdmNodeCache).all()}
    expected |= shared.intune_names.get(state.name.lower(), set())
    for name in sorted(expected):
        if name.lower() not in present:
            yield Expected(
                state.name,
                "EP-PROF-01",
                f"profile:{name}",
                "missing_on_device",
                "intune-resync",
                ("profile-missing", "win11-pre-kb5008353"),
            )


def _intune_targets(tenant: TenantState) -> dict[str, set[str]]:
    """Connection names of the Intune profiles assigned to each device, by device name."""
    names_of: dict[str, set[str]] = {}
    for profile_id, profile in tenant.profiles.items():
        if profile["@odata.type"] == NATIVE_TYPE:
            names = {profile["connectionName"]}
        else:
            names = {item.name for item in delivered(profile, tenant.secrets)}
        names_of[profile_id] = names
    targets: dict[str, set[str]] = {}
    for device in tenant.devices.values():
        wanted = targets.setdefault(device.json["deviceName"].lower(), set())
        for profile_id in tenant.assigned_profiles(device):
            wanted |= names_of[profile_id]
    return targets


def _events(state: HostState, now: datetime.datetime) -> Iterator[Expected]:
    log = state.component(TunnelLog)
    records = state.component(EventLog).query(
        APPLICATION,
        since=now - datetime.timedelta(days=EVENT_DAYS),
        provider=RASCLIENT,
        ids=(RAS_CONNECTED, RAS_FAILED),
    )
    successes = [(r.time, r.data[2]) for r in records if r.event_id == RAS_CONNECTED]
    groups: set[tuple[str, int]] = set()
    for record in records:
        if record.event_id != RAS_FAILED:
            continue
        connection, code = record.data[2], int(record.data[3])
        if any(time > record.time and name == connection for time, name in successes):
            continue
        groups.add((connection, code))
    for connection, code in sorted(groups):
        cause, cause_host = log.causes.get((connection.lower(), code), ("", state.name))
        yield Expected(
            state.name,
            "EP-EVT-01",
            f"{connection}:{code_label(code)}",
            "connection_failed",
            None,
            TUNNEL_CAUSES.get(cause, ()),
            cause_host,
        )


def code_label(code: int) -> str:
    """How Microsoft writes a code: small ones in decimal, HRESULTs in hex (``0x80092013``)."""
    value = code & 0xFFFFFFFF
    return str(value) if value < 0x10000 else f"0x{value:08X}"


def endpoint_truth(
    state: HostState, estate: Estate, tenant: TenantState | None, shared: Fleetwide, now: datetime.datetime
) -> list[Expected]:
    outcomes = observe(estate, state, now)
    connected = {name.lower(): outcome.connected for name, outcome in outcomes.items()}
    return [
        *_os(state),
        *_device_certificate(state, estate, now),
        *_missing_cas(state, estate, shared, now),
        *_route_prefixes(state),
        *_routing_table(state, connected),
        *_profiles_present(state, shared),
        *_events(state, now),
    ]


# -- RRAS -----------------------------------------------------------------------------------------


def _server_choice(state: HostState, estate: Estate, now: datetime.datetime) -> judge.Candidate | None:
    found = judge.server_candidates(state, estate, now)
    return judge.selected(found) or judge.best(found)


def _server_certificate(state: HostState, estate: Estate, now: datetime.datetime) -> Iterator[Expected]:
    chosen = _server_choice(state, estate, now)
    if chosen is None:
        reason = "missing"
    elif chosen.problems:
        reason = chosen.problems[0]
    elif chosen.chain_status != "ok":
        reason = chosen.chain_status
    elif chosen.revoked:
        reason = "revoked"
    elif chosen.certificate.not_valid_after_utc - now < datetime.timedelta(days=30):
        reason = "expiring"
    else:
        return
    yield Expected(
        state.name, "RRAS-CERT-01", "ike-certificate", reason, None, SERVER_CERT_FAULTS.get(reason, ())
    )


def _accepted_root(state: HostState, estate: Estate) -> Iterator[Expected]:
    server = state.component(RrasServer)
    auth = server.configured.auth
    if not any(protocol.lower() == "certificate" for protocol in auth.user_auth_protocols):
        return
    if auth.root_certificate_der is None:
        yield Expected(state.name, "RRAS-AUTH-01", "root-certificate", "unset", "rras-root-thumbprint", ())
    elif auth.root_certificate_der != estate.pki.root.der:
        yield Expected(
            state.name,
            "RRAS-AUTH-01",
            "root-certificate",
            "mismatch",
            "rras-root-thumbprint",
            ("rras-root-mismatch",),
        )


def _drift(estate: Estate, attribution: Attribution) -> Iterator[Expected]:
    """RRAS-DRIFT-01: a node whose accepted root differs from the array's majority."""
    servers = estate.rras_servers()
    if len(servers) < 2:
        return
    values = {state.name: _root_of(state) for state in servers}
    majority, _count = Counter(values.values()).most_common(1)[0]
    cause = attribution.host_with(("rras-root-mismatch",)) or ""
    for name, value in values.items():
        if value != majority:
            yield Expected(
                name,
                "RRAS-DRIFT-01",
                "setting:root_certificate",
                "drift",
                None,
                ("rras-root-mismatch",),
                cause,
            )


def _root_of(state: HostState) -> str | None:
    root = state.component(RrasServer).configured.auth.root_certificate_der
    return None if root is None else thumbprint(load_der(root))


# -- CAs ---------------------------------------------------------------------------------------------


def crl_verdict(crl: PublishedCrl, now: datetime.datetime) -> str | None:
    """``expired``; ``expiring`` (under two days left and its replacement overdue); ``schedule_overdue``.

    A CRL close to its nextUpdate whose next publication is still ahead is the schedule working
    (AD CS replaces a daily delta hours before it runs out): not a finding.
    """
    if crl.next_update <= now:
        return "expired"
    if crl.next_publish > now:
        return None
    return "expiring" if crl.next_update - now < CRL_MARGIN else "schedule_overdue"


def _crls(state: HostState, now: datetime.datetime) -> Iterator[Expected]:
    ca = state.component(CertificationAuthority)
    sources = [(f"crl:{file}", crl) for file, crl in sorted(ca.cert_enroll.items())]
    sources += [(f"cdp:{ca.pki.url(file)}", crl) for file, crl in sorted(ca.cdp.items()) if not crl.delta]
    for subject, crl in sources:
        reason = crl_verdict(crl, now)
        if reason is not None:
            faults = ("crl-expired",) if reason == "expired" else ("crl-expiring", "crl-expired")
            yield Expected(state.name, "CA-CRL-01", subject, reason, "republish-crl", faults)


# -- the tenant ------------------------------------------------------------------------------------


def _tenant_routes(tenant: TenantState) -> Iterator[Expected]:
    for profile_id, profile in sorted(tenant.profiles.items()):
        if profile["@odata.type"] == NATIVE_TYPE:
            prefixes = [f"{r['destinationPrefix']}/{r['prefixSize']}" for r in profile["routes"]]
            fault = ("intune-route-host-bits",)
        else:
            prefixes = [f"{a}/{s}" for item in delivered(profile, tenant.secrets) for a, s in item.routes]
            fault = ("intune-profilexml-host-bits",)
        for prefix in dict.fromkeys(prefixes):
            if _host_bits(prefix):
                yield Expected(
                    INTUNE, "INT-PROF-02", f"{profile_id}:{prefix}", "host_bits", "fix-route-prefixes", fault
                )


# -- everything --------------------------------------------------------------------------------------


def expected_findings(estate: Estate, tenant: TenantState | None, now: datetime.datetime) -> list[Expected]:
    attribution = Attribution(estate.injected)
    estate.refresh_crls()
    found: list[Expected] = []
    shared = fleetwide(estate, tenant, now)
    for state in sorted(estate.hosts.values(), key=lambda item: item.name):
        if state.role == "endpoint":
            found += endpoint_truth(state, estate, tenant, shared, now)
        elif state.role == "rras":
            found += [*_server_certificate(state, estate, now), *_accepted_root(state, estate)]
        elif state.role == "ca":
            found += list(_crls(state, now))
    found += list(_drift(estate, attribution))
    if tenant is not None:
        found += list(_tenant_routes(tenant))
    return found


def derive_truth(
    estate: Estate, tenant: TenantState | None, now: datetime.datetime | None = None
) -> list[TruthEntry]:
    """Every finding a correct catalogue raises on the estate at ``now`` (default: the estate's clock)."""
    moment = now or estate.now()
    attribution = Attribution(estate.injected)
    return sorted({attribution.entry(item) for item in expected_findings(estate, tenant, moment)})


__all__ = [
    "INTUNE",
    "Attribution",
    "Expected",
    "TruthEntry",
    "crl_verdict",
    "derive_truth",
    "expected_findings",
]
