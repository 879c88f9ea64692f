"""The fault catalogue: every misconfiguration a scenario can inject, and how it changes the state.

Each fault reproduces a cause from the source articles (``seeds/``, the catalogue's §2-§6): it only
*changes state*, the way the misconfiguration would appear on a real host.  What a sweep must then
find is not written here: :mod:`lab.estate.truth` derives it from the resulting state, so ground
truth can never drift from what was injected.

Faults run in phases, because some need what an earlier phase built:

* ``os``: before the tenant exists (the Intune device record shows the build);
* ``tenant``: on the draft of the Intune profiles, before devices receive them;
* ``host``: on a host whose profiles Intune has delivered;
* ``publication``: on a CA after its first CRLs were published.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from lab.estate.model import Estate, HostIdentity, NetworkPath
from lab.estate.pki import EXPIRED_FROM, EXPIRED_UNTIL, SERVER_AUTH, CertRequest, der, thumbprint
from lab.state import HostState
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import CertificationAuthority
from lab.windows.mdm import MdmNodeCache
from lab.windows.rras import AuthProtocol, RrasServer
from lab.windows.vpnclient import VpnClient, VpnRoute

T = TypeVar("T")
Phase = Literal["os", "tenant", "host", "publication"]
Role = Literal["endpoint", "rras", "ca", "tenant"]
DEVICE_TUNNEL = "Contoso Device Tunnel"
USER_TUNNEL = "Contoso User Tunnel"
DEFAULT_HOST_BITS = "172.21.12.0/21"


@dataclass
class TenantDraft:
    """The Intune VPN profiles before the tenant is built: routes by profile kind."""

    device_routes: list[str]
    user_routes: list[str]
    device_kind: Literal["custom", "local"] = "custom"
    user_kind: Literal["native", "custom"] = "native"


@dataclass
class FaultContext:
    """What a fault's ``apply`` gets: the estate, the target (a host or the tenant draft), parameters."""

    estate: Estate
    now: datetime.datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    host: HostState | None = None
    tenant: TenantDraft | None = None

    @property
    def target(self) -> HostState:
        assert self.host is not None, "a host fault needs a host"
        return self.host

    def component(self, kind: type[T]) -> T:
        found = self.target.find(kind)
        if found is None:
            raise ValueError(f"{self.target.name} has no {kind.__name__}")
        return found


@dataclass(frozen=True)
class FaultType:
    """One injectable misconfiguration: where it goes, what it reproduces, how it is applied."""

    name: str
    role: Role
    phase: Phase
    summary: str
    source: str
    apply: Callable[[FaultContext], str]  # returns the subject (what exactly is wrong)
    params: tuple[str, ...] = ()
    eligible: Callable[[HostState], bool] = lambda _state: True


# -- certificates ------------------------------------------------------------------------------


def _my_leaf(stores: CertificateStores) -> tuple[bytes, bool] | None:
    mine = stores.certificates("My")
    return (mine[0].der, mine[0].has_private_key) if mine else None


def _replace_leaf(ctx: FaultContext, der_bytes: bytes | None, *, private_key: bool = True) -> str:
    """Swap the host's certificate in ``My`` for ``der_bytes`` (or just remove it)."""
    stores = ctx.component(CertificateStores)
    for entry in stores.certificates("My"):
        stores.remove("My", entry.thumbprint)
    if der_bytes is None:
        return "LocalMachine\\My"
    stores.add("My", der_bytes, has_private_key=private_key)
    from lab.estate.pki import load_der  # noqa: PLC0415 (cached parser)

    return thumbprint(load_der(der_bytes))


def _device_request(ctx: FaultContext) -> CertRequest:
    return ctx.estate.pki.device_request(ctx.target.fqdn)


def _reissue(ctx: FaultContext, variant: str, request: CertRequest, *, foreign: bool = False) -> str:
    pki = ctx.estate.pki
    issuer = pki.foreign if foreign else pki.issuing
    certificate = pki.issue(f"{ctx.target.role}:{ctx.target.name.lower()}:{variant}", request, issuer)
    return _replace_leaf(ctx, der(certificate))


def _device_missing(ctx: FaultContext) -> str:
    return _replace_leaf(ctx, None)


