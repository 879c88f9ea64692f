"""Playbooks and sweeps against the ``seed-article`` lab, executed by two ``fleetfix worker``
processes on the real Redis and PostgreSQL: the same result as the local executor on an identical
lab, each change once; the configuration errors that keep Celery from a SQLite store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.celery.support import REDIS_URL, Worker, lab_env, store_rows, wait_until, workers
from tests.clirun import Cli
from tests.remediation.support import LabFleet, applied_once, change_key, lab_fleet, remediable
from tests.remediation.test_remediation_lab import ORDER


def states(run: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {target["name"]: (target["wave"], target["state"]) for target in run["targets"]}


def instance_free(text: str) -> str:
    """Two labs of one scenario differ in their ports, hence in the CRL URLs their certificates
    name and the thumbprints of those certificates; everything else is the same."""
    return re.sub(r"\b[0-9A-Fa-f]{40}\b", "<thumbprint>", re.sub(r":\d{2,5}/", ":<port>/", text))


def findings_of(sweep: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted(
        (item["host"], item["check_id"], instance_free(item["subject"])) for item in sweep["findings"]
    )


def change_keys(fleet: LabFleet) -> list[tuple[str, ...]]:
    """Every change the lab recorded as (host, script, setting): what changed where, and how often
    (the values carry times and lab-specific thumbprints)."""
    return sorted(
        tuple(instance_free(part) for part in change_key(change)) for change in fleet.product_changes()
    )


def fix_everything(fleet: LabFleet) -> dict[str, Any]:
    """What the remediation test does: sweep, every shipped playbook in order, sweep again."""
    first = fleet.sweep()
    runs = {playbook: fleet.json("run", playbook, "--yes") for playbook in ORDER}
    second = fleet.sweep()
    return {"first": first, "runs": runs, "second": second}


def test_playbooks_on_two_workers_give_what_the_local_executor_gives(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str
) -> None:
    env = lab_env(cli_env, store_url=shared_store, broker_url=REDIS_URL, prefix=queue_prefix)
    with lab_fleet("seed-article", tmp_path / "celery", Cli(tmp_path, env)) as fleet:
        pair = (Worker("a", fleet.config, env, tmp_path), Worker("b", fleet.config, env, tmp_path))
        with workers(*pair):
            celery = fix_everything(fleet)
            celery_changes = change_keys(fleet)
            assert applied_once(fleet.product_changes()) == []
        logs = "".join(worker.log_text() for worker in pair)
    # the work really went through the workers, both of them
    assert "fleetfix.runs.apply_batch" in logs
    assert "fleetfix.sweeps.collect_batch" in logs
    assert all("succeeded in" in worker.log_text() for worker in pair)

    with lab_fleet("seed-article", tmp_path / "local", Cli(tmp_path, cli_env)) as fleet:
        local = fix_everything(fleet)
        local_changes = change_keys(fleet)

    assert findings_of(celery["first"]) == findings_of(local["first"])
    assert {playbook: states(run) for playbook, run in celery["runs"].items()} == {
        playbook: states(run) for playbook, run in local["runs"].items()
    }
    assert all(run["status"] == "succeeded" for run in celery["runs"].values())
    assert remediable(celery["second"]["findings"]) == remediable(local["second"]["findings"]) == []
    assert celery_changes == local_changes
    # the shared store's ledgers: each step once per run and host, the collection ledger emptied
    duplicates = store_rows(
        shared_store,
        "select run_id, host, step from action_journal group by run_id, host, step having count(*) > 1",
    )
    assert duplicates == []
    assert store_rows(shared_store, "select count(*) from collected_hosts") == [(0,)]
    assert store_rows(shared_store, "select count(*) from host_leases") == [(0,)]


def test_workers_and_runs_refuse_sqlite_and_a_worker_needs_a_broker(tmp_path: Path, cli: Cli) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  ep-1: {role: endpoint, address: 127.0.0.1, credential: vault:x}\n")
    config = tmp_path / "fleetfix.toml"
    config.write_text(f'inventory = ["{inventory}"]\nbroker_url = "{REDIS_URL}"\n')
    for command in (["worker"], ["sweep"], ["runs", "resume", "no-such-run"]):
        result = cli.run("-c", str(config), *command)
        assert result.returncode == 2, (command, result.stderr)
        assert "store_url: Celery workers share the store" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    config.write_text(f'inventory = ["{inventory}"]\nstore_url = "postgresql+psycopg://u@127.0.0.1/x"\n')
    result = cli.run("-c", str(config), "worker")
    assert result.returncode == 2
    assert "broker_url: no broker configured" in result.stderr


@pytest.mark.parametrize("queues", ["celery", "winrm,bogus"])
def test_a_worker_refuses_unknown_queues(tmp_path: Path, cli: Cli, queues: str) -> None:
    config = tmp_path / "fleetfix.toml"
    config.write_text(f'broker_url = "{REDIS_URL}"\nstore_url = "postgresql+psycopg://u@127.0.0.1/x"\n')
    result = cli.run("-c", str(config), "worker", "--queues", queues)
    assert result.returncode == 2
    assert "--queues: unknown queue" in result.stderr


def test_advance_run_on_the_control_queue_drives_an_approved_run_once(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str
) -> None:
    from orchestrator.config import load_settings  # noqa: PLC0415
    from tasks.app import TASK_ADVANCE_RUN, make_app  # noqa: PLC0415

    env = lab_env(cli_env, store_url=shared_store, broker_url=REDIS_URL, prefix=queue_prefix)
    alice, bob = {"USER": "alice", "LOGNAME": "alice"}, {"USER": "bob", "LOGNAME": "bob"}
    with lab_fleet("seed-article", tmp_path / "lab", Cli(tmp_path, env)) as fleet:
        pair = (
            Worker("a", fleet.config, env, tmp_path, concurrency=2),
            Worker("b", fleet.config, env, tmp_path, concurrency=2),
        )
        with workers(*pair):
            fleet.sweep()
            waiting = fleet.json("run", "rras-root-thumbprint", env=alice, code=1)
            assert waiting["status"] == "awaiting_approval"
            fleet.json("runs", "approve", waiting["id"], env=bob)
            settings = load_settings(
                fleet.config,
                store_url=shared_store,
                broker_url=REDIS_URL,
                celery={"queue_prefix": queue_prefix},
            )
            app = make_app(settings)
            for _ in range(2):  # twice at once: one drives the run, the other finds it busy (or done)
                app.send_task(TASK_ADVANCE_RUN, args=(waiting["id"],))
            finished = wait_until(
                lambda: (
                    store_rows(shared_store, f"select status from runs where id = '{waiting['id']}'")
                    == [("succeeded",)]
                ),
                120,
            )
            assert finished, "".join(worker.log_text()[-2000:] for worker in pair)
            assert wait_until(lambda: "".join(w.log_text() for w in pair).count("advance_run") >= 4, 30)
        logs = "".join(worker.log_text() for worker in pair)
        assert applied_once(fleet.product_changes()) == []
        run = fleet.json("runs", "show", waiting["id"])
    assert {target["name"]: target["state"] for target in run["targets"]} == {"rras-05": "succeeded"}
    starts = store_rows(
        shared_store,
        f"select count(*) from audit_log where action = 'run.start' and target = '{waiting['id']}'",
    )
    assert starts == [(1,)]
    assert "fleetfix.runs.apply_batch" in logs
