"""Intune's throttling as the service applies it: per-app and per-tenant budgets per window.

Each bucket (``devices``, ``configuration``) has four counters: writes and any requests, per app
and per tenant (all apps together).  A request must fit in every counter that applies to it; a
write counts toward both its write and its any counters.  Requests that were refused do not count.

Windows are fixed and aligned to the tenant's start, a model the documentation does not contradict
("N requests per 20 seconds"); ``Retry-After`` says when the current window ends.  fleetfix's own
budget uses sliding windows, which are stricter, so a client under its budget is under this one.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from lab.graph.config import BucketLimits, Limits

BUCKETS = ("devices", "configuration")


@dataclass(frozen=True)
class Verdict:
    """``retry_after`` is None when the request may proceed, else seconds until it could."""

    retry_after: float | None
    counter: str | None = None


class Throttle:
    """Fixed-window counters; ``now`` is a monotonic clock in seconds."""

    def __init__(self, limits: Limits, window_s: float, start: float) -> None:
        self.limits = limits
        self.window_s = window_s
        self.start = start
        self._counts: dict[tuple[str, ...], tuple[int, int]] = {}  # key -> (window index, count)
        self.refused: collections.Counter[str] = collections.Counter()

    def admit(self, app_id: str, bucket: str | None, write: bool, now: float) -> Verdict:
        """Count the request if it fits everywhere it must; otherwise say how long to wait."""
        if not self.limits.enabled or bucket is None:
            return Verdict(None)
        window = math.floor((now - self.start) / self.window_s)
        keys = self._keys(app_id, bucket, write)
        for key, limit in keys:
            index, count = self._counts.get(key, (window, 0))
            if index == window and count >= limit:
                self.refused[bucket] += 1
                wait = self.start + (window + 1) * self.window_s - now
                return Verdict(retry_after=max(wait, 0.001), counter="/".join(key))
        for key, _ in keys:
            index, count = self._counts.get(key, (window, 0))
            self._counts[key] = (window, count + 1 if index == window else 1)
        return Verdict(None)

    def _keys(self, app_id: str, bucket: str, write: bool) -> list[tuple[tuple[str, ...], int]]:
        limits: BucketLimits = getattr(self.limits, bucket)
        keys = [
            ((bucket, "any", "app", app_id), limits.any_per_app),
            ((bucket, "any", "tenant"), limits.any_per_tenant),
        ]
        if write:
            keys += [
                ((bucket, "write", "app", app_id), limits.write_per_app),
                ((bucket, "write", "tenant"), limits.write_per_tenant),
            ]
        return keys


def bucket_of(path: str) -> str | None:
    """The Intune bucket of a Graph path (without version), or None for paths outside Intune."""
    if path.startswith("/deviceManagement/managedDevices"):
        return "devices"
    if path.startswith("/deviceManagement/deviceConfigurations"):
        return "configuration"
    return None


def retry_after_header(seconds: float, scaled: bool) -> str:
    """Graph sends whole seconds; a time-scaled lab sends decimals, or scaled waits would round to 1 s."""
    if scaled:
        return f"{seconds:.3f}"
    return str(max(1, math.ceil(seconds)))


__all__ = ["BUCKETS", "Throttle", "Verdict", "bucket_of", "retry_after_header"]