def _device_wrong_eku(ctx: FaultContext) -> str:
    return _reissue(ctx, "wrong-eku", replace(_device_request(ctx), ekus=(SERVER_AUTH,)))


def _netbios(state: HostState) -> str:
    return state.name.upper()[:15]


def _device_subject(ctx: FaultContext) -> str:
    name = _netbios(ctx.target)
    return _reissue(ctx, "subject", replace(_device_request(ctx), subject=name, dns_names=(name,)))


def _expired(request: CertRequest) -> CertRequest:
    return replace(request, not_before=EXPIRED_FROM, not_after=EXPIRED_UNTIL)


def _device_expired(ctx: FaultContext) -> str:
    return _reissue(ctx, "expired", _expired(_device_request(ctx)))


def _device_no_key(ctx: FaultContext) -> str:
    held = _my_leaf(ctx.component(CertificateStores))
    if held is None:
        raise ValueError(f"{ctx.target.name} has no device certificate")
    return _replace_leaf(ctx, held[0], private_key=False)


def _device_untrusted(ctx: FaultContext) -> str:
    return _reissue(ctx, "foreign", _device_request(ctx), foreign=True)


def _device_revoked(ctx: FaultContext) -> str:
    held = _my_leaf(ctx.component(CertificateStores))
    if held is None:
        raise ValueError(f"{ctx.target.name} has no device certificate")
    from lab.estate.pki import load_der  # noqa: PLC0415

    certificate = load_der(held[0])
    issuing = _issuing_ca(ctx.estate)
    issuing.revoke(certificate.serial_number, ctx.now - datetime.timedelta(days=3))
    return thumbprint(certificate)


def _issuing_ca(estate: Estate) -> CertificationAuthority:
    for ca in estate.authorities():
        if ca.authority.label == "issuing":
            return ca
    raise ValueError("the scenario has no issuing CA host to revoke with (fleet.ca must be at least 1)")


def _remove_ca_cert(ctx: FaultContext, store: Literal["Root", "CA"], label: str) -> str:
    authority = ctx.estate.pki.authority(label)
    ctx.component(CertificateStores).remove(store, authority.thumbprint)
    return authority.name


def _root_missing(ctx: FaultContext) -> str:
    return _remove_ca_cert(ctx, "Root", "root")


def _intermediate_missing(ctx: FaultContext) -> str:
    return _remove_ca_cert(ctx, "CA", "issuing")


# -- endpoint VPN ------------------------------------------------------------------------------


def _device_tunnel(ctx: FaultContext) -> tuple[VpnClient, str]:
    client = ctx.component(VpnClient)
    if client.get(DEVICE_TUNNEL) is None:
        raise ValueError(f"{ctx.target.name} has no {DEVICE_TUNNEL} profile")
    return client, DEVICE_TUNNEL


def _route_host_bits(ctx: FaultContext) -> str:
    """A local ``Add-VpnConnectionRoute`` with a host address as the prefix (the routes article)."""
    client, name = _device_tunnel(ctx)
    profile = client.get(name)
    assert profile is not None
    prefix = str(ctx.params.get("prefix", DEFAULT_HOST_BITS))
    client.put(profile.with_routes((*profile.routes, VpnRoute(prefix, 1))))
    return f"{name}: {prefix}"


def _route_not_plumbed(ctx: FaultContext) -> str:
    """A valid route that did not make it into the table at the last connect."""
    client, name = _device_tunnel(ctx)
    profile = client.get(name)
    assert profile is not None
    valid = [route.prefix for route in profile.routes if route.network_aligned and "/32" not in route.prefix]
    prefix = str(ctx.params.get("prefix", valid[-1] if valid else profile.routes[-1].prefix))
    client.unplumbed[name.lower()] = frozenset({prefix})
    return f"{name}: {prefix}"


def _profile_missing(ctx: FaultContext) -> str:
    """The Intune device tunnel is gone from the device while Intune still intends it."""
    client, name = _device_tunnel(ctx)
    client.remove(name)
    return name


def _enrolled(state: HostState) -> bool:
    cache = state.find(MdmNodeCache)
    return cache is not None and cache.get(DEVICE_TUNNEL) is not None


