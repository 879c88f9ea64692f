"""``fleetfix db`` and ``fleetfix audit`` through the installed console script, on both backends."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import update

from orchestrator.store import AuditLogRow, append_audit, create_store_engine, head_revision
from tests.clirun import Cli


def store_cli(tmp_path: Path, cli_env: dict[str, str], store_url: str) -> Cli:
    """The console-script runner with a private data directory and the given store."""
    env = {**cli_env, "FLEETFIX_DATA_DIR": str(tmp_path / "data"), "FLEETFIX_STORE_URL": store_url}
    return Cli(tmp_path, env)


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str], db_url: str) -> Cli:
    return store_cli(tmp_path, cli_env, db_url)


def test_db_current_and_upgrade(cli: Cli, db_url: str) -> None:
    before = cli.json("db", "current", code=1)  # empty database: behind
    assert (before["current"], before["head"], before["up_to_date"]) == (None, head_revision(), False)

    upgraded = cli.json("db", "upgrade")
    assert upgraded == {"url": before["url"], "from": None, "to": head_revision(), "changed": True}
    again = cli.run("db", "upgrade")
    assert again.returncode == 0
    assert "already at" in again.stdout

    after = cli.run("db", "current")
    assert after.returncode == 0, after.stderr
    assert "up to date" in after.stdout
    assert cli.json("db", "current")["up_to_date"] is True


def test_audit_verify_before_and_after_tampering(cli: Cli, db_url: str) -> None:
    cli.json("db", "upgrade")
    engine = create_store_engine(db_url)
    try:
        for n in range(3):
            append_audit(engine, "test@host", "test.append", f"host-{n}", {"n": n})

        intact = cli.json("audit", "verify")
        assert intact["intact"] is True
        assert intact["entries_verified"] == 4  # db.upgrade + 3
        assert intact["failure"] is None
        recorded = intact["head"]["anchor"]
        assert recorded == f"4:{intact['head']['hash']}"
        table = cli.run("audit", "verify", "--expect-head", recorded)
        assert table.returncode == 0, table.stderr
        assert "intact" in table.stdout

        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
            else:
                connection.exec_driver_sql("DROP TRIGGER audit_log_append_only_update")
            connection.execute(update(AuditLogRow).where(AuditLogRow.seq == 3).values(target="elsewhere"))
    finally:
        engine.dispose()

    broken = cli.json("audit", "verify", code=1)
    assert broken["intact"] is False
    assert broken["failure"]["first_bad_seq"] == 3
    assert broken["failure"]["problem"] == "edited"
    table = cli.run("audit", "verify")
    assert table.returncode == 1
    assert "entry 3" in table.stderr


def test_audit_show_lists_entries_written_by_the_cli(cli: Cli) -> None:
    cli.json("db", "upgrade")
    shown = cli.json("audit", "show", "--limit", "5")
    assert shown["count"] == 1
    [entry] = shown["entries"]
    assert entry["seq"] == 1
    assert entry["action"] == "db.upgrade"
    assert entry["actor"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert entry["details"] == {"from": None, "to": head_revision()}
    assert entry["ts"].endswith("+00:00")
    table = cli.run("audit", "show")
    assert table.returncode == 0, table.stderr
    assert "db.upgrade" in table.stdout


def test_sqlite_store_is_created_on_first_use(
    tmp_path: Path, cli_env: dict[str, str], sqlite_url: str
) -> None:
    result = store_cli(tmp_path, cli_env, sqlite_url).json("audit", "verify")
    assert result["intact"] is True
    assert result["entries_verified"] == 0


def test_postgres_behind_is_an_error_naming_the_fix(
    tmp_path: Path, cli_env: dict[str, str], postgresql_url: str
) -> None:
    error = store_cli(tmp_path, cli_env, postgresql_url).json("audit", "verify", code=3)["error"]
    assert error["kind"] == "store"
    assert "fleetfix db upgrade" in error["message"]


def test_unreachable_store_exits_3_without_showing_the_password(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    cli = store_cli(tmp_path, cli_env, "postgresql+psycopg://fleet:hunter2-secret@127.0.0.1:1/fleetfix")
    for args in (("db", "current"), ("db", "upgrade"), ("audit", "verify"), ("audit", "show")):
        result = cli.run(*args, "--output", "json")
        assert result.returncode == 3, args
        assert "hunter2-secret" not in result.stdout + result.stderr
        assert json.loads(result.stdout)["error"]["kind"] == "store"
        assert "fleet:***@127.0.0.1:1" in result.stderr


def test_malformed_expected_head_is_bad_input(
    tmp_path: Path, cli_env: dict[str, str], sqlite_url: str
) -> None:
    result = store_cli(tmp_path, cli_env, sqlite_url).run(
        "audit", "verify", "--expect-head", "nope", "--output", "json"
    )
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["field"] == "--expect-head"
