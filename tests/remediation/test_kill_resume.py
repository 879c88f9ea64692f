"""A ``fleetfix run`` killed with SIGKILL mid-run, then ``fleetfix runs resume``, ends exactly where
an uninterrupted run ends: the same lab state, the same change log, the same journal.

Two labs of the same scenario (same seed: the same PKI, hosts and faults) run the same playbook;
one run is killed after a few targets finished, while others are in flight, and resumed by a new
process.  The comparison leaves out only what differs between any two runs (times, run ids).
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Cli
from tests.remediation.support import LabFleet, lab_fleet

PLAYBOOK = "fix-route-prefixes"
ROLLOUT = ("--yes", "--canary", "1", "--wave-size", "4", "-j", "4")
RUN_STARTED = re.compile(r"^run ([0-9a-f-]{36}) started")
TARGET_DONE = re.compile(r"^wave \d+: \S+ (succeeded|unchanged|failed)")
_VARYING = re.compile(r"(_at|_time|time|date)$", re.IGNORECASE)


def timeless(value: Any) -> Any:
    """``value`` without the fields that differ between two runs of the same change (times)."""
    if isinstance(value, dict):
        return {key: timeless(item) for key, item in sorted(value.items()) if not _VARYING.search(key)}
    if isinstance(value, list):
        return [timeless(item) for item in value]
    return value


def lab_changes(fleet: LabFleet) -> Counter[str]:
    return Counter(
        json.dumps([c["host"], c["script_id"], c["what"], timeless(c["before"]), timeless(c["after"])])
        for c in fleet.changes()
    )


def journal(fleet: LabFleet, run_id: str) -> Counter[str]:
    rows = fleet.store_rows(
        f"select host, step, action, state, before, after from action_journal where run_id = '{run_id}'"
    )
    return Counter(
        json.dumps(
            [
                host,
                step,
                action,
                state,
                timeless(json.loads(before or "null")),
                timeless(json.loads(after or "null")),
            ]
        )
        for host, step, action, state, before, after in rows
    )


def truth(fleet: LabFleet) -> list[str]:
    """The lab's ground truth now, without what differs between two labs of one seed: the CRL
    server's port, and so the thumbprints of the certificates that name it."""
    text = (json.dumps(entry, sort_keys=True) for entry in fleet.lab("/truth")["truth"])
    return sorted(
        re.sub(r"\b[0-9A-F]{40}\b", "THUMBPRINT", re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", entry))
        for entry in text
    )


def outcome(run: dict[str, Any]) -> dict[str, str]:
    return {target["name"]: target["state"] for target in run["targets"]}


def killed_and_resumed(fleet: LabFleet, after_targets: int) -> tuple[str, dict[str, Any]]:
    """Start the run, SIGKILL the CLI once ``after_targets`` targets finished, resume it."""
    process = fleet.popen("run", PLAYBOOK, *ROLLOUT)
    assert process.stderr is not None
    run_id, finished = None, 0
    try:
        for line in process.stderr:
            match = RUN_STARTED.match(line)
            run_id = match.group(1) if match else run_id
            finished += bool(TARGET_DONE.match(line))
            if finished >= after_targets:
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.communicate(timeout=60)
    assert run_id is not None, "the run never started"
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    interrupted = fleet.json("runs", "show", run_id)
    assert interrupted["status"] == "running", interrupted["status"]  # as the kill left it
    resumed = fleet.json("runs", "resume", run_id)
    return run_id, resumed


@pytest.mark.parametrize("after_targets", [3, *(pytest.param(n, marks=pytest.mark.slow) for n in (1, 6, 11))])
def test_a_killed_run_resumed_ends_like_an_uninterrupted_one(
    tmp_path: Path, cli: Cli, after_targets: int
) -> None:
    with lab_fleet("seed-article", tmp_path / "straight", cli) as straight:
        straight.sweep()
        reference = straight.json("run", PLAYBOOK, *ROLLOUT)
        expected_changes, expected_journal = lab_changes(straight), journal(straight, reference["id"])
        expected_truth = truth(straight)
    assert reference["status"] == "succeeded"

    with lab_fleet("seed-article", tmp_path / "killed", cli) as killed:
        killed.sweep()
        run_id, resumed = killed_and_resumed(killed, after_targets)
        assert resumed["status"] == "succeeded", resumed["status_message"]
        assert outcome(resumed) == outcome(reference)
        assert lab_changes(killed) == expected_changes
        assert journal(killed, run_id) == expected_journal
        assert truth(killed) == expected_truth
        # every step is in the journal once; a step taken over shows its second attempt
        attempts = killed.store_rows(f"select max(attempts) from action_journal where run_id = '{run_id}'")
        assert attempts[0][0] in {1, 2}
