"""The simulated state of one Windows host, and the log of every change made to it.

Handlers read and change a :class:`HostState`.  It holds name, FQDN, role and OS build, and grows
by *components* (:mod:`lab.windows`): certificate stores, VPN profiles, RRAS settings, a CA are
small classes a host holds one each of, reached with ``state.find(CertificateStores)``.

Every state-changing handler calls :meth:`HostState.record_change`; ``fleetfix lab changes``
prints that log.
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

    def put(self, value: T) -> T:
        """Install a component built elsewhere (the scenario builder); replaces one of its type."""
        with self._lock:
            self._components[type(value)] = value
        return value

    def find(self, kind: type[T]) -> T | None:
        """The host's component of ``kind``, or ``None`` when it has none (a role without it)."""
        with self._lock:
            value: T | None = self._components.get(kind)
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
