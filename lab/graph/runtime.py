"""Starting a simulated tenant: in a thread of this process, or as a child process.

Both give a :class:`~lab.graph.server.TenantInfo` and a :class:`TenantControl`::

    with TenantLab(config) as tenant:            # event loop in a daemon thread
        tenant.info.authority, tenant.info.base_url, tenant.info.ca_bundle
        tenant.state.writes                      # direct access to the tenant state
        tenant.control.set_faults(Faults(...))

    with TenantProcess(config) as tenant:        # `python -m lab.graph serve`, its own GIL
        tenant.control.state()["writes"]

Use :class:`TenantProcess` when the client side is heavy (a benchmark, many threads), so that
client and tenant do not share one interpreter lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from lab.graph.config import Device, Faults, TenantConfig
from lab.graph.devices import DeviceSide
from lab.graph.server import TenantInfo, TenantServer
from lab.graph.state import TenantState

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


class _WorkDir:
    """The tenant's directory (CA bundle, server key): given and kept, or temporary and removed."""

    def __init__(self, directory: Path | None) -> None:
        self.owned = directory is None
        self.path = Path(tempfile.mkdtemp(prefix="fleetfix-tenant-")) if directory is None else directory
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


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
        self._dir = _WorkDir(directory)
        self._server = TenantServer(config, self._dir.path, side_factory)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
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

    @property
    def state(self) -> TenantState:
        """The live tenant state (read it; change it through :meth:`call` so the loop is not raced)."""
        return self._server.state

    def call(self, func: Callable[[], T]) -> T:
        """Run ``func`` on the tenant's event loop and return its result."""

        async def run() -> T:
            return func()

        return self._run(run(), 30.0)

    def start(self) -> TenantInfo:
        if self._info is not None:
            return self._info
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleetfix-tenant", daemon=True)
        self._thread.start()
        self._info = self._run(self._server.start(), 60.0)
        self._control = TenantControl(self._info)
        return self._info

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._control is not None:
            self._control.close()
        with contextlib.suppress(Exception):
            self._run(self._server.stop(), 30.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        self._loop.close()
        self._loop = self._thread = None
        self._info = self._control = None
        self._dir.cleanup()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None, "the tenant is not running"
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class TenantProcess:
    """A tenant served by ``python -m lab.graph serve`` in a child process (its own interpreter)."""

    def __init__(self, config: TenantConfig, *, directory: Path | None = None, start_timeout_s: float = 60.0):
        self.config = config
        self._dir = _WorkDir(directory)
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None
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
        config_path = self._dir.path / "tenant.json"
        config_path.write_text(self.config.model_dump_json(), encoding="utf-8")
        command = [sys.executable, "-m", "lab.graph", "serve", "--config", str(config_path)]
        command += ["--directory", str(self._dir.path)]
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env()
        )
        try:
            self._info = self._wait_ready(self._process)
        except BaseException:
            self.stop()
            raise
        self._control = TenantControl(self._info)
        return self._info

    def _wait_ready(self, process: subprocess.Popen[str]) -> TenantInfo:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._start_timeout_s)
        line = lines[0] if lines else ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"tenant process did not start (exit code {process.poll()}): {line.strip()!r}")
        return TenantInfo.from_dict(json.loads(line[len(READY_PREFIX) :]))

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
        process = self._process
        if process is not None:
            if process.stdin is not None:  # closing stdin asks the child to stop
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._process = None
        self._info = self._control = None
        self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _child_env() -> dict[str, str]:
    # The child must import this very ``lab`` package, wherever the parent found it.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


__all__ = ["READY_PREFIX", "TenantControl", "TenantLab", "TenantProcess"]
