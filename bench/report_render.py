"""Benchmark: the sweep report of 1,000 and 10,000 hosts -- store queries, model, HTML, CSV, JSON.

For each fleet size a child process writes ``--history`` completed sweeps of a synthetic fleet into a
fresh SQLite store through the sweep repository (as ``fleetfix sweep`` stores them), and a second,
fresh child process reports the newest one, as ``fleetfix report sweep`` does: load (the store
queries), build (the pure model), then the HTML, CSV and JSON files written atomically.  Wall and
CPU time are taken per phase; memory as the child's peak RSS (``ru_maxrss``) before and after the
report, and, in a second pass under ``tracemalloc``, the peak of Python allocations.  See
``bench/README.md``.

    .venv/bin/python bench/report_render.py                   # 1,000 and 10,000 hosts
    .venv/bin/python bench/report_render.py --hosts 500 20000 --history 3 --json

With ``--targets N ...`` it measures the playbook-run report (``fleetfix report run``) instead: a
child writes one run of N targets (waves, targets' outcomes, action journal, audit entries, plus
unrelated audit entries the report's audit scan has to skip) and a fresh child reports it in the
same phases.

    .venv/bin/python bench/report_render.py --targets 1000 10000
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
CHECKS = (
    ("EP-CERT-01", "device-certificate", "high", "device-cert-reenroll"),
    ("EP-ROUTE-01", "route:10.20.0.0/16", "medium", "fix-route-prefixes"),
    ("EP-PROF-01", "profile:Contoso Device Tunnel", "high", "intune-resync"),
    ("EP-OS-01", "os:KB5008353", "low", None),
)
SITES = ("ams", "fra", "lon", "nyc", "sin")


def maxrss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- child: write the store ----------------------------------------------------------------------


def fleet(size: int, sweep: int) -> tuple[list[Any], list[Any]]:
    """A fleet like the lab's: 2 % unreachable, 1 % failed, a third of the endpoints with one to
    three findings (which ones shifts a little from sweep to sweep: new and resolved findings)."""
    from orchestrator.store import HostStatus  # noqa: PLC0415
    from orchestrator.store.sweeps import FindingRecord, HostRecord  # noqa: PLC0415

    hosts, findings = [], []
    for index in range(size):
        role = "ca" if index % 2500 == 7 else "rras" if index % 500 == 3 else "endpoint"
        name = f"{role[:2]}-{index:05d}"
        if index % 50 == 1 or index % 100 == 2:
            kind = "timed_out" if index % 50 == 1 else "auth_failed"
            status = HostStatus.UNREACHABLE if kind == "timed_out" else HostStatus.FAILED
            message = f"{name}: no answer from https://{name}.corp.contoso.test:5986 in time"
            hosts.append(HostRecord(name, role, status, kind, message))
            continue
        hosts.append(HostRecord(name, role, HostStatus.OK, started_at=T0, finished_at=T0))
        if role != "endpoint" or (index + (sweep if index % 7 == 0 else 0)) % 3:
            continue
        for check_id, subject, severity, playbook in CHECKS[: 1 + (index // 3) % 3]:
            findings.append(
                FindingRecord(
                    host=name,
                    check_id=check_id,
                    severity=severity,
                    title=f"{check_id}: what the check looks for",
                    message=f"{name}: the device certificate lacks Client Authentication (1.3.6.1.5.5.7.3.2)",
                    subject=subject,
                    reason="wrong_eku",
                    fingerprint=f"{name}|{check_id}|{subject}",
                    evidence={
                        "reason": "wrong_eku",
                        "thumbprint": f"{index:040X}",
                        "issuer": "CN=Contoso Issuing CA 01, DC=corp, DC=contoso, DC=test",
                        "ekus": ["1.3.6.1.5.5.7.3.1"],
                        "not_after": "2027-03-01T00:00:00Z",
                    },
                    error_codes=("13806",),
                    playbook=playbook,
                    advice=None if playbook else "install the update by hand",
                )
            )
    return hosts, findings


def write_store(url: str, size: int, history: int) -> dict[str, Any]:
    from orchestrator.store import Store, create_store_engine, upgrade  # noqa: PLC0415
    from orchestrator.store.sweeps import complete_sweep, start_sweep  # noqa: PLC0415

    upgrade(url)
    store = Store.from_engine(create_store_engine(url))
    started = time.perf_counter()
    findings_count = 0
    for sweep in range(history):
        at = T0 + timedelta(days=sweep)
        hosts, findings = fleet(size, sweep)
        findings_count = len(findings)
        with store.transaction() as session:
            run = start_sweep(session, requested_by="bench", selector=None, parameters={}, started_at=at)
        summary = {
            "complete": False,
            "compliant": False,
            "notes": [],
            "tenant": "collected",
            "elapsed_s": 60.0,
        }
        with store.transaction() as session:
            complete_sweep(
                session,
                run.id,
                hosts=hosts,
                findings=findings,
                fleet_facts={"tenant": None, "crls": []},
                summary=summary,
                finished_at=at + timedelta(minutes=1),
                observed_at=at,
            )
    store.close()
    return {"findings": findings_count, "store_write_s": round(time.perf_counter() - started, 2)}


# --- child: report ------------------------------------------------------------------------------


def timed(phases: dict[str, Any], name: str, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    phases[name] = {
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }
    return result


def _write(
    write: Callable[[Path, Iterator[str]], int],
    target: Path,
    render: Callable[[Any], Iterator[str]],
    report: Any,
) -> int:
    return write(target, render(report))


def report_once(url: str, size: int, directory: Path, phases: dict[str, Any] | None) -> dict[str, int]:
    from orchestrator.reports.export import sweep_csv, sweep_json  # noqa: PLC0415
    from orchestrator.reports.html import render_sweep_html  # noqa: PLC0415
    from orchestrator.reports.model import build_sweep_report  # noqa: PLC0415
    from orchestrator.reports.output import write_atomic  # noqa: PLC0415
    from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep  # noqa: PLC0415
    from orchestrator.store import Store, create_store_engine  # noqa: PLC0415

    phases = {} if phases is None else phases
    store = Store.from_engine(create_store_engine(url))
    sites = {f"en-{i:05d}": SITES[i % len(SITES)] for i in range(size) if i % 6}  # the inventory's tags

    def load() -> Any:
        with store.transaction() as session:
            run = report_sweep(session, None)
            return load_sweep_data(
                session, run, trend=10, sites=sites, checks=catalogue_checks(), generated_at=datetime.now(UTC)
            )

    data = timed(phases, "load", load)
    report = timed(phases, "model", lambda: build_sweep_report(data))
    renderers: dict[str, Callable[[Any], Iterator[str]]] = {
        "html": render_sweep_html,
        "csv": sweep_csv,
        "json": sweep_json,
    }
    sizes = {}
    for name, render in renderers.items():
        target = directory / f"report.{name}"
        sizes[name] = timed(phases, name, functools.partial(_write, write_atomic, target, render, report))
    store.close()
    return sizes


def child_report(url: str, size: int) -> dict[str, Any]:
    from orchestrator.reports import html, model, source  # noqa: F401, PLC0415 (imports outside the figures)

    catalogue = source.catalogue_checks()
    html.environment().get_template(html.SWEEP_TEMPLATE)
    baseline = maxrss_mb()
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        sizes = report_once(url, size, Path(directory), phases)
        peak = maxrss_mb()
        tracemalloc.start()
        report_once(url, size, Path(directory), None)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "checks": len(catalogue),
        "phases": phases,
        "bytes": sizes,
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_mb": round(peak, 1),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 1),
    }


# --- child: a playbook run ----------------------------------------------------------------------

ROUTES = "VpnConnection[Contoso Device Tunnel].Routes"
RUN_WAVE = 500
NOISE_PER_TARGET = 2
"""unrelated audit entries per target (other runs, sweeps): the report's audit scan skips them"""


