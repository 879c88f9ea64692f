"""App-only tokens for Microsoft Graph from msal, and the credential they are made from.

:class:`MsalTokenSource` wraps one msal ``ConfidentialClientApplication``: msal caches the token
and reuses it until five minutes before it expires; :meth:`MsalTokenSource.invalidate` drops it
(after Graph answered 401 to a token it had issued: revoked, or expired early).  msal runs on our
own ``httpx.Client`` (:class:`HttpxForMsal`), which trusts only the configured CA bundle and refuses
any host but the authority's, so a custom authority never leaks a request to the public cloud
(instance discovery and region detection are off).

The credential is a client secret (a credential reference, resolved only here) or a certificate:
a PEM file with the private key and the certificate, or a PFX; either may be encrypted with the
password behind ``certificate_password``.  msal then signs a PS256 client assertion with the
certificate's SHA-256 thumbprint and chain (``x5t#S256``, ``x5c``).
"""

from __future__ import annotations

import random as _random
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from orchestrator.credentials.resolve import resolve_credential
from orchestrator.credentials.vault import Vault
from orchestrator.errors import (
    AuthFailedError,
    ConfigError,
    ServiceError,
    TimedOutError,
    TransportError,
    UnreachableError,
)
from orchestrator.logs import register_secret
from orchestrator.transport.graph.policy import RetryPolicy
from orchestrator.transport.graph.translate import HostNotAllowed, translate_httpx

ClientCredential = str | dict[str, Any]
# Entra's answers that a retry can cure; anything else (bad secret, unknown app) is final.
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "throttled"})
_PEM_KEY = re.compile(
    rb"-----BEGIN (?:ENCRYPTED |RSA )?PRIVATE KEY-----.+?-----END (?:ENCRYPTED |RSA )?PRIVATE KEY-----", re.S
)
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TokenSource(Protocol):
    """Where the Graph client gets its bearer tokens."""

    def token(self) -> str:
        """A valid access token (cached while it lasts)."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token; the next :meth:`token` asks the authority again."""
        ...

    def close(self) -> None:
        """Release connections (the client closes its token source with itself)."""
        ...


class HttpxForMsal:
    """msal's HTTP client interface over an ``httpx.Client`` that only talks to ``allowed_hosts``."""

    def __init__(self, client: httpx.Client, allowed_hosts: frozenset[str]) -> None:
        self._client = client
        self._allowed = allowed_hosts

    def _check(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if host.lower() not in self._allowed:
            raise HostNotAllowed(host)

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        self._check(url)
        return self._client.get(url, params=params, headers=headers)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any
    ) -> httpx.Response:
        self._check(url)
        if isinstance(data, str | bytes):  # httpx wants raw bodies as content=
            return self._client.post(url, params=params, content=data, headers=headers)
        # msal passes the client assertion as bytes; httpx would form-encode their repr (b'...').
        form = {
            key: value.decode() if isinstance(value, bytes) else value for key, value in (data or {}).items()
        }
        return self._client.post(url, params=params, data=form, headers=headers)

    def close(self) -> None:
        """msal closes its client; ours belongs to the caller."""


