"""SIGKILL a worker in the middle of a wave: the run completes, every target has its outcome, each
change lands on its host exactly once.

Two ``fleetfix worker`` processes (Redis, PostgreSQL) run ``device-cert-reenroll`` on the 7 endpoints
of a ``seed-article`` lab whose endpoints answer slowly (0.4 s per pipeline), in batches of two
targets. At a chosen moment -- the n-th journal claim or application of the run, plus a delay -- the
worker holding a host's lease is killed: the whole process group (a power loss: nothing is
requeued or acknowledged) or only its pool child (Celery's worker-lost path). A replacement worker
starts. Redis hands the unacknowledged batch out again after the (test) visibility timeout, the
coordinator re-sends the batch's untouched targets once the dead worker's lease expires and takes
over the target it was working on (the host work re-reads the host; the journal keeps a step from
being applied twice).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.celery.support import REDIS_URL, Worker, lab_env, scenario_file, store_rows, wait_until, workers
from tests.clirun import Cli
from tests.remediation.support import LabFleet, applied_once, lab_fleet

SLOW_ENDPOINTS = "transport_faults:\n  - {role: endpoint, rate: 1.0, faults: {slow_command_s: 0.4}}\n"
TARGETS = {f"ep-000{n}" for n in range(1, 8)}


@dataclass(frozen=True)
class Moment:
    """When to kill: once the run's journal has ``count`` rows (``applied`` ones when ``applied``),
    ``delay`` seconds later; ``child`` kills only the pool process, else the whole worker."""

    count: int
    applied: bool = False
    delay: float = 0.0
    child: bool = False

    def __str__(self) -> str:
        what = "applied" if self.applied else "claimed"
        return f"{'child' if self.child else 'worker'}-after-{self.count}-{what}+{self.delay:g}s"


DEFAULT_MOMENTS = (Moment(2), Moment(4, applied=True, delay=0.5))
SLOW_MOMENTS = (
    Moment(1),  # the canary, mid-change
    Moment(1, applied=True, delay=0.2),  # the canary, verifying
    Moment(2, applied=True),
    Moment(3, delay=0.3),
    Moment(4),
    Moment(5, delay=0.1),
    Moment(6),
    Moment(3, applied=True, delay=0.8, child=True),
    Moment(2, delay=0.2, child=True),
    Moment(5, applied=True, child=True),
)


def newest_run(store_url: str) -> str | None:
    rows = store_rows(
        store_url, "select id from runs where kind = 'playbook' order by created_at desc limit 1"
    )
    return rows[0][0] if rows else None


def journal_count(store_url: str, run_id: str | None, *, applied: bool) -> int:
    if run_id is None:
        return 0
    state = " and state = 'applied'" if applied else ""
    return int(
        store_rows(store_url, f"select count(*) from action_journal where run_id = '{run_id}'{state}")[0][0]
    )


def lease_holders(store_url: str, run_id: str) -> list[int]:
    rows = store_rows(store_url, f"select holder from host_leases where run_id = '{run_id}'")
    return [int(holder.rsplit(":", 1)[1]) for (holder,) in rows]


def kill(moment: Moment, pair: tuple[Worker, Worker], store_url: str, run_id: str) -> tuple[Worker, bool]:
    """Kill the worker (or its pool child) working on a host now; the first one if none is."""
    holders = lease_holders(store_url, run_id)
    victim = next((worker for worker in pair if set(worker.pids()) & set(holders)), pair[0])
    busy = bool(set(victim.pids()) & set(holders))
    if moment.child:
        child = next((pid for pid in victim.pids() if pid in holders), None)
        child = child or next(pid for pid in victim.pids() if pid != victim.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    else:
        victim.kill()
    return victim, busy


def run_and_kill(
    tmp_path: Path, cli_env: dict[str, str], store_url: str, prefix: str, moment: Moment
) -> None:
    scenario = scenario_file(tmp_path / "scenario", "seed-article-slow", SLOW_ENDPOINTS)
    env = lab_env(
        cli_env, store_url=store_url, broker_url=REDIS_URL, prefix=prefix, FLEETFIX_CELERY__BATCH_SIZE=2
    )
    with lab_fleet(str(scenario), tmp_path / "lab", Cli(tmp_path, env)) as fleet:
        pair = (Worker("a", fleet.config, env, tmp_path), Worker("b", fleet.config, env, tmp_path))
        replacement = Worker("c", fleet.config, env, tmp_path)
        with workers(*pair):
            try:
                fleet.sweep()
                before = newest_run(store_url)
                process = fleet.popen(
                    "run", "device-cert-reenroll", "--yes", "--concurrency", "1", "--output", "json"
                )
                assert wait_until(lambda: newest_run(store_url) not in {None, before}, 60), (
                    "the run never started"
                )
                run_id = newest_run(store_url)
                assert run_id is not None
                reached = wait_until(
                    lambda: journal_count(store_url, run_id, applied=moment.applied) >= moment.count, 90
                )
                assert reached, (
                    f"the run never reached {moment}: {process.stderr.read() if process.stderr else ''}"
                )
                time.sleep(moment.delay)
                assert process.poll() is None, "the run ended before the kill"
                victim, busy = kill(moment, pair, store_url, run_id)
                replacement.start()
                out, err = process.communicate(timeout=300)
            finally:
                replacement.stop()
        check(fleet, store_url, run_id, process.returncode, out, err, victim=victim, busy=busy, moment=moment)


def check(
    fleet: LabFleet,
    store_url: str,
    run_id: str,
    code: int | None,
    out: str,
    err: str,
    *,
    victim: Worker,
    busy: bool,
    moment: Moment,
) -> None:
    logs = f"\n--- run stderr\n{err[-3000:]}\n--- {victim.name}\n{victim.log_text()[-3000:]}"
    assert code == 0, logs
    run = json.loads(out)
    assert run["id"] == run_id
    assert run["status"] == "succeeded", logs
    # no target lost: each has its outcome, and the change held
    assert {target["name"]: target["state"] for target in run["targets"]} == dict.fromkeys(
        TARGETS, "succeeded"
    )
    # each change exactly once on its host, each step journaled once and applied
    assert applied_once(fleet.product_changes()) == [], logs
    changed = {change["host"].casefold() for change in fleet.product_changes()}
    assert changed == TARGETS
    journal = store_rows(
        store_url, f"select host, state from action_journal where run_id = '{run_id}' order by host"
    )
    assert journal == [(host, "applied") for host in sorted(TARGETS)]
    assert store_rows(store_url, f"select count(*) from host_leases where run_id = '{run_id}'") == [(0,)]
    if busy and not moment.child:
        # the killed worker held a host: that target needed a second attempt (a takeover)
        attempts = store_rows(store_url, f"select max(attempts) from run_targets where run_id = '{run_id}'")
        assert attempts[0][0] >= 2, logs


@pytest.mark.parametrize("moment", DEFAULT_MOMENTS, ids=str)
def test_a_worker_killed_mid_wave_loses_nothing_and_changes_nothing_twice(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str, moment: Moment
) -> None:
    run_and_kill(tmp_path, cli_env, shared_store, queue_prefix, moment)


@pytest.mark.slow
@pytest.mark.parametrize("moment", SLOW_MOMENTS, ids=str)
def test_killing_at_ten_more_moments(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str, moment: Moment
) -> None:
    run_and_kill(tmp_path, cli_env, shared_store, queue_prefix, moment)
