"""A small plain-HTTP listener for the lab's own services: the CRL distribution point and the control API.

WinRM and Graph have listeners of their own (:mod:`lab.server`, :mod:`lab.graph.server`); this one
answers short GETs and POSTs with a handler function, reusing the lab's HTTP parsing
(:mod:`lab.http`).  The socket is bound before it listens, so the port is known early: the PKI
writes the CRL distribution point URL into every certificate it issues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lab.http import BadRequest, HttpRequest, read_request, render_response

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"


Handler = Callable[[HttpRequest], Awaitable[Reply]]


@dataclass
class WebListener:
    """Serve ``handler`` on ``address:port`` (0: any free port) until :meth:`stop`."""

    handler: Handler
    address: str = "127.0.0.1"
    port: int = 0
    _socket: socket.socket | None = None
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def bind(self) -> int:
        """Reserve the port now (the URL must be known before anything is issued)."""
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, self.port))
            sock.setblocking(False)
            self._socket = sock
            self.port = sock.getsockname()[1]
        return self.port

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    async def start(self) -> str:
        self.bind()
        assert self._socket is not None
        self._socket.listen(256)
        self._server = await asyncio.start_server(self._serve, sock=self._socket)
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        elif self._socket is not None:
            self._socket.close()
        self._socket = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while (request := await asyncio.wait_for(read_request(reader), IDLE_TIMEOUT_S)) is not None:
                reply = await self._answer(request)
                headers = [("Content-Type", reply.content_type)]
                writer.write(render_response(reply.status, reply.body, headers))
                await writer.drain()
        except BadRequest as exc:
            writer.write(render_response(exc.status, headers=[("Connection", "close")]))
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _answer(self, request: HttpRequest) -> Reply:
        try:
            return await self.handler(request)
        except Exception:  # a lab bug is an answer, not a dropped connection
            log.exception("lab web handler failed on %s %s", request.method, request.target)
            return Reply(500, b'{"error": "lab bug, see its log"}', "application/json")


__all__ = ["Handler", "Reply", "WebListener"]
