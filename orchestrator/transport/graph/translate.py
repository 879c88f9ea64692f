"""httpx exceptions -> fleetfix's exception tree, for Graph and the authority alike.  Pure."""

from __future__ import annotations

import ssl

import httpx

from orchestrator.errors import ProtocolError, TimedOutError, TLSError, TransportError, UnreachableError


class HostNotAllowed(Exception):
    """A request to a host that is neither the configured authority nor the Graph endpoint."""

    def __init__(self, host: str) -> None:
        super().__init__(f"refusing to send a request to {host!r}: not a configured Graph or authority host")
        self.host = host


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def translate_httpx(exc: BaseException, *, host: str, what: str) -> TransportError:
    """The :class:`TransportError` for an exception raised while sending ``what`` to ``host``."""
    if isinstance(exc, HostNotAllowed):
        return ProtocolError(f"{what}: {exc}", host=host)
    if isinstance(exc, httpx.TimeoutException):
        return TimedOutError(f"{what}: {type(exc).__name__}", host=host)
    if _caused_by_tls(exc):
        return TLSError(f"{what}: TLS handshake failed: {exc}", host=host)
    if isinstance(exc, httpx.TransportError):
        return UnreachableError(f"{what}: {type(exc).__name__}: {exc}", host=host)
    return ProtocolError(f"{what}: {type(exc).__name__}: {exc}", host=host)


__all__ = ["HostNotAllowed", "translate_httpx"]
