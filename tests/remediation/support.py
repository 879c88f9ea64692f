"""A lab scenario in a process of its own and the ``fleetfix`` console script pointed at it.

Remediation tests drive the product the way an admin does (``fleetfix sweep``, ``fleetfix run``,
``fleetfix runs resume``) against a lab started like ``fleetfix lab up --detach``, then read what
the lab says happened (its change log and ground truth) and what the store recorded (journal,
audit log).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.clirun import FLEETFIX, Cli

# Changes the product's own scripts make (an Intune check-in is the device's doing, not ours).
DEVICE_SIDE = frozenset({"intune.check-in"})


class LabFleet:
    """A running lab scenario and the CLI configured for it."""

    def __init__(self, directory: Path, cli: Cli) -> None:
        self.directory = directory
        self.cli = cli

    @property
    def config(self) -> Path:
        return self.directory / "fleetfix.toml"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli.run("-c", str(self.config), *args, env=env)

    def json(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
        result = self.run(*args, "--output", "json", env=env)
        assert result.returncode == code, (
            f"exit {result.returncode}\n{result.stderr}\n{result.stdout[-2000:]}"
        )
        return json.loads(result.stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """The CLI as a child this test can kill; stderr (live progress) is piped, line buffered."""
        return subprocess.Popen(
            [FLEETFIX, "-c", str(self.config), *args],
            cwd=self.cli.cwd,
            env=self.cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def sweep(self) -> dict[str, Any]:
        result = self.run("sweep", "--output", "json")
        assert result.returncode in {0, 1}, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def lab(self, path: str) -> dict[str, Any]:
        from lab.estate.manage import LabHandle  # noqa: PLC0415

        answer: dict[str, Any] = LabHandle(self.directory).get(path)
        return answer

    def changes(self) -> list[dict[str, Any]]:
        """Every change the lab recorded, host by host, in order."""
        return [change for changes in self.lab("/changes").values() for change in changes]

    def product_changes(self) -> list[dict[str, Any]]:
        return [change for change in self.changes() if change["script_id"] not in DEVICE_SIDE]

    def store_rows(self, query: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.directory / "data" / "fleetfix.db") as db:
            return list(db.execute(query))


@contextmanager
def lab_fleet(scenario: str, directory: Path, cli: Cli) -> Iterator[LabFleet]:
    from orchestrator.cli.demo import running_scenario  # noqa: PLC0415

    with running_scenario(scenario, directory):
        yield LabFleet(directory, cli)


def remediable(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings a shipped playbook fixes."""
    return [finding for finding in findings if finding.get("playbook")]


def change_key(change: dict[str, Any]) -> tuple[str, str, str]:
    return (change["host"], change["script_id"], change["what"])


def applied_once(changes: list[dict[str, Any]]) -> list[tuple[tuple[str, str, str], int]]:
    """The (host, script, setting) that changed more than once, with their counts (empty: good)."""
    return [(key, count) for key, count in Counter(map(change_key, changes)).items() if count > 1]


__all__ = ["DEVICE_SIDE", "LabFleet", "applied_once", "change_key", "lab_fleet", "remediable"]
