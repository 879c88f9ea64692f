"""The lab's network side: one asyncio event loop, one listening socket per host and port.

:class:`FleetServer` starts every host of a :class:`~lab.config.FleetConfig`.  Each listener
accepts keep-alive connections; a connection authenticates (:mod:`lab.auth`), unwraps WinRM
message encryption, hands the SOAP envelope to the host's :class:`~lab.wsman.service.HostService`
and writes the answer.  Transport faults live here: latency, refused connections, a listener
that accepts and never answers, flapping.

Why asyncio: a Receive long-poll holds its connection for up to OperationTimeout seconds, so 500
concurrent sessions mean 500 parked requests; one event loop parks them for the price of a
future each, where threads would cost a stack each.  The CPU-heavy parts are cheap on purpose:
ECDSA P-256 certificates (TLS handshakes), RC4 sealing from ``cryptography`` (NTLM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import spnego.exceptions
from cryptography.hazmat.primitives.serialization import Encoding
from pypsrp.exceptions import WinRMError

from lab.auth import NTLM_ACCOUNTS, Authenticated, Challenge, ConnectionAuth
from lab.config import FleetConfig, HostConfig
from lab.http import BadRequest, HttpRequest, read_request, render_response
from lab.pki import LabCA, ServerIdentity
from lab.scripts import ScriptRegistry
from lab.state import HostState
from lab.wsman import faults
from lab.wsman.envelope import parse_request, render_fault
from lab.wsman.envelope import render_response as render_envelope
from lab.wsman.faults import WSManFault
from lab.wsman.service import SERVER_MAX_ENVELOPE_KB, HostService

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
CONNECTION_IDLE_TIMEOUT_S = 120.0  # HTTP.sys closes idle keep-alive connections after 2 minutes
REAP_INTERVAL_S = 60.0
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


@dataclass(frozen=True)
class HostEndpoint:
    """Where a simulated host listens.  ``None`` ports have no listener of that kind."""

    name: str
    fqdn: str
    role: str
    address: str
    http_port: int | None
    https_port: int | None

    def url(self, *, tls: bool) -> str:
        port = self.https_port if tls else self.http_port
        if port is None:
            raise ValueError(f"{self.name} has no {'HTTPS' if tls else 'HTTP'} listener")
        return f"{'https' if tls else 'http'}://{self.address}:{port}/wsman"


@dataclass(frozen=True)
class LabInfo:
    """What a started lab tells its user: endpoints by host name and the CA bundle to trust."""

    endpoints: dict[str, HostEndpoint]
    ca_bundle: Path
    directory: Path

    def endpoint(self, name: str) -> HostEndpoint:
        return self.endpoints[name]

    def to_dict(self) -> dict[str, object]:
        return {
            "ca_bundle": str(self.ca_bundle),
            "directory": str(self.directory),
            "hosts": {name: vars(ep) for name, ep in self.endpoints.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LabInfo:
        hosts = data["hosts"]
        assert isinstance(hosts, dict)
        return cls(
            endpoints={name: HostEndpoint(**fields) for name, fields in hosts.items()},
            ca_bundle=Path(str(data["ca_bundle"])),
            directory=Path(str(data["directory"])),
        )


class HostRuntime:
    """A running host: its state, its shell service and what it answers on the wire."""

    def __init__(
        self, config: HostConfig, registry: ScriptRegistry, seed: str, state: HostState | None = None
    ) -> None:
        self.config = config
        self.state = state or HostState.from_config(config)
        self.service = HostService(config, self.state, registry)
        self.identity: ServerIdentity | None = None
        self.certificate_der: bytes | None = None
        self._jitter = random.Random(f"{seed}:{config.name}")  # noqa: S311 (simulation, not security)

    def delay(self) -> float:
        latency = self.config.faults.latency
        return (latency.fixed_ms + self._jitter.random() * latency.jitter_ms) / 1000.0

    async def respond(self, request: HttpRequest, auth: ConnectionAuth, client_ip: str) -> bytes:
        """The full HTTP response to one request on an authenticated-or-not connection."""
        if delay := self.delay():
            await asyncio.sleep(delay)
        if request.target.split("?", 1)[0].lower() != "/wsman":
            return render_response(404)
        if request.method != "POST":
            return render_response(405, headers=[("Allow", "POST")])
        outcome = auth.authenticate(request.header("authorization"))
        if isinstance(outcome, Challenge):
            return render_response(
                401, headers=[("WWW-Authenticate", value) for value in outcome.www_authenticate]
            )
        extra = [("WWW-Authenticate", outcome.final_token)] if outcome.final_token else []
        auth.after_response()
        if not request.body:  # pypsrp's empty POST that sets up message encryption
            return render_response(200, headers=extra)
        return await self._soap(request, outcome, auth.tls, client_ip, extra)

    async def _soap(
        self,
        request: HttpRequest,
        outcome: Authenticated,
        tls: bool,
        client_ip: str,
        extra: list[tuple[str, str]],
    ) -> bytes:
        content_type = request.header("content-type") or ""
        encrypted = content_type.startswith("multipart/encrypted")
        if encrypted:
            if outcome.encryption is None:
                return render_response(400)
            boundary = content_type.split('boundary="', 1)[-1].split('"', 1)[0]
            try:
                payload = outcome.encryption.unwrap_message(request.body, boundary)
            except (WinRMError, spnego.exceptions.SpnegoError, ValueError, IndexError):
                return render_response(400)  # not a message sealed for this logon
        elif not tls and not self.config.allow_unencrypted:
            return render_response(401)  # AllowUnencrypted=false: plaintext SOAP over HTTP is refused
        else:
            payload = request.body
        status, envelope = await self.wsman(payload, outcome.user, client_ip)
        if encrypted and outcome.encryption is not None:
            kind, wrapped = outcome.encryption.wrap_message(envelope)
            header = f'{kind};protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
            return render_response(status, wrapped, [("Content-Type", header), *extra])
        return render_response(status, envelope, [("Content-Type", SOAP_CONTENT_TYPE), *extra])

    async def wsman(self, payload: bytes, user: str, client_ip: str) -> tuple[int, bytes]:
        """HTTP status and envelope answering one SOAP request (500 with a fault, like WinRM)."""
        if len(payload) > SERVER_MAX_ENVELOPE_KB * 1024:
            return 500, render_fault(
                faults.envelope_too_large(SERVER_MAX_ENVELOPE_KB * 1024), "", self.state.fqdn
            )
        message_id = ""
        try:
            request = parse_request(payload)
            message_id = request.message_id
            reply = await self.service.handle(request, user, client_ip)
        except WSManFault as fault:
            return 500, render_fault(fault, message_id, self.state.fqdn)
        except Exception as exc:  # a lab bug: answer like a failing WinRM provider, keep serving
            log.exception("%s failed on a request", self.state.name)
            return 500, render_fault(faults.internal_error(exc), message_id, self.state.fqdn)
        return 200, render_envelope(reply.action, message_id, reply.body)


@dataclass
class Listener:
    """One listening port of one host; it can go down (connections refused) and come back."""

    runtime: HostRuntime
    address: str
    port: int
    ssl_context: ssl.SSLContext | None
    _server: asyncio.Server | None = None
    _placeholder: socket.socket | None = None
    _connections: set[asyncio.BaseTransport] = field(default_factory=set)

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    async def open(self) -> int:
        """Bind, and listen unless the host refuses connections; returns the bound port."""
        if self.runtime.config.faults.refuse:
            self._placeholder = _bound_socket(self.address, self.port)
            self.port = self._placeholder.getsockname()[1]
            return self.port
        await self.up()
        return self.port

    async def up(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        sock = _bound_socket(self.address, self.port)
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        # A hanging host accepts TCP but never starts TLS either.
        tls = None if self.runtime.config.faults.hang else self.ssl_context
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, sock=sock, ssl=tls, ssl_handshake_timeout=10 if tls else None
        )

    def _protocol(self) -> asyncio.Protocol:
        return _TrackedStreamProtocol(asyncio.StreamReader(limit=64 * 1024), self._serve, self._connections)

    async def down(self) -> None:
        """Stop listening and hold the port with a bound, non-listening socket (refused)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()
        self._placeholder = _bound_socket(self.address, self.port)

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    def drop_connections(self) -> None:
        for transport in list(self._connections):
            transport.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # headers and body go out in separate writes: no Nagle stalls
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.runtime.config.faults.hang:
                await _swallow(reader)
            else:
                await self._requests(reader, writer)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            writer.transport.abort()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "127.0.0.1"
        der = self.runtime.certificate_der if self.tls else None
        auth = ConnectionAuth(self.runtime.config, tls=self.tls, certificate_der=der)
        try:
            while (
                request := await asyncio.wait_for(read_request(reader), CONNECTION_IDLE_TIMEOUT_S)
            ) is not None:
                writer.write(await self.runtime.respond(request, auth, client_ip))
                await writer.drain()
        except BadRequest as exc:
            writer.write(render_response(exc.status, headers=[("Connection", "close")]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()


async def _loop_turns(count: int = 3) -> None:
    """Let already scheduled callbacks run (accepts in flight, the socket close a transport.close()
    only schedules)."""
    for _ in range(count):
        await asyncio.sleep(0)


class _TrackedStreamProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that registers its transport from ``connection_made`` on.

    Tracking starts here, not in the handler task: a connection accepted just before the lab
    stops has a handler task that never runs, and only this registration lets the stop close it.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        registry: set[asyncio.BaseTransport],
    ) -> None:
        super().__init__(reader, handler)
        self._registry = registry
        self._tracked: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tracked = transport
        self._registry.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tracked is not None:
            self._registry.discard(self._tracked)
        super().connection_lost(exc)


async def _swallow(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _bound_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock


def _raise_fd_limit(needed: int) -> None:
    """Each listener and each connection is a file descriptor; 2,000 hosts exceed the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class FleetServer:
    """All hosts of a fleet on one event loop.  ``start``/``stop`` must run on that loop."""

    def __init__(
        self,
        fleet: FleetConfig,
        directory: Path,
        registry: ScriptRegistry,
        states: Mapping[str, HostState] | None = None,
    ) -> None:
        """``states`` (by lower-case name) are hosts built beforehand, e.g. by a scenario."""
        self.fleet = fleet
        self.directory = directory
        given = states or {}
        self.hosts = {
            host.name.lower(): HostRuntime(host, registry, fleet.seed, given.get(host.name.lower()))
            for host in fleet.hosts
        }
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []  # flapping listeners, the idle-shell reaper
        self._accounts = [account for host in fleet.hosts for account in host.accounts]

    def runtime(self, name: str) -> HostRuntime:
        return self.hosts[name.lower()]

    async def start(self) -> LabInfo:
        listener_count = sum((h.http_port is not None) + (h.https_port is not None) for h in self.fleet.hosts)
        _raise_fd_limit(2 * listener_count + 4096)
        ca = LabCA(self.fleet.seed)
        ca_bundle = ca.write_bundle(self.directory)
        NTLM_ACCOUNTS.register(self._accounts)
        endpoints: dict[str, HostEndpoint] = {}
        try:
            for runtime in self.hosts.values():
                endpoints[runtime.config.name] = await self._start_host(runtime, ca)
        except BaseException:
            await self.stop()
            raise
        self._tasks.append(asyncio.get_running_loop().create_task(self._reap_idle_shells()))
        return LabInfo(endpoints=endpoints, ca_bundle=ca_bundle, directory=self.directory)

    async def _start_host(self, runtime: HostRuntime, ca: LabCA) -> HostEndpoint:
        config = runtime.config
        ports: dict[str, int | None] = {"http": None, "https": None}
        listeners = []
        if config.http_port is not None:
            listeners.append(("http", Listener(runtime, config.address, config.http_port, None)))
        if config.https_port is not None:
            runtime.identity = ca.write_server_identity(
                self.directory / "hosts", config.name, config.fqdn, config.address
            )
            runtime.certificate_der = runtime.identity.certificate.public_bytes(Encoding.DER)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(runtime.identity.chain_path)
            listeners.append(("https", Listener(runtime, config.address, config.https_port, context)))
        for kind, listener in listeners:
            ports[kind] = await listener.open()
            self._listeners.append(listener)
            if config.faults.flap is not None and not config.faults.refuse:
                self._tasks.append(asyncio.get_running_loop().create_task(_flap(listener)))
        return HostEndpoint(
            name=config.name,
            fqdn=config.fqdn,
            role=config.role,
            address=config.address,
            http_port=ports["http"],
            https_port=ports["https"],
        )

    async def _reap_idle_shells(self) -> None:
        """Shells nobody used for their IdleTimeOut go away, as WinRM removes them."""
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            for runtime in self.hosts.values():
                runtime.service.reap_idle_shells()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        # An accept already under way fails on a closed server (Python 3.11 then leaks its socket):
        # let those finish first; their connections are tracked from then on and closed below.
        await _loop_turns()
        for listener in self._listeners:
            listener.stop_listening()
        for listener in self._listeners:
            listener.drop_connections()
        await _loop_turns()
        for runtime in self.hosts.values():
            runtime.service.drop_shells()
        self._listeners.clear()
        NTLM_ACCOUNTS.unregister(self._accounts)
        self._accounts = []


async def _flap(listener: Listener) -> None:
    flap = listener.runtime.config.faults.flap
    assert flap is not None
    while True:
        await asyncio.sleep(flap.period_s - flap.down_s)
        await listener.down()
        await asyncio.sleep(flap.down_s)
        await listener.up()
