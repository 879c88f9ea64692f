"""Benchmark: a sweep of ``scale-10k`` collected by Celery worker processes vs. the local executor.

The same lab (one process of its own, 50 ms on every WinRM round trip, as ``bench/sweep.py``), the
same PostgreSQL store, the same number of hosts in flight; first the local executor (one process,
a bounded thread pool), then ``fleetfix worker`` processes on Redis collecting batches while this
process coordinates (``run_distributed_sweep``: send the batches, wait on ``collected_hosts``, read
back, check, store). Besides hosts/s it splits where the Celery sweep's time goes:

* **publish**: serialising and sending every batch (the coordinator, ``send_task``);
* **dispatch latency**: from a batch's send to its task starting on a worker (broker round trip,
  worker reservation; the median also holds queueing behind other batches, which is not overhead);
* **worker overhead**: a task's run time outside collecting its hosts (reading the ledger,
  resolving credentials, Celery's own bookkeeping), and the ledger writes inside collection;
* **read-back**: reading the ledger's rows back into outcomes (facts validated again) and deleting
  them.

    .venv/bin/python bench/celery_sweep.py                         # scale-10k, 64 hosts in flight
    .venv/bin/python bench/celery_sweep.py --hosts 2000 --in-flight 64 --workers 2 --json

Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (database 12, queues of its own).
Not run in CI. Method and figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lab.estate.manage import LabHandle, start_detached
from orchestrator.cli.demo import graded
from orchestrator.config import load_settings
from orchestrator.inventory import load_inventory
from orchestrator.store import HostStatus, open_store, upgrade
from orchestrator.sweep.distributed import DistributedCollect, distributed_io
from orchestrator.sweep.plan import CollectOptions
from orchestrator.sweep.service import SweepRequest, default_io, run_sweep

if TYPE_CHECKING:
    from bench.sweep import Phases, bench_scenario, proc_cpu_s
else:  # run as a script: the sibling benchmark's helpers, from this folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sweep import Phases, bench_scenario, proc_cpu_s

FLEETFIX = str(Path(sys.executable).with_name("fleetfix"))
ADMIN_URL = os.environ.get(
    "FLEETFIX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SUCCEEDED = re.compile(
    r"Task fleetfix\.sweeps\.collect_batch\[([0-9a-f-]+)\] succeeded in ([0-9.e-]+)s: (\{.*\})"
)


@dataclass
class Result:
    executor: str
    hosts: int
    collected: int
    in_flight: int
    wall_s: float
    collect_s: float
    checks_s: float
    precision: float
    recall: float
    cpu_s: dict[str, float] = field(default_factory=dict)
    celery: dict[str, Any] = field(default_factory=dict)

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / self.collect_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"hosts_per_s": self.hosts_per_s}


class Recorder:
    """The Celery app as DistributedCollect sees it, noting when each batch was sent and its size."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: dict[str, tuple[float, int]] = {}

    def send_task(self, name: str, **options: Any) -> Any:
        size = len(json.dumps(options.get("args")))
        at = time.time()
        result = self.app.send_task(name, **options)
        self.sent[result.id] = (at, size)
        return result


def group_cpu_s(pgid: int) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / os.sysconf(
                    "SC_CLK_TCK"
                )
    return total


def database() -> str:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"fleetfix_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop(url: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def sweep(
    settings: Any, hosts: tuple[Any, ...], options: CollectOptions, io: Any
) -> tuple[Any, Phases, float]:
    phases = Phases()
    started = time.perf_counter()
    with open_store(settings) as store:
        result = run_sweep(store, SweepRequest(hosts, requested_by="bench", options=options), phases.wrap(io))
    return result, phases, time.perf_counter() - started