def run_targets(size: int) -> list[dict[str, Any]]:
    """A run like the lab's fix-route-prefixes over ``size`` endpoints: a canary, waves of 500;
    2 % rolled back, 2 % failed, 2 % skipped (locked), 18 % already right, the rest fixed."""
    targets = []
    for index in range(size):
        name, wave = f"ep-{index:05d}", 1 if index == 0 else 2 + (index - 1) // RUN_WAVE
        before, after = [f"172.{index % 250}.12.0/21", "10.20.0.0/16"], ["172.21.8.0/21", "10.20.0.0/16"]
        change = {"field": ROUTES, "before": before, "after": after}
        kind = index % 50
        target: dict[str, Any] = {"name": name, "wave": wave, "journal": []}
        if kind == 7:
            target.update(
                state="rolled_back",
                message=(
                    "verification failed: still reported: EP-ROUTE-01 route:172.21.8.0/21; "
                    "rolled back local-routes"
                ),
                error_kind="verification",
                detail={
                    "steps": [{"step": "local-routes", "state": "applied", "changes": [change]}],
                    "remaining": ["EP-ROUTE-01 route:172.21.8.0/21"],
                    "rolled_back": ["local-routes"],
                    "rollback_errors": [],
                },
                journal=[("local-routes", "rolled_back", {"routes": before}, {"routes": after}, [change])],
            )
        elif kind == 11:
            target.update(
                state="failed",
                message="step local-routes (endpoint.fix-vpn-routes) failed: access is denied",
                error_kind="action",
                detail={"steps": [{"step": "local-routes", "state": "failed", "error": "access is denied"}]},
                journal=[("local-routes", "failed", None, None, [])],
            )
        elif kind == 13:
            target.update(
                state="skipped", message=f"host {name} is locked by run 7f1e", error_kind="locked", detail={}
            )
        elif kind % 5 == 0:
            target.update(
                state="unchanged",
                message="already right",
                error_kind=None,
                detail={
                    "steps": [{"step": "local-routes", "state": "unchanged"}],
                    "verified": ["EP-ROUTE-01"],
                },
                journal=[("local-routes", "unchanged", {"routes": after}, {"routes": after}, [])],
            )
        else:
            target.update(
                state="succeeded",
                message="changed by local-routes; verified",
                error_kind=None,
                detail={
                    "steps": [
                        {"step": "local-routes", "state": "applied", "changes": [change]},
                        {"step": "sync", "state": "skipped", "reason": "condition 'when' is false"},
                    ],
                    "verified": ["EP-ROUTE-01"],
                },
                journal=[("local-routes", "applied", {"routes": before}, {"routes": after}, [change])],
            )
        targets.append(target)
    return targets


