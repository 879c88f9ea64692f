"""Scale: 2,000 hosts in one lab process, 500 sessions open at the same time, nothing stalls.

The lab runs as a child process (:class:`lab.LabProcess`), as ``fleetfix lab up`` will run it,
so the 500 pypsrp client threads here do not share its interpreter.  The figures are printed,
not asserted (timing assertions belong in ``bench/``); what is asserted is that every listener
answers, every session opens, runs and closes within the client's timeouts, and that one more
session completes while the 500 are all open.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from pypsrp.powershell import RunspacePool

from lab import HostConfig, HostEndpoint, LabProcess, numbered_fleet
from tests.lab.support import run, shipped_script, wsman

HOSTS = 2_000
CONCURRENT = 500
NTLM_SESSIONS = 100  # of the 500; the rest use Basic over HTTPS
ECHO = shipped_script("diag.echo")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered):.2f}s p95 {p95:.2f}s max {ordered[-1]:.2f}s"


def timed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


@pytest.mark.slow
def test_2000_hosts_and_500_concurrent_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    fleet = numbered_fleet(HOSTS, template=HostConfig(name="T", https_port=0))
    figures: list[str] = []
    started = time.monotonic()
    with LabProcess(fleet) as lab:
        figures.append(f"start {HOSTS} hosts (HTTP + HTTPS listeners): {time.monotonic() - started:.1f}s")
        endpoints = list(lab.info.endpoints.values())
        assert len(endpoints) == HOSTS

        probe_seconds = timed(lambda: probe_every_listener(endpoints, str(lab.info.ca_bundle)))
        figures.append(f"every listener answered 401 (HTTP and HTTPS, 32 threads): {probe_seconds:.1f}s")

        chosen = endpoints[:: HOSTS // CONCURRENT][:CONCURRENT]  # spread over the whole fleet
        spare = endpoints[1]
        opened, commands, total, extra = concurrent_sessions(chosen, spare, str(lab.info.ca_bundle))
        figures += [
            f"{CONCURRENT} concurrent sessions ({NTLM_SESSIONS} NTLM/HTTP encrypted, the rest Basic/HTTPS): "
            f"{total:.1f}s",
            f"  open pool: {percentiles(opened)}",
            f"  diag.echo with all {CONCURRENT} pools open: {percentiles(commands)}",
            f"  one more session while all {CONCURRENT} are open: {extra:.2f}s",
        ]
    figures.append(f"whole test: {time.monotonic() - started:.1f}s")
    with capsys.disabled():
        print("\n" + "\n".join(figures))


def probe_every_listener(endpoints: list[HostEndpoint], ca_bundle: str) -> None:
    def probe(endpoint: HostEndpoint) -> tuple[int, int]:
        plain = requests.post(endpoint.url(tls=False), data=b"<x/>", timeout=30)
        secure = requests.post(endpoint.url(tls=True), data=b"<x/>", timeout=30, verify=ca_bundle)
        return plain.status_code, secure.status_code

    with ThreadPoolExecutor(32) as pool:
        assert set(pool.map(probe, endpoints)) == {(401, 401)}


def concurrent_sessions(
    chosen: list[HostEndpoint], spare: HostEndpoint, ca_bundle: str
) -> tuple[list[float], list[float], float, float]:
    all_open = threading.Barrier(CONCURRENT + 1, timeout=300)
    all_ran = threading.Barrier(CONCURRENT + 1, timeout=300)
    release = threading.Event()

    def session(index: int) -> tuple[float, float]:
        try:
            return one_session(index)
        except BaseException:
            all_open.abort()  # fail the whole test now, not after the barrier timeout
            all_ran.abort()
            release.set()
            raise

    def one_session(index: int) -> tuple[float, float]:
        endpoint = chosen[index]
        ntlm = index < NTLM_SESSIONS
        client = wsman(
            endpoint,
            auth="ntlm" if ntlm else "basic",
            tls=not ntlm,
            ca_bundle=None if ntlm else Path(ca_bundle),
            operation_timeout=20,
            read_timeout=120,
            connection_timeout=60,
        )
        with client:
            began = time.monotonic()
            with RunspacePool(client) as pool:
                opened = time.monotonic() - began
                all_open.wait()
                began = time.monotonic()
                ps = run(pool, ECHO, Value=endpoint.name)
                ran = time.monotonic() - began
                assert json.loads(ps.output[0]) == {"value": endpoint.name, "length": len(endpoint.name)}
                all_ran.wait()
                assert release.wait(300)  # every pool stays open until the spare session has run
        return opened, ran

    def spare_session() -> None:
        client = wsman(spare, ca_bundle=Path(ca_bundle), read_timeout=60)
        with client, RunspacePool(client) as pool:
            assert json.loads(run(pool, ECHO, Value="spare").output[0])["value"] == "spare"

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENT) as executor:
        futures = [executor.submit(session, index) for index in range(CONCURRENT)]
        all_open.wait()
        all_ran.wait()
        try:
            extra = timed(spare_session)  # all 500 shells are open on the lab right now
        finally:
            release.set()
        results = [future.result() for future in futures]
    total = time.monotonic() - started
    return [r[0] for r in results], [r[1] for r in results], total, extra
