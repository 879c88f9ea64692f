"""The simulated state of one Windows host, and the log of every change made to it.

Handlers read and change a :class:`HostState`.  It holds the few facts this issue needs (name,
FQDN, role, OS build) and grows by *components*: a later issue adds certificate stores, VPN
profiles or RRAS settings as small classes and reaches them with ``state.component(VpnProfiles)``,
without touching this module.

Every state-changing handler calls :meth:`HostState.record_change`; ``lab changes`` (a later
issue) prints that log, and scenario scoring compares it with ground truth.
"""

from __future__ import annotations

import datetime
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lab.config import HostConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One state-changing call: which script changed what, from which value to which."""

    seq: int
    at: datetime.datetime
    host: str
    script_id: str
    what: str
    before: Any
    after: Any


@dataclass
class HostState:
    """What a simulated host knows about itself.  Mutated only on the lab's event loop."""

    name: str
    fqdn: str
    role: str
    os_caption: str
    os_build: int
    os_ubr: int
    ps_version: str
    changes: list[Change] = field(default_factory=list)
    _components: dict[type[Any], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def from_config(cls, host: HostConfig) -> HostState:
        return cls(
            name=host.name,
            fqdn=host.fqdn,
            role=host.role,
            os_caption=host.os_caption,
            os_build=host.os_build,
            os_ubr=host.os_ubr,
            ps_version=host.ps_version,
        )

    def component(self, kind: type[T], factory: Callable[[], T] | None = None) -> T:
        """The host's instance of a state component, created on first use (``kind()`` by default)."""
        with self._lock:
            if kind not in self._components:
                self._components[kind] = (factory or kind)()
            value: T = self._components[kind]
            return value

    def record_change(self, script_id: str, what: str, before: Any, after: Any) -> Change:
        """Append to the change log; every handler that changes state must call this."""
        change = Change(
            seq=next(self._seq),
            at=datetime.datetime.now(datetime.UTC),
            host=self.name,
            script_id=script_id,
            what=what,
            before=before,
            after=after,
        )
        with self._lock:
            self.changes.append(change)
        return change

    def change_log(self) -> list[Change]:
        """A snapshot of the change log, safe to read from another thread."""
        with self._lock:
            return list(self.changes)
