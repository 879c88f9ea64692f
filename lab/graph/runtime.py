"""Starting a simulated tenant: in a thread of this process, or as a child process.

Both give a :class:`~lab.graph.server.TenantInfo` and a :class:`TenantControl`::

    with TenantLab(config) as tenant:            # event loop in a daemon thread
        tenant.info.authority, tenant.info.base_url, tenant.info.ca_bundle
        tenant.state.writes                      # direct access to the tenant state
        tenant.control.set_faults(Faults(...))

    with TenantProcess(config) as tenant:        # `python -m lab tenant`, its own GIL
        tenant.control.state()["writes"]

Use :class:`TenantProcess` when the client side is heavy (a benchmark, many threads), so that
client and tenant do not share one interpreter lock.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from lab.graph.config import Device, Faults, TenantConfig
from lab.graph.devices import DeviceSide
from lab.graph.server import TenantInfo, TenantServer
from lab.graph.state import TenantState
from lab.runner import ChildProcess, ThreadRunner, WorkDir

T = TypeVar("T")
READY_PREFIX = "FLEETFIX-TENANT-READY "


class TenantControl:
    """The control API (``/_lab/…``) of a running tenant, over HTTPS."""

    def __init__(self, info: TenantInfo) -> None:
        context = ssl.create_default_context(cafile=str(info.ca_bundle))
        self._http = httpx.Client(base_url=info.base_url, verify=context, timeout=30.0)

    def state(self) -> dict[str, Any]:
        """Writes by ``(kind, id)``, device events, pending syncs, request and throttle counts."""
        return self._call("GET", "/_lab/state")

    def writes(self) -> dict[tuple[str, str], int]:
        return {(w["kind"], w["id"]): w["count"] for w in self.state()["writes"]}

    def device(self, device_id: str) -> dict[str, Any]:
        """A device's OS build and delivered VPN profiles."""
        return self._call("GET", f"/_lab/devices/{device_id}")

    def set_faults(self, faults: Faults) -> None:
        self._call("PUT", "/_lab/faults", content=faults.model_dump_json())

    def revoke_tokens(self) -> None:
        """Every token issued so far answers 401 from now on (expiry mid-run)."""
        self._call("POST", "/_lab/revoke-tokens")

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, content: str | None = None) -> dict[str, Any]:
        response = self._http.request(method, path, content=content)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


class TenantLab:
    """A tenant served by an event loop in a daemon thread of the calling process."""

    def __init__(
        self,
        config: TenantConfig,
        *,
        directory: Path | None = None,
        side_factory: Callable[[Device], DeviceSide] | None = None,
    ) -> None:
        self.config = config
        self._dir = WorkDir(directory, prefix="fleetfix-tenant-")
        self._server = TenantServer(config, self._dir.path, side_factory)
        self._runner = ThreadRunner(self._server, name="fleetfix-tenant", start_timeout_s=60.0)
        self._control: TenantControl | None = None

    @property
    def info(self) -> TenantInfo:
        return self._runner.info

    @property
    def control(self) -> TenantControl:
        if self._control is None:
            raise RuntimeError("the tenant is not running")
        return self._control

    @property
    def state(self) -> TenantState:
        """The live tenant state (read it; change it through :meth:`call` so the loop is not raced)."""
        return self._server.state

    def call(self, func: Callable[[], T]) -> T:
        """Run ``func`` on the tenant's event loop and return its result."""
        return self._runner.loop.run(func, 30.0)

    def start(self) -> TenantInfo:
        if self._runner.started:
            return self._runner.info
        info = self._runner.start()
        self._control = TenantControl(info)
        return info

    def stop(self) -> None:
        if not self._runner.loop.running:
            return
        if self._control is not None:
            self._control.close()
        self._runner.stop()
        self._control = None
        self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class TenantProcess:
    """A tenant served by ``python -m lab tenant`` in a child process (its own interpreter)."""

    def __init__(self, config: TenantConfig, *, directory: Path | None = None, start_timeout_s: float = 60.0):
        self.config = config
        self._dir = WorkDir(directory, prefix="fleetfix-tenant-")
        self._config_path = self._dir.path / "tenant.json"
        args = ["tenant", "--config", str(self._config_path), "--directory", str(self._dir.path)]
        self._child = ChildProcess(args, READY_PREFIX, start_timeout_s=start_timeout_s)
        self._info: TenantInfo | None = None
        self._control: TenantControl | None = None

    @property
    def info(self) -> TenantInfo:
        if self._info is None:
            raise RuntimeError("the tenant is not running")
        return self._info

    @property
    def control(self) -> TenantControl:
        if self._control is None:
            raise RuntimeError("the tenant is not running")
        return self._control

    def start(self) -> TenantInfo:
        if self._info is not None:
            return self._info
        self._config_path.write_text(self.config.model_dump_json(), encoding="utf-8")
        try:
            self._info = TenantInfo.from_dict(self._child.start())
        except BaseException:
            self._dir.cleanup()
            raise
        self._control = TenantControl(self._info)
        return self._info

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
        self._child.stop()
        self._info = self._control = None
        self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = ["READY_PREFIX", "TenantControl", "TenantLab", "TenantProcess"]
