"""Sweeps of the built-in lab scenarios scored against their ground truth: precision and recall 100 %.

Each scenario runs in a lab process of its own (``fleetfix lab up --detach``'s way), the sweep
with the real edges (WinRM sessions, the Intune tenant over Graph, CRLs over HTTP, the shipped
checks) on the configuration the lab writes.  A finding and a truth entry match on host, check
id, reason and subject; on failure the test prints both differences.  Hosts the sweep could not
collect are judged apart: they must be exactly hosts whose WinRM the scenario broke.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.demo import graded, running_scenario, scenario_settings
from orchestrator.inventory import load_inventory
from orchestrator.store import HostStatus, open_store
from orchestrator.sweep.plan import CollectOptions
from orchestrator.sweep.service import SweepRequest, SweepResult, default_io, run_sweep

# Faults that stop a session; latency alone only slows it.
SESSION_BREAKING = ("refuse", "hang", "auth_failure", "flap")


def sweep_scenario(scenario: str, directory: Path) -> tuple[SweepResult, dict[str, Any], float]:
    from lab.estate.manage import LabHandle  # noqa: PLC0415

    with running_scenario(scenario, directory):
        settings = scenario_settings(directory)
        hosts = tuple(load_inventory(settings.inventory))
        # a hanging host costs 15 s, not a minute
        request = SweepRequest(hosts, requested_by="test", options=CollectOptions(deadline_s=15))
        started = time.monotonic()
        with open_store(settings) as store:
            result = run_sweep(store, request, default_io(settings, environ={}))
        elapsed = time.monotonic() - started
        truth: dict[str, Any] = LabHandle(directory).get("/truth")
    return result, truth, elapsed


@pytest.mark.parametrize(
    "scenario", ["healthy", "seed-article", pytest.param("mixed-1k", marks=pytest.mark.slow)]
)
def test_sweep_finds_exactly_the_ground_truth(scenario: str, tmp_path: Path) -> None:
    result, truth, elapsed = sweep_scenario(scenario, tmp_path / "lab")
    grade = graded(result, truth["truth"])
    not_collected = {
        record.host.casefold(): record.error_kind
        for record in result.hosts
        if record.status is not HostStatus.OK
    }
    breaking = {
        name.casefold()
        for name, faults in truth["transport_faults"].items()
        if set(faults) & set(SESSION_BREAKING)
    }
    print(
        f"\n{scenario}: {len(result.hosts)} hosts in {elapsed:.1f} s, {len(not_collected)} not collected; "
        f"expected {len(grade.expected)}, found {len(grade.found)}, matched {len(grade.matched)}, "
        f"precision {grade.precision:.2%}, recall {grade.recall:.2%}, unjudged {len(grade.unjudged)}"
    )
    assert grade.exact, "the sweep disagrees with the ground truth:\n" + "\n".join(grade.diff_lines())
    assert set(not_collected) <= breaking, f"hosts not collected without a transport fault: {not_collected}"
    assert result.tenant.status == "collected"
    assert all(fetch.error is None for fetch in result.crls)
    if scenario == "healthy":
        assert result.compliant
