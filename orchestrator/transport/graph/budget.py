"""A request budget per tenant, shared by every worker, that keeps fleetfix under Intune's limits.

Intune throttles per app and tenant in 20-second windows, per service bucket, with a tighter limit
for writes (``POST/PATCH/PUT/DELETE``) than for any request.  Bouncing off those limits costs a
429 and a ``Retry-After`` wait each time; staying under them costs nothing.  So every request takes
a permit from the budget of its bucket before it is sent, and waits when none is left.

The accounting is a *sliding* window log: at most ``limit`` permits in any ``window_s`` interval.
That is stricter than a fixed window of the same length, so whatever windows the service counts
in, a client under its sliding budget is under the service's.  ``headroom`` lengthens the window a
little, for the requests that take longer to arrive than their neighbours.

Two stores, one algorithm:

* :class:`LocalBudget`: in-process, a lock and one :class:`SlidingWindowLog` per key (the
  embedded executor; every thread of the process shares one instance per tenant);
* :class:`RedisBudget`: every worker of every machine, through one Lua script that reads the
  Redis server's clock (so workers' clocks need not agree) and checks and takes permits atomically.
"""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import ConfigError, UnreachableError

if TYPE_CHECKING:
    import redis


class Bucket(StrEnum):
    """Intune's throttling buckets (Graph docs, "Intune service limits")."""

    DEVICES = "devices"
    CONFIGURATION = "configuration"
    OTHER = "other"


WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class RequestKind:
    bucket: Bucket
    write: bool


def classify(method: str, path: str) -> RequestKind:
    """Which bucket a Graph request counts against; ``path`` is relative to the version segment."""
    write = method.upper() in WRITE_METHODS
    if path.startswith("/deviceManagement/managedDevices"):
        return RequestKind(Bucket.DEVICES, write)
    if path.startswith("/deviceManagement/deviceConfigurations"):
        return RequestKind(Bucket.CONFIGURATION, write)
    return RequestKind(Bucket.OTHER, write)


@dataclass(frozen=True)
class BudgetLimits:
    """Permits per window for fleetfix's app in one tenant; defaults are Intune's documented limits.

    ``OTHER`` requests are not budgeted: the Graph-wide limit (130,000 per 10 s) is far away.
    """

    window_s: float = 20.0
    headroom: float = 0.05
    devices_write: int = 200
    devices_any: int = 2000
    configuration_write: int = 100
    configuration_any: int = 1000

    def __post_init__(self) -> None:
        counts = (self.devices_write, self.devices_any, self.configuration_write, self.configuration_any)
        if self.window_s <= 0 or self.headroom < 0 or min(counts) < 1:
            raise ValueError("budget limits need a positive window and at least one permit per key")

    @property
    def effective_window_s(self) -> float:
        return self.window_s * (1 + self.headroom)

    def keys(self, kind: RequestKind) -> list[tuple[str, int]]:
        """The counters a request of ``kind`` takes a permit from, with their limits."""
        if kind.bucket is Bucket.OTHER:
            return []
        prefix = kind.bucket.value
        keys = [(f"{prefix}:any", getattr(self, f"{prefix}_any"))]
        if kind.write:
            keys.append((f"{prefix}:write", getattr(self, f"{prefix}_write")))
        return keys

    def scaled(self, factor: float) -> BudgetLimits:
        """The same limits over a window ``factor`` times as long (a time-scaled lab tenant)."""
        return BudgetLimits(
            window_s=self.window_s * factor,
            headroom=self.headroom,
            devices_write=self.devices_write,
            devices_any=self.devices_any,
            configuration_write=self.configuration_write,
            configuration_any=self.configuration_any,
        )


