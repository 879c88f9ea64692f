"""Starting and stopping a lab: in a background thread of this process, or as a child process.

Both give a :class:`~lab.server.LabInfo` (addresses, ports, CA bundle) and stop cleanly::

    with Lab(numbered_fleet(3)) as lab:           # event loop in a daemon thread
        ep = lab.info.endpoint("EP-0001")
        ...                                       # pypsrp against ep.address / ep.http_port
        lab.state("EP-0001").change_log()

    with LabProcess(fleet) as lab:                # `python -m lab serve`, its own interpreter
        ...

Use :class:`LabProcess` when the client side is heavy (many pypsrp threads): the lab then has
its own GIL.  :class:`Lab` gives direct access to host state and out-of-band controls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from lab.config import FleetConfig
from lab.scripts import ScriptRegistry, default_registry
from lab.server import FleetServer, HostRuntime, LabInfo
from lab.state import Change, HostState

T = TypeVar("T")
READY_PREFIX = "FLEETFIX-LAB-READY "


class _Directory:
    """The lab's working directory: given by the caller (kept) or a temporary one (removed)."""

    def __init__(self, directory: Path | None) -> None:
        self.owned = directory is None
        self.path = Path(tempfile.mkdtemp(prefix="fleetfix-lab-")) if directory is None else directory
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


class Lab:
    """A fleet served by an event loop in a daemon thread of the calling process."""

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        directory: Path | None = None,
        registry: ScriptRegistry | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.fleet = fleet
        self._directory = _Directory(directory)
        self._registry = registry or default_registry()
        self._start_timeout_s = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: FleetServer | None = None
        self._info: LabInfo | None = None

    @property
    def info(self) -> LabInfo:
        if self._info is None:
            raise RuntimeError("the lab is not running")
        return self._info

    def start(self) -> LabInfo:
        if self._info is not None:
            return self._info
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fleetfix-lab", daemon=True)
        self._thread.start()
        self._server = FleetServer(self.fleet, self._directory.path, self._registry)
        try:
            self._info = self._call(self._server.start(), self._start_timeout_s)
        except BaseException:
            self._shutdown_loop()
            raise
        return self._info

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._call(self._server.stop(), 30.0)
        self._shutdown_loop()
        self._info = None
        self._directory.cleanup()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._call(_cancel_all_tasks(), 10.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10.0)
        loop.close()
        self._loop = self._thread = self._server = None

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    # -- inspection and out-of-band control ----------------------------------------------------

    def _runtime(self, host: str) -> HostRuntime:
        if self._server is None:
            raise RuntimeError("the lab is not running")
        return self._server.runtime(host)

    def state(self, host: str) -> HostState:
        """The live state of a host (read it; change it only through handlers)."""
        return self._runtime(host).state

    def changes(self, host: str) -> list[Change]:
        return self.state(host).change_log()

    def stats(self, host: str) -> dict[str, int]:
        """Requests by action and faults by code (``fault:<code>``) the host has answered."""
        return dict(self._runtime(host).service.stats)

    def shell_count(self, host: str) -> int:
        return len(self._runtime(host).service.shells)

    def drop_shells(self, host: str) -> int:
        """Forget a host's shells, as restarting its WinRM service does (``is_alive`` turns False)."""
        service = self._runtime(host).service

        async def drop() -> int:  # on the lab's loop: shells are only touched there
            return service.drop_shells()

        return self._call(drop(), 10.0)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


async def _cancel_all_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # A cancelled accept or handler closes its transport, which only schedules the socket's
    # close; let those callbacks run before the loop stops.
    for _ in range(3):
        await asyncio.sleep(0)


class LabProcess:
    """A fleet served by ``python -m lab serve`` in a child process (its own interpreter and GIL)."""

    def __init__(
        self, fleet: FleetConfig, *, directory: Path | None = None, start_timeout_s: float = 180.0
    ) -> None:
        self.fleet = fleet
        self._directory = _Directory(directory)
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None
        self._info: LabInfo | None = None

    @property
    def info(self) -> LabInfo:
        if self._info is None:
            raise RuntimeError("the lab is not running")
        return self._info

    def start(self) -> LabInfo:
        if self._info is not None:
            return self._info
        config_path = self._directory.path / "fleet.json"
        config_path.write_text(self.fleet.model_dump_json(), encoding="utf-8")
        command = [sys.executable, "-m", "lab", "serve", "--config", str(config_path)]
        command += ["--directory", str(self._directory.path)]
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env()
        )
        try:
            self._info = self._wait_ready(self._process)
        except BaseException:
            self.stop()
            raise
        return self._info

    def _wait_ready(self, process: subprocess.Popen[str]) -> LabInfo:
        assert process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(process.stdout.readline() if process.stdout else "")
        )
        reader.start()
        reader.join(self._start_timeout_s)
        line = result[0] if result else ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"lab process did not start (exit code {process.poll()}): {line.strip()!r}")
        return LabInfo.from_dict(json.loads(line[len(READY_PREFIX) :]))

    def stop(self) -> None:
        process = self._process
        if process is not None:
            if process.stdin is not None:  # closing stdin is the child's signal to stop cleanly
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
        self._info = None
        self._directory.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _child_env() -> dict[str, str]:
    # The child must import this very ``lab`` package, wherever the parent found it.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
