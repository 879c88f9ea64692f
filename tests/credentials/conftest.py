"""Fixtures for the credential tests: vaults in tmp dirs and the real ``fleetfix`` console script."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.credentials.masterkey import MasterKeySource, generate_master_key
from orchestrator.credentials.vault import Vault
from tests.clirun import Cli

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
def cli_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The shared console-script environment, with the data directory at ``tmp_path/data``."""
    return {**cli_env, "FLEETFIX_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def run_fleetfix(cli: Cli) -> RunFleetfix:
    """Run ``fleetfix ARGS`` with ``stdin`` text (not a terminal) and extra environment."""
    return cli.run