def local(directory: Path, store_url: str, in_flight: int, lab_pid: int) -> Result:
    settings = load_settings(directory / "fleetfix.toml", data_dir=directory / "data", store_url=store_url)
    hosts = tuple(load_inventory(settings.inventory))
    lab_before, cpu = proc_cpu_s(lab_pid), time.process_time()
    result, phases, wall = sweep(
        settings, hosts, CollectOptions(concurrency=in_flight), default_io(settings, environ={})
    )
    cpu_s = {"coordinator": time.process_time() - cpu, "lab": (proc_cpu_s(lab_pid) or 0) - (lab_before or 0)}
    grade = graded(result, LabHandle(directory).get("/truth")["truth"])
    collect_s, checks_s = phases.wall["collect"], phases.wall["checks"]
    return Result(
        "local",
        len(result.hosts),
        _ok(result),
        in_flight,
        wall,
        collect_s,
        checks_s,
        grade.precision,
        grade.recall,
        cpu_s=cpu_s,
    )


def _ok(result: Any) -> int:
    return sum(1 for record in result.hosts if record.status is HostStatus.OK)


def start_workers(
    count: int, directory: Path, env: dict[str, str], logs: Path
) -> list[subprocess.Popen[bytes]]:
    workers = []
    for number in range(count):
        with (logs / f"worker-{number}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        FLEETFIX,
                        "-c",
                        str(directory / "fleetfix.toml"),
                        "worker",
                        "-c",
                        "1",
                        "-l",
                        "INFO",
                        "-Q",
                        "winrm",
                        "-n",
                        f"bench{number}@%h",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + 120
    for number in range(count):
        path = logs / f"worker-{number}.log"
        while " ready." not in path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {number} did not start: {path.read_text()[-2000:]}")
            time.sleep(0.2)
    return workers


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def celery(
    directory: Path,
    store_url: str,
    broker_url: str,
    in_flight: int,
    count: int,
    batch_size: int,
    lab_pid: int,
) -> Result:
    from tasks.app import make_app  # noqa: PLC0415

    prefix = f"fleetfix-bench-{secrets.token_hex(4)}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLEETFIX_")} | {
        "FLEETFIX_STORE_URL": store_url,
        "FLEETFIX_BROKER_URL": broker_url,
        "FLEETFIX_CELERY__QUEUE_PREFIX": prefix,
        "FLEETFIX_CELERY__BATCH_SIZE": str(batch_size),
    }
    settings = load_settings(
        directory / "fleetfix.toml", data_dir=directory / "data", store_url=store_url, broker_url=broker_url
    )
    settings = settings.model_copy(
        update={
            "celery": settings.celery.model_copy(update={"queue_prefix": prefix, "batch_size": batch_size})
        }
    )
    hosts = tuple(load_inventory(settings.inventory))
    workers = start_workers(count, directory, env, directory.parent)
    try:
        recorder = Recorder(make_app(settings))
        with open_store(settings) as store:
            collect = DistributedCollect(
                store, recorder, batch_size=batch_size, poll_s=0.5, redispatch_after_s=7200
            )
        io = distributed_io(default_io(settings, environ={}), collect)
        lab_before, workers_before = proc_cpu_s(lab_pid), sum(group_cpu_s(p.pid) for p in workers)
        cpu = time.process_time()
        # each batch collects its hosts on a pool of in_flight / workers threads: the same hosts in flight
        options = CollectOptions(concurrency=max(1, in_flight // count))
        result, phases, wall = sweep(settings, hosts, options, io)
        cpu_s = {
            "coordinator": time.process_time() - cpu,
            "workers": sum(group_cpu_s(p.pid) for p in workers) - workers_before,
            "lab": (proc_cpu_s(lab_pid) or 0) - (lab_before or 0),
        }
    finally:
        stop_workers(workers)
        _delete_queues(broker_url, prefix)
    grade = graded(result, LabHandle(directory).get("/truth")["truth"])
    breakdown = _breakdown(recorder, collect, directory.parent, phases.wall["collect"])
    return Result(
        "celery", len(result.hosts), _ok(result), options.concurrency * count, wall, phases.wall["collect"],
        phases.wall["checks"], grade.precision, grade.recall, cpu_s=cpu_s,
        celery={"workers": count, "batch_size": batch_size, **breakdown},
    )  # fmt: skip


def _breakdown(
    recorder: Recorder, collect: DistributedCollect, logs: Path, collect_wall: float
) -> dict[str, Any]:
    tasks: dict[str, tuple[float, dict[str, float]]] = {}
    for log in logs.glob("worker-*.log"):
        for match in SUCCEEDED.finditer(log.read_text(errors="replace")):
            tasks[match.group(1)] = (float(match.group(2)), ast.literal_eval(match.group(3)))
    latencies = [
        done["started_at"] - recorder.sent[task_id][0]
        for task_id, (_, done) in tasks.items()
        if task_id in recorder.sent
    ]
    runtime = sum(run for run, _ in tasks.values())
    collecting = sum(done.get("collect_s", 0.0) for _, done in tasks.values())
    writing = sum(done.get("write_s", 0.0) for _, done in tasks.values())
    return {
        "batches": len(recorder.sent),
        "message_kb_mean": statistics.fmean(size for _, size in recorder.sent.values()) / 1024,
        "publish_s": collect.timings.get("send_s", 0.0),
        "publish_share": collect.timings.get("send_s", 0.0) / collect_wall,
        "dispatch_latency_min_s": min(latencies),
        "dispatch_latency_median_s": statistics.median(latencies),
        "worker_runtime_s": runtime,
        "worker_overhead_share": (runtime - collecting) / runtime,
        "ledger_write_share": writing / runtime,
        "wait_s": collect.timings.get("wait_s", 0.0),
        "read_back_s": collect.timings.get("read_s", 0.0),
        "read_back_share": collect.timings.get("read_s", 0.0) / collect_wall,
    }


def _delete_queues(broker_url: str, prefix: str) -> None:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(broker_url)
    keys = [*client.scan_iter(f"{prefix}*"), *client.scan_iter(f"_kombu.binding.{prefix}*")]
    if keys:
        client.delete(*keys)
    client.close()


def report(result: Result) -> None:
    cpu = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.cpu_s.items())
    print(
        f"\n{result.executor}: {result.hosts} hosts ({result.collected} collected), "
        f"{result.in_flight} in flight; sweep {result.wall_s:.1f} s, collection {result.collect_s:.1f} s "
        f"= {result.hosts_per_s:.1f} hosts/s, checks {result.checks_s:.1f} s; "
        f"precision {result.precision:.2%} recall {result.recall:.2%}\n  CPU: {cpu}"
    )
    if result.celery:
        c = result.celery
        print(
            f"  {c['batches']} batches of {c['batch_size']} ({c['message_kb_mean']:.1f} KB each) "
            f"on {c['workers']} workers\n"
            f"  publish {c['publish_s']:.2f} s ({c['publish_share']:.2%} of collection); dispatch latency "
            f"min {c['dispatch_latency_min_s'] * 1000:.0f} ms, "
            f"median {c['dispatch_latency_median_s']:.1f} s (queueing)\n"
            f"  worker overhead {c['worker_overhead_share']:.2%} of task time, "
            f"ledger writes {c['ledger_write_share']:.2%}; "
            f"read-back {c['read_back_s']:.2f} s ({c['read_back_share']:.2%} of collection)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="scale-10k")
    parser.add_argument("--hosts", type=int, help="number of endpoints (default: the scenario's)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--in-flight", type=int, default=64, help="hosts collected at once, in both runs")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one batch each at a time)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="fleetfix-bench-celery-"))
    store_url = database()
    try:
        scenario = bench_scenario(args.scenario, args.latency_ms, workdir)
        directory = workdir / "lab"
        info = start_detached(str(scenario), directory, hosts=args.hosts)
        print(f"lab {info.scenario} up (pid {info.pid})", file=sys.stderr)
        try:
            results = [local(directory, store_url, args.in_flight, info.pid)]
            report(results[-1])
            results.append(
                celery(
                    directory, store_url, args.broker, args.in_flight, args.workers, args.batch_size, info.pid
                )
            )
            report(results[-1])
        finally:
            LabHandle(directory).down()
        if args.json:
            print(json.dumps([result.to_dict() for result in results], indent=2))
    finally:
        drop(store_url)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
