"""The one exception tree of fleetfix.

Everything the product raises on purpose derives from :class:`FleetfixError`.  Library exceptions
(pypsrp, httpx, msal, SQLAlchemy, PyYAML) are translated at the edge that calls the library, so code
above the edges only ever handles these classes.  The CLI maps each branch to an exit code:

* :class:`InputError` (bad config, inventory, selector, arguments) -> exit 2
* everything else (transport, store, credentials, internal) -> exit 3

Messages never contain secret values: credential errors name the reference, not what it resolves to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class FleetfixError(Exception):
    """Root of every error fleetfix raises on purpose."""

    kind: str = "error"

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description for ``--output json``."""
        return {"kind": self.kind, "message": str(self)}


@dataclass(frozen=True)
class SourcePosition:
    """Where in an input file a problem sits. ``line`` and ``column`` are 1-based."""

    path: Path | None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


class InputError(FleetfixError):
    """The user gave us something we cannot use. Nothing was changed."""

    kind = "input"

    def __init__(self, message: str, *, position: SourcePosition | None = None, field: str | None = None):
        self.message = message
        self.position = position
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        prefix = f"{self.position}: " if self.position is not None else ""
        field = f"{self.field}: " if self.field else ""
        return f"{prefix}{field}{self.message}"

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        if self.position is not None:
            data["file"] = str(self.position.path) if self.position.path is not None else None
            data["line"] = self.position.line
            data["column"] = self.position.column
        data["field"] = self.field
        return data


class ConfigError(InputError):
    """fleetfix.toml or a FLEETFIX_* variable is invalid."""

    kind = "config"


class InventoryError(InputError):
    """An inventory file is invalid."""

    kind = "inventory"


class PlaybookError(InputError):
    """A playbook file is invalid, or a playbook, parameter or fact it names does not exist."""

    kind = "playbook"


class SelectorError(InputError):
    """A ``--limit`` expression does not parse. ``column`` points at the offending token."""

    kind = "selector"

    def __init__(self, message: str, *, expression: str, column: int):
        self.expression = expression
        self.column = column
        super().__init__(f"{message} at column {column}: {expression!r}", field="--limit")

    def pointer(self) -> str:
        """The expression with a caret under the offending token, for humans."""
        return f"  {self.expression}\n  {' ' * (self.column - 1)}^"

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["expression"] = self.expression
        data["column"] = self.column
        return data


class CredentialError(FleetfixError):
    """A credential reference cannot be resolved, or the vault cannot be opened.

    The message names the reference (``vault:NAME``, ``env:VAR``), never the secret.
    """

    kind = "credential"


class StoreError(FleetfixError):
    """The store (SQLite or PostgreSQL) is unreachable, behind on migrations, or inconsistent."""

    kind = "store"


class AuditChainError(StoreError):
    """The audit log's hash chain is broken: an entry was edited, removed or reordered."""

    kind = "audit"

    def __init__(self, message: str, *, seq: int | None):
        self.seq = seq
        super().__init__(message)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["first_bad_seq"] = self.seq
        return data


class TransportError(FleetfixError):
    """A remote host or service could not be used. Subclasses say why."""

    kind = "transport"

    def __init__(self, message: str, *, host: str | None = None, request_id: str | None = None):
        self.host = host
        # The service's own id for the failed request (Graph's request-id), for support tickets.
        self.request_id = request_id
        super().__init__(f"{host}: {message}" if host else message)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["host"] = self.host
        if self.request_id is not None:
            data["request_id"] = self.request_id
        return data


class UnreachableError(TransportError):
    kind = "unreachable"


class AuthFailedError(TransportError):
    kind = "auth_failed"


class TimedOutError(TransportError):
    kind = "timed_out"


class ProtocolError(TransportError):
    kind = "protocol"


class ThrottledError(TransportError):
    kind = "throttled"

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, host=host, request_id=request_id)


class TLSError(TransportError):
    """The TLS handshake failed: untrusted or mismatched certificate, or no common protocol."""

    kind = "tls_failed"


class ForbiddenError(TransportError):
    """Authenticated, but not allowed (Graph 403: the app lacks a role or scope)."""

    kind = "forbidden"


class NotFoundError(TransportError):
    """The remote object does not exist (Graph 404, an Intune device or profile id that is gone)."""

    kind = "not_found"


class ServiceError(TransportError):
    """The remote service failed on its side (5xx after retries)."""

    kind = "service_error"


class ScriptFailedError(TransportError):
    """A PowerShell script stopped with a terminating error; carries the error record's text."""

    kind = "script_failed"

    def __init__(self, message: str, *, host: str | None = None, error_record: str | None = None):
        self.error_record = error_record
        super().__init__(message, host=host)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["error_record"] = self.error_record
        return data


class BadOutputError(TransportError):
    """A probe or action printed something that does not match its schema."""

    kind = "bad_output"


class OutputTooLargeError(BadOutputError):
    """A script printed more than the transport's output cap."""

    kind = "output_too_large"


class InternalError(FleetfixError):
    """A bug in fleetfix itself: an invariant was broken. Never the user's fault."""

    kind = "internal"


class IllegalTransitionError(InternalError):
    """The engine tried a state change its transition tables forbid (a run or a target)."""

    kind = "illegal_transition"


class RunBusyError(FleetfixError):
    """Another process is advancing this run right now; try again when its claim has expired."""

    kind = "run_busy"

    def __init__(self, message: str, *, run_id: str, holder: str | None):
        self.run_id = run_id
        self.holder = holder
        super().__init__(message)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["run_id"] = self.run_id
        data["holder"] = self.holder
        return data


class ActionFailedError(FleetfixError):
    """An action reached its target but the change did not take (autoenrollment brought no certificate)."""

    kind = "action_failed"

    def __init__(self, message: str, *, host: str | None = None):
        self.host = host
        super().__init__(f"{host}: {message}" if host else message)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["host"] = self.host
        return data


class OutputFileError(FleetfixError):
    """A report or metrics file could not be written (disk full, I/O error); nothing was left behind."""

    kind = "output_file"
