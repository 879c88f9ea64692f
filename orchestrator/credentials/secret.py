"""Secret values that do not show themselves, and the username + secret pair transports log in with."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

from orchestrator.logs import REDACTED, register_secret


class Secret:
    """A secret string whose ``str``, ``repr`` and format spec print ``********``.

    Creating one registers the value for log redaction: a Secret exists only once a secret has been
    revealed (read from the vault or the environment), which is exactly when it could leak.  Use
    :meth:`reveal` at the one place that hands the value to a library.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        register_secret(value)
        self._value = value

    def reveal(self) -> str:
        """The plain value, for the library call that needs it (a login); never for output."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickling is how a secret would end up in a Celery message or a cache; secrets travel by
        # reference, so the worker resolves the reference itself.
        raise TypeError("a Secret cannot be serialized; pass the credential reference instead")


@dataclass(frozen=True)
class Credential:
    """What a transport logs in with. Its repr shows the username and ``Secret('********')``."""

    username: str
    secret: Secret


__all__ = ["Credential", "Secret"]
