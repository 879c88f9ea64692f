"""Running a lab server: on an event loop in a daemon thread, or in a child process.

Every lab server (the WinRM fleet, the Intune tenant, the whole estate of a scenario) has the same
shape: ``await start()`` returns an *info* value that says where it listens, ``await stop()`` ends
it.  This module runs such a server, whatever it is:

* :class:`ThreadRunner` runs it on an event loop in a daemon thread of this process, so tests can
  reach into its state directly;
* :class:`ChildProcess` starts ``python -m lab <command> ...`` and waits for the one line
  ``<READY-PREFIX>{json}`` the child prints once every listener is up; closing the child's stdin
  (or SIGTERM) stops it;
* :func:`serve_until_stopped` is the child's side: start, print the ready line, serve until stdin
  closes or a signal arrives, stop.

Why a child process at all: pypsrp and httpx clients are CPU-heavy, and a lab sharing their
interpreter lock measures the GIL, not the protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

T = TypeVar("T")
InfoT = TypeVar("InfoT")
InfoT_co = TypeVar("InfoT_co", covariant=True)


class Server(Protocol[InfoT_co]):
    """What a runner runs: started and stopped on the runner's event loop."""

    async def start(self) -> InfoT_co: ...

    async def stop(self) -> None: ...


class WorkDir:
    """A runner's working directory: given by the caller (kept) or a temporary one (removed)."""

    def __init__(self, directory: Path | None, prefix: str = "fleetfix-lab-") -> None:
        self.owned = directory is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if directory is None else directory
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


class LoopThread:
    """An asyncio event loop in a daemon thread; coroutines are submitted with :meth:`call`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the loop and wait for its result (cancelled on timeout)."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError(f"{self._name} is not running")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def run(self, func: Callable[[], T], timeout: float = 30.0) -> T:
        """Run a plain function on the loop (state is only touched there) and return its result."""

        async def wrapper() -> T:
            return func()

        return self.call(wrapper(), timeout)

    def stop(self) -> None:
        """Cancel every task, stop the loop and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self.call(cancel_all_tasks(), 10.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10.0)
        loop.close()
        self._loop = self._thread = None


async def cancel_all_tasks() -> None:
    """Cancel every task of the running loop but the caller, and let their cleanups run."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # A cancelled accept or handler closes its transport, which only schedules the socket's
    # close; let those callbacks run before the loop stops.
    for _ in range(3):
        await asyncio.sleep(0)


class ThreadRunner(Generic[InfoT]):
    """Runs one :class:`Server` on a :class:`LoopThread`; ``start`` returns the server's info."""

    def __init__(self, server: Server[InfoT], *, name: str, start_timeout_s: float = 120.0) -> None:
        self.server = server
        self.loop = LoopThread(name)
        self._start_timeout_s = start_timeout_s
        self._info: InfoT | None = None
        self._name = name

    @property
    def info(self) -> InfoT:
        if self._info is None:
            raise RuntimeError(f"{self._name} is not running")
        return self._info

    @property
    def started(self) -> bool:
        return self._info is not None

    def start(self) -> InfoT:
        if self._info is not None:
            return self._info
        self.loop.start()
        try:
            self._info = self.loop.call(self.server.start(), self._start_timeout_s)
        except BaseException:
            self.loop.stop()
            raise
        return self._info

    def stop(self) -> None:
        if not self.loop.running:
            return
        if self._info is not None:
            with contextlib.suppress(Exception):
                self.loop.call(self.server.stop(), 30.0)
        self.loop.stop()
        self._info = None


class ChildProcess:
    """``python -m lab <args>`` as a child; :meth:`start` returns the JSON of its ready line."""

    def __init__(self, args: Sequence[str], ready_prefix: str, *, start_timeout_s: float = 180.0) -> None:
        self.args = list(args)
        self.ready_prefix = ready_prefix
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> dict[str, Any]:
        command = [sys.executable, "-m", "lab", *self.args]
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
        )
        try:
            return self._wait_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[str]) -> dict[str, Any]:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._start_timeout_s)
        line = lines[0] if lines else ""
        if not line.startswith(self.ready_prefix):
            raise RuntimeError(f"lab process did not start (exit code {process.poll()}): {line.strip()!r}")
        data: dict[str, Any] = json.loads(line[len(self.ready_prefix) :])
        return data

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def child_env() -> dict[str, str]:
    """This environment, with the directory holding this ``lab`` package first on PYTHONPATH."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


async def serve_until_stopped(
    server: Server[T],
    announce: Callable[[T], str],
    *,
    watch_stdin: bool = True,
) -> None:
    """Start ``server``, print ``announce(info)`` as one line, serve until told to stop, then stop.

    Stops on SIGTERM, SIGINT, or (with ``watch_stdin``) the end of stdin: the parent went away or
    closed the pipe to ask for a stop.  A detached lab has no parent pipe and watches signals only.
    """
    info = await server.start()
    line = announce(info)
    if line:  # a foreground lab may have reported readiness itself
        print(line, flush=True)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    if watch_stdin:
        # A daemon thread, not the default executor: asyncio.run() would wait for a blocked read.
        threading.Thread(target=_wait_for_eof, args=(loop, stopped), daemon=True).start()
    try:
        await stopped.wait()
    finally:
        await server.stop()


def _wait_for_eof(loop: asyncio.AbstractEventLoop, stopped: asyncio.Event) -> None:
    sys.stdin.read()
    with contextlib.suppress(RuntimeError):  # the loop may already be closed
        loop.call_soon_threadsafe(stopped.set)


def ready_line(prefix: str, data: dict[str, Any]) -> str:
    return prefix + json.dumps(data)


__all__ = [
    "ChildProcess",
    "LoopThread",
    "Server",
    "ThreadRunner",
    "WorkDir",
    "cancel_all_tasks",
    "child_env",
    "ready_line",
    "serve_until_stopped",
]
