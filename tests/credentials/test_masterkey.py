"""The master key: environment before file, strict format, ssh-like refusal of readable key files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from orchestrator.credentials.masterkey import MASTER_KEY_ENV, MasterKeySource, generate_master_key
from orchestrator.errors import CredentialError

from .conftest import MakeVault


def test_generated_key_is_urlsafe_base64_of_32_bytes() -> None:
    text = generate_master_key()
    assert len(text) == 44
    assert len(base64.urlsafe_b64decode(text)) == 32


def test_environment_wins_over_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    MasterKeySource(key_file, {}).load(create=True)
    text = generate_master_key()
    source = MasterKeySource(key_file, {MASTER_KEY_ENV: text})
    assert source.load(create=False) == base64.urlsafe_b64decode(text)
    assert source.describe() == MASTER_KEY_ENV


def test_key_without_padding_or_with_newline_is_accepted(tmp_path: Path) -> None:
    text = generate_master_key()
    raw = base64.urlsafe_b64decode(text)
    for variant in (text.rstrip("="), text + "\n"):
        assert MasterKeySource(tmp_path / "k", {MASTER_KEY_ENV: variant}).load(create=False) == raw


@pytest.mark.parametrize(
    "value",
    [
        "hunter2-not-a-key",
        base64.urlsafe_b64encode(b"k" * 16).decode(),  # 16 bytes: too short
        base64.urlsafe_b64encode(b"k" * 48).decode(),  # 48 bytes: too long
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet (+ /), not URL-safe
        os.urandom(32).hex(),  # hex is a common mistake
        "   ",
    ],
)
def test_malformed_environment_key_is_rejected_without_echo(tmp_path: Path, value: str) -> None:
    source = MasterKeySource(tmp_path / "master.key", {MASTER_KEY_ENV: value})
    with pytest.raises(CredentialError, match=MASTER_KEY_ENV) as caught:
        source.load(create=True)
    message = str(caught.value)
    if value.strip():
        assert value not in message
        assert value not in repr(caught.value)
    assert not (tmp_path / "master.key").exists()  # no silent fallback to a new key file


def test_malformed_key_file_is_rejected_without_echo(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text("correct horse battery staple\n")
    key_file.chmod(0o600)
    with pytest.raises(CredentialError, match="not a valid master key") as caught:
        MasterKeySource(key_file, {}).load(create=False)
    assert "horse" not in str(caught.value)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "new" / "master.key"
    first = MasterKeySource(key_file, {}).load(create=True)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert MasterKeySource(key_file, {}).load(create=True) == first


def test_key_file_creation_is_logged_as_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    MasterKeySource(tmp_path / "master.key", {}).load(create=True)
    assert "back it up" in caplog.text


@pytest.mark.parametrize("file_mode", [0o640, 0o604, 0o644, 0o660, 0o610])
def test_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, file_mode: int) -> None:
    key_file = tmp_path / "master.key"
    MasterKeySource(key_file, {}).load(create=True)
    key_file.chmod(file_mode)
    with pytest.raises(CredentialError, match="chmod 600") as caught:
        MasterKeySource(key_file, {}).load(create=False)
    assert f"{file_mode:04o}" in str(caught.value)
    assert key_file.read_text().strip() not in str(caught.value)


def test_group_readable_key_file_blocks_the_vault(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault()
    vault.set("web01", "svc", "S3cret-value")
    (tmp_path / "data" / "master.key").chmod(0o640)
    with pytest.raises(CredentialError, match="chmod 600"):
        vault.get("web01")
    with pytest.raises(CredentialError, match="chmod 600"):
        vault.set("db01", "svc", "S3cret-value")


def test_empty_environment_key_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    MasterKeySource(key_file, {}).load(create=True)
    with pytest.raises(CredentialError, match="set but empty"):
        MasterKeySource(key_file, {MASTER_KEY_ENV: ""}).load(create=False)
