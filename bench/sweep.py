"""Benchmark: a whole ``fleetfix sweep`` of the ``scale-10k`` lab scenario with 50 ms of latency.

The lab runs in a process of its own (``fleetfix lab up --detach``'s way, :mod:`lab.estate.manage`),
so the CPU it spends simulating ten thousand Windows hosts is measured apart from fleetfix's.  The
sweep is the product's own (:func:`orchestrator.sweep.service.run_sweep` with the real edges); each
edge is wrapped in a timer, so the figures split wall and CPU time into collection (WinRM), tenant
(Graph), CRLs (HTTP), checks and the rest (planning, the store).  See ``bench/README.md``.

    .venv/bin/python bench/sweep.py                       # scale-10k, 50 ms, 32 hosts at once
    .venv/bin/python bench/sweep.py --hosts 1000 --concurrency 32 64 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lab.estate.manage import LabHandle, start_detached
from lab.scenarios import resolve
from orchestrator.cli.demo import graded, scenario_settings
from orchestrator.inventory import load_inventory
from orchestrator.store import HostStatus, open_store
from orchestrator.sweep.plan import CollectOptions
from orchestrator.sweep.service import SweepIO, SweepRequest, default_io, run_sweep

T = TypeVar("T")
PHASES = ("collect", "tenant", "crls", "checks")


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def bench_scenario(base: str, latency_ms: float, directory: Path) -> Path:
    """``base`` with every host's WinRM delayed by ``latency_ms`` (the scenario's own latency mix
    replaced; its refused listeners kept)."""
    data = yaml.safe_load(resolve(base).read_text(encoding="utf-8"))
    kept = [entry for entry in data.get("transport_faults", []) if "latency" not in entry["faults"]]
    data["name"] = f"{data['name']}-{int(latency_ms)}ms"
    data["transport_faults"] = [{"rate": 1.0, "faults": {"latency": {"fixed_ms": latency_ms}}}, *kept]
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Phases:
    """Wall and CPU seconds per sweep edge (this process's CPU, all threads)."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, func: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any) -> T:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return func(*args)
            finally:
                self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
                self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu

        return wrapper

    def wrap(self, io: SweepIO) -> SweepIO:
        return replace(io, **{name: self.timed(name, getattr(io, name)) for name in PHASES})


@dataclass(frozen=True)
class Outcome:
    scenario: str
    hosts: int
    concurrency: int
    collected: int
    lab_start_s: float
    wall_s: float
    cpu_s: float
    lab_cpu_s: float | None
    phase_wall_s: dict[str, float]
    phase_cpu_s: dict[str, float]
    findings: int
    precision: float
    recall: float

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / self.phase_wall_s["collect"]

    @property
    def cpu_ms_per_host(self) -> float:
        return 1000 * self.cpu_s / self.hosts

    @property
    def lab_cpu_ms_per_host(self) -> float | None:
        return None if self.lab_cpu_s is None else 1000 * self.lab_cpu_s / self.hosts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "hosts_per_s": self.hosts_per_s,
            "cpu_ms_per_host": self.cpu_ms_per_host,
            "lab_cpu_ms_per_host": self.lab_cpu_ms_per_host,
        }


def sweep_once(
    directory: Path, concurrency: int, lab_pid: int
) -> tuple[Any, Phases, float, float, float | None]:
    settings = scenario_settings(directory)
    hosts = tuple(load_inventory(settings.inventory))
    request = SweepRequest(hosts, requested_by="bench", options=CollectOptions(concurrency=concurrency))
    phases = Phases()
    io = phases.wrap(default_io(settings, environ={}))
    lab_before, cpu, wall = proc_cpu_s(lab_pid), time.process_time(), time.perf_counter()
    with open_store(settings) as store:
        result = run_sweep(store, request, io)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lab_after = proc_cpu_s(lab_pid)
    lab_cpu = None if lab_before is None or lab_after is None else lab_after - lab_before
    return result, phases, wall, cpu, lab_cpu


def run(base: str, hosts: int | None, latency_ms: float, concurrencies: Sequence[int]) -> list[Outcome]:
    workdir = Path(tempfile.mkdtemp(prefix="fleetfix-bench-sweep-"))
    outcomes = []
    try:
        scenario = bench_scenario(base, latency_ms, workdir)
        directory = workdir / "lab"
        started = time.perf_counter()
        info = start_detached(str(scenario), directory, hosts=hosts)
        lab_start = time.perf_counter() - started
        print(f"lab {info.scenario} up in {lab_start:.0f} s (pid {info.pid})", file=sys.stderr)
        try:
            for concurrency in concurrencies:
                result, phases, wall, cpu, lab_cpu = sweep_once(directory, concurrency, info.pid)
                truth = LabHandle(directory).get("/truth")["truth"]
                grade = graded(result, truth)
                outcome = Outcome(
                    scenario=info.scenario,
                    hosts=len(result.hosts),
                    concurrency=concurrency,
                    collected=sum(1 for record in result.hosts if record.status is HostStatus.OK),
                    lab_start_s=lab_start,
                    wall_s=wall,
                    cpu_s=cpu,
                    lab_cpu_s=lab_cpu,
                    phase_wall_s=phases.wall,
                    phase_cpu_s=phases.cpu,
                    findings=len(result.findings),
                    precision=grade.precision,
                    recall=grade.recall,
                )
                report(outcome)
                outcomes.append(outcome)
        finally:
            LabHandle(directory).down()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return outcomes


def report(o: Outcome) -> None:
    rest_wall = o.wall_s - sum(o.phase_wall_s.values())
    rest_cpu = o.cpu_s - sum(o.phase_cpu_s.values())
    lab = o.lab_cpu_ms_per_host
    print(
        f"\n{o.scenario}: {o.hosts} hosts, {o.concurrency} at a time, {o.collected} collected, "
        f"{o.findings} findings (precision {o.precision:.2%}, recall {o.recall:.2%})\n"
        f"  sweep wall {o.wall_s:.1f} s, collection {o.hosts_per_s:.1f} hosts/s\n"
        f"  fleetfix CPU {o.cpu_s:.1f} s = {o.cpu_ms_per_host:.1f} ms/host; "
        f"lab CPU {'n/a' if lab is None else f'{lab:.1f} ms/host'}"
    )
    for name in PHASES:
        print(
            f"  {name:<8} wall {o.phase_wall_s.get(name, 0):8.2f} s   CPU {o.phase_cpu_s.get(name, 0):8.2f} s"
        )
    print(f"  {'rest':<8} wall {rest_wall:8.2f} s   CPU {rest_cpu:8.2f} s  (plan, credentials, store, diff)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="scale-10k", help="built-in scenario or file to start from")
    parser.add_argument("--hosts", type=int, help="number of endpoints (default: the scenario's)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every WinRM round trip")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[32], help="hosts at once (several: one sweep each)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON document at the end"
    )
    args = parser.parse_args(argv)
    outcomes = run(args.scenario, args.hosts, args.latency_ms, args.concurrency)
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))


if __name__ == "__main__":
    main()