def _win11_21h2(ctx: FaultContext) -> str:
    """Windows 11 21H2 before KB5008353 (22000.469): Intune VPN profiles vanish on update."""
    state = ctx.target
    state.os_caption, state.os_build, state.os_ubr = (
        "Microsoft Windows 11 Enterprise",
        22000,
        int(ctx.params.get("ubr", 318)),
    )
    identity = state.find(HostIdentity)
    if identity is not None:
        identity.display_version = "21H2"
    return f"10.0.22000.{state.os_ubr}"


def _ike_blocked(ctx: FaultContext) -> str:
    """UDP 500/4500 dropped on the way (a hotel or a firewall): the device tunnel times out, 809."""
    ctx.component(NetworkPath).ike_blocked = True
    return "UDP 500/4500"


# -- RRAS ----------------------------------------------------------------------------------------


def _rras_root_mismatch(ctx: FaultContext) -> str:
    """``Set-VpnAuthProtocol -RootCertificateNameToAccept`` given the old root (PKI migration)."""
    legacy = ctx.estate.pki.legacy_root
    ctx.component(CertificateStores).add("Root", legacy.der)
    server = ctx.component(RrasServer)
    auth: AuthProtocol = replace(server.configured.auth, root_certificate_der=legacy.der)
    server.configured = replace(server.configured, auth=auth)
    server.effective = server.configured  # the service was restarted since: it is in effect
    return legacy.thumbprint


def _server_request(ctx: FaultContext) -> CertRequest:
    return ctx.estate.pki.server_request(ctx.estate.public_fqdn)


def _rras_wrong_eku(ctx: FaultContext) -> str:
    return _reissue(ctx, "wrong-eku", replace(_server_request(ctx), ekus=(SERVER_AUTH,)))


def _rras_subject(ctx: FaultContext) -> str:
    name = _netbios(ctx.target)
    return _reissue(ctx, "subject", replace(_server_request(ctx), subject=name, dns_names=(name,)))


def _rras_expired(ctx: FaultContext) -> str:
    return _reissue(ctx, "expired", _expired(_server_request(ctx)))


# -- CA --------------------------------------------------------------------------------------------


def _stall(ctx: FaultContext, base_age: datetime.timedelta) -> str:
    """The base CRL was last published ``base_age`` ago and the schedule stalled; deltas go on."""
    ca = ctx.component(CertificationAuthority)
    ca.cert_enroll.clear()
    ca.cdp.clear()
    ca.publish(ctx.now - base_age)
    ca.publish(ctx.now - datetime.timedelta(hours=2), delta_only=True)
    ca.base_stalled = True
    return ca.authority.crl_file


def _crl_expired(ctx: FaultContext) -> str:
    # A week's period and three days' overlap ran out a day ago.
    days = float(ctx.params.get("days_ago", 11))
    return _stall(ctx, datetime.timedelta(days=days))


def _crl_expiring(ctx: FaultContext) -> str:
    # Past its "Next CRL Publish" (no replacement came) and a day and a half from nextUpdate.
    days = float(ctx.params.get("days_ago", 8.5))
    return _stall(ctx, datetime.timedelta(days=days))


# -- tenant --------------------------------------------------------------------------------------


def _host_bits_in(routes: list[str], prefix: str) -> None:
    size = prefix.rsplit("/", 1)[-1]
    for index, route in enumerate(routes):
        if route.endswith(f"/{size}"):
            routes[index] = prefix
            return
    routes.append(prefix)


def _intune_native_host_bits(ctx: FaultContext) -> str:
    assert ctx.tenant is not None
    prefix = str(ctx.params.get("prefix", DEFAULT_HOST_BITS))
    _host_bits_in(ctx.tenant.user_routes, prefix)
    return f"{USER_TUNNEL}: {prefix}"


def _intune_xml_host_bits(ctx: FaultContext) -> str:
    assert ctx.tenant is not None
    prefix = str(ctx.params.get("prefix", DEFAULT_HOST_BITS))
    ctx.tenant.device_routes.append(prefix)
    return f"{DEVICE_TUNNEL}: {prefix}"


_SEED_13806 = "13806 article"
_SEED_ROUTES = "client routes missing article"
_SEED_WIN11 = "Windows 11 Intune article"


