"""Message signing: the envelope's rules (pure), configuration errors, and a real ``fleetfix worker``
on the real Redis that runs what the real app signed and rejects, without running it, every forged
message: unsigned, tampered, signed by an untrusted key, without an envelope, re-routed to another
task, replayed under another id, or past its deadline."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.engine import FailureBudget, RolloutOptions, create_run
from orchestrator.engine.runs import request_cancel
from orchestrator.errors import ConfigError
from orchestrator.store import Store, create_store_engine, upgrade
from tasks.signing import (
    ENVELOPE_KEY,
    Envelope,
    SigningError,
    configure_signing,
    deadline_of,
    make_envelope,
    rejection,
)
from tests.schedule.certs import Signer, make_signer, trust
from tests.schedule.signing_support import message, publish, secure_serializer, sign, tamper, unsigned
from tests.schedule.workers import Worker, delete_redis_queues, wait_until

REDIS_DB = int(os.environ.get("FLEETFIX_TEST_SCHEDULE_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ADVANCE = "fleetfix.runs.advance_run"
SWEEP = "fleetfix.sweeps.scheduled_sweep"


# --- the envelope ---------------------------------------------------------------------------------


def test_the_deadline_is_expires_or_max_age_whichever_is_sooner() -> None:
    hour = timedelta(hours=1)
    assert deadline_of(None, NOW, hour) == NOW + hour
    assert deadline_of(60, NOW, hour) == NOW + timedelta(seconds=60)
    assert deadline_of(NOW + timedelta(minutes=5), NOW, hour) == NOW + timedelta(minutes=5)
    assert deadline_of((NOW + timedelta(days=2)).isoformat(), NOW, hour) == NOW + hour


def test_a_retry_keeps_the_first_deadline() -> None:
    first = make_envelope(ADVANCE, "t1", {"run_id": "r1"}, expires=30, now=NOW, max_age=timedelta(hours=1))
    assert (first.run_id, first.deadline) == ("r1", NOW + timedelta(seconds=30))
    later = NOW + timedelta(seconds=20)
    retry = make_envelope(
        ADVANCE, "t1", {ENVELOPE_KEY: first.to_json()}, expires=None, now=later, max_age=timedelta(hours=1)
    )
    assert (retry.deadline, retry.issued_at) == (first.deadline, later)
    other = make_envelope(
        ADVANCE, "t2", {ENVELOPE_KEY: first.to_json()}, expires=None, now=later, max_age=timedelta(hours=1)
    )
    assert other.deadline == later + timedelta(hours=1)


@pytest.mark.parametrize(
    ("envelope", "task", "task_id", "reason"),
    [
        (None, ADVANCE, "t1", "no fleetfix envelope"),
        ({"v": 1, "task": ADVANCE}, ADVANCE, "t1", "malformed"),
        ("ok", SWEEP, "t1", "re-routed"),
        ("ok", ADVANCE, "t2", "replayed"),
        ("expired", ADVANCE, "t1", "has passed"),
        ("ok", ADVANCE, "t1", None),
    ],
)
def test_rejection(envelope: Any, task: str, task_id: str, reason: str | None) -> None:
    if isinstance(envelope, str):
        issued = NOW - timedelta(hours=2) if envelope == "expired" else NOW
        envelope = Envelope(ADVANCE, "t1", None, issued, issued + timedelta(hours=1)).to_json()
    found = rejection(envelope, task=task, task_id=task_id, now=NOW)
    assert (found is None) if reason is None else (found is not None and reason in found), found


# --- configuration --------------------------------------------------------------------------------


def signing_settings(tmp_path: Path, signer: Signer, store: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        signing={
            "key_file": str(signer.key),
            "certificate": str(signer.certificate),
            "cert_store": str(store),
            **extra,
        },
    )


class NoApp:
    """configure_signing must fail before it touches the app."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"touched the app ({name}) before the material was checked")


def test_signing_off_changes_nothing() -> None:
    configure_signing(NoApp(), Settings())


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("missing key", "signing.key_file", "file not found"),
        ("open key", "signing.key_file", "accessible by group or others"),
        ("expired in store", "signing.cert_store", "expired on"),
        ("expired own", "signing.certificate", "expired on"),
        ("not rsa", "signing.certificate", "RSA keys only"),
        ("empty store", "signing.cert_store", "no *.pem"),
    ],
)
def test_unusable_material_is_a_config_error(tmp_path: Path, case: str, field: str, message: str) -> None:
    good = make_signer(tmp_path / "keys", "beat")
    store = trust(tmp_path / "trusted", good)
    signer = good
    if case == "missing key":
        signer = Signer(tmp_path / "nope.key", good.certificate)
    elif case == "open key":
        good.key.chmod(0o644)
    elif case == "expired in store":
        trust(store, make_signer(tmp_path / "old", "old", expired=True))
    elif case == "expired own":
        signer = make_signer(tmp_path / "old", "old", expired=True)
    elif case == "not rsa":
        signer = make_signer(tmp_path / "ec", "ec", curve=True)
    elif case == "empty store":
        store = tmp_path / "empty"
        store.mkdir()
    with pytest.raises(SigningError) as caught:
        configure_signing(NoApp(), signing_settings(tmp_path, signer, store))
    assert isinstance(caught.value, ConfigError)
    assert caught.value.field == field
    assert message in caught.value.message


