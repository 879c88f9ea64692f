"""Credential references: how inventories and settings name a secret without containing it.

Forms:

* ``vault:NAME``: an entry in fleetfix's encrypted credential file (``fleetfix creds set NAME``);
  it holds a username and a secret.
* ``env:VAR``: the secret is in environment variable ``VAR`` (for CI systems and secret managers
  that inject variables); the username comes from where the reference is used (e.g. the host's
  ``winrm.username``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Scheme = Literal["vault", "env"]

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}"
ENV_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
_REFERENCE = re.compile(rf"(?:(vault):({NAME_PATTERN})|(env):({ENV_PATTERN}))")


@dataclass(frozen=True)
class CredentialRef:
    scheme: Scheme
    name: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"


def parse_reference(text: str) -> CredentialRef:
    """Parse ``vault:NAME`` or ``env:VAR``; raises ValueError with a message fit for a user."""
    match = _REFERENCE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must be a credential reference 'vault:NAME' or 'env:VAR' (never the secret itself)")
    if match.group(1):
        return CredentialRef("vault", match.group(2))
    return CredentialRef("env", match.group(4))


def is_valid_name(name: str) -> bool:
    """True if ``name`` may be used for ``fleetfix creds set NAME``."""
    return re.fullmatch(NAME_PATTERN, name) is not None
