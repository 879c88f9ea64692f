"""A real ``fleetfix worker`` process for the schedule's tests, and the Redis keys it leaves.

The worker runs in a session of its own (so stopping it stops its pool children too) and logs to a
file the test reads. The shared Redis is never flushed: only the keys of the test's own queues
(``PREFIX.*`` and their kombu bindings) are deleted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.clirun import FLEETFIX


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Worker:
    """``fleetfix -c CONFIG worker -c 1`` with its log in ``log_dir/worker-NAME.log``."""

    def __init__(self, name: str, config: Path, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.config = config
        self.env = env
        self.log = log_dir / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    FLEETFIX,
                    "-c",
                    str(self.config),
                    "worker",
                    "-c",
                    "1",
                    "-l",
                    "INFO",
                    "-n",
                    f"{self.name}@%h",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60) -> Worker:
        assert wait_until(lambda: " ready." in self.log_text() or not self.alive, timeout), self.log_text()
        assert self.alive, self.log_text()
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        pid = self.process.pid
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # a pool child left behind by a cold shutdown
            os.killpg(pid, signal.SIGKILL)


def delete_redis_queues(url: str, prefix: str) -> None:
    """Delete the keys of this test's queues (and their kombu bindings) from a Redis database."""
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    try:
        keys = [*client.scan_iter(f"{prefix}*"), *client.scan_iter(f"_kombu.binding.{prefix}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()