def write_run(url: str, size: int) -> dict[str, Any]:
    from sqlalchemy import insert  # noqa: PLC0415

    from orchestrator.store import Store, append_audit, create_store_engine, upgrade  # noqa: PLC0415
    from orchestrator.store.models import JournalEntry, Run, RunTarget, RunWave  # noqa: PLC0415

    upgrade(url)
    store = Store.from_engine(create_store_engine(url))
    started = time.perf_counter()
    targets = run_targets(size)
    waves = sorted({target["wave"] for target in targets})
    actor = "alice@adm01"
    with store.transaction() as session:
        for n in range(NOISE_PER_TARGET * size // 2):  # before the run: other work
            append_audit(session, "svc@adm01", "sweep.done", f"sweep-{n % 97}", {"hosts": n, "findings": 3})
        run = Run(
            kind="playbook",
            playbook_id="fix-route-prefixes",
            status="failed",
            selector="role:endpoint",
            parameters={"params": {"sync": False}, "sweep_id": "bench", "approved_with_yes": False},
            requested_by=actor,
            created_at=T0,
            started_at=T0,
            finished_at=T0 + timedelta(hours=2),
            options={
                "canary": 1,
                "wave_size": RUN_WAVE,
                "serial": False,
                "max_fail": "5%",
                "concurrency": 32,
            },
            approved_by="bob@adm01",
            approved_at=T0,
            status_message="failure budget exceeded",
            cancel_requested=False,
        )
        session.add(run)
        session.flush()
        append_audit(session, actor, "run.create", run.id, {"targets": size, "waves": len(waves)})
        append_audit(
            session, "bob@adm01", "run.approve", run.id, {"from": "awaiting_approval", "to": "pending"}
        )
        session.execute(
            insert(RunWave),
            [
                {"run_id": run.id, "number": n, "kind": "canary" if n == 1 else "wave", "status": "completed"}
                for n in waves
            ],
        )
        session.execute(
            insert(RunTarget),
            [
                {
                    "run_id": run.id,
                    "wave": t["wave"],
                    "target": t["name"],
                    "role": "endpoint",
                    "state": t["state"],
                    "attempts": 1,
                    "message": t["message"],
                    "error_kind": t["error_kind"],
                    "detail": t["detail"],
                    "started_at": T0,
                    "finished_at": T0,
                }
                for t in targets
            ],
        )
        session.execute(
            insert(JournalEntry),
            [
                {
                    "run_id": run.id,
                    "host": t["name"],
                    "step": step,
                    "action": "endpoint.fix-vpn-routes",
                    "state": state,
                    "before": before,
                    "after": after,
                    "claimed_at": T0,
                    "finished_at": T0,
                }
                for t in targets
                for step, state, before, after, _ in t["journal"]
            ],
        )
        entries = 0
        for t in targets:
            for step, state, before, after, changes in t["journal"]:
                if state not in {"applied", "rolled_back"}:
                    continue
                base = {
                    "run_id": run.id,
                    "playbook": "fix-route-prefixes",
                    "step": step,
                    "action": "endpoint.fix-vpn-routes",
                }
                append_audit(
                    session,
                    actor,
                    "action.apply",
                    t["name"],
                    {**base, "before": before, "after": after, "changes": changes},
                )
                entries += 1
                if state == "rolled_back":
                    append_audit(
                        session,
                        actor,
                        "action.rollback",
                        t["name"],
                        {**base, "before": after, "after": before},
                    )
                    entries += 1
        append_audit(
            session, actor, "run.finish", run.id, {"from": "running", "to": "failed", "message": "budget"}
        )
        for n in range(NOISE_PER_TARGET * size // 2):  # after it: more work
            append_audit(session, "svc@adm01", "sweep.done", f"sweep-{n % 89}", {"hosts": n, "findings": 1})
        run_id = run.id
    store.close()
    return {
        "run_id": run_id,
        "run_audit_entries": entries + 3,
        "other_audit_entries": 2 * (NOISE_PER_TARGET * size // 2),
        "store_write_s": round(time.perf_counter() - started, 2),
    }


def report_run_once(url: str, run_id: str, directory: Path, phases: dict[str, Any] | None) -> dict[str, int]:
    from orchestrator.config import Settings  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415
    from orchestrator.reports.output import write_atomic  # noqa: PLC0415
    from orchestrator.reports.runexport import run_csv, run_json  # noqa: PLC0415
    from orchestrator.reports.runhtml import render_run_html  # noqa: PLC0415
    from orchestrator.reports.runmodel import build_run_report  # noqa: PLC0415
    from orchestrator.reports.runsource import load_run_data, playbook_info, report_run  # noqa: PLC0415
    from orchestrator.store import Store, create_store_engine  # noqa: PLC0415

    phases = {} if phases is None else phases
    store = Store.from_engine(create_store_engine(url))
    playbook = playbook_info(load_playbooks(Settings()).get("fix-route-prefixes"))

    def load() -> Any:
        with store.transaction() as session:
            record = report_run(session, run_id)
            return load_run_data(session, record, playbook=playbook, generated_at=datetime.now(UTC))

    data = timed(phases, "load", load)
    report = timed(phases, "model", lambda: build_run_report(data))
    renderers: dict[str, Callable[[Any], Iterator[str]]] = {
        "html": render_run_html,
        "csv": run_csv,
        "json": run_json,
    }
    sizes = {}
    for name, render in renderers.items():
        target = directory / f"run.{name}"
        sizes[name] = timed(phases, name, functools.partial(_write, write_atomic, target, render, report))
    store.close()
    return sizes


def child_report_run(url: str, run_id: str) -> dict[str, Any]:
    from orchestrator.reports import html, runhtml  # noqa: PLC0415 (imports outside the figures)

    html.environment().get_template(runhtml.RUN_TEMPLATE)
    baseline = maxrss_mb()
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        sizes = report_run_once(url, run_id, Path(directory), phases)
        peak = maxrss_mb()
        tracemalloc.start()
        report_run_once(url, run_id, Path(directory), None)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "phases": phases,
        "bytes": sizes,
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_mb": round(peak, 1),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 1),
    }


def measure_run(size: int) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="fleetfix-bench-run-report-") as directory:
        url = f"sqlite:///{Path(directory) / 'fleetfix.db'}"
        written = run_child("--write-run", url, str(size))
        reported = run_child("--report-run", url, written["run_id"])
        yield {"targets": size, **written, **reported}


def run_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "targets  audit (run/other)  load s  model s  html s (MB)       csv s (MB)        json s (MB)       "
        "total s  RSS MB (+report)  tracemalloc MB"
    ]
    for r in results:
        p, b = r["phases"], r["bytes"]
        total = sum(phase["wall_s"] for phase in p.values())
        cells = [
            f"{r['targets']:>7}  {r['run_audit_entries']:>7}/{r['other_audit_entries']:<9}",
            f"{p['load']['wall_s']:>6.2f}  {p['model']['wall_s']:>7.2f}",
            *(f"{p[name]['wall_s']:>5.2f} ({b[name] / 1e6:>5.1f})   " for name in ("html", "csv", "json")),
            f"{total:>7.2f}",
            f"{r['rss_peak_mb']:>6.1f} (+{r['rss_peak_mb'] - r['rss_baseline_mb']:>5.1f})",
            f"{r['tracemalloc_peak_mb']:>14.1f}",
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


# --- parent -------------------------------------------------------------------------------------


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True, timeout=1800
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(size: int, history: int) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="fleetfix-bench-report-") as directory:
        url = f"sqlite:///{Path(directory) / 'fleetfix.db'}"
        written = run_child("--write", url, str(size), str(history))
        reported = run_child("--report", url, str(size))
        yield {"hosts": size, "history": history, **written, **reported}


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "hosts  findings  load s  model s  html s (MB)       csv s (MB)        json s (MB)       total s  "
        "RSS MB (+report)  tracemalloc MB"
    ]
    for r in results:
        p, b = r["phases"], r["bytes"]
        total = sum(phase["wall_s"] for phase in p.values())
        cells = [
            f"{r['hosts']:>5}  {r['findings']:>8}",
            f"{p['load']['wall_s']:>6.2f}  {p['model']['wall_s']:>7.2f}",
            *(f"{p[name]['wall_s']:>5.2f} ({b[name] / 1e6:>5.1f})   " for name in ("html", "csv", "json")),
            f"{total:>7.2f}",
            f"{r['rss_peak_mb']:>6.1f} (+{r['rss_peak_mb'] - r['rss_baseline_mb']:>5.1f})",
            f"{r['tracemalloc_peak_mb']:>14.1f}",
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--history", type=int, default=5, help="completed sweeps in the store (the trend)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", nargs=3, metavar=("URL", "HOSTS", "HISTORY"), help=argparse.SUPPRESS)
    parser.add_argument("--report", nargs=2, metavar=("URL", "HOSTS"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--targets", type=int, nargs="+", help="measure the run report of runs of N targets instead"
    )
    parser.add_argument("--write-run", nargs=2, metavar=("URL", "TARGETS"), help=argparse.SUPPRESS)
    parser.add_argument("--report-run", nargs=2, metavar=("URL", "RUN_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_run:
        print(json.dumps(write_run(args.write_run[0], int(args.write_run[1]))))
        return
    if args.report_run:
        print(json.dumps(child_report_run(args.report_run[0], args.report_run[1])))
        return
    if args.targets:
        runs = [result for size in args.targets for result in measure_run(size)]
        if args.json:
            print(json.dumps(runs, indent=2))
        else:
            print(f"playbook-run report, SQLite, Python {sys.version.split()[0]}")
            print(run_table(runs))
        return
    if args.write:
        print(json.dumps(write_store(args.write[0], int(args.write[1]), int(args.write[2]))))
        return
    if args.report:
        print(json.dumps(child_report(args.report[0], int(args.report[1]))))
        return
    results = [result for size in args.hosts for result in measure(size, args.history)]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"sweep report, {args.history} sweeps in the store, SQLite, Python {sys.version.split()[0]}")
        print(table(results))


if __name__ == "__main__":
    main()
