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

from pathlib import Path
from typing import Self

from lab.config import FleetConfig
from lab.runner import ChildProcess, ThreadRunner, WorkDir
from lab.scripts import ScriptRegistry, default_registry
from lab.server import FleetServer, HostRuntime, LabInfo
from lab.state import Change, HostState

READY_PREFIX = "FLEETFIX-LAB-READY "


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
        self._directory = WorkDir(directory)
        self._server = FleetServer(fleet, self._directory.path, registry or default_registry())
        self._runner = ThreadRunner(self._server, name="fleetfix-lab", start_timeout_s=start_timeout_s)

    @property
    def info(self) -> LabInfo:
        return self._runner.info

    def start(self) -> LabInfo:
        return self._runner.start()

    def stop(self) -> None:
        if not self._runner.loop.running:
            return
        self._runner.stop()
        self._directory.cleanup()

    # -- inspection and out-of-band control ----------------------------------------------------

    def _runtime(self, host: str) -> HostRuntime:
        if not self._runner.started:
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
        return self._runner.loop.run(service.drop_shells, 10.0)  # shells are only touched on the loop

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class LabProcess:
    """A fleet served by ``python -m lab serve`` in a child process (its own interpreter and GIL)."""

    def __init__(
        self, fleet: FleetConfig, *, directory: Path | None = None, start_timeout_s: float = 180.0
    ) -> None:
        self.fleet = fleet
        self._directory = WorkDir(directory)
        config_path = self._directory.path / "fleet.json"
        args = ["serve", "--config", str(config_path), "--directory", str(self._directory.path)]
        self._child = ChildProcess(args, READY_PREFIX, start_timeout_s=start_timeout_s)
        self._config_path = config_path
        self._info: LabInfo | None = None

    @property
    def info(self) -> LabInfo:
        if self._info is None:
            raise RuntimeError("the lab is not running")
        return self._info

    def start(self) -> LabInfo:
        if self._info is not None:
            return self._info
        self._config_path.write_text(self.fleet.model_dump_json(), encoding="utf-8")
        try:
            self._info = LabInfo.from_dict(self._child.start())
        except BaseException:
            self._directory.cleanup()
            raise
        return self._info

    def stop(self) -> None:
        self._child.stop()
        self._info = None
        self._directory.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
