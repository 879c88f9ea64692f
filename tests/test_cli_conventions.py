"""CLI conventions through the installed console script: version, init, JSON errors, README commands."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from orchestrator import __version__
from tests.clirun import Cli

ROOT = Path(__file__).resolve().parent.parent


def test_version(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fleetfix {__version__}"


def test_version_works_with_a_broken_config(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "fleetfix.toml").write_text("this is = = not toml\n")
    assert cli.run("--version").returncode == 0


def test_init_writes_starter_files_that_load(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("init", "site", "--output", "json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)["written"]
    assert sorted(Path(p).name for p in written) == ["fleetfix.toml", "inventory.yaml"]
    listed = cli.run("--config", "site/fleetfix.toml", "inventory", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    hosts = json.loads(listed.stdout)["hosts"]
    assert {host["role"] for host in hosts} == {"endpoint", "rras", "ca"}


def test_init_refuses_to_overwrite_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "inventory.yaml").write_text("mine\n")
    result = cli.run("init", "site", "--output", "json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["file"].endswith("inventory.yaml")
    assert "--force" in result.stderr
    assert (site / "inventory.yaml").read_text() == "mine\n"
    assert not (site / "fleetfix.toml").exists()


def test_config_error_is_one_line_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "fleetfix.toml").write_text('data_dir = "x"\nbogus = 1\n')
    result = cli.run("inventory", "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.search(r"fleetfix\.toml:2: bogus: unknown setting", lines[0])


def test_json_mode_prints_only_json_on_stdout_for_errors(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "fleetfix.toml").write_text('log_level = "LOUD"\n')
    result = cli.run("inventory", "list", "--output", "json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "config"
    assert document["error"]["field"] == "log_level"
    assert document["error"]["line"] == 1


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "fleetfix" in main_job
    test_command = shlex.split(tests.split("&&")[-1])
    ci = (ROOT / ".ci" / "run").read_text()
    assert " ".join(test_command) in ci, "CI must run the README's test command"


@pytest.mark.parametrize(
    "args", [["--help"], ["inventory", "--help"], ["creds", "--help"], ["audit", "--help"]]
)
def test_help_needs_no_config(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    assert cli.run(*args).returncode == 0
