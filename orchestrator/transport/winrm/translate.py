"""pypsrp, requests, urllib3, pyspnego and socket exceptions -> fleetfix's exception tree.

Pure: :func:`translate` looks at an exception and says which :class:`TransportError` it is.  The
session calls it at the boundary, so no library exception reaches code above the transport.
Messages name the host, the endpoint, the user and the auth scheme -- never a password.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import ParseError

import requests
import spnego.exceptions
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError

from orchestrator.errors import (
    AuthFailedError,
    ProtocolError,
    ThrottledError,
    TimedOutError,
    TLSError,
    TransportError,
    UnreachableError,
)

ERROR_ACCESS_DENIED = 5
# WinRM quota faults: shells per user, operations per user, concurrent users, shell memory.
QUOTA_FAULTS = frozenset({2150859173, 2150859174, 2150859175, 2150858926})
_CAUSE_DEPTH = 8


@dataclass(frozen=True)
class ErrorContext:
    """Who was talking to whom, and what about, when an exception happened."""

    host: str
    endpoint: str
    username: str
    auth: str
    doing: str


def translate(exc: BaseException, context: ErrorContext) -> TransportError:
    """The fleetfix error for ``exc`` (already-translated errors pass through unchanged)."""
    if isinstance(exc, TransportError):
        return exc
    for kinds, build in _RULES:
        if isinstance(exc, kinds):
            return build(exc, context)
    return ProtocolError(
        f"unexpected {type(exc).__name__} while {context.doing}: {root_cause(exc)}", host=context.host
    )


def _auth_failed(exc: BaseException, ctx: ErrorContext) -> TransportError:
    return AuthFailedError(
        f"user {ctx.username!r} was refused ({ctx.auth} authentication at {ctx.endpoint})", host=ctx.host
    )


def _auth_unavailable(exc: BaseException, ctx: ErrorContext) -> TransportError:
    # ImportError: the auth scheme needs a library this machine lacks (gssapi for kerberos,
    # requests-credssp for credssp); SpnegoError: the handshake itself broke down.
    return AuthFailedError(
        f"{ctx.auth} authentication as {ctx.username!r} could not be completed: {root_cause(exc)}",
        host=ctx.host,
    )


def _wsman_fault(exc: BaseException, ctx: ErrorContext) -> TransportError:
    assert isinstance(exc, WSManFaultError)
    reason = (exc.reason or exc.message or "").strip()
    text = f"WS-Management fault {exc.code} while {ctx.doing}: {reason}"
    if exc.code == ERROR_ACCESS_DENIED:
        return AuthFailedError(f"user {ctx.username!r} is not allowed in: {text}", host=ctx.host)
    if exc.code in QUOTA_FAULTS:
        return ThrottledError(text, host=ctx.host)
    return ProtocolError(text, host=ctx.host)


def _http_status(exc: BaseException, ctx: ErrorContext) -> TransportError:
    assert isinstance(exc, WinRMTransportError)
    return ProtocolError(f"HTTP {exc.code} from {ctx.endpoint} while {ctx.doing}", host=ctx.host)


def _protocol(exc: BaseException, ctx: ErrorContext) -> TransportError:
    return ProtocolError(f"unusable answer while {ctx.doing}: {root_cause(exc)}", host=ctx.host)


def _tls(exc: BaseException, ctx: ErrorContext) -> TransportError:
    return TLSError(f"TLS with {ctx.endpoint} failed: {root_cause(exc)}", host=ctx.host)


def _timed_out(exc: BaseException, ctx: ErrorContext) -> TransportError:
    return TimedOutError(f"no answer from {ctx.endpoint} in time while {ctx.doing}", host=ctx.host)


def _unreachable(exc: BaseException, ctx: ErrorContext) -> TransportError:
    return UnreachableError(f"cannot talk to {ctx.endpoint}: {root_cause(exc)}", host=ctx.host)


class _Builder(Protocol):
    def __call__(self, exc: BaseException, ctx: ErrorContext, /) -> TransportError: ...


# Order matters: the first matching rule wins, and several classes have two parents
# (requests' SSLError is a ConnectionError; ConnectTimeout is both ConnectionError and Timeout).
_RULES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], _Builder], ...] = (
    (AuthenticationError, _auth_failed),
    (WSManFaultError, _wsman_fault),
    (WinRMTransportError, _http_status),
    (WinRMError, _protocol),
    ((spnego.exceptions.SpnegoError, ImportError), _auth_unavailable),
    ((requests.exceptions.SSLError, ssl.SSLError), _tls),
    ((requests.exceptions.Timeout, TimeoutError), _timed_out),
    (requests.exceptions.ConnectionError, _unreachable),
    ((requests.exceptions.RequestException, ParseError), _protocol),  # before OSError: its parent
    (OSError, _unreachable),
)


def root_cause(exc: BaseException) -> str:
    """The innermost explanation in a chain of wrapped exceptions (urllib3 nests several levels)."""
    current: BaseException = exc
    for _ in range(_CAUSE_DEPTH):
        inner = _inner(current)
        if inner is None:
            break
        current = inner
    return str(current) or type(current).__name__


def _inner(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)  # urllib3 MaxRetryError / NewConnectionError wrappers
    if isinstance(reason, BaseException):
        return reason
    if exc.args and isinstance(exc.args[0], BaseException):  # requests wraps urllib3 errors in args
        return exc.args[0]
    if len(exc.args) > 1 and isinstance(exc.args[1], BaseException):  # ProtocolError('aborted', cause)
        return exc.args[1]
    return exc.__cause__


def render_error_record(record: object) -> str:
    """An error record as PowerShell shows it: message, category line, error id, stack trace."""
    message = getattr(record, "details_message", None) or str(record)
    lines = [message]
    if category := getattr(record, "message", None):
        lines.append(f"    + CategoryInfo          : {category}")
    if error_id := getattr(record, "fq_error", None):
        lines.append(f"    + FullyQualifiedErrorId : {error_id}")
    if stack := getattr(record, "script_stacktrace", None):
        lines.append(f"    + ScriptStackTrace      : {stack}")
    return "\n".join(lines)


__all__ = ["ErrorContext", "render_error_record", "root_cause", "translate"]
