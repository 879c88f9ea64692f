"""Resolving every distinct credential of a collection once, before any host is contacted.

The vault is opened at most once (and only when some host names a ``vault:`` reference); a
reference that cannot be resolved becomes a :class:`CredentialError` for the hosts that use it,
not a failure of the sweep: the other hosts are still collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from orchestrator.credentials.resolve import resolve_credential
from orchestrator.credentials.secret import Credential
from orchestrator.credentials.vault import Vault
from orchestrator.errors import CredentialError
from orchestrator.sweep.plan import CredentialKey

Resolved = Mapping[CredentialKey, Credential | CredentialError]


def resolve_all(
    keys: Iterable[CredentialKey],
    *,
    open_vault: Callable[[], Vault],
    environ: Mapping[str, str] | None = None,
) -> dict[CredentialKey, Credential | CredentialError]:
    """The credential (or the error) for every key; ``open_vault`` is called at most once."""
    vault: Vault | CredentialError | None = None
    resolved: dict[CredentialKey, Credential | CredentialError] = {}
    for key in keys:
        if key.reference.scheme == "vault" and vault is None:
            vault = _opened(open_vault)
        if isinstance(vault, CredentialError) and key.reference.scheme == "vault":
            resolved[key] = vault
            continue
        try:
            resolved[key] = resolve_credential(
                key.reference,
                username=key.username,
                vault=None if isinstance(vault, CredentialError) else vault,
                environ=environ,
            )
        except CredentialError as exc:
            resolved[key] = exc
    return resolved


def _opened(open_vault: Callable[[], Vault]) -> Vault | CredentialError:
    try:
        return open_vault()
    except CredentialError as exc:
        return exc


__all__ = ["Resolved", "resolve_all"]
