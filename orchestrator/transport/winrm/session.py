"""``WinRMSession``: one runspace pool on one host, for all the scripts of a collection or action.

Thin on purpose: settings come from :mod:`.options`, timeouts from :mod:`.policy`, output checks
from :mod:`.output`, error translation from :mod:`.translate`.  What lives here is the order of
pypsrp calls and the two places where pypsrp 0.9.1 must be bounded from outside:

* :class:`_BoundedWSMan` gives every WS-Management request timeouts cut to what is left of the
  session's deadline, refuses to send once it is spent, sends a timed-out Receive again at most
  ``receive_retries`` times (pypsrp's own default is 5), and counts the bytes a pipeline sends
  back -- pypsrp holds a message's fragments until it is complete, so ``PowerShell.output`` alone
  cannot enforce an output cap.
* :meth:`WinRMSession._invoke` polls the pipeline itself, so the size and the deadline are checked
  after every Receive, and a pipeline that sends too much is stopped.

Usage::

    with WinRMSession(host, credential) as session:
        info = session.run(HOST_INFO.bind())            # ScriptResult[HostInfo]
        echo = session.run(DIAG_ECHO.bind(Value="x"))   # ScriptResult[DiagEcho]
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from xml.etree.ElementTree import Element

from pydantic import BaseModel
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, WSMan, WSManAction

from orchestrator.credentials.secret import Credential
from orchestrator.errors import (
    AuthFailedError,
    FleetfixError,
    ProtocolError,
    ScriptFailedError,
    ThrottledError,
    TimedOutError,
    TLSError,
    TransportError,
    UnreachableError,
)
from orchestrator.inventory.models import Host, WinRMSettings
from orchestrator.scripts.spec import Invocation
from orchestrator.transport.winrm.options import WSManOptions, wsman_options
from orchestrator.transport.winrm.output import check_output_size, parse_output, stream_bytes
from orchestrator.transport.winrm.policy import DEFAULT_POLICY, Deadline, TransportPolicy, request_timeouts
from orchestrator.transport.winrm.translate import ErrorContext, render_error_record, translate

log = logging.getLogger("fleetfix.transport.winrm")

Output = TypeVar("Output", bound=BaseModel)

# Below this many seconds a request could not even connect; urllib3 also refuses a zero timeout.
MIN_REQUEST_S = 0.05
# After these the connection or the login is gone: later scripts fail the same way, without I/O.
_SESSION_ENDING = (UnreachableError, AuthFailedError, TLSError, TimedOutError, ProtocolError, ThrottledError)


@dataclass(frozen=True)
class ScriptResult(Generic[Output]):
    """One script's validated output, plus what it wrote to the error and warning streams."""

    host: str
    script_id: str
    value: Output
    errors: tuple[str, ...]  # non-terminating errors (the script still completed)
    warnings: tuple[str, ...]
    elapsed_s: float


