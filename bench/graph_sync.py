"""Force a sync of N simulated Intune devices: fleetfix's budgeted $batch against a naive loop.

    .venv/bin/python bench/graph_sync.py                      # 10,000 devices, time scale 0.05
    .venv/bin/python bench/graph_sync.py --devices 2000 --json

The tenant runs in a child process (its own interpreter) with Intune's documented limits: 200
writes per 20 s per app in the devices bucket (400 per tenant).  ``--time-scale`` shrinks the
20-second window (0.05 -> 1 s) so the run takes a minute, not hours; the scaled limit (200 per
second) must stay well below what the naive client can send, or it never meets the limit.  Every
time is also shown at full scale (divided by the time scale).  The minimum a client can need is
``(ceil(N / 200) - 1)`` windows: the first 200 writes go at once, each further 200 one window later.

Two clients, each with its own app registration (so their per-app budgets do not mix):

* fleetfix: ``IntuneClient.sync_devices`` -- ``$batch`` of 20, a sliding-window budget that matches
  the documented limit, per-item retries;
* naive: one ``POST …/syncDevice`` per device from ``--threads`` threads, and on 429 sleep for the
  ``Retry-After`` it was given (1 s when absent) and try again.

Both runs must leave every device with exactly one more accepted ``syncDevice`` write.
"""

from __future__ import annotations

import argparse
import json
import math
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.graph import AppRegistration, TenantConfig, TenantInfo, TenantProcess, numbered_devices  # noqa: E402
from orchestrator.transport.graph import BudgetLimits, GraphClient, IntuneClient, RetryPolicy  # noqa: E402
from orchestrator.transport.graph.auth import MsalTokenSource  # noqa: E402
from orchestrator.transport.graph.budget import LocalBudget  # noqa: E402

SECRET = "bench-secret-0123456789"  # lab material, loopback only
FLEETFIX_APP = "aaaaaaaa-0000-0000-0000-000000000001"
NAIVE_APP = "aaaaaaaa-0000-0000-0000-000000000002"
WRITES_PER_WINDOW = 200  # Intune devices bucket, per app per tenant
WINDOW_S = 20.0


@dataclass
class Outcome:
    client: str
    elapsed_s: float
    full_scale_s: float
    minimum_full_scale_s: float
    ratio_to_minimum: float
    http_requests: int
    throttled_429: int
    writes_ok: bool


def tokens(info: TenantInfo, client_id: str, context: ssl.SSLContext) -> MsalTokenSource:
    return MsalTokenSource(
        client_id=client_id,
        authority=info.authority,
        credential=SECRET,
        scope=f"{info.base_url}/.default",
        http=httpx.Client(verify=context),
    )


def run_fleetfix(
    info: TenantInfo, ids: list[str], scale: float, context: ssl.SSLContext
) -> tuple[float, int, int]:
    budget = LocalBudget(BudgetLimits(window_s=WINDOW_S * scale))
    limits = httpx.Limits(max_connections=4)
    client = GraphClient(
        httpx.Client(verify=context, timeout=60, limits=limits),
        tokens(info, FLEETFIX_APP, context),
        base_url=info.base_url,
        budget=budget,
        retry=RetryPolicy(max_attempts=20),
    )
    start = time.perf_counter()
    report = IntuneClient(client).sync_devices(ids)
    elapsed = time.perf_counter() - start
    assert len(report.synced) == len(ids), report.failed
    return elapsed, client.stats.requests, client.stats.throttled


def run_naive(
    info: TenantInfo, ids: list[str], threads: int, context: ssl.SSLContext
) -> tuple[float, int, int]:
    source = tokens(info, NAIVE_APP, context)
    http = httpx.Client(verify=context, timeout=60, limits=httpx.Limits(max_connections=threads))
    counts = {"requests": 0, "throttled": 0}

    def sync(device_id: str) -> None:
        url = f"{info.base_url}/v1.0/deviceManagement/managedDevices/{device_id}/syncDevice"
        while True:
            response = http.post(url, headers={"Authorization": f"Bearer {source.token()}"})
            counts["requests"] += 1  # a race between threads only blurs the count by a hair
            if response.status_code != 429:
                response.raise_for_status()
                return
            counts["throttled"] += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sync, ids))
    return time.perf_counter() - start, counts["requests"], counts["throttled"]


def outcome(name: str, run: tuple[float, int, int], count: int, scale: float, writes_ok: bool) -> Outcome:
    elapsed, requests, throttled = run
    minimum = (math.ceil(count / WRITES_PER_WINDOW) - 1) * WINDOW_S
    full = elapsed / scale
    return Outcome(
        name, elapsed, full, minimum, full / minimum if minimum else math.inf, requests, throttled, writes_ok
    )


def writes_once_more(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], ids: list[str]
) -> bool:
    return all(after.get(("syncDevice", d), 0) - before.get(("syncDevice", d), 0) == 1 for d in ids)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=0.05, help="20 s windows last 20 s x this")
    parser.add_argument("--threads", type=int, default=16, help="threads of the naive loop")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args(argv)
    apps = tuple(AppRegistration(client_id=app, secret=SECRET) for app in (FLEETFIX_APP, NAIVE_APP))
    config = TenantConfig(
        apps=apps,
        devices=numbered_devices(args.devices),
        time_scale=args.time_scale,
        enrolled_with_profiles=False,
    )
    ids = [device.id for device in config.devices]
    with (
        tempfile.TemporaryDirectory() as directory,
        TenantProcess(config, directory=Path(directory)) as tenant,
    ):
        context = ssl.create_default_context(cafile=str(tenant.info.ca_bundle))
        outcomes = []
        runs: tuple[tuple[str, Callable[[], tuple[float, int, int]]], ...] = (
            ("fleetfix", lambda: run_fleetfix(tenant.info, ids, args.time_scale, context)),
            ("naive", lambda: run_naive(tenant.info, ids, args.threads, context)),
        )
        for name, run in runs:
            before = tenant.control.writes()
            result = run()
            ok = writes_once_more(before, tenant.control.writes(), ids)
            outcomes.append(outcome(name, result, args.devices, args.time_scale, ok))
    report(args, outcomes)


def report(args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "devices": args.devices,
                    "time_scale": args.time_scale,
                    "runs": [asdict(o) for o in outcomes],
                }
            )
        )
        return
    minimum = outcomes[0].minimum_full_scale_s
    print(
        f"{args.devices} devices, {WRITES_PER_WINDOW} writes per {WINDOW_S:g} s per app, "
        f"time scale {args.time_scale}"
    )
    print(f"minimum at full scale: {minimum:.0f} s ({minimum * args.time_scale:.2f} s scaled)")
    print(
        f"{'client':<9} {'elapsed s':>10} {'full-scale s':>13} {'x minimum':>10} "
        f"{'requests':>9} {'429s':>7} writes"
    )
    for o in outcomes:
        verdict = "exactly once" if o.writes_ok else "LOST OR DUPLICATED"
        print(
            f"{o.client:<9} {o.elapsed_s:>10.2f} {o.full_scale_s:>13.0f} {o.ratio_to_minimum:>10.3f} "
            f"{o.http_requests:>9} {o.throttled_429:>7} {verdict}"
        )


if __name__ == "__main__":
    main()