class MsalTokenSource:
    """Client-credentials tokens for one app in one tenant."""

    def __init__(
        self,
        *,
        client_id: str,
        authority: str,
        credential: ClientCredential,
        scope: str,
        http: httpx.Client,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._client_id = client_id
        self._authority = authority.rstrip("/")
        self._credential = credential
        self._scope = scope
        self._host = urlsplit(self._authority).hostname or ""
        self._client = http
        self._http = HttpxForMsal(http, frozenset({self._host.lower()}))
        self._retry = retry or RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=16.0)
        self._sleep = sleep
        self._random = random
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()  # worker threads share one source: build msal once
        self.requests = 0  # how often the token endpoint was asked (cache misses)

    def token(self) -> str:
        for attempt in range(self._retry.max_attempts):
            try:
                result = self._acquire()
            except (UnreachableError, TimedOutError, ServiceError):
                if attempt + 1 >= self._retry.max_attempts:
                    raise
                self._sleep(self._retry.backoff(attempt, self._random))
                continue
            token = result.get("access_token")
            if isinstance(token, str):
                register_secret(token)  # a token is a credential: never in a log line
                return token
            if result.get("error") not in _TRANSIENT_ERRORS or attempt + 1 >= self._retry.max_attempts:
                raise self._refusal(result)
            self._sleep(self._retry.backoff(attempt, self._random))
        raise AssertionError("unreachable")  # pragma: no cover

    def invalidate(self) -> None:
        if self._app is not None:
            self._app.remove_tokens_for_client()

    def close(self) -> None:
        self._client.close()

    def _acquire(self) -> Mapping[str, Any]:
        """One msal call with every library exception translated."""
        try:
            app = self._application()
            result: Mapping[str, Any] = app.acquire_token_for_client(scopes=[self._scope])
        except (httpx.HTTPError, HostNotAllowed) as exc:
            raise translate_httpx(exc, host=self._host, what="token request") from None
        except msal.exceptions.MsalServiceError as exc:
            # msal raises (rather than returns) on 5xx from the token endpoint
            raise ServiceError(f"token endpoint: {exc}", host=self._host) from None
        except ValueError as exc:  # msal: "Unable to get authority configuration for ..."
            raise AuthFailedError(f"authority {self._authority}: {exc}", host=self._host) from None
        if result.get("token_source") == "identity_provider":
            self.requests += 1
        return result

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._app_lock:
            return self._app or self._build()

    def _build(self) -> msal.ConfidentialClientApplication:
        app = msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=self._credential,
            authority=self._authority,
            instance_discovery=False,  # else msal asks login.microsoftonline.com about our authority
            azure_region=False,  # ignore MSAL_FORCE_REGION; never probe the instance metadata service
            http_client=self._http,
            token_cache=msal.TokenCache(),
        )
        self._app = app
        return app

    def _refusal(self, result: Mapping[str, Any]) -> TransportError:
        code = str(result.get("error") or "no token")
        # Entra's descriptions carry a trace id and timestamp after the first line; keep the line.
        description = str(result.get("error_description") or "").splitlines()[0:1]
        message = f"token request for app {self._client_id} refused: {code}"
        if description:
            message += f": {description[0]}"
        trace = result.get("trace_id") or result.get("correlation_id")
        request_id = str(trace) if trace else None
        if code in _TRANSIENT_ERRORS:
            return ServiceError(message, host=self._host, request_id=request_id)
        return AuthFailedError(message, host=self._host, request_id=request_id)


# --- the credential --------------------------------------------------------------------------------


def client_credential(
    *,
    client_secret: str | None,
    certificate: Path | None,
    certificate_password: str | None,
    vault: Vault | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientCredential:
    """What msal needs to authenticate the app: the secret, or the certificate (PEM or PFX).

    ``client_secret`` and ``certificate_password`` are credential references; their values are
    revealed here and nowhere else.  A certificate wins when both are configured.
    """
    if certificate is not None:
        password = _reveal(certificate_password, vault, environ) if certificate_password else None
        return certificate_credential(certificate, password)
    if client_secret is None:
        raise ConfigError("no Graph credential: set graph.client_secret or graph.certificate", field="graph")
    return _reveal(client_secret, vault, environ)


def _reveal(reference: str, vault: Vault | None, environ: Mapping[str, str] | None) -> str:
    # The username is irrelevant for an app secret; env: references need one from the caller.
    return resolve_credential(reference, username="graph-app", vault=vault, environ=environ).secret.reveal()


def certificate_credential(path: Path, password: str | None) -> dict[str, Any]:
    """msal's certificate credential for a PEM (key + certificate) or a PFX/PKCS#12 file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Graph certificate: {exc.strerror}", field="graph.certificate"
        ) from None
    if path.suffix.lower() in {".pfx", ".p12"}:
        credential: dict[str, Any] = {"private_key_pfx_path": str(path), "public_certificate": True}
    else:
        credential = _pem_credential(data, password)
    if password:
        credential["passphrase"] = password
    _check_loads(credential, data, password)
    return credential


def _pem_credential(data: bytes, password: str | None) -> dict[str, Any]:
    key, certs = _PEM_KEY.search(data), _PEM_CERT.findall(data)
    if key is None or not certs:
        raise ConfigError(
            "the Graph certificate PEM needs the private key and the certificate in one file",
            field="graph.certificate",
        )
    return {"private_key": key.group(0).decode(), "public_certificate": b"\n".join(certs).decode()}


def _check_loads(credential: Mapping[str, Any], data: bytes, password: str | None) -> None:
    """Fail at start-up with a clear message rather than inside msal at the first token request."""
    secret = password.encode() if password else None
    try:
        if "private_key_pfx_path" in credential:
            from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415

            pkcs12.load_key_and_certificates(data, secret)
        else:
            load_pem_private_key(str(credential["private_key"]).encode(), secret)
            x509.load_pem_x509_certificate(str(credential["public_certificate"]).encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the Graph certificate cannot be loaded (wrong password or format?): {exc}",
            field="graph.certificate",
        ) from None


__all__ = [
    "ClientCredential",
    "HttpxForMsal",
    "MsalTokenSource",
    "TokenSource",
    "certificate_credential",
    "client_credential",
]
