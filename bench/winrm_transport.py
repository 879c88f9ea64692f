"""Benchmark: collecting a multi-probe fact set from N lab hosts, fleetfix's transport vs. the usual way.

Both sides run the same probes with the same values against the same simulated fleet, 32 hosts at
a time, with the real pypsrp client over real sockets:

* ``fleetfix``: one :class:`WinRMSession` per host -- one connection, one login, one runspace
  pool -- and every probe of the fact set on that pool.
* ``per-script``: what an admin scripts today: a new session per script, as
  ``pypsrp.client.Client.execute_ps`` (and ``Invoke-Command -ComputerName``) does -- new
  connection and login, open a runspace pool, run one script, close -- for every probe of every
  host.  The throttle is 32 hosts at a time, ``Invoke-Command``'s default ``-ThrottleLimit``.

The lab runs in its own process (:class:`lab.LabProcess`), so server work does not share this
process's GIL; the CPU figures are this (client) process's only.  See ``bench/README.md``.

    .venv/bin/python bench/winrm_transport.py --hosts 100 1000 --latency-ms 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from lab import FleetConfig, HostConfig, LabInfo, LabProcess, Latency, numbered_fleet
from lab.config import LAB_PASSWORD, LAB_USERNAME, FaultSpec
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.inventory.models import Host
from orchestrator.scripts import DIAG_ECHO, HOST_INFO, Invocation
from orchestrator.transport.winrm import TransportPolicy, WinRMSession

THROTTLE = 32  # Invoke-Command's default -ThrottleLimit
CREDENTIAL = Credential(LAB_USERNAME, Secret(LAB_PASSWORD))
# The fact set: host.info plus four diag.echo calls standing in for the fact probes of the next
# issue.  The lab answers each in microseconds, so what is measured is the transport.
FACT_SET: tuple[Invocation[Any], ...] = (
    HOST_INFO.bind(),
    *(DIAG_ECHO.bind(Value=f"fact {index}: 'quoted'; $(not run)") for index in range(4)),
)


@dataclass(frozen=True)
class Outcome:
    mode: str
    hosts: int
    ok: int
    wall_s: float
    cpu_s: float
    lab_cpu_s: float | None
    host_p50_s: float
    host_p95_s: float

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / self.wall_s

    @property
    def cpu_ms_per_host(self) -> float:
        return 1000 * self.cpu_s / self.hosts

    @property
    def lab_cpu_ms_per_host(self) -> float | None:
        return None if self.lab_cpu_s is None else 1000 * self.lab_cpu_s / self.hosts


def child_cpu_s() -> float | None:
    """CPU seconds used so far by this process's children (the lab), from /proc; None elsewhere."""
    try:
        pids = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        total = 0.0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return None
    return total


def fleet(count: int, latency_ms: float, auth: str, tls: bool) -> FleetConfig:
    listener = {"https_port": 0, "http_port": None} if tls else {"http_port": 0}
    template = HostConfig(name="T", faults=FaultSpec(latency=Latency(fixed_ms=latency_ms)), **listener)
    return numbered_fleet(count, template=template, seed=f"bench-{auth}")


def inventory_hosts(info: LabInfo, auth: str, tls: bool) -> list[Host]:
    hosts = []
    for name, endpoint in sorted(info.endpoints.items()):
        winrm = {
            "transport": "https" if tls else "http",
            "port": endpoint.https_port if tls else endpoint.http_port,
            "auth": auth,
            "ca_bundle": str(info.ca_bundle),
        }
        hosts.append(
            Host.model_validate(
                {
                    "name": name,
                    "role": "endpoint",
                    "address": endpoint.address,
                    "winrm": winrm,
                    "credential": "vault:x",
                }
            )
        )
    return hosts


def collect_fleetfix(host: Host) -> int:
    """Every probe of the fact set on one pool; returns how many validated."""
    with WinRMSession(host, CREDENTIAL, policy=TransportPolicy(deadline_s=300)) as session:
        return sum(1 for invocation in FACT_SET if session.run(invocation).value is not None)


