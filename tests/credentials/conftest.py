"""Fixtures for the credential tests: vaults in tmp dirs and the real ``fleetfix`` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.credentials.masterkey import MasterKeySource, generate_master_key
from orchestrator.credentials.vault import Vault

FLEETFIX = str(Path(sys.executable).with_name("fleetfix"))

RunFleetfix = Callable[..., subprocess.CompletedProcess[str]]
MakeVault = Callable[..., Vault]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLEETFIX_* variable of the developer's shell may leak into these tests."""
    for name in list(os.environ):
        if name.startswith("FLEETFIX_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_vault(tmp_path: Path) -> MakeVault:
    """A vault in ``tmp_path/data``; key from ``environ`` if given, else the key file."""

    def make(environ: dict[str, str] | None = None, data: Path | None = None) -> Vault:
        where = data or tmp_path / "data"
        return Vault(where / "credentials.json", MasterKeySource(where / "master.key", environ or {}))

    return make


@pytest.fixture
def key_env() -> dict[str, str]:
    return {"FLEETFIX_MASTER_KEY": generate_master_key()}


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the console script: every place fleetfix could write points into tmp_path."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "FLEETFIX_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def run_fleetfix(tmp_path: Path, cli_env: dict[str, str]) -> RunFleetfix:
    """Run ``fleetfix ARGS`` with ``stdin`` text (not a terminal) and extra environment."""

    def run(
        *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FLEETFIX, *args],
            input=stdin,
            cwd=tmp_path,
            env={**cli_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run
