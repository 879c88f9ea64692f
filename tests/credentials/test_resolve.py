"""Resolving references to credentials, and the Secret / Credential values that hide themselves."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from orchestrator.credentials.reference import CredentialRef
from orchestrator.credentials.resolve import resolve_credential
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.errors import CredentialError
from orchestrator.logs import REDACTED, redact

from .conftest import MakeVault

SECRET = "Env-Supplied-S3cret"


# --- env: ---------------------------------------------------------------------------------------


def test_env_reference_uses_the_callers_username() -> None:
    credential = resolve_credential("env:VPN_PW", username="CONTOSO\\svc", environ={"VPN_PW": SECRET})
    assert credential.username == "CONTOSO\\svc"
    assert credential.secret.reveal() == SECRET


def test_env_reference_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FF_TEST_SECRET", SECRET)
    credential = resolve_credential(CredentialRef("env", "FF_TEST_SECRET"), username="svc")
    assert credential.secret.reveal() == SECRET


def test_missing_variable_names_the_reference() -> None:
    with pytest.raises(CredentialError, match=r"env:VPN_PW: environment variable VPN_PW is not set"):
        resolve_credential("env:VPN_PW", username="svc", environ={})


def test_env_reference_without_username_is_refused() -> None:
    with pytest.raises(CredentialError, match=r"env:VPN_PW needs a username") as caught:
        resolve_credential("env:VPN_PW", environ={"VPN_PW": SECRET})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("value", ["", "abc"])
def test_empty_or_short_variable_is_refused(value: str) -> None:
    with pytest.raises(CredentialError, match="env:VPN_PW"):
        resolve_credential("env:VPN_PW", username="svc", environ={"VPN_PW": value})


def test_revealed_env_secret_is_registered_for_redaction() -> None:
    value = "Fresh-Env-Secret-4711"
    resolve_credential("env:X", username="svc", environ={"X": value})
    assert redact(f"password={value}") == f"password={REDACTED}"


# --- vault: -------------------------------------------------------------------------------------


def test_vault_reference_uses_the_entry_username(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "CONTOSO\\svc", SECRET)
    credential = resolve_credential("vault:web01", vault=vault)
    assert credential == Credential("CONTOSO\\svc", Secret(SECRET))


def test_callers_username_overrides_the_entry(make_vault: MakeVault) -> None:
    vault = make_vault()
    vault.set("web01", "CONTOSO\\svc", SECRET)
    credential = resolve_credential(CredentialRef("vault", "web01"), username="LOCAL\\admin", vault=vault)
    assert credential.username == "LOCAL\\admin"
    assert credential.secret.reveal() == SECRET


def test_missing_entry_names_the_reference(make_vault: MakeVault) -> None:
    with pytest.raises(CredentialError, match="vault:nope not found"):
        resolve_credential("vault:nope", vault=make_vault())


def test_vault_reference_without_a_vault_is_an_error() -> None:
    with pytest.raises(CredentialError, match="vault:web01"):
        resolve_credential("vault:web01")


def test_invalid_reference_text_is_not_echoed() -> None:
    pasted = "Pasted-The-Password-Here!"
    with pytest.raises(CredentialError, match="invalid credential reference") as caught:
        resolve_credential(pasted, username="svc")
    assert pasted not in str(caught.value)


# --- Secret and Credential ----------------------------------------------------------------------


def test_credential_str_and_repr_hide_the_secret() -> None:
    credential = Credential("svc", Secret(SECRET))
    for shown in (
        str(credential),
        repr(credential),
        f"{credential}",
        f"{credential.secret}",
        f"{credential.secret:>20}",
    ):
        assert SECRET not in shown
    assert repr(credential) == "Credential(username='svc', secret=Secret('********'))"
    assert str(credential.secret) == REDACTED


def test_secret_refuses_serialization() -> None:
    secret = Secret(SECRET)
    with pytest.raises(TypeError, match="reference"):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        pickle.dumps(Credential("svc", secret))
    with pytest.raises(TypeError):
        copy.deepcopy(secret)
    assert SECRET not in json.dumps({"secret": secret}, default=str)


def test_secret_equality_and_hashing() -> None:
    assert Secret(SECRET) == Secret(SECRET)
    assert Secret(SECRET) != Secret(SECRET + "x")
    assert len({Credential("a", Secret(SECRET)), Credential("a", Secret(SECRET))}) == 1


def test_secret_wraps_only_strings() -> None:
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
