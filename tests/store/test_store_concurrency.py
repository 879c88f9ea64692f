"""Concurrent appends never fork the audit chain: threads on one engine, threads with their own
engines (separate connection pools), and separate processes, on both backends."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from orchestrator.store import AuditLogRow, append_audit, create_store_engine, verify_audit

WORKERS = 6
PROCESSES = 4  # each pays Python + SQLAlchemy start-up; four already contend for the lock
APPENDS = 15


def run_threads(work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def start(number: int) -> None:
        barrier.wait()  # all threads start appending at the same moment
        try:
            work(number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(number,)) for number in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def assert_intact_chain(engine: Engine, workers: int) -> None:
    result = verify_audit(engine)
    assert result.failure is None, result.failure
    assert result.entries == workers * APPENDS
    with engine.connect() as connection:
        actors = connection.execute(select(AuditLogRow.actor, AuditLogRow.details)).all()
    # every append landed exactly once
    assert sorted((actor, details["n"]) for actor, details in actors) == sorted(
        (f"worker-{w}", n) for w in range(workers) for n in range(APPENDS)
    )


def test_threads_sharing_an_engine(store_engine: Engine) -> None:
    def work(number: int) -> None:
        for n in range(APPENDS):
            append_audit(store_engine, f"worker-{number}", "test.append", None, {"n": n})

    run_threads(work)
    assert_intact_chain(store_engine, WORKERS)


def test_threads_with_their_own_engines(store_engine: Engine) -> None:
    def work(number: int) -> None:
        engine = create_store_engine(store_engine.url)
        try:
            for n in range(APPENDS):
                append_audit(engine, f"worker-{number}", "test.append", None, {"n": n})
        finally:
            engine.dispose()

    run_threads(work)
    assert_intact_chain(store_engine, WORKERS)


CHILD = """
import sys
from orchestrator.store import append_audit, create_store_engine

url, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = create_store_engine(url)
sys.stdin.readline()  # wait until every process is up, then append at once
for n in range(count):
    append_audit(engine, f"worker-{worker}", "test.append", None, {"n": n})
engine.dispose()
"""


def test_separate_processes(store_engine: Engine) -> None:
    """Several workers on one machine (SQLite) or several machines (PostgreSQL)."""
    url = store_engine.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(worker), str(APPENDS)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(PROCESSES)
    ]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    failures = []
    for process in processes:
        _, err = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(err)
    assert failures == []
    assert_intact_chain(store_engine, PROCESSES)
