"""``fleetfix report sweep`` and ``fleetfix report metrics`` through the installed console script, on a
store filled through the sweep repository."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.errors import InputError, OutputFileError
from orchestrator.reports.export import CSV_COLUMNS
from orchestrator.reports.output import check_target, write_atomic, write_stdout
from orchestrator.store import Run, RunKind, RunStatus, Store, create_store_engine, upgrade
from tests.clirun import Cli
from tests.reports.support import T0, down, finding, ok, record_sweep

DAY = timedelta(days=1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    url = f"sqlite:///{data_dir / 'fleetfix.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    yield Store.from_engine(engine)
    engine.dispose()


@pytest.fixture
def fleetfix(cli: Cli, data_dir: Path) -> Cli:
    cli.env["FLEETFIX_DATA_DIR"] = str(data_dir)
    return cli


@pytest.fixture
def sweeps(store: Store) -> tuple[str, str]:
    hosts = [ok("ep-1"), ok("ep-2"), down("ep-3")]
    first = record_sweep(store, T0, hosts, [finding("ep-1"), finding("ep-2")])
    second = record_sweep(
        store, T0 + DAY, hosts, [finding("ep-1"), finding("ep-2", "EP-OS-01", "os", severity="low")]
    )
    return first, second


def report(cli: Cli, *args: str, code: int = 0) -> dict[str, object]:
    result = cli.run("report", *args, "--output", "json")
    assert result.returncode == code, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.endswith(".tmp"))


def test_html_csv_and_json_files(fleetfix: Cli, tmp_path: Path, sweeps: tuple[str, str]) -> None:
    first, second = sweeps
    written = report(fleetfix, "sweep", "-o", "out.html")
    assert written["run_id"] == second
    assert (written["format"], written["hosts"], written["findings"], written["trend"]) == ("html", 3, 2, 2)
    assert written["path"] == str(tmp_path / "out.html")
    page = (tmp_path / "out.html").read_text()
    assert written["bytes"] == len(page.encode())
    assert second in page
    assert page.startswith("<!DOCTYPE html>")

    report(fleetfix, "sweep", "--format", "csv", "-o", "out.csv", "--run", first)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(), newline="")))
    assert {row["sweep_run_id"] for row in rows} == {first}
    assert {row["status"] for row in rows} == {"new"}

    report(fleetfix, "sweep", "-f", "json", "-o", "out.json", "--trend", "1")
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["run"]["id"] == second
    assert len(document["trend"]) == 1
    assert [f["status"] for f in document["findings"]] == ["open", "new"]
    assert leftovers(tmp_path) == []


def test_standard_output(fleetfix: Cli, sweeps: tuple[str, str]) -> None:
    result = fleetfix.run("report", "sweep", "--format", "csv", "-o", "-")
    assert result.returncode == 0, result.stderr
    header, *rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert header == list(CSV_COLUMNS)
    assert len(rows) == 2
    assert "wrote the csv report" in result.stderr
    json_out = fleetfix.run("report", "sweep", "--format", "json", "-o", "-")
    assert json.loads(json_out.stdout)["schema_version"] == 1


def test_sites_come_from_the_inventory(fleetfix: Cli, tmp_path: Path, sweeps: tuple[str, str]) -> None:
    inventory = {
        "defaults": {"credential": "vault:x"},
        "hosts": {
            "ep-1": {"role": "endpoint", "address": "127.0.0.1", "tags": {"site": "ams"}},
            "ep-2": {"role": "endpoint", "address": "127.0.0.1"},
        },
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    report(fleetfix, "sweep", "-f", "json", "-o", "out.json", "--inventory", "inventory.yaml")
    document = json.loads((tmp_path / "out.json").read_text())
    assert [(row["site"], row["hosts"]) for row in document["compliance"]["by_site"]] == [
        ("ams", 1),
        ("unassigned", 2),
    ]
    assert "no inventory was available" not in (tmp_path / "out.json").read_text()
    report(fleetfix, "sweep", "-o", "out.html")
    assert "no inventory was available" in (tmp_path / "out.html").read_text()


def test_bad_input_writes_nothing(fleetfix: Cli, tmp_path: Path, store: Store) -> None:
    (tmp_path / "keep.html").write_text("old report")
    no_sweep = report(fleetfix, "sweep", "-o", "keep.html", code=2)
    assert no_sweep["error"] == {
        "kind": "input",
        "message": "--run: there is no completed sweep yet: run `fleetfix sweep` first",
        "field": "--run",
    }
    record_sweep(store, T0, [ok("ep-1")], [])
    with store.transaction() as session:
        playbook = Run(kind=RunKind.PLAYBOOK.value, status=RunStatus.SUCCEEDED.value, requested_by="t")
        session.add(playbook)
    for run_id in ("no-such-run", playbook.id):
        error = report(fleetfix, "sweep", "--run", run_id, "-o", "keep.html", code=2)["error"]
        assert error["field"] == "--run"  # type: ignore[index]
    missing_dir = report(fleetfix, "sweep", "-o", "nowhere/r.html", code=2)["error"]
    assert missing_dir["field"] == "-o"  # type: ignore[index]
    assert "does not exist" in missing_dir["message"]  # type: ignore[index]
    (tmp_path / "adir").mkdir()
    assert "is a directory" in report(fleetfix, "sweep", "-o", "adir", code=2)["error"]["message"]  # type: ignore[index]
    both = fleetfix.run("report", "sweep", "-o", "-", "--output", "json")
    assert both.returncode == 2
    assert json.loads(both.stdout)["error"]["field"] == "-o"
    assert (tmp_path / "keep.html").read_text() == "old report"
    assert not (tmp_path / "nowhere").exists()
    assert leftovers(tmp_path) == []
    assert fleetfix.run("report", "sweep", "--format", "pdf", "-o", "x").returncode == 2


def test_metrics(fleetfix: Cli, tmp_path: Path, sweeps: tuple[str, str]) -> None:
    written = report(fleetfix, "metrics", "-o", "fleetfix.prom")
    assert written["run_id"] == sweeps[1]
    text = (tmp_path / "fleetfix.prom").read_text()
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values[("fleetfix_hosts", (("state", "unreachable"),))] == 1
    assert values[("fleetfix_runs_total", (("kind", "sweep"), ("status", "succeeded")))] == 2
    assert values[("fleetfix_findings", (("check_id", "EP-OS-01"), ("severity", "low")))] == 1
    assert written["samples"] == len(values)
    assert (tmp_path / "fleetfix.prom").stat().st_mode & 0o044  # readable by node_exporter's user
    shown = fleetfix.run("report", "metrics", "-o", "-")
    assert shown.returncode == 0
    assert shown.stdout == text


def test_metrics_of_an_empty_store(fleetfix: Cli, tmp_path: Path, store: Store) -> None:
    written = report(fleetfix, "metrics", "-o", "fleetfix.prom")
    assert written["run_id"] is None
    assert "fleetfix_runs_total" in (tmp_path / "fleetfix.prom").read_text()
    assert "fleetfix_hosts" not in (tmp_path / "fleetfix.prom").read_text()


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")

    def failing(error: BaseException) -> Iterator[str]:
        yield "new half"
        raise error

    with pytest.raises(OutputFileError, match=r"report\.html: No space left"):
        write_atomic(target, failing(OSError(28, "No space left on device")))
    with pytest.raises(RuntimeError):
        write_atomic(target, failing(RuntimeError("renderer bug")))
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []
    assert write_atomic(target, iter(["new ", "report \u2713"])) == len("new report \u2713".encode())
    assert target.read_text() == "new report \u2713"


def test_check_target_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_target(tmp_path / "new.html")  # a new file in a writable directory
    for path, text in ((tmp_path / "no" / "r.html", "does not exist"), (tmp_path, "is a directory")):
        with pytest.raises(InputError, match=text) as raised:
            check_target(path)
        assert raised.value.field == "-o"
    assert write_stdout(iter(["a,b\r\n", "\u2713"])) == len("a,b\r\n\u2713".encode())
    assert capsys.readouterr().out == "a,b\r\n\u2713"
