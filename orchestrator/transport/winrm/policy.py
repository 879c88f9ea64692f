"""How long a host may take, and how often to retry: pure values and arithmetic, no I/O.

Layers of time, innermost first (``WinRMSettings`` holds the per-host ones, :class:`TransportPolicy`
the rest):

* ``connection_timeout``: one TCP connect plus TLS handshake;
* ``operation_timeout``: how long the *server* may hold one WS-Management request (a Receive
  long-poll answers ``w:TimedOut`` after it and is sent again);
* ``read_timeout``: how long the client waits for an answer to one request (longer than the
  operation timeout, or every long-poll would fail);
* ``deadline_s``: the whole session with one host -- open, every script, close.

Every request gets the smaller of its own timeouts and what is left of the deadline, shared among
the attempts that may be made for it (read-timeout retries of a Receive, reconnection retries of
a connect).  Nothing is sent once the deadline is spent, and after a connection-level failure the
pool is not closed remotely.  So one host costs at most::

    deadline_s + the backoff pypsrp sleeps between Receive retries       # 60 + 0.5 s by default

whatever it does -- refuse, swallow SYNs, accept and stay silent, stall TLS, answer every
long-poll and never finish.  Earlier layers usually end it sooner: a silent listener costs
``min(read_timeout, deadline_s)`` (30 s with inventory defaults), a stalled TLS handshake
``min(connection_timeout, deadline_s / 2)`` (it runs under the connect timeout, shared with one
reconnection retry), a refused connection milliseconds.  Closing the pool
after a *script* failure gets its own ``close_timeout_s``, on a host that still answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.inventory.models import WinRMSettings

# The server answers a long-poll when its operation timeout expires; the client must still be
# reading then.  pypsrp keeps the same margin when it derives an HTTP timeout (OperationTimeout + 2).
OPERATION_MARGIN_S = 2.0
MIN_OPERATION_TIMEOUT_S = 1


@dataclass(frozen=True)
class TransportPolicy:
    """Limits of one session that the inventory does not set per host.

    * ``deadline_s``: the whole session with one host (see the module docstring).
    * ``receive_retries``: how often a Receive that hit the read timeout is sent again (pypsrp's
      own default is 5, which with default timeouts is how a hung host costs ~5 minutes).
    * ``reconnection_retries`` / ``reconnection_backoff_s``: urllib3 retries of refused or reset
      connections and of HTTP 425/429/503.
    * ``max_output_bytes``: PSRP data one script may send back (its output plus framing).
    * ``close_timeout_s``: a separate budget for closing the pool after a script failed, so a
      failed probe does not leave a shell behind on a healthy host.
    * ``idle_timeout_s``: the server removes the shell after this long unused, should the client
      vanish before closing it.
    * ``use_proxy``: honour ``HTTPS_PROXY`` and friends; off, because WinRM is internal traffic.
    """

    deadline_s: float = 60.0
    receive_retries: int = 1
    reconnection_retries: int = 1
    reconnection_backoff_s: float = 0.5
    max_output_bytes: int = 4 * 1024 * 1024
    close_timeout_s: float = 5.0
    idle_timeout_s: int = 300
    use_proxy: bool = False

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.close_timeout_s <= 0 or self.reconnection_backoff_s < 0:
            raise ValueError("deadline_s and close_timeout_s must be positive, reconnection_backoff_s >= 0")
        if self.receive_retries < 0 or self.reconnection_retries < 0:
            raise ValueError("retry counts cannot be negative")
        if self.max_output_bytes <= 0 or self.idle_timeout_s < 60:
            raise ValueError(
                "max_output_bytes must be positive, idle_timeout_s at least 60 (WinRM's minimum)"
            )


DEFAULT_POLICY = TransportPolicy()


@dataclass
class Deadline:
    """A budget of seconds that starts when the object is made."""

    budget_s: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()


@dataclass(frozen=True)
class RequestTimeouts:
    """What one WS-Management request may take: HTTP connect and read, and the server's share."""

    connect_s: float
    read_s: float
    operation_s: int


def request_timeouts(
    settings: WinRMSettings, remaining_s: float, attempts: int, connect_attempts: int | None = None
) -> RequestTimeouts:
    """Timeouts of one request that may be sent ``attempts`` times, within ``remaining_s``.

    ``connect_attempts`` (default ``attempts``) counts the connects those sends may make, urllib3's
    reconnection retries included: each gets its share, so that even a host that swallows SYNs
    cannot make the request outlast the deadline.

    The operation timeout leaves :data:`OPERATION_MARGIN_S` before the read timeout, so that a
    long-poll is answered by the server before the client gives up; when the deadline is nearly
    spent that margin cannot be kept, and the request ends as a timeout, which it is.
    """
    remaining = max(remaining_s, 0.0)
    read = min(settings.read_timeout, remaining / max(attempts, 1))
    connect = min(settings.connection_timeout, remaining / max(connect_attempts or attempts, 1))
    operation = min(settings.operation_timeout, read - OPERATION_MARGIN_S)
    # WS-Management durations are sent as whole seconds (PT20S), as Windows clients send them.
    return RequestTimeouts(connect, read, max(MIN_OPERATION_TIMEOUT_S, math.floor(operation)))


__all__ = [
    "DEFAULT_POLICY",
    "OPERATION_MARGIN_S",
    "Deadline",
    "RequestTimeouts",
    "TransportPolicy",
    "request_timeouts",
]
