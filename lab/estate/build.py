"""From a scenario to an estate: hosts, tenant, faults, outside certificates, deterministic from the seed.

:func:`build_estate` does it in this order, because each step needs the one before:

1. name and address every host, decide transport faults, make each :class:`~lab.config.HostConfig`;
2. build every host healthy (:mod:`lab.estate.hosts`);
3. ``os`` faults (Intune's device records carry the build), then ``tenant`` faults on the draft
   profiles, then the tenant itself: enrolment delivers the profiles into the endpoints' state;
4. ``host`` faults; the CAs' first CRLs (after any revocation); ``publication`` faults;
5. certificates and CRLs the scenario brings from outside (a customer's broken certificate).

Random choices (OS mix, which hosts get a fault) come from ``random.Random`` seeded with the
scenario seed, so a scenario always builds the same estate.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.config import AuthMode, FaultSpec, FleetConfig, HostConfig
from lab.estate import hosts
from lab.estate.faults import FAULTS, FaultContext, FaultType, TenantDraft
from lab.estate.model import Clock, EndpointUser, Estate, InjectedFault, utc_now
from lab.estate.pki import EnterprisePKI, der, load_certificates, load_crl
from lab.estate.tenant import BuiltTenant, build_tenant, draft
from lab.graph.config import TenantConfig
from lab.graph.state import TenantState
from lab.scenarios.model import FaultEntry, OsShare, Scenario, Selection
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import OFFLINE_ROOT_SCHEDULE, CertificationAuthority, PublishedCrl

ROLE_PREFIX = {"endpoint": "EP", "rras": "RRAS", "ca": "CA"}
ROLE_NETWORK = {"endpoint": 0, "rras": 1, "ca": 2}  # per-host addresses: 127.<network + n>.x.y
TENANT_HOST = "intune"


@dataclass(frozen=True)
class HostPlan:
    name: str
    role: str
    number: int
    address: str


@dataclass
class BuiltEstate:
    """What a scenario became: the estate, the fleet to serve over WinRM, the tenant."""

    scenario: Scenario
    estate: Estate
    fleet: FleetConfig
    tenant: BuiltTenant | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def tenant_config(self) -> TenantConfig | None:
        return None if self.tenant is None else self.tenant.config

    @property
    def tenant_state(self) -> TenantState | None:
        return None if self.tenant is None else self.tenant.state


def host_names(scenario: Scenario) -> dict[str, list[str]]:
    """Every host name of the scenario by role (``EP-0001``, ``RRAS-01``, ``CA-01``)."""
    shape = scenario.fleet
    counts = {"endpoint": shape.endpoints, "rras": shape.rras, "ca": shape.ca}
    names: dict[str, list[str]] = {}
    for role, count in counts.items():
        width = max(4, len(str(count))) if role == "endpoint" else 2
        names[role] = [f"{ROLE_PREFIX[role]}-{number:0{width}d}" for number in range(1, count + 1)]
    return names


def _plans(scenario: Scenario) -> list[HostPlan]:
    plans = []
    per_host = scenario.winrm.addressing == "per-host"
    for role, names in host_names(scenario).items():
        for number, name in enumerate(names, start=1):
            network = scenario.winrm.network + ROLE_NETWORK[role]
            address = f"127.{network}.{number >> 8}.{number & 0xFF}" if per_host else "127.0.0.1"
            plans.append(HostPlan(name, role, number, address))
    return plans


def _host_config(scenario: Scenario, plan: HostPlan, faults: FaultSpec) -> HostConfig:
    winrm = scenario.winrm
    fixed = winrm.addressing == "per-host"
    https = winrm.transport == "https"
    return HostConfig(
        name=plan.name,
        domain=scenario.fleet.domain,
        role=plan.role,
        address=plan.address,
        http_port=None if https else (5985 if fixed else 0),
        https_port=(5986 if fixed else 0) if https else None,
        auth=(AuthMode.NEGOTIATE, AuthMode.NTLM, AuthMode.BASIC),
        allow_unencrypted=not https and winrm.auth == "basic",
        faults=faults,
    )


def select(entry: Selection, candidates: Sequence[str], rng: random.Random, taken: set[str]) -> list[str]:
    """Host names a selection picks: the named ones, or ``count``/``rate`` of the free candidates."""
    if entry.hosts:
        by_key = {name.lower(): name for name in candidates}
        return [by_key[name.lower()] for name in entry.hosts if name.lower() in by_key]
    wanted = entry.count if entry.count is not None else max(1, round((entry.rate or 0) * len(candidates)))
    free = [name for name in candidates if name not in taken]
    return sorted(rng.sample(free, min(wanted, len(free))))


def _transport_faults(scenario: Scenario, plans: Sequence[HostPlan]) -> dict[str, FaultSpec]:
    specs: dict[str, FaultSpec] = {}
    for index, entry in enumerate(scenario.transport_faults):
        names = [plan.name for plan in plans if entry.role in (None, plan.role)]
        rng = random.Random(f"{scenario.seed}:transport:{index}")  # noqa: S311 (simulation)
        for name in select(entry, names, rng, set()):
            specs[name] = entry.faults
    return specs


def _os_mix(scenario: Scenario, count: int) -> list[OsShare]:
    rng = random.Random(f"{scenario.seed}:os")  # noqa: S311 (simulation)
    shares = scenario.fleet.os_mix
    return rng.choices(shares, weights=[share.weight for share in shares], k=count)


def _healthy_hosts(
    scenario: Scenario, estate: Estate, configs: Sequence[tuple[HostPlan, HostConfig]]
) -> None:
    now = estate.now()
    # Servers first: each endpoint is given the RRAS node the load balancer sends it to.
    for plan, config in configs:
        if plan.role == "rras":
            estate.add(hosts.rras(estate, config, now))
        elif plan.role == "ca":
            estate.add(hosts.certification_authority(estate, config, now))
    endpoints = [item for item in configs if item[0].role == "endpoint"]
    for (plan, config), share in zip(endpoints, _os_mix(scenario, len(endpoints)), strict=True):
        with_os = config.model_copy(
            update={"os_caption": share.caption, "os_build": share.build, "os_ubr": share.ubr}
        )
        endpoint_plan = hosts.EndpointPlan(plan.number, share.display_version)
        estate.add(hosts.endpoint(estate, with_os, endpoint_plan, now))


class FaultInjector:
    """Applies a scenario's faults phase by phase, keeping each random pick off already faulty hosts.

    Hosts are chosen when a fault's phase runs, so eligibility sees the state the fault will meet
    (``profile-missing`` needs the profile Intune delivered in the phase before).
    """

    def __init__(self, scenario: Scenario, estate: Estate) -> None:
        self.scenario = scenario
        self.estate = estate
        self.taken: set[str] = set()

    def _hosts(self, index: int, entry: FaultEntry, fault: FaultType) -> list[str]:
        if fault.role == "tenant":
            return [TENANT_HOST]
        states = sorted(self.estate.by_role(fault.role), key=lambda state: state.name)
        if entry.hosts:
            wanted = {name.lower() for name in entry.hosts}
            unfit = [s.name for s in states if s.name.lower() in wanted and not fault.eligible(s)]
            if unfit:
                raise ValueError(
                    f"{', '.join(unfit)} cannot take {fault.name}: {fault.summary} needs what it lacks"
                )
        rng = random.Random(f"{self.scenario.seed}:faults:{index}")  # noqa: S311 (simulation)
        candidates = [s.name for s in states if fault.eligible(s)]
        chosen = select(entry, candidates, rng, self.taken)
        self.taken.update(chosen)
        return chosen

    def run(self, phase: str, tenant: TenantDraft | None = None) -> None:
        for index, entry in enumerate(self.scenario.faults):
            fault = FAULTS[entry.type]
            if fault.phase != phase:
                continue
            for name in self._hosts(index, entry, fault):
                host = None if fault.role == "tenant" else self.estate.host(name)
                context = FaultContext(self.estate, self.estate.now(), entry.params, host, tenant)
                subject = fault.apply(context)
                params = tuple(sorted(entry.params.items()))
                self.estate.injected.append(InjectedFault(fault.name, name, subject, params))


def _tenant(scenario: Scenario, estate: Estate, injector: FaultInjector) -> BuiltTenant | None:
    shape = scenario.tenant
    endpoints = sorted(estate.by_role("endpoint"), key=lambda state: state.name)
    plan = draft(shape)
    injector.run("tenant", plan)
    enrolled_count = round(shape.enrolled * len(endpoints)) if shape.enabled else 0
    enrolled, local = endpoints[:enrolled_count], endpoints[enrolled_count:]
    for state in local:
        state.component(EndpointUser).intune_device_id = None
        hosts.local_device_tunnel(state, estate, shape.device_routes)
    if not shape.enabled:
        return None
    built = build_tenant(estate, shape, plan, enrolled)
    if plan.device_kind == "local":
        for state in enrolled:
            hosts.local_device_tunnel(state, estate, shape.device_routes)
    return built


def _outside_material(scenario: Scenario, estate: Estate) -> None:
    base = scenario.source.parent if scenario.source is not None else Path()
    for item in scenario.certificates:
        state = estate.host(item.host)
        stores = state.component(CertificateStores)
        data = (base / item.file).read_bytes()
        if item.store == "My" and item.replace:
            for entry in stores.certificates("My"):
                stores.remove("My", entry.thumbprint)
        for certificate in load_certificates(data):
            stores.add(
                item.store, der(certificate), has_private_key=item.has_private_key and item.store == "My"
            )
        estate.injected.append(InjectedFault("outside-certificate", state.name, str(item.file)))
    for crl_item in scenario.crls:
        state = estate.host(crl_item.host)
        ca = state.component(CertificationAuthority)
        ca.install(_published(ca, load_crl((base / crl_item.file).read_bytes())))
        estate.injected.append(InjectedFault("outside-crl", state.name, str(crl_item.file)))


def _published(ca: CertificationAuthority, crl: object) -> PublishedCrl:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    assert isinstance(crl, x509.CertificateRevocationList)
    number_ext = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    delta = any(isinstance(ext.value, x509.DeltaCRLIndicator) for ext in crl.extensions)
    next_update = crl.next_update_utc or crl.last_update_utc
    return PublishedCrl(
        file=ca.authority.delta_crl_file if delta else ca.authority.crl_file,
        der=crl.public_bytes(Encoding.DER),
        number=number_ext,
        this_update=crl.last_update_utc,
        next_update=next_update,
        next_publish=next_update,
        delta=delta,
    )


def build_estate(scenario: Scenario, *, cdp_base_url: str, clock: Clock = utc_now) -> BuiltEstate:
    """Build the scenario's estate; ``cdp_base_url`` is where the CRL server listens (``http://h:p``)."""
    shape = scenario.fleet
    pki = EnterprisePKI(scenario.seed, cdp_base_url, shape.organization)
    estate = Estate(pki=pki, public_fqdn=shape.public_fqdn, domain=shape.domain, clock=clock)
    estate.offline_root = CertificationAuthority(pki.root, pki, schedule=OFFLINE_ROOT_SCHEDULE)
    # The foreign PKI publishes its CRLs too (a partner's CDP answers), so a certificate from it
    # is untrusted here, not unreachable.
    estate.outside_cas = [CertificationAuthority(ca, pki) for ca in (pki.foreign_root, pki.foreign)]
    plans = _plans(scenario)
    transport = _transport_faults(scenario, plans)
    configs = [(plan, _host_config(scenario, plan, transport.get(plan.name, FaultSpec()))) for plan in plans]
    _healthy_hosts(scenario, estate, configs)
    injector = FaultInjector(scenario, estate)
    injector.run("os")
    tenant = _tenant(scenario, estate, injector)
    injector.run("host")
    hosts.publish_initial_crls(estate, estate.now())
    injector.run("publication")
    _outside_material(scenario, estate)
    estate.started_at = estate.now()
    estate.live = True
    fleet = FleetConfig(hosts=tuple(_served(estate, configs)), seed=scenario.seed)
    return BuiltEstate(scenario, estate, fleet, tenant)


def _served(estate: Estate, configs: Iterable[tuple[HostPlan, HostConfig]]) -> Iterable[HostConfig]:
    """The configs to serve, with the OS each host ended up with (faults may have changed it)."""
    for _plan, config in configs:
        state = estate.host(config.name)
        yield config.model_copy(
            update={"os_caption": state.os_caption, "os_build": state.os_build, "os_ubr": state.os_ubr}
        )


__all__ = ["TENANT_HOST", "BuiltEstate", "FaultInjector", "HostPlan", "build_estate", "host_names", "select"]