# --- a real worker --------------------------------------------------------------------------------


@pytest.fixture
def queue_prefix() -> Iterator[str]:
    prefix = f"fleetfix-sigtest-{secrets.token_hex(4)}"
    yield prefix
    delete_redis_queues(REDIS_URL, prefix)


def write_config(tmp_path: Path, store_url: str, prefix: str, signer: Signer, store: Path) -> Path:
    config = tmp_path / "fleetfix.toml"
    config.write_text(
        f'data_dir = "data"\nstore_url = "{store_url}"\nbroker_url = "{REDIS_URL}"\n\n'
        f'[celery]\nqueue_prefix = "{prefix}"\n\n'
        f'[signing]\nkey_file = "{signer.key}"\ncertificate = "{signer.certificate}"\n'
        f'cert_store = "{store}"\n',
        encoding="utf-8",
    )
    return config


def cancelled_run(store_url: str) -> str:
    """A run whose controller does nothing (it is finished): advance_run returns its status."""
    with Store.from_engine(create_store_engine(store_url)) as store:
        run_id = create_run(
            store,
            playbook_id="signing-test",
            targets=[("h1", "endpoint")],
            rollout=RolloutOptions(canary=0, wave_size=1, max_fail=FailureBudget.parse("0")),
            requested_by="alice",
        )
        request_cancel(store, run_id, actor="alice")
    return run_id


def test_a_worker_runs_signed_tasks_and_rejects_forged_ones(
    tmp_path: Path, postgresql_url: str, queue_prefix: str, cli_env: dict[str, str]
) -> None:
    upgrade(postgresql_url)
    run_id = cancelled_run(postgresql_url)
    beat = make_signer(tmp_path / "keys", "beat")
    worker_signer = make_signer(tmp_path / "keys", "worker")
    stranger = make_signer(tmp_path / "stranger", "stranger")
    store = trust(tmp_path / "trusted", beat, worker_signer)
    config = write_config(tmp_path, postgresql_url, queue_prefix, worker_signer, store)
    queue = f"{queue_prefix}.control"
    trusted = secure_serializer(beat, str(store / "*.pem"))
    untrusted = secure_serializer(stranger, str(trust(tmp_path / "stranger-store", stranger) / "*.pem"))
    args = {"run_id": run_id}

    good = sign(message(ADVANCE, args), trusted)
    forged = {
        "unsigned": unsigned(message(ADVANCE, args)),
        "tampered": tamper(sign(message(ADVANCE, args), trusted), run_id, run_id[::-1]),
        "untrusted signer": sign(message(ADVANCE, args), untrusted),
        "no envelope": sign(message(ADVANCE, args, envelope=False), trusted),
        "re-routed": sign(message(SWEEP, args, envelope_task=ADVANCE), trusted),
        "expired": sign(message(ADVANCE, args, deadline_in=timedelta(seconds=-5)), trusted),
    }
    # the same signed body as `good`, sent again under a new task id
    replayed = message(ADVANCE, args)
    replayed.raw, replayed.headers = good.raw, {**good.headers, "id": replayed.id, "root_id": replayed.id}
    forged["replayed"] = replayed
    sentinel = sign(message(ADVANCE, args), trusted)

    env = {**cli_env, "FLEETFIX_CONFIG": str(config)}
    worker = Worker("signing", config, env, tmp_path).start()
    try:
        worker.wait_ready()
        publish(REDIS_URL, queue, good, *forged.values(), sentinel)
        # one process, one queue, prefetch 1: once the last message ran, every earlier one was handled
        assert wait_until(lambda: f"{sentinel.id}] succeeded" in worker.log_text(), 90), worker.log_text()[
            -5000:
        ]
    finally:
        worker.stop()
    log = worker.log_text()
    assert f"{good.id}] succeeded" in log
    assert "'status': 'cancelled'" in log
    for label, item in forged.items():
        assert f"{item.id}] succeeded" not in log, f"{label} ran:\n{log[-5000:]}"
    # the envelope's refusals name the task, its id and why
    no_envelope = forged["no envelope"].id
    assert (
        f"rejected {ADVANCE}[{no_envelope}]: no fleetfix envelope in the signed body; it was not run" in log
    )
    assert f"rejected {SWEEP}[{forged['re-routed'].id}]: the signed body is for task {ADVANCE}" in log
    assert f"rejected {ADVANCE}[{forged['replayed'].id}]: the signed body is for task id {good.id}" in log
    assert f"rejected {ADVANCE}[{forged['expired'].id}]: its deadline" in log
    # the serializer refuses what is not signed, badly signed or signed by a stranger (Celery's
    # lines name no task id: the body that would say which task it is was not trusted)
    assert "Received invalid task message: Refusing to deserialize untrusted content of type json" in log
    assert log.count("CRITICAL celery.worker.consumer.consumer: Can't decode message body") == 2
    assert "cryptography.exceptions.InvalidSignature" in log  # the tampered one
    assert "SecurityError: Unknown certificate: b'fleetfix stranger" in log


