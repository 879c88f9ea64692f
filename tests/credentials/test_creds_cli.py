"""``fleetfix creds`` through the installed console script, secrets on stdin, outputs checked for leaks."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.credentials.masterkey import MasterKeySource, generate_master_key
from orchestrator.credentials.vault import Vault
from tests.clirun import FLEETFIX

from .conftest import RunFleetfix

SECRET = "Cli-Sup3r-Secret!"


def assert_no_leak(result: subprocess.CompletedProcess[str], secret: str = SECRET) -> None:
    assert secret not in result.stdout
    assert secret not in result.stderr


def test_set_from_stdin_then_list_and_delete(run_fleetfix: RunFleetfix, tmp_path: Path) -> None:
    stored = run_fleetfix("creds", "set", "web01", "--username", "CONTOSO\\svc", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "vault:web01" in stored.stdout
    assert_no_leak(stored)

    listed = run_fleetfix("creds", "list")
    assert listed.returncode == 0, listed.stderr
    assert "web01" in listed.stdout
    assert "CONTOSO\\svc" in listed.stdout
    assert_no_leak(listed)

    deleted = run_fleetfix("creds", "delete", "web01")
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted vault:web01" in deleted.stdout
    assert json.loads(run_fleetfix("creds", "list", "-o", "json").stdout)["credentials"] == []
    credentials = tmp_path / "data" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert SECRET not in credentials.read_text()


def test_json_shapes(run_fleetfix: RunFleetfix, tmp_path: Path) -> None:
    stored = run_fleetfix("creds", "set", "db01", "-u", "sa", "--output", "json", stdin=SECRET)
    assert stored.returncode == 0, stored.stderr
    entry = json.loads(stored.stdout)
    assert list(entry) == ["name", "reference", "username", "created", "updated"]
    assert entry["reference"] == "vault:db01"
    assert entry["created"].endswith("Z")

    listed = run_fleetfix("creds", "list", "--output", "json")
    document = json.loads(listed.stdout)
    assert document == {"file": str(tmp_path / "data" / "credentials.json"), "credentials": [entry]}
    assert_no_leak(listed)

    deleted = json.loads(run_fleetfix("creds", "delete", "db01", "-o", "json").stdout)
    assert deleted == {"name": "db01", "reference": "vault:db01", "deleted": True}


def test_only_the_first_line_without_its_ending_is_the_secret(
    run_fleetfix: RunFleetfix, tmp_path: Path
) -> None:
    assert (
        run_fleetfix("creds", "set", "web01", "-u", "svc", stdin=SECRET + "\r\nsecond line\n").returncode == 0
    )
    data = tmp_path / "data"
    vault = Vault(data / "credentials.json", MasterKeySource(data / "master.key", {}))
    assert vault.get("web01").secret.reveal() == SECRET


@pytest.mark.parametrize(
    ("args", "stdin", "field"),
    [
        (["creds", "set", "web01", "-u", "svc"], "", "secret"),
        (["creds", "set", "web01", "-u", "svc"], "\n", "secret"),
        (["creds", "set", "web01", "-u", "svc"], "abc\n", "secret"),
        (["creds", "set", "bad name", "-u", "svc"], SECRET, "NAME"),
        (["creds", "set", "web01"], SECRET, "--username"),
        (["creds", "delete", "absent"], "", "NAME"),
    ],
)
def test_bad_input_exits_2_with_a_json_error(
    run_fleetfix: RunFleetfix, args: list[str], stdin: str, field: str
) -> None:
    result = run_fleetfix(*args, "--output", "json", stdin=stdin)
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "input"
    assert error["field"] == field
    assert result.stderr.startswith("error:")
    assert_no_leak(result)


def test_undecodable_stdin_is_bad_input_not_an_internal_error(
    run_fleetfix: RunFleetfix, cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [FLEETFIX, "creds", "set", "web01", "-u", "svc"],
        input=b"abc\xffdef\n",
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert b"valid UTF-8" in result.stderr
    assert b"position" not in result.stderr


def test_malformed_master_key_exits_3_without_echo(run_fleetfix: RunFleetfix) -> None:
    bad_key = "Definitely-Not-A-Key-123"
    result = run_fleetfix(
        "creds", "set", "web01", "-u", "svc", "-o", "json", stdin=SECRET, env={"FLEETFIX_MASTER_KEY": bad_key}
    )
    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["kind"] == "credential"
    assert_no_leak(result, bad_key)
    assert_no_leak(result)


def test_group_readable_key_file_is_refused(run_fleetfix: RunFleetfix, tmp_path: Path) -> None:
    assert run_fleetfix("creds", "set", "web01", "-u", "svc", stdin=SECRET).returncode == 0
    key_file = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(0o640)
    result = run_fleetfix("creds", "set", "db01", "-u", "svc", stdin=SECRET)
    assert result.returncode == 3
    assert "chmod 600" in result.stderr


def test_first_set_warns_to_back_up_the_new_key(run_fleetfix: RunFleetfix) -> None:
    first = run_fleetfix("creds", "set", "web01", "-u", "svc", stdin=SECRET)
    assert "back it up" in first.stderr
    second = run_fleetfix("creds", "set", "db01", "-u", "svc", stdin=SECRET)
    assert "back it up" not in second.stderr


@pytest.mark.parametrize("output", ["table", "json"])
def test_debug_logging_never_shows_the_secret(run_fleetfix: RunFleetfix, output: str) -> None:
    env = {"FLEETFIX_MASTER_KEY": generate_master_key()}
    stored = run_fleetfix(
        "--log-level", "DEBUG", "creds", "set", "web01", "-u", "svc", "-o", output, stdin=SECRET, env=env
    )
    assert stored.returncode == 0, stored.stderr
    assert "DEBUG fleetfix.credentials: stored vault:web01" in stored.stderr
    assert_no_leak(stored)
    assert_no_leak(stored, env["FLEETFIX_MASTER_KEY"])
    listed = run_fleetfix("--log-level", "DEBUG", "creds", "list", "-o", output, env=env)
    assert_no_leak(listed)


def test_concurrent_sets_lose_no_entry(cli_env: dict[str, str], tmp_path: Path) -> None:
    names = [f"host{index:02d}" for index in range(8)]
    processes = [
        subprocess.Popen(
            [FLEETFIX, "creds", "set", name, "-u", "svc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=cli_env,
            text=True,
        )
        for name in names
    ]
    for name, process in zip(names, processes, strict=True):  # all start before a key file exists
        _, err = process.communicate(f"{SECRET}-{name}\n", timeout=60)
        assert process.returncode == 0, err
    listed = subprocess.run(
        [FLEETFIX, "creds", "list", "-o", "json"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [entry["name"] for entry in json.loads(listed.stdout)["credentials"]] == names


# --- interactive: a real terminal ---------------------------------------------------------------


class Terminal:
    """The fleetfix side of a pseudo-terminal: wait for prompts, type answers, keep the transcript."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.transcript = ""
        self._seen = 0  # prompts repeat, so each expect looks only past the previous match

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (found := self.transcript.find(text, self._seen)) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(f"no {text!r} in {self.transcript!r}")
        self._seen = found + len(text)

    def type(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def drain(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        return self.transcript

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.transcript += chunk.decode(errors="replace")
        return bool(chunk)


def spawn_in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, Terminal]:
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes fleetfix with the terminal as its controlling tty
        try:
            os.chdir(cwd)
            os.execve(FLEETFIX, [FLEETFIX, *args], env)
        finally:
            os._exit(127)
    return pid, Terminal(fd)


def test_interactive_set_prompts_hidden_twice_until_they_match(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    pid, terminal = spawn_in_terminal(["creds", "set", "web01", "-o", "json"], cli_env, tmp_path)
    # click prints the prompt, then getpass turns echo off and prints one space: answer after it.
    terminal.expect("Username: ")
    terminal.type("CONTOSO\\svc")
    terminal.expect("Secret for vault:web01: ")
    terminal.type(SECRET)
    terminal.expect("Repeat for confirmation: ")
    terminal.type(SECRET + "-typo")
    terminal.expect("do not match")
    terminal.expect("Secret for vault:web01: ")
    terminal.type(SECRET)
    terminal.expect("Repeat for confirmation: ")
    terminal.type(SECRET)
    transcript = terminal.drain()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, transcript
    assert SECRET not in transcript  # hidden input: the terminal never echoed it
    assert '"reference": "vault:web01"' in transcript
    assert '"username": "CONTOSO\\\\svc"' in transcript


def test_set_and_delete_are_audited_by_name_only(run_fleetfix: RunFleetfix) -> None:
    assert run_fleetfix("creds", "set", "rras-admin", "-u", "CORP\\svc", stdin=SECRET).returncode == 0
    assert run_fleetfix("creds", "delete", "rras-admin").returncode == 0
    shown = run_fleetfix("audit", "show", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    actions = [(entry["action"], entry["target"]) for entry in json.loads(shown.stdout)["entries"]]
    assert ("creds.set", "vault:rras-admin") in actions
    assert ("creds.delete", "vault:rras-admin") in actions
    assert SECRET not in shown.stdout
    assert run_fleetfix("audit", "verify").returncode == 0
