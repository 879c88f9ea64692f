"""Whether an endpoint's tunnels come up, and the RasClient events that leave behind.

Nothing is dialled: :func:`device_tunnel` decides the outcome of the device tunnel's IKEv2
machine-certificate authentication from the state of the endpoint, the RRAS node the load
balancer picks and the CRLs the CAs publish, in the order IKE meets the problems:

1. UDP 500/4500 blocked, or no VPN server answering: 809;
2. no device certificate fit for the tunnel on the endpoint: 13806;
3. the endpoint cannot build the chain of its own or the server's certificate (a root or
   intermediate missing): 13806;
4. the server certificate is unfit (EKUs, name, validity, key) or its chain is incomplete on the
   server: 13806;
5. the server cannot chain the device certificate to a trusted root, or that root is not
   ``RootCertificateNameToAccept``: 13806;
6. with ``CertAuthFlags`` 4 the server checks revocation: a revoked device certificate is 13801,
   no current CRL (expired) is 13806.

The user tunnel (IKEv2 then SSTP, EAP) always comes up when its profile is there: SSTP over TCP
443 with a public TLS certificate is untouched by the IKE faults the lab injects.

:func:`observe` turns outcomes into history: the first time it sees a tunnel it writes the last
six hours (a failing tunnel retries every 30 minutes, 20227; a working one connected once,
20225), and afterwards one event whenever the outcome changes.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from lab.estate import chain
from lab.estate.faults import DEVICE_TUNNEL
from lab.estate.leaf import device_certificate, server_certificate
from lab.estate.model import EndpointUser, Estate, NetworkPath
from lab.estate.pki import der
from lab.state import HostState
from lab.windows.certstore import CertificateStores
from lab.windows.eventlog import EventLog, EventRecord, ras_connected, ras_failed
from lab.windows.rras import RrasServer
from lab.windows.services import Services
from lab.windows.vpnclient import VpnClient, VpnProfile

TIMEOUT = 809
IKE_AUTH_FAIL = 13801
IKE_NO_CERT = 13806
HISTORY = datetime.timedelta(hours=6)
RETRY = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Outcome:
    """A dial's result: ``code`` 0 when connected, else the Windows error and what caused it."""

    code: int
    cause: str = ""
    cause_host: str = ""

    @property
    def connected(self) -> bool:
        return self.code == 0


CONNECTED = Outcome(0)


def device_tunnel(estate: Estate, endpoint: HostState, now: datetime.datetime) -> Outcome:
    """The outcome of dialling the device tunnel right now (see the module doc for the order)."""
    path = endpoint.find(NetworkPath)
    reached = estate.rras_of(endpoint)
    if path is None or path.ike_blocked or reached is None:
        return Outcome(TIMEOUT, "network", endpoint.name)
    rras_state, server = reached
    services = rras_state.find(Services)
    remote_access = services.get("RemoteAccess") if services else None
    if remote_access is None or remote_access.status != "Running":
        return Outcome(TIMEOUT, "server-down", rras_state.name)
    return _authenticate(estate, endpoint, rras_state, now) or _admit(
        estate, endpoint, (rras_state, server), now
    )


def _authenticate(
    estate: Estate, endpoint: HostState, rras: HostState, now: datetime.datetime
) -> Outcome | None:
    """Steps 2-4: the certificates both sides present, judged by the other side."""
    ep_stores, rras_stores = endpoint.component(CertificateStores), rras.component(CertificateStores)
    device = device_certificate(ep_stores, endpoint.fqdn, now)
    if not device.ok or device.certificate is None:
        return Outcome(IKE_NO_CERT, "device-certificate", endpoint.name)
    own = chain.judge(device.certificate, ep_stores, estate.crl_at, now)
    served = server_certificate(rras_stores, estate.public_fqdn, now)
    if not served.ok or served.certificate is None:
        return Outcome(IKE_NO_CERT, "server-certificate", rras.name)
    on_endpoint = chain.judge(served.certificate, ep_stores, estate.crl_at, now)
    # A certificate from a foreign CA cannot chain here either; that is the server's verdict
    # (step 5), not a store missing on the endpoint.
    enterprise = device.certificate.issuer == estate.pki.issuing.certificate.subject
    if not on_endpoint.trusted or (enterprise and not own.trusted):
        return Outcome(IKE_NO_CERT, "endpoint-trust", endpoint.name)
    if not chain.judge(served.certificate, rras_stores, estate.crl_at, now).trusted:
        return Outcome(IKE_NO_CERT, "server-trust", rras.name)
    return None


def _admit(
    estate: Estate, endpoint: HostState, reached: tuple[HostState, RrasServer], now: datetime.datetime
) -> Outcome:
    """Steps 5-6: the server's verdict on the device certificate, with the settings in effect."""
    rras, server = reached
    device = device_certificate(endpoint.component(CertificateStores), endpoint.fqdn, now)
    assert device.certificate is not None
    config = server.effective
    judged = chain.judge(device.certificate, rras.component(CertificateStores), estate.crl_at, now)
    if not judged.trusted:
        return Outcome(IKE_NO_CERT, "device-trust", endpoint.name)
    pinned = config.auth.root_certificate_der
    if pinned is not None and der(judged.top) != pinned:
        return Outcome(IKE_NO_CERT, "rras-root", rras.name)
    if config.registry.cert_auth_flags == 4:
        if chain.REVOKED in judged.status:
            return Outcome(IKE_AUTH_FAIL, "revoked", endpoint.name)
        if chain.REVOCATION_UNKNOWN in judged.status:
            return Outcome(IKE_NO_CERT, "crl", _crl_host(estate))
    return CONNECTED


