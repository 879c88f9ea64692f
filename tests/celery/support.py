"""Real brokers and real worker processes for the Celery tests.

* Redis: the machine's server on 127.0.0.1:6379, database ``FLEETFIX_TEST_CELERY_REDIS_DB`` (12 by
  default), queues named ``fleetfix-test-<random>`` per test session, so parallel sessions (and
  other test suites on the same server) never share a queue. Nothing is flushed: only this
  session's queue keys are deleted at the end.
* A private ``redis-server`` on a free loopback port, for the broker-restart test (the shared
  server must never be restarted).
* RabbitMQ on 127.0.0.1:5672 (guest/guest), its queues deleted at the end.
* Workers: ``fleetfix worker`` subprocesses in sessions of their own, so that SIGKILL of the
  process group is a power loss (main process and pool children at once).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.clirun import FLEETFIX

REDIS_DB = int(os.environ.get("FLEETFIX_TEST_CELERY_REDIS_DB", "12"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
AMQP_URL = os.environ.get("FLEETFIX_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

# Short timings so that redelivery, lease expiry and re-sending happen within seconds (production
# values are minutes to hours; see docs/celery.md).
FAST: dict[str, str] = {
    "FLEETFIX_CELERY__VISIBILITY_TIMEOUT_S": "6",
    "FLEETFIX_CELERY__UNACKED_RESTORE_INTERVAL_S": "1",
    "FLEETFIX_CELERY__LEASE_TTL_S": "4",
    "FLEETFIX_CELERY__POLL_S": "0.2",
    "FLEETFIX_CELERY__REDISPATCH_AFTER_S": "8",
    "FLEETFIX_CELERY__RETRY_BACKOFF_MAX_S": "2",
}


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def session_prefix() -> str:
    return f"fleetfix-test-{secrets.token_hex(4)}"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Worker:
    """One ``fleetfix worker`` process (and its pool children) in a session of its own."""

    def __init__(
        self, name: str, config: Path, env: dict[str, str], log_dir: Path, *, concurrency: int = 1
    ) -> None:
        self.name = name
        self.config = config
        self.env = env
        self.log = log_dir / f"worker-{name}.log"
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [FLEETFIX, "-c", str(self.config), "worker", "-c", str(self.concurrency), "-l", "INFO",
                 "-n", f"{self.name}@%h"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 60) -> Worker:
        assert wait_until(lambda: " ready." in self.log_text() or not self.alive, timeout), self.log_text()
        assert self.alive, self.log_text()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The main process and its pool children (the process group)."""
        return _group_members(self.pid) if self.alive else []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """Power loss: SIGKILL to the whole group, no chance to requeue or acknowledge."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):  # a child left behind by a cold shutdown
            os.killpg(self.pid, signal.SIGKILL)


@contextlib.contextmanager
def workers(*started: Worker) -> Iterator[tuple[Worker, ...]]:
    try:
        for worker in started:
            worker.start()
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


def delete_redis_queues(url: str, prefix: str) -> None:
    """Delete this session's queues (and their kombu bindings) from a Redis database."""
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    try:
        keys = [*client.scan_iter(f"{prefix}*"), *client.scan_iter(f"_kombu.binding.{prefix}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def delete_amqp_queues(url: str, prefix: str) -> None:
    from kombu.connection import Connection  # noqa: PLC0415

    with Connection(url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        channel = connection.channel()
        for kind in ("winrm", "graph", "control"):
            with contextlib.suppress(Exception):
                channel.queue_delete(f"{prefix}.{kind}")
            with contextlib.suppress(Exception):
                channel.exchange_delete(f"{prefix}.{kind}")


class PrivateRedis:
    """A throwaway ``redis-server`` on a free loopback port: no persistence, restartable."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the broker-restart test"
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        assert wait_until(self._answers, 20), "private redis-server did not start"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def lab_env(
    base: dict[str, str], *, store_url: str, broker_url: str, prefix: str, **extra: Any
) -> dict[str, str]:
    """The environment of CLI and workers: the shared store and broker, this session's queues."""
    return {
        **base,
        "FLEETFIX_STORE_URL": store_url,
        "FLEETFIX_BROKER_URL": broker_url,
        "FLEETFIX_CELERY__QUEUE_PREFIX": prefix,
        **FAST,
        **{key: str(value) for key, value in extra.items()},
    }


__all__ = [
    "AMQP_URL",
    "FAST",
    "REDIS_DB",
    "REDIS_URL",
    "PrivateRedis",
    "Worker",
    "delete_amqp_queues",
    "delete_redis_queues",
    "free_port",
    "lab_env",
    "scenario_file",
    "session_prefix",
    "store_rows",
    "wait_until",
    "workers",
]


def scenario_file(directory: Path, name: str, extra: str) -> Path:
    """``seed-article`` with ``extra`` YAML appended (transport faults: slow or hanging hosts)."""
    source = Path(__file__).resolve().parents[2] / "lab" / "scenarios" / "seed-article.yaml"
    text = source.read_text().replace("name: seed-article", f"name: {name}", 1) + extra
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def store_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` on the shared PostgreSQL store."""
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()
