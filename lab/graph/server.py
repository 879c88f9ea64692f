"""The simulated tenant on the wire: one HTTPS listener for Entra ID, Graph and the lab's controls.

Paths:

* ``/{tenant}/v2.0/.well-known/openid-configuration`` (and without ``v2.0``),
  ``/{tenant}/discovery/v2.0/keys``, ``POST /{tenant}/oauth2/v2.0/token`` — Entra ID (:mod:`lab.graph.entra`);
* ``/v1.0/…``, ``/beta/…`` — Graph (:mod:`lab.graph.service`) behind a bearer check;
* ``/_lab/…`` — controls for tests and demos: ``GET /_lab/state``, ``GET /_lab/devices/{id}``,
  ``PUT /_lab/faults``, ``POST /_lab/revoke-tokens``.

Why asyncio: one event loop serialises every change to the tenant (no locks in the Graph logic),
parks slow responses for the price of a timer, and matches the WinRM lab.  The certificate comes
from the lab CA (:class:`lab.pki.LabCA`), so one CA bundle trusts the whole simulated estate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lab.graph.config import Device, Faults, TenantConfig
from lab.graph.devices import DeviceSide
from lab.graph.entra import Entra, InvalidToken
from lab.graph.service import JSON_TYPE, GraphRequest, GraphResponse, GraphService
from lab.graph.state import TenantState
from lab.graph.throttle import Throttle
from lab.http import BadRequest, HttpRequest, read_request, render_response
from lab.pki import LabCA

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 120.0
TICK_S = 0.01
# Graph's challenge names the public cloud's authority, whatever the tenant; clients ignore it.
_BEARER_CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
_ERROR_CODES = {
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True)
class TenantInfo:
    """Where a started tenant listens and what to trust."""

    tenant_id: str
    base_url: str  # https://127.0.0.1:PORT: both the authority host and the Graph base URL
    ca_bundle: Path
    directory: Path

    @property
    def authority(self) -> str:
        """msal's authority: ``{base}/{tenant}``."""
        return f"{self.base_url}/{self.tenant_id}"

    def to_dict(self) -> dict[str, str]:
        return {
            "tenant_id": self.tenant_id,
            "base_url": self.base_url,
            "ca_bundle": str(self.ca_bundle),
            "directory": str(self.directory),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> TenantInfo:
        return cls(data["tenant_id"], data["base_url"], Path(data["ca_bundle"]), Path(data["directory"]))


class FaultInjector:
    """Decides which Graph requests fail on purpose; replaced whole when faults change."""

    def __init__(self, faults: Faults, seed: str) -> None:
        self.faults = faults
        self.seen = 0
        self._random = random.Random(f"{seed}:faults")  # noqa: S311 (simulation, not security)

    def delay(self) -> float:
        return (self.faults.latency_ms + self._random.random() * self.faults.jitter_ms) / 1000.0

    def error(self) -> int | None:
        """The status to fail this Graph request with, or None."""
        index = self.seen
        self.seen += 1
        for burst in self.faults.bursts:
            if burst.after_requests <= index < burst.after_requests + burst.count:
                return burst.status
        if self.faults.error_rate and self._random.random() < self.faults.error_rate:
            return 503
        return None


class TenantServer:
    """Serve one tenant until :meth:`stop`."""

    def __init__(
        self,
        config: TenantConfig,
        directory: Path,
        side_factory: Callable[[Device], DeviceSide] | None = None,
        *,
        state: TenantState | None = None,
    ) -> None:
        self.config = config
        self.directory = directory
        # A scenario builds the tenant state with the estate (devices wired to endpoints) first.
        self.state = state or TenantState(config, side_factory)
        self.faults = FaultInjector(config.faults, config.seed)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.entra: Entra | None = None
        self.graph: GraphService | None = None

    async def start(self) -> TenantInfo:
        ca = LabCA(self.config.seed)
        bundle = ca.write_bundle(self.directory)
        identity = ca.write_server_identity(self.directory, "graph-tenant", "localhost", self.config.address)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(identity.chain_path)
        self._server = await asyncio.start_server(
            self._serve, self.config.address, self.config.port, ssl=context, backlog=1024
        )
        port = self._server.sockets[0].getsockname()[1]
        base_url = f"https://{self.config.address}:{port}"
        self.entra = Entra(self.config, base_url)
        throttle = Throttle(self.config.limits, self.config.window_s, time.monotonic())
        self.graph = GraphService(self.state, throttle, base_url)
        self._ticker = asyncio.create_task(self._tick())
        return TenantInfo(self.config.tenant_id, base_url, bundle, self.directory)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
        self._server = self._ticker = None

    def set_faults(self, faults: Faults) -> None:
        assert self.entra is not None
        assert self.graph is not None
        self.faults = FaultInjector(faults, self.config.seed)
        self.entra.token_failures = faults.token_failures
        self.graph.omit_retry_after = faults.omit_retry_after

    async def _tick(self) -> None:
        while True:
            self.state.tick(time.monotonic())
            await asyncio.sleep(TICK_S)

    # --- connections -----------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections.add(writer)
        try:
            while (request := await asyncio.wait_for(read_request(reader), IDLE_TIMEOUT_S)) is not None:
                writer.write(await self._answer(request))
                await writer.drain()
        except BadRequest as exc:
            writer.write(render_response(exc.status, headers=[("Connection", "close")]))
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            self._connections.discard(writer)
            writer.transport.abort()

    async def _answer(self, request: HttpRequest) -> bytes:
        try:
            return await self.respond(request)
        except Exception:  # a lab bug must show up as an answer, not as a dropped connection
            log.exception("tenant failed to answer %s %s", request.method, request.target)
            return _json(500, {"error": {"code": "InternalServerError", "message": "lab bug, see its log"}})

    async def respond(self, request: HttpRequest) -> bytes:
        """The complete HTTP response to one request."""
        path = urlsplit(request.target).path
        if path.startswith("/_lab/"):
            status, body = self._control(request, path)
            return _json(status, body)
        if delay := self.faults.delay():
            await asyncio.sleep(delay)
        if path.startswith(("/v1.0/", "/beta/")):
            return self._graph(request)
        return self._entra(request, path)

    def _entra(self, request: HttpRequest, path: str) -> bytes:
        assert self.entra is not None
        prefix = f"/{self.entra.tenant}"
        if request.method == "GET" and path == f"{prefix}/v2.0/.well-known/openid-configuration":
            return _json(200, self.entra.discovery(v2=True))
        if request.method == "GET" and path == f"{prefix}/.well-known/openid-configuration":
            return _json(200, self.entra.discovery(v2=False))
        if request.method == "GET" and path == f"{prefix}/discovery/v2.0/keys":
            return _json(200, self.entra.jwks())
        if request.method == "POST" and path == f"{prefix}/oauth2/v2.0/token":
            form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
            reply = self.entra.token(form)
            return _json(reply.status, reply.body, list(reply.headers))
        return _json(
            404, {"error": "not_found", "error_description": f"AADSTS90002: no such endpoint {path}"}
        )

    def _graph(self, request: HttpRequest) -> bytes:
        assert self.entra is not None
        assert self.graph is not None
        headers = dict(request.headers)
        failure = self.faults.error()
        if failure is not None:
            code = _ERROR_CODES[failure]
            body = {"error": {"code": code, "message": "The service is temporarily unavailable (lab fault)."}}
            return _json(failure, body)
        try:
            caller = self.entra.verify(request.header("authorization"))
        except InvalidToken as exc:
            body = {"error": {"code": "InvalidAuthenticationToken", "message": str(exc)}}
            return _json(401, body, [("WWW-Authenticate", _BEARER_CHALLENGE)])
        try:
            payload = json.loads(request.body) if request.body else None
        except ValueError:
            return _json(
                400, {"error": {"code": "BadRequest", "message": "Unable to read JSON request payload."}}
            )
        answer = self.graph.handle(
            caller, GraphRequest(request.method, request.target, headers, payload), time.monotonic()
        )
        return _render(answer)

    # --- controls ---------------------------------------------------------------------------------------

    def _control(self, request: HttpRequest, path: str) -> tuple[int, Any]:
        assert self.entra is not None
        assert self.graph is not None
        if request.method == "GET" and path == "/_lab/state":
            snapshot = self.state.snapshot()
            snapshot.update(
                graph_requests=self.graph.requests,
                throttled=dict(self.graph.throttle.refused),
                tokens_issued=self.entra.issued,
            )
            return 200, snapshot
        if request.method == "GET" and path.startswith("/_lab/devices/"):
            device = self.state.devices.get(path.removeprefix("/_lab/devices/"))
            if device is None:
                return 404, {"error": "no such device"}
            profiles = [p.to_dict() for p in device.side.vpn_profiles().values()]
            return 200, {"id": device.id, "os_build": list(device.side.os_build), "profiles": profiles}
        if request.method == "PUT" and path == "/_lab/faults":
            self.set_faults(Faults.model_validate_json(request.body))
            return 200, {"faults": self.faults.faults.model_dump()}
        if request.method == "POST" and path == "/_lab/revoke-tokens":
            self.entra.revoke_all()
            return 200, {"revoked": True}
        return 404, {"error": f"no control {request.method} {path}"}


def _render(answer: GraphResponse) -> bytes:
    body = b"" if answer.body is None else json.dumps(answer.body).encode()
    return render_response(answer.status, body, list(answer.headers.items()))


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> bytes:
    content_type = [("Content-Type", JSON_TYPE if status < 500 else "application/json")]
    return render_response(status, json.dumps(body).encode(), content_type + (headers or []))


__all__ = ["FaultInjector", "TenantInfo", "TenantServer"]