def test_beat_signs_what_it_sends_and_the_worker_runs_it(
    tmp_path: Path, postgresql_url: str, queue_prefix: str, cli_env: dict[str, str], cli: Any
) -> None:
    """The product end to end: ``fleetfix beat`` (signing with its key) sends a scheduled sweep,
    ``fleetfix worker`` (another key, trusting the beat's certificate) verifies and runs it."""
    upgrade(postgresql_url)
    beat = make_signer(tmp_path / "beat-keys", "beat")
    worker_signer = make_signer(tmp_path / "worker-keys", "worker")
    store = trust(tmp_path / "trusted", beat, worker_signer)
    (tmp_path / "worker").mkdir()
    (tmp_path / "beat").mkdir()
    worker_config = write_config(tmp_path / "worker", postgresql_url, queue_prefix, worker_signer, store)
    beat_config = write_config(tmp_path / "beat", postgresql_url, queue_prefix, beat, store)
    # The job is due now (by the real clock): the task's expiry derives from its fire time, and a
    # worker discards a task that expired before it arrived.
    now = datetime.now(UTC).replace(second=5, microsecond=0)
    with beat_config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[schedule]\ntimezone = "UTC"\n\n[[schedule.jobs]]\nname = "nightly"\n'
            f'cron = "{now.minute} {now.hour} * * *"\n'
        )
    env = {**cli_env, "FLEETFIX_CONFIG": str(worker_config)}
    worker = Worker("beat-signing", worker_config, env, tmp_path).start()
    try:
        worker.wait_ready()
        fired = cli.run("-c", str(beat_config), "beat", "--once", "--now", now.isoformat(), "-o", "json")
        assert fired.returncode == 0, fired.stderr
        (fire,) = json.loads(fired.stdout)["fired"]
        assert (fire["status"], fire["fire"]["dispatch"]) == ("dispatched", "celery")
        task_id = fire["fire"]["task_id"]
        # no inventory on the worker: the task runs and fails saying so, which proves it ran
        assert wait_until(lambda: task_id in worker.log_text() and "no inventory" in worker.log_text(), 90), (
            worker.log_text()[-5000:]
        )
    finally:
        worker.stop()
    log = worker.log_text()
    assert f"rejected {SWEEP}[{task_id}]" not in log
    assert "Can't decode message body" not in log
    assert f"Task {SWEEP}[{task_id}] raised" in log  # it ran: the worker has no inventory


SIGN_ONE = """
import json, sys
from kombu.serialization import dumps
from orchestrator.config import load_settings
from orchestrator.errors import ConfigError
from tasks.app import make_app
try:
    app = make_app(load_settings())
except ConfigError as exc:
    print(json.dumps({"error": str(exc), "field": exc.field}))
    sys.exit(0)
task = "fleetfix.runs.advance_run"
headers, properties, body, _sent = app.amqp.create_task_message("t1", task, (), {"run_id": "r1"})
content_type, _encoding, payload = dumps(body, serializer=app.conf.task_serializer)
print(json.dumps({"serializer": app.conf.task_serializer, "content_type": content_type,
                  "envelope": body[1]["_fleetfix"], "signed": len(payload)}))
"""


@pytest.mark.parametrize("password", ["right", "wrong"])
def test_an_encrypted_key_takes_its_password_by_reference(
    tmp_path: Path, cli_env: dict[str, str], password: str
) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    signer = make_signer(tmp_path / "keys", "beat", password=b"correct horse battery staple")
    store = trust(tmp_path / "trusted", signer)
    config = write_config(
        tmp_path, "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "fleetfix-sig-x", signer, store
    )
    with config.open("a", encoding="utf-8") as handle:
        handle.write('key_password = "env:SIGNING_KEY_PASSWORD"\n')
    secret = "correct horse battery staple" if password == "right" else "not the password at all"
    env = {**cli_env, "FLEETFIX_CONFIG": str(config), "SIGNING_KEY_PASSWORD": secret}
    result = subprocess.run(
        [sys.executable, "-c", SIGN_ONE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    if password == "right":
        assert (answer["serializer"], answer["content_type"]) == ("auth", "application/data")
        assert (answer["envelope"]["task"], answer["envelope"]["id"], answer["envelope"]["run_id"]) == (
            "fleetfix.runs.advance_run",
            "t1",
            "r1",
        )
    else:
        assert answer["field"] == "signing"
        assert "cannot set up message signing" in answer["error"]
        assert secret not in answer["error"]
