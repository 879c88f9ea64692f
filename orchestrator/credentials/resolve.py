"""Turn a credential reference into a :class:`Credential`, at the edge that logs in with it.

``vault:NAME`` reads the encrypted vault (the entry's username unless the caller overrides it);
``env:VAR`` reads an environment variable and takes the username from the caller (the host's
``winrm.username``).  Every failure is a CredentialError that names the reference, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.credentials.reference import CredentialRef, parse_reference
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.credentials.vault import Vault
from orchestrator.errors import CredentialError
from orchestrator.logs import MIN_SECRET_LENGTH


def resolve_credential(
    ref: CredentialRef | str,
    *,
    username: str | None = None,
    vault: Vault | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credential:
    """The username and secret ``ref`` stands for; ``username`` overrides a vault entry's username.

    ``environ`` defaults to ``os.environ``; ``vault`` is needed for ``vault:`` references only.
    """
    reference = _as_reference(ref)
    if reference.scheme == "env":
        return _from_env(reference, username, os.environ if environ is None else environ)
    return _from_vault(reference, username, vault)


def _as_reference(ref: CredentialRef | str) -> CredentialRef:
    if isinstance(ref, CredentialRef):
        return ref
    try:
        return parse_reference(ref)
    except ValueError as exc:
        # The text may be a secret pasted where a reference belongs, so it is not repeated.
        raise CredentialError(f"invalid credential reference: {exc}") from None


def _from_env(reference: CredentialRef, username: str | None, environ: Mapping[str, str]) -> Credential:
    if not username:
        raise CredentialError(f"{reference} needs a username from the caller (set the host's winrm.username)")
    value = environ.get(reference.name)
    if value is None:
        raise CredentialError(f"{reference}: environment variable {reference.name} is not set")
    if len(value) < MIN_SECRET_LENGTH:
        # Too short to be redacted from logs safely; an empty value is an unconfigured CI secret.
        raise CredentialError(
            f"{reference}: environment variable {reference.name} is empty or shorter than "
            f"{MIN_SECRET_LENGTH} characters"
        )
    return Credential(username=username, secret=Secret(value))


def _from_vault(reference: CredentialRef, username: str | None, vault: Vault | None) -> Credential:
    if vault is None:
        raise CredentialError(f"{reference}: no credential vault was given to read it from")
    stored = vault.get(reference.name)
    if username:
        return Credential(username=username, secret=stored.secret)
    return stored


__all__ = ["resolve_credential"]
