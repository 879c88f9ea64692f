"""The broker going away mid-run (a private Redis, killed and restarted), a sweep through RabbitMQ,
and a batch that hits its soft time limit on a hung host."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.celery.support import (
    AMQP_URL,
    REDIS_URL,
    PrivateRedis,
    Worker,
    delete_amqp_queues,
    lab_env,
    scenario_file,
    store_rows,
    wait_until,
    workers,
)
from tests.celery.test_celery_kill import SLOW_ENDPOINTS, TARGETS, journal_count, newest_run
from tests.clirun import Cli
from tests.remediation.support import applied_once, lab_fleet


def test_a_run_completes_across_a_broker_restart(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str
) -> None:
    broker = PrivateRedis(tmp_path)
    broker.start()
    try:
        scenario = scenario_file(tmp_path / "scenario", "seed-article-slow", SLOW_ENDPOINTS)
        env = lab_env(
            cli_env,
            store_url=shared_store,
            broker_url=broker.url,
            prefix=queue_prefix,
            FLEETFIX_CELERY__BATCH_SIZE=2,
        )
        with lab_fleet(str(scenario), tmp_path / "lab", Cli(tmp_path, env)) as fleet:
            pair = (Worker("a", fleet.config, env, tmp_path), Worker("b", fleet.config, env, tmp_path))
            with workers(*pair):
                fleet.sweep()
                before = newest_run(shared_store)
                process = fleet.popen(
                    "run", "device-cert-reenroll", "--yes", "--concurrency", "1", "--output", "json"
                )
                assert wait_until(lambda: newest_run(shared_store) not in {None, before}, 60)
                run_id = newest_run(shared_store)
                # the second wave is under way (the canary is done): queued batches, one in progress
                assert wait_until(lambda: journal_count(shared_store, run_id, applied=False) >= 2, 90)
                broker.kill()  # no persistence: every queued and unacknowledged message is gone
                time.sleep(2)
                broker.start()
                out, err = process.communicate(timeout=300)
            logs = "".join(worker.log_text() for worker in pair)
            assert process.returncode == 0, f"{err[-3000:]}\n{logs[-3000:]}"
            run = json.loads(out)
            assert run["status"] == "succeeded"
            assert {target["name"]: target["state"] for target in run["targets"]} == dict.fromkeys(
                TARGETS, "succeeded"
            )
            assert applied_once(fleet.product_changes()) == []
            journal = store_rows(
                shared_store,
                f"select host, state from action_journal where run_id = '{run_id}' order by host",
            )
            assert journal == [(host, "applied") for host in sorted(TARGETS)]
            # the workers lost the broker and found it again
            assert "Connected to redis" in logs
            assert logs.count("Connected to redis") >= 3, logs[-3000:]
    finally:
        broker.kill()


def test_a_sweep_through_rabbitmq(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str
) -> None:
    prefix = f"{queue_prefix}-amqp"
    env = lab_env(cli_env, store_url=shared_store, broker_url=AMQP_URL, prefix=prefix)
    local = {"FLEETFIX_BROKER_URL": ""}  # no broker: the same sweep collected in the CLI's process
    try:
        with lab_fleet("seed-article", tmp_path / "lab", Cli(tmp_path, env)) as fleet:
            worker = Worker("rabbit", fleet.config, env, tmp_path)
            with workers(worker):
                distributed = fleet.sweep()
            in_process = fleet.json("sweep", code=1, env=local)
        assert "fleetfix.sweeps.collect_batch" in worker.log_text()
        assert "amqp://" in worker.log_text()
        assert distributed["counts"]["hosts"] == {"selected": 31, "ok": 31, "unreachable": 0, "failed": 0}
        found = {(f["host"], f["check_id"], f["subject"]) for f in distributed["findings"]}
        assert found == {(f["host"], f["check_id"], f["subject"]) for f in in_process["findings"]}
        assert found
        assert store_rows(shared_store, "select count(*) from collected_hosts") == [(0,)]
    finally:
        delete_amqp_queues(AMQP_URL, prefix)


HUNG_HOST = "transport_faults:\n  - {hosts: [EP-0014], faults: {hang: true}}\n"


def test_a_batch_at_its_soft_time_limit_records_what_it_finished_and_fails_the_hung_target(
    tmp_path: Path, cli_env: dict[str, str], shared_store: str, queue_prefix: str
) -> None:
    scenario = scenario_file(tmp_path / "scenario", "seed-article-hung", HUNG_HOST)
    env = lab_env(
        cli_env,
        store_url=shared_store,
        broker_url=REDIS_URL,
        prefix=queue_prefix,
        FLEETFIX_CELERY__SOFT_TIME_LIMIT_S=6,
        FLEETFIX_CELERY__TIME_LIMIT_S=60,
        FLEETFIX_CELERY__VISIBILITY_TIMEOUT_S=90,
    )
    hosts = "name:ep-0013 or name:ep-0014 or name:ep-0015"
    with lab_fleet(str(scenario), tmp_path / "lab", Cli(tmp_path, env)) as fleet:
        worker = Worker("limited", fleet.config, env, tmp_path)
        with workers(worker):
            swept = fleet.json("sweep", "--timeout", "3", code=1)
            rollout = ("--all-hosts", "--limit", hosts, "--canary", "0", "--max-fail", "1", "-j", "3")
            run = fleet.json("run", "device-cert-reenroll", *rollout, "--timeout", "120", "--yes", code=1)
        log = worker.log_text()
    hung = {record["host"]: record for record in swept["hosts"] if record["host"] == "ep-0014"}
    assert hung["ep-0014"]["status"] in {"unreachable", "failed"}
    targets = {target["name"]: target for target in run["targets"]}
    assert {name: target["state"] for name, target in targets.items()} == {
        "ep-0013": "unchanged",
        "ep-0014": "failed",
        "ep-0015": "unchanged",
    }
    assert targets["ep-0014"]["error_kind"] == "timed_out"
    assert "soft time limit (6 s)" in targets["ep-0014"]["message"]
    assert run["status"] == "succeeded"  # one failure is within --max-fail 1
    assert store_rows(shared_store, f"select count(*) from host_leases where run_id = '{run['id']}'") == [
        (0,)
    ]
    assert "batch stopped at its soft time limit" in log