def _crl_host(estate: Estate) -> str:
    for state in estate.by_role("ca"):
        return state.name
    return "offline-root"


def user_tunnel(profile: VpnProfile | None) -> Outcome | None:
    return None if profile is None else CONNECTED


# -- history -----------------------------------------------------------------------------------


@dataclass
class TunnelLog:
    """The last outcome seen per connection (lower-case name), to write events on change only."""

    last: dict[str, int] = field(default_factory=dict)
    causes: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    """What caused each (connection, code) failure that was logged: cause and the host it sits on."""


def outcomes(estate: Estate, endpoint: HostState, now: datetime.datetime) -> dict[str, Outcome]:
    """Outcome per tunnel the endpoint has, by connection name."""
    client = endpoint.component(VpnClient)
    found: dict[str, Outcome] = {}
    for profile in client.profiles.values():
        if profile.device_tunnel:
            found[profile.name] = device_tunnel(estate, endpoint, now)
        else:
            found[profile.name] = CONNECTED
    return found


def connected_map(estate: Estate, endpoint: HostState, now: datetime.datetime) -> dict[str, bool]:
    return {name.lower(): outcome.connected for name, outcome in outcomes(estate, endpoint, now).items()}


def observe(estate: Estate, endpoint: HostState, now: datetime.datetime) -> dict[str, Outcome]:
    """Evaluate the tunnels and write the RasClient events of whatever changed since last time."""
    log = endpoint.component(TunnelLog)
    events = endpoint.component(EventLog)
    estate.refresh_crls()
    found = outcomes(estate, endpoint, now)
    for name, outcome in found.items():
        key = name.lower()
        previous = log.last.get(key)
        if previous == outcome.code:
            continue
        # The first look writes the history up to now, from six hours before the lab started.
        start = (estate.started_at or now) - HISTORY if previous is None else now
        for when in _attempts(start, now, outcome):
            events.write(_event(endpoint, name, when, outcome))
        log.last[key] = outcome.code
        if not outcome.connected:
            log.causes[key, outcome.code] = (outcome.cause, outcome.cause_host)
    return found


@dataclass(frozen=True)
class Connection:
    """One session on an RRAS node (``Get-RemoteAccessConnectionStatistics``)."""

    username: str
    connection: str
    tunnel_type: str
    client_address: str
    connected_since: datetime.datetime


def active_connections(estate: Estate, rras_name: str, now: datetime.datetime) -> list[Connection]:
    """The sessions up on one RRAS node: device and user tunnels of the endpoints behind it.

    A session counts from the node's last RemoteAccess start (a restart drops every session;
    clients reconnect at once, which the lab does not delay).
    """
    rras_state = estate.host(rras_name)
    services = rras_state.find(Services)
    service = services.get("RemoteAccess") if services else None
    if service is None or service.status != "Running" or service.started_at is None:
        return []
    sessions = []
    for index, endpoint in enumerate(estate.by_role("endpoint")):
        path = endpoint.find(NetworkPath)
        if path is None or path.rras.lower() != rras_name.lower():
            continue
        user = endpoint.find(EndpointUser)
        for name, outcome in outcomes(estate, endpoint, now).items():
            if outcome.connected:
                device = name == DEVICE_TUNNEL
                account = endpoint.fqdn if device or user is None else user.account
                address = f"10.{200 + device}.{index >> 8 & 0xFF}.{index & 0xFF}"
                sessions.append(
                    Connection(account, name, "Ikev2" if device else "Sstp", address, service.started_at)
                )
    return sessions


def _attempts(start: datetime.datetime, now: datetime.datetime, outcome: Outcome) -> list[datetime.datetime]:
    if outcome.connected or start == now:
        return [start]
    count = int((now - start) / RETRY) + 1
    return [start + index * RETRY for index in range(count)]


def _event(endpoint: HostState, name: str, when: datetime.datetime, outcome: Outcome) -> EventRecord:
    user = endpoint.find(EndpointUser)
    account = "SYSTEM" if name == DEVICE_TUNNEL or user is None else user.account
    coid = (
        "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoint.name}/{name}/{when.isoformat()}")).upper() + "}"
    )
    if outcome.connected:
        return ras_connected(when, coid, account, name)
    return ras_failed(when, coid, account, name, outcome.code)


__all__ = [
    "CONNECTED",
    "IKE_AUTH_FAIL",
    "IKE_NO_CERT",
    "TIMEOUT",
    "Connection",
    "Outcome",
    "TunnelLog",
    "active_connections",
    "connected_map",
    "device_tunnel",
    "observe",
    "outcomes",
]
