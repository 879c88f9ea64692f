"""The live :class:`~orchestrator.actions.model.Connection`: a WinRM session and an Intune client,
each opened on first use and closed with the connection.

A step that only talks to Graph (a device sync) never opens WinRM to the host, and a host step
never signs in to Graph: the openers are called lazily.  One connection serves every step (and
the rollback) of one target, so a playbook of three steps costs one runspace pool.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from types import TracebackType

    from orchestrator.inventory.models import Host
    from orchestrator.scripts.spec import Invocation
    from orchestrator.sweep.collect import ProbeSession
    from orchestrator.transport.graph.intune import IntuneClient

SessionOpener = Callable[[], AbstractContextManager["ProbeSession"]]
IntuneOpener = Callable[[], AbstractContextManager["IntuneClient"]]


class LiveConnection:
    """One target's connection for the steps of one run (use it as a context manager)."""

    def __init__(
        self,
        target: str,
        host: Host | None,
        *,
        open_session: SessionOpener | None,
        open_intune: IntuneOpener | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._target = target
        self._host = host
        self._open_session = open_session
        self._open_intune = open_intune
        self._clock = clock
        self._stack = ExitStack()
        self._session: ProbeSession | None = None
        self._intune: IntuneClient | None = None

    @property
    def target(self) -> str:
        return self._target

    @property
    def host(self) -> Host | None:
        return self._host

    @property
    def now(self) -> datetime:
        return self._clock()

    def run(self, invocation: Invocation[Any], /) -> Any:
        """Run a shipped script on the target and return its validated output."""
        if self._session is None:
            if self._open_session is None:
                raise ConfigError(f"{self._target} is not reachable over WinRM (the tenant has no host)")
            self._session = self._stack.enter_context(self._open_session())
        return self._session.run(invocation).value

    @property
    def intune(self) -> IntuneClient:
        if self._intune is None:
            if self._open_intune is None:
                raise ConfigError(
                    "Microsoft Graph is not configured ([graph] in fleetfix.toml)", field="graph"
                )
            self._intune = self._stack.enter_context(self._open_intune())
        return self._intune

    def reset_session(self) -> None:
        """Close the WinRM session; the next :meth:`run` opens a new one.

        A session's deadline bounds its whole life (connect, scripts, close: a hung host cannot
        hold a worker), so work that comes after a long wait (a rollback after verification
        polled for minutes) needs a session of its own.
        """
        self.close()
        self._stack = ExitStack()
        self._session = None
        self._intune = None

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LiveConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["IntuneOpener", "LiveConnection", "SessionOpener"]