def _endpoint(
    name: str, summary: str, source: str, apply: Callable[[FaultContext], str], **extra: Any
) -> FaultType:
    return FaultType(name, "endpoint", extra.pop("phase", "host"), summary, source, apply, **extra)


def _server(
    name: str, role: Role, summary: str, apply: Callable[[FaultContext], str], **extra: Any
) -> FaultType:
    phase: Phase = "publication" if role == "ca" else "tenant" if role == "tenant" else "host"
    source = extra.pop("source", _SEED_13806)
    return FaultType(name, role, phase, summary, source, apply, **extra)


_PREFIX = ("prefix",)
_CATALOGUE = (
    _endpoint(
        "device-cert-missing", "no device certificate in LocalMachine\\My", _SEED_13806, _device_missing
    ),
    _endpoint(
        "device-cert-wrong-eku",
        "device certificate without Client Authentication",
        _SEED_13806,
        _device_wrong_eku,
    ),
    _endpoint(
        "device-cert-subject-mismatch",
        "device certificate names the NetBIOS name",
        _SEED_13806,
        _device_subject,
    ),
    _endpoint("device-cert-expired", "device certificate expired", _SEED_13806, _device_expired),
    _endpoint(
        "device-cert-no-private-key",
        "device certificate without private key",
        "catalogue EP-CERT-01",
        _device_no_key,
    ),
    _endpoint(
        "device-cert-untrusted", "device certificate from an untrusted CA", _SEED_13806, _device_untrusted
    ),
    _endpoint("device-cert-revoked", "device certificate revoked", _SEED_13806, _device_revoked),
    _endpoint("endpoint-root-missing", "enterprise root CA missing from Root", _SEED_13806, _root_missing),
    _endpoint(
        "endpoint-intermediate-missing", "issuing CA missing from CA", _SEED_13806, _intermediate_missing
    ),
    _endpoint(
        "route-host-bits", "local route with host bits set", _SEED_ROUTES, _route_host_bits, params=_PREFIX
    ),
    _endpoint(
        "route-not-plumbed",
        "valid route missing from the table",
        "catalogue EP-ROUTE-02",
        _route_not_plumbed,
        params=_PREFIX,
    ),
    _endpoint(
        "profile-missing",
        "Intune device tunnel missing on the device",
        _SEED_WIN11,
        _profile_missing,
        eligible=_enrolled,
    ),
    _endpoint(
        "win11-pre-kb5008353",
        "Windows 11 21H2 below 22000.469",
        _SEED_WIN11,
        _win11_21h2,
        params=("ubr",),
        phase="os",
    ),
    _endpoint("ike-blocked", "UDP 500/4500 blocked on the path (809)", "catalogue NET-PORT-01", _ike_blocked),
    _server("rras-root-mismatch", "rras", "RootCertificateNameToAccept is the old root", _rras_root_mismatch),
    _server("rras-cert-wrong-eku", "rras", "server certificate without IKE intermediate", _rras_wrong_eku),
    _server("rras-cert-subject-mismatch", "rras", "server certificate names the NetBIOS name", _rras_subject),
    _server("rras-cert-expired", "rras", "server certificate expired", _rras_expired),
    _server(
        "rras-intermediate-missing", "rras", "issuing CA missing from the server's CA", _intermediate_missing
    ),
    _server(
        "crl-expired", "ca", "base CRL expired (publication stalled)", _crl_expired, params=("days_ago",)
    ),
    _server(
        "crl-expiring",
        "ca",
        "base CRL past 80 % of its lifetime",
        _crl_expiring,
        params=("days_ago",),
        source="catalogue CA-CRL-01",
    ),
    _server(
        "intune-route-host-bits",
        "tenant",
        "host-bit route in the native user tunnel",
        _intune_native_host_bits,
        params=_PREFIX,
        source=_SEED_ROUTES,
    ),
    _server(
        "intune-profilexml-host-bits",
        "tenant",
        "host-bit route in the device tunnel ProfileXML",
        _intune_xml_host_bits,
        params=_PREFIX,
        source=_SEED_ROUTES,
    ),
)
FAULTS: Mapping[str, FaultType] = {fault.name: fault for fault in _CATALOGUE}


__all__ = ["DEVICE_TUNNEL", "FAULTS", "USER_TUNNEL", "FaultContext", "FaultType", "TenantDraft"]
