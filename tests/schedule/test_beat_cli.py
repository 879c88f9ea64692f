"""``fleetfix beat`` through the console script: scheduled sweeps and playbook runs against a lab,
one fire per job and local date, approvals of risky playbooks, and the lease between real beat
processes (a second beat stands by or exits; a killed beat's lease expires)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.schedule.lease import read_lease
from orchestrator.store import Store, create_store_engine
from tests.clirun import FLEETFIX, Cli
from tests.remediation.support import LabFleet, lab_fleet
from tests.reports.receiver import running_receiver

SCHEDULE = """

[schedule]
timezone = "Europe/Amsterdam"

[[schedule.jobs]]
name = "nightly-sweep"
cron = "0 2 * * *"

[[schedule.jobs]]
name = "weekend-rras"
kind = "playbook"
playbook = "rras-root-thumbprint"
cron = "30 22 * * SAT"
window = "00:00-24:00 UTC"
all_hosts = true
"""


@pytest.fixture
def fleet(tmp_path: Path, cli: Cli) -> Iterator[LabFleet]:
    with lab_fleet("healthy", tmp_path / "lab", cli) as running:
        with running.config.open("a", encoding="utf-8") as handle:
            handle.write(SCHEDULE)
        yield running


def beat_once(fleet: LabFleet, now: str, code: int = 0) -> dict[str, Any]:
    document: dict[str, Any] = fleet.json("beat", "--once", "--now", now, code=code)
    return document


def test_a_scheduled_sweep_fires_once_per_local_date_and_emits_the_sweep_document(fleet: LabFleet) -> None:
    listing = fleet.json("beat", "--list", code=1)  # the risky playbook job is not approved yet
    jobs = {job["name"]: job for job in listing["jobs"]}
    assert jobs["nightly-sweep"]["keyed_by"] == "job, local date"
    assert jobs["nightly-sweep"]["playbook"] is None
    assert "approved_digest" in jobs["weekend-rras"]["playbook"]["problem"]

    first = beat_once(fleet, "2026-06-01T02:00:30+02:00")
    assert [fire["job"] for fire in first["fired"]] == ["nightly-sweep"]
    fired = first["fired"][0]
    assert (fired["fired"], fired["status"], fired["local_date"], fired["slot"]) == (
        True,
        "succeeded",
        "2026-06-01",
        None,
    )
    assert (fired["scheduled_at"], fired["scheduled_local"]) == (
        "2026-06-01T00:00:00+00:00",
        "2026-06-01T02:00:00+02:00",
    )
    assert fired["attention"] is False
    assert "24/24 hosts collected, 0 findings" in fired["message"]
    # the same document `fleetfix sweep -o json` prints
    document = fired["document"]
    by_hand = fleet.sweep()
    assert set(document) == set(by_hand)
    assert (document["run_id"], document["compliant"], document["counts"]["hosts"]["selected"]) == (
        fired["run_id"],
        True,
        24,
    )

    # a second beat (or a restart) at the same local date: nothing fires, nothing is swept
    again = beat_once(fleet, "2026-06-01T02:05:00+02:00")
    assert [(fire["job"], fire["fired"]) for fire in again["fired"]] == [("nightly-sweep", False)]
    sweeps = fleet.store_rows("select requested_by from runs where kind = 'sweep' order by created_at")
    assert sweeps == [("schedule:nightly-sweep",), (sweeps[1][0],)]  # the scheduled one, then ours
    fires = fleet.store_rows("select job, local_date, slot, status, dispatch, run_id from schedule_fires")
    assert fires == [("nightly-sweep", "2026-06-01", "", "succeeded", "in-process", fired["run_id"])]
    stored = fleet.store_rows(f"select summary from runs where id = '{fired['run_id']}'")
    assert json.loads(stored[0][0])["compliant"] is True

    # the next local date fires again
    tomorrow = beat_once(fleet, "2026-06-02T02:00:01+02:00")
    assert [(fire["job"], fire["fired"]) for fire in tomorrow["fired"]] == [("nightly-sweep", True)]


def test_a_scheduled_sweep_notifies_the_webhooks_as_fleetfix_sweep_does(fleet: LabFleet) -> None:
    with running_receiver() as receiver:
        with fleet.config.open("a", encoding="utf-8") as handle:
            handle.write(f'\n[[notify.webhooks]]\nurl = "{receiver.url("/ok/beat")}"\n')
        fired = beat_once(fleet, "2026-06-01T02:00:30+02:00")["fired"][0]
        (posted,) = receiver.to("ok")
    payload = posted.json()
    assert (payload["event"], payload["run_id"], payload["compliant"]) == ("sweep", fired["run_id"], True)
    assert payload["hosts"]["selected"] == 24
    assert fired["document"]["notes"] == []  # the webhook answered: no note about it


def test_a_scheduled_risky_playbook_runs_only_with_a_current_approval(fleet: LabFleet) -> None:
    beat_once(fleet, "2026-06-01T02:00:30+02:00")  # the nightly sweep: the context a run plans in

    refused = beat_once(fleet, "2026-06-06T22:30:10+02:00", code=1)
    (fire,) = refused["fired"]
    assert (fire["job"], fire["status"]) == ("weekend-rras", "refused")
    digest = fleet.json("beat", "--list", code=1)["jobs"][1]["playbook"]["approval_digest"]
    assert f'approved_digest = "{digest}"' in fire["message"]
    assert fleet.store_rows("select count(*) from runs where kind = 'playbook'") == [(0,)]

    # an approval for another version of the job is refused too
    with fleet.config.open("a", encoding="utf-8") as handle:
        handle.write('approved_by = "bob@corp"\napproved_digest = "0123456789ab"\n')
    stale = beat_once(fleet, "2026-06-13T22:30:10+02:00", code=1)
    assert "was for another version of this job" in stale["fired"][0]["message"]

    text = fleet.config.read_text(encoding="utf-8").replace("0123456789ab", digest)
    fleet.config.write_text(text, encoding="utf-8")
    assert fleet.json("beat", "--list")["jobs"][1]["playbook"]["problem"] is None
    ran = beat_once(fleet, "2026-06-20T22:30:10+02:00")
    (fire,) = ran["fired"]
    assert (fire["status"], fire["attention"]) == ("succeeded", False)
    run = fire["document"]
    assert (run["status"], run["playbook_id"], run["requested_by"], run["approved_by"]) == (
        "succeeded",
        "rras-root-thumbprint",
        "schedule:weekend-rras",
        "bob@corp",
    )
    assert {target["state"] for target in run["targets"]} == {"unchanged"}  # healthy: nothing to change
    audit = fleet.json("audit", "show", "--limit", "50")["entries"]
    actions = [(entry["actor"], entry["action"]) for entry in audit if entry["target"] == run["id"]]
    assert ("schedule:weekend-rras", "run.create") in actions
    assert ("bob@corp", "run.approve") in actions


# --- real beat processes and the lease ----------------------------------------------------------------


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "fleetfix.toml"
    config.write_text(
        'data_dir = "data"\n\n[schedule]\ntimezone = "UTC"\nlease_ttl_s = 5\n\n'
        '[[schedule.jobs]]\nname = "leap-day"\ncron = "0 0 29 2 *"\n',
        encoding="utf-8",
    )
    return config


class BeatProcess:
    """A long-running ``fleetfix beat`` whose stderr lines are collected as they come."""

    def __init__(self, cli: Cli, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [FLEETFIX, "-c", str(config), "beat", *args],
            cwd=cli.cwd,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        seen: list[str] = []
        deadline = datetime.now() + timedelta(seconds=timeout)
        while datetime.now() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, f"beat exited {self.process.returncode}: {seen}"
                continue
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in {seen}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


def store_of(tmp_path: Path) -> Store:
    return Store.from_engine(create_store_engine(f"sqlite:///{tmp_path / 'data' / 'fleetfix.db'}"))


def test_one_beat_at_a_time_and_a_killed_beats_lease_expires(tmp_path: Path, cli: Cli) -> None:
    config = write_config(tmp_path)
    active = BeatProcess(cli, config)
    try:
        line = active.wait_for("holding the schedule lease")
        holder = line.split("holding the schedule lease as ", 1)[1].split(" ", 1)[0]

        # the container health check: a beat serves the schedule
        health = cli.run("-c", str(config), "beat", "--health", "-o", "json")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["lease"]["holder"] == holder

        # a second beat run from a timer: the lease is held, nothing fires, and that is no error
        second = cli.run("-c", str(config), "beat", "--once", "--output", "json")
        assert second.returncode == 0, second.stderr
        document = json.loads(second.stdout)
        assert (document["lease"]["mine"], document["lease"]["holder"], document["fired"]) == (
            False,
            holder,
            [],
        )
        assert "another beat is active" in second.stderr

        # a second long-running beat told not to stand by exits 1 and says who holds the schedule
        third = cli.run("-c", str(config), "beat", "--no-standby")
        assert third.returncode == 1
        assert f"another beat is active: {holder} holds the schedule lease until" in third.stderr

        active.process.send_signal(signal.SIGKILL)  # a crash: no chance to give the lease back
        active.stop()
    finally:
        active.stop()
    with store_of(tmp_path) as store:
        lease = read_lease(store)
    assert lease is not None
    assert lease.holder == holder
    # before the lease expires the dead beat still holds it; after, a new beat takes over
    before = (lease.expires_at - timedelta(seconds=1)).isoformat()
    after = (lease.expires_at + timedelta(seconds=1)).isoformat()
    assert cli.run("-c", str(config), "beat", "--health", "--now", after).returncode == 1  # nobody serves it
    blocked = json.loads(cli.run("-c", str(config), "beat", "--once", "--now", before, "-o", "json").stdout)
    assert (blocked["lease"]["mine"], blocked["lease"]["holder"]) == (False, holder)
    taken = json.loads(cli.run("-c", str(config), "beat", "--once", "--now", after, "-o", "json").stdout)
    assert taken["lease"]["mine"] is True
    assert taken["lease"]["holder"] != holder


def test_a_stopped_beat_gives_the_lease_back(tmp_path: Path, cli: Cli) -> None:
    config = write_config(tmp_path)
    active = BeatProcess(cli, config)
    try:
        active.wait_for("holding the schedule lease")
        active.process.send_signal(signal.SIGTERM)
        assert active.process.wait(60) == 0
    finally:
        active.stop()
    with store_of(tmp_path) as store:
        assert read_lease(store) is None


def test_a_beat_without_jobs_says_so(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "fleetfix.toml").write_text('data_dir = "data"\n', encoding="utf-8")
    result = cli.run("beat", "--once")
    assert result.returncode == 2
    assert "nothing to schedule: add [[schedule.jobs]]" in result.stderr


def test_now_must_be_an_aware_iso_time(tmp_path: Path, cli: Cli) -> None:
    write_config(tmp_path)
    result = cli.run("beat", "--once", "--now", "2026-06-01T02:00:00")
    assert result.returncode == 2
    assert "--now: '2026-06-01T02:00:00' needs an offset or Z" in result.stderr
