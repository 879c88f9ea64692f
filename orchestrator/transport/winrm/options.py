"""The keyword arguments of pypsrp's ``WSMan`` for one host: pure, and free of secrets.

The secret is not part of :class:`WSManOptions`; the session adds it under
:attr:`WSManOptions.secret_kwarg` at the one call that builds the client, so options can be
logged, compared and tested without revealing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from orchestrator.errors import InputError
from orchestrator.inventory.models import Host, Transport, WinRMAuth, WinRMSettings
from orchestrator.transport.winrm.policy import TransportPolicy

WSMAN_PATH = "wsman"
# Auth schemes that can seal WS-Management messages themselves (WinRM message encryption).
_SEALING_AUTHS = frozenset({WinRMAuth.NTLM, WinRMAuth.NEGOTIATE, WinRMAuth.KERBEROS, WinRMAuth.CREDSSP})


@dataclass(frozen=True)
class WSManOptions:
    """``WSMan(**kwargs, <secret_kwarg>=secret)`` reaches the host as its inventory entry says."""

    kwargs: Mapping[str, Any]
    secret_kwarg: str

    @property
    def endpoint(self) -> str:
        """The listener URL, for messages."""
        scheme = "https" if self.kwargs["ssl"] else "http"
        server = self.kwargs["server"]
        host = f"[{server}]" if ":" in server else server
        return f"{scheme}://{host}:{self.kwargs['port']}/{WSMAN_PATH}"


def wsman_options(host: Host, username: str, policy: TransportPolicy) -> WSManOptions:
    """pypsrp settings for ``host`` logging in as ``username`` (InputError for unsafe settings)."""
    settings = host.winrm
    _refuse_cleartext(host.name, settings)
    kwargs: dict[str, Any] = {
        "server": host.address,
        "port": settings.port,
        "ssl": settings.transport is Transport.HTTPS,
        "path": WSMAN_PATH,
        "auth": settings.auth.value,
        "username": username,
        "cert_validation": _cert_validation(settings),
        "encryption": _encryption(settings),
        "connection_timeout": settings.connection_timeout,
        "read_timeout": settings.read_timeout,
        "operation_timeout": settings.operation_timeout,
        "reconnection_retries": policy.reconnection_retries,
        "reconnection_backoff": policy.reconnection_backoff_s,
        "no_proxy": not policy.use_proxy,
    }
    secret_kwarg = "password"  # noqa: S105 (the name of a keyword argument, not a password)
    if settings.auth is WinRMAuth.CERTIFICATE:
        # The TLS client certificate is the login; the credential's secret unlocks its key.
        kwargs["certificate_pem"] = str(settings.client_certificate)
        kwargs["certificate_key_pem"] = str(settings.client_key)
        secret_kwarg = "certificate_key_password"  # noqa: S105 (a keyword argument's name)
    return WSManOptions(MappingProxyType(kwargs), secret_kwarg)


def _refuse_cleartext(name: str, settings: WinRMSettings) -> None:
    # The inventory model refuses these too; the transport checks again because a Host can also be
    # built in code, and this is the last place before a password goes on the wire.
    if settings.transport is not Transport.HTTP:
        return
    if settings.auth is WinRMAuth.BASIC and not settings.allow_unencrypted:
        raise InputError(
            f"host {name}: basic auth over plain http would send the password in the clear; "
            "use transport: https, or set allow_unencrypted: true for this host",
            field="winrm.auth",
        )
    if settings.auth is WinRMAuth.CERTIFICATE:
        raise InputError(f"host {name}: certificate auth needs transport: https", field="winrm.auth")


def _cert_validation(settings: WinRMSettings) -> bool | str:
    if not settings.cert_validation:
        return False
    return str(settings.ca_bundle) if settings.ca_bundle is not None else True


def _encryption(settings: WinRMSettings) -> str:
    """``auto``: TLS on https, WinRM message encryption on http; ``never`` only for allowed Basic."""
    if settings.transport is Transport.HTTP and settings.auth not in _SEALING_AUTHS:
        return "never"  # reached only with allow_unencrypted (see _refuse_cleartext)
    return "auto"


__all__ = ["WSMAN_PATH", "WSManOptions", "wsman_options"]