class SlidingWindowLog:
    """At most ``limit`` permits in any window of ``window_s`` seconds.  Pure: the caller gives ``now``."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: list[float] = []  # sorted times at which permits were taken

    def wait(self, now: float, count: int = 1) -> float:
        """Seconds until ``count`` more permits fit (0.0 if they fit now)."""
        if count > self.limit:
            raise ValueError(f"{count} permits can never fit a limit of {self.limit}")
        self._expire(now)
        excess = len(self._times) + count - self.limit
        if excess <= 0:
            return 0.0
        # The permits fit once the `excess` oldest entries have left the window.
        return self._times[excess - 1] + self.window_s - now

    def take(self, now: float, count: int = 1) -> None:
        for _ in range(count):
            bisect.insort(self._times, now)

    def _expire(self, now: float) -> None:
        cut = bisect.bisect_right(self._times, now - self.window_s)
        if cut:
            del self._times[:cut]


class RequestBudget(Protocol):
    """Permits for Graph requests; ``acquire`` blocks until ``count`` permits of ``kind`` are taken."""

    def acquire(self, kind: RequestKind, count: int = 1) -> float:
        """Take the permits, waiting as long as needed; returns the seconds waited."""
        ...


class _WaitingBudget:
    """``acquire`` on top of a non-blocking ``_try``: sleep for the wait the store reports, then retry."""

    def __init__(self, limits: BudgetLimits, sleep: Callable[[float], None]) -> None:
        self.limits = limits
        self._sleep = sleep

    def acquire(self, kind: RequestKind, count: int = 1) -> float:
        keys = self.limits.keys(kind)
        if not keys or count == 0:
            return 0.0
        waited = 0.0
        while (delay := self._try(keys, count)) > 0:
            self._sleep(delay)
            waited += delay
        return waited

    def _try(self, keys: Sequence[tuple[str, int]], count: int) -> float:
        raise NotImplementedError


class LocalBudget(_WaitingBudget):
    """The budget of one process: every thread that shares the instance shares the permits."""

    def __init__(
        self,
        limits: BudgetLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(limits or BudgetLimits(), sleep)
        self._clock = clock
        self._logs: dict[str, SlidingWindowLog] = {}
        self._lock = threading.Lock()

    def _try(self, keys: Sequence[tuple[str, int]], count: int) -> float:
        with self._lock:
            now = self._clock()
            logs = [self._log(key, limit) for key, limit in keys]
            delay = max(log.wait(now, count) for log in logs)
            if delay <= 0:
                for log in logs:
                    log.take(now, count)
            return delay

    def _log(self, key: str, limit: int) -> SlidingWindowLog:
        if key not in self._logs:
            self._logs[key] = SlidingWindowLog(limit, self.limits.effective_window_s)
        return self._logs[key]


# KEYS: the counters; ARGV: count, window in ms, a unique member prefix, then one limit per key.
# Returns "0" once the permits are taken, else the milliseconds to wait (as text: Lua numbers
# would be truncated to integers on the way out).
_ACQUIRE_LUA = """
local count = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local excess = redis.call('ZCARD', key) + count - limit
  if excess > 0 then
    local oldest = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  for j = 1, count do
    redis.call('ZADD', key, now, ARGV[3] .. ':' .. j)
  end
  redis.call('PEXPIRE', key, math.ceil(window) + 1000)
end
return '0'
"""


class RedisBudget(_WaitingBudget):
    """The budget of every worker that talks to one Redis: keys ``fleetfix:graph-budget:{tenant}:…``."""

    def __init__(
        self,
        client: redis.Redis,
        tenant_id: str,
        limits: BudgetLimits | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(limits or BudgetLimits(), sleep)
        self._client = client
        self._prefix = f"fleetfix:graph-budget:{tenant_id}:"
        self._script = client.register_script(_ACQUIRE_LUA)

    def _try(self, keys: Sequence[tuple[str, int]], count: int) -> float:
        import redis  # noqa: PLC0415 - the redis extra is only needed with a Redis broker

        window_ms = self.limits.effective_window_s * 1000
        args: list[str | int | float] = [count, window_ms, uuid.uuid4().hex, *(limit for _, limit in keys)]
        try:
            reply = self._script(keys=[self._prefix + key for key, _ in keys], args=args)
        except redis.RedisError as exc:
            raise UnreachableError(f"request budget in Redis: {exc}", host="redis") from None
        return float(reply) / 1000.0


_local_budgets: dict[tuple[str, BudgetLimits], LocalBudget] = {}
_local_lock = threading.Lock()


def shared_local_budget(tenant_id: str, limits: BudgetLimits) -> LocalBudget:
    """The one in-process budget of a tenant, so that every client in the process shares it."""
    with _local_lock:
        return _local_budgets.setdefault((tenant_id, limits), LocalBudget(limits))


def budget_for(tenant_id: str, broker_url: str | None, limits: BudgetLimits | None = None) -> RequestBudget:
    """Redis-backed when the broker is Redis (all workers share it), in-process otherwise."""
    limits = limits or BudgetLimits()
    if broker_url is None or not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return shared_local_budget(tenant_id, limits)
    try:
        import redis  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "broker_url is a Redis URL but the redis package is missing: install fleetfix[redis]",
            field="broker_url",
        ) from None
    return RedisBudget(redis.Redis.from_url(broker_url), tenant_id, limits)


__all__ = [
    "Bucket",
    "BudgetLimits",
    "LocalBudget",
    "RedisBudget",
    "RequestBudget",
    "RequestKind",
    "SlidingWindowLog",
    "budget_for",
    "classify",
    "shared_local_budget",
]