def collect_per_script(host: Host) -> int:
    """A new connection, login and runspace pool per script, as Client.execute_ps does."""
    done = 0
    for invocation in FACT_SET:
        # execute_ps runs its script through Invoke-Expression | Out-String, which the lab does not
        # simulate; the same script and values go through add_script/add_parameter instead, so
        # both sides do identical pipeline work and differ only in sessions per host.
        wsman = WSMan(
            host.address,
            port=host.winrm.port,
            ssl=host.winrm.transport.value == "https",
            auth=host.winrm.auth.value,
            username=CREDENTIAL.username,
            password=CREDENTIAL.secret.reveal(),
            cert_validation=str(host.winrm.ca_bundle),  # type: ignore[arg-type]  # pypsrp takes a path too
            no_proxy=True,
        )
        with wsman, RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_script(invocation.spec.text)
            for name, value in invocation.params:
                ps.add_parameter(name, value)
            output = ps.invoke()
            invocation.spec.output.model_validate_json(output[0])
            done += 1
    return done


def measure(mode: str, collect: Callable[[Host], int], hosts: Sequence[Host]) -> Outcome:
    durations: list[float] = []

    def timed(host: Host) -> int:
        started = time.perf_counter()
        try:
            return collect(host)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            print(f"  {mode} {host.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 0
        finally:
            durations.append(time.perf_counter() - started)

    lab_before, cpu_before, wall_before = child_cpu_s(), time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=THROTTLE) as pool:
        counts = list(pool.map(timed, hosts))
    wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
    lab_after = child_cpu_s()
    lab_cpu = None if lab_before is None or lab_after is None else lab_after - lab_before
    quantiles = statistics.quantiles(durations, n=20)
    return Outcome(
        mode=mode,
        hosts=len(hosts),
        ok=sum(1 for count in counts if count == len(FACT_SET)),
        wall_s=wall,
        cpu_s=cpu,
        lab_cpu_s=lab_cpu,
        host_p50_s=statistics.median(durations),
        host_p95_s=quantiles[18],
    )


def run(count: int, latency_ms: float, auth: str, tls: bool) -> list[Outcome]:
    with LabProcess(fleet(count, latency_ms, auth, tls)) as lab:
        hosts = inventory_hosts(lab.info, auth, tls)
        measure("warm-up", collect_fleetfix, hosts[: min(THROTTLE, len(hosts))])
        return [
            measure("fleetfix", collect_fleetfix, hosts),
            measure("per-script", collect_per_script, hosts),
        ]


def report(count: int, outcomes: Sequence[Outcome]) -> None:
    fleetfix, baseline = outcomes
    print(f"\nN = {count} hosts, {len(FACT_SET)} probes each, {THROTTLE} at a time")
    print(
        f"{'mode':<11} {'ok':>6} {'wall s':>8} {'hosts/s':>9} {'CPU ms/host':>12} {'lab CPU ms/host':>16}"
        f" {'p50 s':>7} {'p95 s':>7}"
    )
    for outcome in outcomes:
        lab_cpu = outcome.lab_cpu_ms_per_host
        print(
            f"{outcome.mode:<11} {outcome.ok:>6} {outcome.wall_s:>8.1f} {outcome.hosts_per_s:>9.1f}"
            f" {outcome.cpu_ms_per_host:>12.1f} {'n/a' if lab_cpu is None else f'{lab_cpu:.1f}':>16}"
            f" {outcome.host_p50_s:>7.2f} {outcome.host_p95_s:>7.2f}"
        )
    ratio = (
        f"ratio      hosts/s x{fleetfix.hosts_per_s / baseline.hosts_per_s:.2f}, "
        f"CPU per host /{baseline.cpu_ms_per_host / fleetfix.cpu_ms_per_host:.2f}"
    )
    if fleetfix.lab_cpu_ms_per_host and baseline.lab_cpu_ms_per_host:
        ratio += f", lab CPU per host /{baseline.lab_cpu_ms_per_host / fleetfix.lab_cpu_ms_per_host:.2f}"
    print(ratio)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 1000], help="fleet sizes to run")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every HTTP round trip")
    parser.add_argument("--auth", default="ntlm", choices=["basic", "ntlm", "negotiate"])
    parser.add_argument(
        "--http", action="store_true", help="plain HTTP (message encryption) instead of HTTPS"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON document at the end"
    )
    args = parser.parse_args(argv)
    tls = not args.http
    results: dict[str, Any] = {"latency_ms": args.latency_ms, "auth": args.auth, "tls": tls, "runs": []}
    for count in args.hosts:
        outcomes = run(count, args.latency_ms, args.auth, tls)
        report(count, outcomes)
        results["runs"].append(
            [
                asdict(o)
                | {
                    "hosts_per_s": o.hosts_per_s,
                    "cpu_ms_per_host": o.cpu_ms_per_host,
                    "lab_cpu_ms_per_host": o.lab_cpu_ms_per_host,
                }
                for o in outcomes
            ]
        )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
