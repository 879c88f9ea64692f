"""Revealed secrets never reach log output, raw or escaped, nor any CredentialError we raise."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest

from orchestrator.credentials.masterkey import generate_master_key
from orchestrator.credentials.resolve import resolve_credential
from orchestrator.errors import CredentialError
from orchestrator.logs import REDACTED, configure_logging, redact, register_secret

from .conftest import MakeVault

# Quotes, a backslash, '@', a space and a non-ASCII letter: each changes how an encoder spells it.
AWKWARD = "Pa'ss\"w\\rd @Zürich"


class DebugLogs:
    """fleetfix's real logging set-up at DEBUG, read back from the captured stderr.

    configure_logging binds its handler to the current sys.stderr, which pytest swaps between the
    setup and call phases, so tests call :meth:`start` themselves.
    """

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def start(self) -> None:
        configure_logging("DEBUG")

    def read(self) -> str:
        return self._capsys.readouterr().err


@pytest.fixture
def debug_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[DebugLogs]:
    root = logging.getLogger()
    level = root.level
    try:
        yield DebugLogs(capsys)
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_fleetfix", False):
                root.removeHandler(handler)
        root.setLevel(level)


def test_library_logging_a_vault_secret_is_redacted(make_vault: MakeVault, debug_logs: DebugLogs) -> None:
    debug_logs.start()
    vault = make_vault()
    vault.set("web01", "svc", AWKWARD)
    credential = resolve_credential("vault:web01", vault=vault)
    secret = credential.secret.reveal()
    library = logging.getLogger("pypsrp.wsman")  # stands for any library fleetfix calls
    library.debug("connecting with password %s", secret)
    library.debug("session kwargs %r", {"username": "svc", "password": secret})
    library.debug("body %s", json.dumps({"password": secret}))
    library.debug("body %s", json.dumps({"password": secret}, ensure_ascii=False))
    library.debug("form %s", urlencode({"client_secret": secret}))
    library.debug(f"f-string {secret!r}")
    try:
        raise RuntimeError(f"login failed for {secret}")
    except RuntimeError:
        library.exception("request failed")
    output = debug_logs.read()
    assert "connecting with password ********" in output
    assert "vault:web01" in output  # the reference is fine to log
    for spelling in (secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], urlencode({"x": secret})[2:]):
        assert spelling not in output
    assert "Zürich" not in output
    assert "Z%C3%BCrich" not in output


def test_env_secret_is_redacted_once_resolved(debug_logs: DebugLogs) -> None:
    debug_logs.start()
    value = "Env-Only-Secret-991"
    credential = resolve_credential("env:PW", username="svc", environ={"PW": value})
    logging.getLogger("httpx").debug("Authorization: %s", credential.secret.reveal())
    logging.getLogger("fleetfix.test").info("credential %s", credential)
    output = debug_logs.read()
    assert value not in output
    assert "Secret('********')" in output


def credential_errors(make_vault: MakeVault, secret: str) -> Iterator[CredentialError]:
    """Every way resolving or reading the vault can fail, with ``secret`` stored or nearby."""
    vault = make_vault()
    vault.set("web01", "svc", secret)
    attempts: list[Callable[[], object]] = [
        lambda: resolve_credential("vault:missing", vault=vault),
        lambda: resolve_credential(
            "vault:web01", vault=make_vault({"FLEETFIX_MASTER_KEY": generate_master_key()})
        ),
        lambda: resolve_credential("vault:web01"),
        lambda: resolve_credential("env:PW", environ={"PW": secret}),
        lambda: resolve_credential("env:PW", username="svc", environ={}),
        lambda: resolve_credential(secret, username="svc"),
        lambda: make_vault({"FLEETFIX_MASTER_KEY": secret}).get("web01"),
    ]
    for attempt in attempts:
        with pytest.raises(CredentialError) as caught:
            attempt()
        yield caught.value


def test_no_credential_error_contains_the_secret(make_vault: MakeVault) -> None:
    secret = "Never-In-Errors-0042"
    errors = list(credential_errors(make_vault, secret))
    assert len(errors) == 7
    for error in errors:
        for shown in (str(error), repr(error), json.dumps(error.to_dict())):
            assert secret not in shown


def test_undecodable_secret_registers_and_redacts() -> None:
    value = "from-stdin-\udcff-bytes"  # what a non-UTF-8 byte on stdin becomes
    register_secret(value)
    assert redact(f"x={value}") == f"x={REDACTED}"
