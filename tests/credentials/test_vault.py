"""The encrypted vault: round trips, persistence, integrity (wrong key, tampering, AAD), atomicity."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.credentials import vault as vault_module
from orchestrator.credentials.masterkey import MasterKeySource, generate_master_key
from orchestrator.credentials.vault import Vault
from orchestrator.errors import CredentialError, InputError

from .conftest import MakeVault

SECRET = "Corr3ct-Horse-Battery"
OTHER = "An0ther-Secret-Value"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def document(vault: Vault) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(vault.path.read_text())
    return data


def entries(vault: Vault) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = document(vault)["entries"]
    return found


def rewrite(vault: Vault, data: dict[str, Any]) -> None:
    vault.path.write_text(json.dumps(data))


def test_round_trip_set_get_list_delete(make_vault: MakeVault) -> None:
    vault = make_vault()
    info = vault.set("web01", "CONTOSO\\svc-vpn", SECRET)
    assert (info.name, info.username, info.reference) == ("web01", "CONTOSO\\svc-vpn", "vault:web01")

    credential = vault.get("web01")
    assert credential.username == "CONTOSO\\svc-vpn"
    assert credential.secret.reveal() == SECRET
    assert [entry.name for entry in vault.list()] == ["web01"]

    assert vault.delete("web01") is True
    assert vault.list() == ()
    assert vault.delete("web01") is False
    with pytest.raises(CredentialError, match="vault:web01 not found"):
        vault.get("web01")


def test_list_is_sorted_and_has_no_secrets(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("zeta", "z", SECRET)
    vault.set("alpha", "a", OTHER)
    listed = vault.list()
    assert [entry.name for entry in listed] == ["alpha", "zeta"]
    assert SECRET not in repr(listed)
    assert OTHER not in repr(listed)
    assert set(listed[0].to_dict()) == {"name", "reference", "username", "created", "updated"}


def test_replacing_keeps_created_and_moves_updated(
    make_vault: MakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault()
    first, second = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    monkeypatch.setattr(vault_module, "_now", lambda: first)
    vault.set("web01", "old-user", SECRET)
    monkeypatch.setattr(vault_module, "_now", lambda: second)
    info = vault.set("web01", "new-user", OTHER)
    assert (info.created, info.updated, info.username) == (first, second, "new-user")
    assert vault.get("web01").secret.reveal() == OTHER
    assert entries(vault)["web01"]["created"] == "2025-01-01T00:00:00Z"


def test_persists_across_instances_with_key_file(make_vault: MakeVault) -> None:
    make_vault().set("web01", "svc", SECRET)
    again = make_vault()
    assert again.get("web01").secret.reveal() == SECRET
    assert again.get("web01").username == "svc"


def test_persists_across_instances_with_env_key(make_vault: MakeVault, key_env: dict[str, str]) -> None:
    make_vault(key_env).set("web01", "svc", SECRET)
    assert make_vault(key_env).get("web01").secret.reveal() == SECRET


def test_from_settings_uses_configured_paths(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", credentials_file=tmp_path / "elsewhere" / "creds.json")
    vault = Vault.from_settings(settings, environ={})
    vault.set("web01", "svc", SECRET)
    assert (tmp_path / "elsewhere" / "creds.json").is_file()
    assert (tmp_path / "d" / "master.key").is_file()


def test_secret_is_not_in_the_file_in_plaintext(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    raw = vault.path.read_bytes()
    assert SECRET.encode() not in raw
    assert SECRET.encode("utf-16-le") not in raw
    assert b"svc" in raw  # usernames are metadata, readable for `creds list`


def test_file_format_is_versioned_and_self_describing(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    data = document(vault)
    assert data["version"] == 1
    assert data["cipher"] == "AES-256-GCM"
    assert data["kdf"] == {"name": "HKDF-SHA256", "salt": data["kdf"]["salt"]}
    assert set(entries(vault)["web01"]) == {"username", "nonce", "ciphertext", "created", "updated"}


# --- integrity ---------------------------------------------------------------------------------


def test_wrong_master_key_names_the_entry(make_vault: MakeVault, key_env: dict[str, str]) -> None:
    make_vault(key_env).set("web01", "svc", SECRET)
    wrong = make_vault({"FLEETFIX_MASTER_KEY": generate_master_key()})
    with pytest.raises(CredentialError) as caught:
        wrong.get("web01")
    assert "vault:web01" in str(caught.value)
    assert "master key" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_writing_with_a_wrong_key_is_refused_and_changes_nothing(
    make_vault: MakeVault, key_env: dict[str, str]
) -> None:
    vault = make_vault(key_env)
    vault.set("web01", "svc", SECRET)
    before = vault.path.read_bytes()
    with pytest.raises(CredentialError, match="vault:db"):
        make_vault({"FLEETFIX_MASTER_KEY": generate_master_key()}).set("db", "sa", OTHER)
    assert vault.path.read_bytes() == before


def test_tampered_ciphertext_fails_naming_the_entry(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    data = document(vault)
    entry = data["entries"]["web01"]
    blob = bytearray(base64.b64decode(entry["ciphertext"]))
    blob[0] ^= 0x01
    entry["ciphertext"] = base64.b64encode(bytes(blob)).decode()
    rewrite(vault, data)
    with pytest.raises(CredentialError, match=r"vault:web01 cannot be decrypted") as caught:
        vault.get("web01")
    assert SECRET not in str(caught.value)


def test_garbage_ciphertext_fails_cleanly(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    data = document(vault)
    data["entries"]["web01"]["nonce"] = "not base64!"
    rewrite(vault, data)
    with pytest.raises(CredentialError, match="vault:web01"):
        vault.get("web01")


def test_swapped_entries_fail_to_decrypt(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    vault.set("db01", "svc", OTHER)
    data = document(vault)
    found = data["entries"]
    for field in ("nonce", "ciphertext"):
        found["web01"][field], found["db01"][field] = found["db01"][field], found["web01"][field]
    rewrite(vault, data)
    for name in ("web01", "db01"):
        with pytest.raises(CredentialError, match=f"vault:{name} cannot be decrypted"):
            vault.get(name)


def test_renamed_entry_fails_to_decrypt(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    data = document(vault)
    data["entries"] = {"admin": data["entries"]["web01"]}
    rewrite(vault, data)
    with pytest.raises(CredentialError, match="vault:admin cannot be decrypted"):
        vault.get("admin")


def test_changed_username_fails_to_decrypt(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    data = document(vault)
    data["entries"]["web01"]["username"] = "CONTOSO\\Administrator"
    rewrite(vault, data)
    with pytest.raises(CredentialError, match="vault:web01 cannot be decrypted"):
        vault.get("web01")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": 2}', "format version 2"),
        ("[]", "format version None"),
        ('{"version": 1, "entries": {}}', "malformed at kdf"),
    ],
)
def test_unreadable_files_are_credential_errors(make_vault: MakeVault, content: str, message: str) -> None:
    vault = make_vault()
    vault.path.parent.mkdir(parents=True)
    vault.path.write_text(content)
    with pytest.raises(CredentialError, match=message):
        vault.list()


# --- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "username", "secret", "field"),
    [
        ("bad name", "svc", SECRET, "NAME"),
        ("-leading", "svc", SECRET, "NAME"),
        ("web01", "", SECRET, "username"),
        ("web01", "two\nlines", SECRET, "username"),
        ("web01", "svc", "abc", "secret"),
        ("web01", "svc", "", "secret"),
        ("web01", "svc", "abc\udcffdef", "secret"),
        ("web01", "sv\udcffc", SECRET, "username"),
    ],
)
def test_set_rejects_bad_input(
    make_vault: MakeVault, name: str, username: str, secret: str, field: str
) -> None:
    vault = make_vault()
    with pytest.raises(InputError) as caught:
        vault.set(name, username, secret)
    assert caught.value.field == field
    assert not vault.path.exists()


# --- files: permissions and atomicity ----------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0 proves the modes come from fleetfix, not from a careful shell."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_files_are_private(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    vault.set("db01", "svc", OTHER)  # a rewrite keeps the mode
    assert mode(vault.path) == 0o600
    assert mode(tmp_path / "data" / "master.key") == 0o600
    assert mode(tmp_path / "data") == 0o700
    assert mode(vault.path.with_name("credentials.json.lock")) == 0o600


def test_failed_write_leaves_the_old_file_and_no_temporary(
    make_vault: MakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    before = vault.path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CredentialError, match="cannot write vault:db01"):
        vault.set("db01", "svc", OTHER)
    assert vault.path.read_bytes() == before
    assert sorted(p.name for p in vault.path.parent.iterdir()) == [
        "credentials.json",
        "credentials.json.lock",
        "master.key",
    ]


def test_reading_never_creates_a_key_or_a_file(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault()
    assert vault.list() == ()
    with pytest.raises(CredentialError, match="vault:web01 not found"):
        vault.get("web01")
    assert vault.delete("web01") is False
    assert not (tmp_path / "data" / "master.key").exists()
    assert not vault.path.exists()


def test_lost_key_file_is_an_error_not_a_new_key(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault()
    vault.set("web01", "svc", SECRET)
    (tmp_path / "data" / "master.key").unlink()
    with pytest.raises(CredentialError, match="no master key"):
        vault.get("web01")
    with pytest.raises(CredentialError, match="no master key"):
        vault.set("db01", "svc", OTHER)
    assert not (tmp_path / "data" / "master.key").exists()


def test_list_and_delete_need_no_key(make_vault: MakeVault, key_env: dict[str, str]) -> None:
    make_vault(key_env).set("web01", "svc", SECRET)
    keyless = make_vault()
    assert [entry.name for entry in keyless.list()] == ["web01"]
    assert keyless.delete("web01") is True


# --- concurrency -------------------------------------------------------------------------------


# A separate interpreter per writer, like separate `fleetfix creds set` processes.
_WRITER = """
import sys
from pathlib import Path
from orchestrator.credentials.masterkey import MasterKeySource
from orchestrator.credentials.vault import Vault
path, key, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
vault = Vault(path, MasterKeySource(path.with_name("master.key"), {"FLEETFIX_MASTER_KEY": key}))
for index in range(count):
    vault.set(f"w{worker}-e{index}", f"user{worker}", f"secret-{worker}-{index}")
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "credentials.json"
    key = generate_master_key()
    workers, count = 6, 8
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), key, str(worker), str(count)])
        for worker in range(workers)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0] * workers
    vault = Vault(path, MasterKeySource(path.with_name("master.key"), {"FLEETFIX_MASTER_KEY": key}))
    names = {entry.name for entry in vault.list()}
    assert names == {f"w{w}-e{i}" for w in range(workers) for i in range(count)}
    assert vault.get("w3-e5").secret.reveal() == "secret-3-5"