class _BoundedWSMan(WSMan):
    """pypsrp's ``WSMan`` with every request bounded by the session deadline (module docstring)."""

    def __init__(
        self,
        settings: WinRMSettings,
        policy: TransportPolicy,
        deadline: Deadline,
        host: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.policy = policy
        self.deadline = deadline
        self.host_name = host
        self.received_bytes = 0  # PSRP data received since the caller last reset it

    def invoke(  # noqa: PLR0917 (pypsrp's signature)
        self,
        action: str,
        resource_uri: str,
        resource: Element | None,
        option_set: Any = None,
        selector_set: Any = None,
        timeout: int | None = None,
        *,
        retries_on_read_timeout: int = 0,
    ) -> Element:
        remaining = self.deadline.remaining()
        if remaining < MIN_REQUEST_S:
            raise TimedOutError(f"session deadline of {self.deadline.budget_s:g}s spent", host=self.host_name)
        attempts = retries_on_read_timeout + 1
        connects = attempts * (self.policy.reconnection_retries + 1)
        limits = request_timeouts(self.settings, remaining, attempts, connects)
        # pypsrp 0.9.1 reads these per request (``_TransportHTTP._send_request``); passing ``timeout``
        # instead would set connect and read both to OperationTimeout + 2.
        # They are annotated int, but requests takes float seconds.
        self.transport.connection_timeout = limits.connect_s  # type: ignore[assignment]
        self.transport.read_timeout = limits.read_s  # type: ignore[assignment]
        self.operation_timeout = min(limits.operation_s, timeout or limits.operation_s)
        result: Element = super().invoke(
            action,
            resource_uri,
            resource,
            option_set,
            selector_set,
            None,
            retries_on_read_timeout=retries_on_read_timeout,
        )
        return result

    def receive(
        self,
        resource_uri: str,
        resource: Element,
        option_set: Any = None,
        selector_set: Any = None,
        timeout: int | None = None,
    ) -> Element:
        response = self.invoke(
            WSManAction.RECEIVE,
            resource_uri,
            resource,
            option_set,
            selector_set,
            timeout,
            retries_on_read_timeout=self.policy.receive_retries,
        )
        body = response.find("s:Body", namespaces=NAMESPACES)
        self.received_bytes += stream_bytes(body)
        assert body is not None  # pypsrp's own receive() assumes the same
        return body


class WinRMSession:
    """A runspace pool on ``host``, opened by ``with`` (or :meth:`open`) and closed on exit.

    Every method raises only :class:`FleetfixError` subclasses: :class:`InputError` for settings
    that must not be used, the :class:`TransportError` kinds for everything remote.  After an
    error that ends the session (unreachable, auth, TLS, timeout, protocol, quota), further
    :meth:`run` calls raise the same kind at once; after a script's own failure (script failed,
    bad output, output too large) the session stays usable.
    """

    def __init__(
        self,
        host: Host,
        credential: Credential,
        *,
        policy: TransportPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.policy = policy
        self._credential = credential
        self._clock = clock
        self._options: WSManOptions = wsman_options(host, credential.username, policy)
        self._wsman: _BoundedWSMan | None = None
        self._pool: RunspacePool | None = None
        self._ended_by: TransportError | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the runspace pool; the session deadline starts now."""
        if self._pool is not None:
            return
        deadline = Deadline(self.policy.deadline_s, self._clock)
        with self._boundary("opening a runspace pool"):
            self._wsman = _BoundedWSMan(
                self.host.winrm,
                self.policy,
                deadline,
                self.host.name,
                **self._options.kwargs,
                # The one place the secret is revealed: into the client that logs in with it.
                **{self._options.secret_kwarg: self._credential.secret.reveal()},
            )
            self._pool = RunspacePool(
                self._wsman,
                configuration_name=self.host.winrm.configuration_name,
                idle_timeout=self.policy.idle_timeout_s,
            )
            self._pool.open()
        log.debug("opened a runspace pool on %s (%s)", self.host.name, self._options.endpoint)

    def close(self) -> None:
        """Close the pool on the host when the connection is still good, then the local client."""
        pool, wsman = self._pool, self._wsman
        self._pool = None
        self._wsman = None
        if wsman is None:
            return
        try:
            if pool is not None and self._ended_by is None:
                # A fresh, short budget: a script failure must not leave the shell behind, but a
                # host that stopped answering must not hold up the caller for long either.
                wsman.deadline = Deadline(self.policy.close_timeout_s, self._clock)
                with self._boundary("closing the runspace pool"):
                    pool.close()
        except TransportError as exc:
            log.debug("could not close the runspace pool on %s: %s", self.host.name, exc)
        finally:
            wsman.close()

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the session opened (0 before)."""
        return self._wsman.deadline.elapsed() if self._wsman is not None else 0.0

    # -- running scripts -------------------------------------------------------------------------

    def run(self, invocation: Invocation[Output]) -> ScriptResult[Output]:
        """Run one shipped script on the pool and return its validated output."""
        pool, wsman = self._usable()
        started = self._clock()
        script_id = invocation.script_id
        with self._boundary(f"running {script_id}"):
            ps = self._invoke(pool, wsman, invocation)
        if ps.state != PSInvocationState.COMPLETED:
            raise _script_failed(ps, self.host.name, script_id)
        value = parse_output(invocation.spec.output, ps.output, host=self.host.name, script_id=script_id)
        return ScriptResult(
            host=self.host.name,
            script_id=script_id,
            value=value,
            errors=tuple(str(record) for record in ps.streams.error),
            warnings=tuple(str(record) for record in ps.streams.warning),
            elapsed_s=self._clock() - started,
        )

    def _invoke(self, pool: RunspacePool, wsman: _BoundedWSMan, invocation: Invocation[Any]) -> PowerShell:
        ps = PowerShell(pool)
        ps.add_script(invocation.spec.text)  # a constant shipped with fleetfix, never built from values
        for name, value in invocation.params:
            ps.add_parameter(name, value)  # values travel as CLIXML data, apart from the script
        wsman.received_bytes = 0
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke()
            try:
                check_output_size(
                    wsman.received_bytes,
                    self.policy.max_output_bytes,
                    host=self.host.name,
                    script_id=invocation.script_id,
                )
            except FleetfixError:
                ps.stop()  # Ctrl+C on the host; the pool stays open for the next script
                raise
        ps.close()  # Signal Terminate: the host releases the finished pipeline
        return ps

    def _usable(self) -> tuple[RunspacePool, _BoundedWSMan]:
        if self._ended_by is not None:
            raise type(self._ended_by)(f"session ended earlier: {self._ended_by}", host=self.host.name)
        if self._pool is None or self._wsman is None:
            raise RuntimeError("the session is not open; use `with WinRMSession(...)` or call open()")
        return self._pool, self._wsman

    @contextlib.contextmanager
    def _boundary(self, doing: str) -> Iterator[None]:
        """Translate library exceptions; remember the errors that end the session."""
        try:
            yield
        except FleetfixError as exc:
            self._remember(exc)
            raise
        # The boundary of the transport: whatever pypsrp and the libraries under it raise is
        # translated here (translate() maps the unknown rest to ProtocolError), so that no
        # library exception reaches the callers.
        except Exception as exc:
            context = ErrorContext(
                host=self.host.name,
                endpoint=self._options.endpoint,
                username=self._credential.username,
                auth=self.host.winrm.auth.value,
                doing=doing,
            )
            error = translate(exc, context)
            log.debug("%s: %s while %s", self.host.name, type(exc).__name__, doing, exc_info=True)
            self._remember(error)
            raise error from exc

    def _remember(self, error: FleetfixError) -> None:
        if isinstance(error, _SESSION_ENDING) and self._ended_by is None:
            self._ended_by = error


def _script_failed(ps: PowerShell, host: str, script_id: str) -> ScriptFailedError:
    records = list(ps.streams.error)
    if not records:
        state = "was stopped" if ps.state == PSInvocationState.STOPPED else "failed without an error record"
        return ScriptFailedError(f"{script_id} {state}", host=host)
    record = records[-1]  # the terminating error comes last, after any non-terminating ones
    first_line = (str(record).splitlines() or [""])[0]
    return ScriptFailedError(
        f"{script_id} failed: {first_line}", host=host, error_record=render_error_record(record)
    )


__all__ = ["ScriptResult", "WinRMSession"]
