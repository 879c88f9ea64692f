"""Starting, finding and stopping a lab from outside it: what ``fleetfix lab`` calls.

* :func:`start_detached` runs ``python -m lab estate ... --detached`` in a session of its own (it
  survives the shell), logs to ``DIR/lab.log`` and returns once the ready line arrived;
* :func:`run_foreground` serves in this process until Ctrl+C or SIGTERM;
* :class:`LabHandle` reads ``DIR/lab.json`` and talks to the running lab: status, truth, changes,
  and :meth:`LabHandle.down` (SIGTERM, then wait).

Errors are fleetfix's own (:mod:`orchestrator.errors`), so the CLI maps them to exit codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.estate.control import ControlClient, ControlError
from lab.estate.runtime import READY_PREFIX, EstateInfo, EstateServer
from lab.estate.workspace import read_state, remove_state
from lab.runner import child_env, serve_until_stopped
from lab.scenarios import load_scenario, resolve
from orchestrator.errors import FleetfixError, InputError, UnreachableError

LOG_FILE = "lab.log"
DEFAULT_START_TIMEOUT_S = 900.0


class LabStartError(FleetfixError):
    """The lab process did not come up."""

    kind = "lab_start"


def _scenario_argument(name_or_path: str) -> str:
    """A built-in name as is; a file as an absolute path (the child may resolve from elsewhere)."""
    path = resolve(name_or_path)
    return str(path.resolve()) if path.exists() else name_or_path


def _refuse_if_running(directory: Path) -> None:
    handle = LabHandle(directory)
    if handle.running():
        message = f"a lab is already running in {directory} (pid {handle.pid}); stop it: fleetfix lab down"
        raise InputError(message, field="--dir")
    remove_state(directory)  # a stale lab.json from a lab that died


def start_detached(
    scenario: str, directory: Path, *, hosts: int | None = None, timeout_s: float = DEFAULT_START_TIMEOUT_S
) -> EstateInfo:
    """Start the lab as a background process; returns when every listener is up."""
    load_scenario(scenario, hosts=hosts)  # bad input fails here, with file:line, not in the child's log
    directory.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(directory)
    command = [sys.executable, "-m", "lab", "estate", "--scenario", _scenario_argument(scenario)]
    command += ["--dir", str(directory.resolve()), "--detached", "--log-level", "INFO"]
    if hosts is not None:
        command += ["--hosts", str(hosts)]
    with (directory / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
            env=child_env(), start_new_session=True,
        )  # fmt: skip
    line = _ready_line(process, timeout_s)
    if not line.startswith(READY_PREFIX):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise LabStartError(f"the lab did not start (see {directory / LOG_FILE}): {_log_tail(directory)}")
    assert process.stdout is not None
    process.stdout.close()  # the child prints nothing after the ready line
    return EstateInfo.from_dict(json.loads(line[len(READY_PREFIX) :]))


def _ready_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return lines[0] if lines else ""


def _log_tail(directory: Path, lines: int = 5) -> str:
    try:
        text = (directory / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    return " | ".join(text.strip().splitlines()[-lines:]) or "empty log"


def run_foreground(
    scenario: str, directory: Path, *, hosts: int | None, on_ready: Callable[[EstateInfo], None]
) -> None:
    """Serve the lab in this process until Ctrl+C or SIGTERM."""
    loaded = load_scenario(scenario, hosts=hosts)
    directory.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(directory)
    server = EstateServer(loaded, directory.resolve())

    def announce(info: EstateInfo) -> str:
        on_ready(info)
        return ""

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(server, announce, watch_stdin=False))


class LabHandle:
    """A lab directory and, when one runs there, the lab."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = read_state(directory)

    @property
    def pid(self) -> int | None:
        return None if self.state is None else int(self.state["pid"])

    def running(self) -> bool:
        """A lab.json whose process is alive and is a lab serving this directory."""
        pid = self.pid
        # Our own pid in an old lab.json is a restart that reused it (a container's pid 1): not a lab.
        if pid is None or pid == os.getpid():
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return _alive(pid)
        return "lab" in cmdline or "fleetfix" in cmdline

    def require(self) -> dict[str, Any]:
        if self.state is None or not self.running():
            raise InputError(
                f"no lab is running in {self.directory}; start one with fleetfix lab up", field="--dir"
            )
        return self.state

    def client(self) -> ControlClient:
        state = self.require()
        return ControlClient(state["control_url"], state["control_token"])

    def get(self, path: str) -> Any:
        try:
            return self.client().get(path)
        except ControlError as exc:
            raise UnreachableError(str(exc), host="lab") from None

    def down(self, timeout_s: float = 60.0) -> bool:
        """SIGTERM the lab and wait for it to exit; False when none was running."""
        pid = self.pid
        if pid is None or not self.running():
            remove_state(self.directory)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        remove_state(self.directory)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (the lab started by this very process) counts as gone.
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return True
    return "State:\tZ" not in status


__all__ = [
    "DEFAULT_START_TIMEOUT_S",
    "LOG_FILE",
    "LabHandle",
    "LabStartError",
    "run_foreground",
    "start_detached",
]
