"""HTTP authentication of a simulated WinRM listener, and WinRM message encryption.

* Basic: accepted over HTTPS; over plain HTTP only when the host allows unencrypted traffic
  (WinRM ``AllowUnencrypted``), otherwise answered with 401 like Windows.
* NTLM and Negotiate: connection-bound handshakes through pyspnego's pure-Python acceptor, then
  every SOAP message wrapped in ``multipart/encrypted`` (``HTTP-SPNEGO-session-encrypted``) with
  pypsrp's own :class:`pypsrp.encryption.WinRMEncryption`.  Over HTTPS the client's channel
  binding token is checked against the listener certificate.
* Wrong credentials, unknown accounts and the ``auth_failure`` fault give a plain 401, which
  pypsrp raises as ``AuthenticationError``.

Two pyspnego details shape this module (both documented in its README as lab shims):

* The NTLM acceptor only reads credentials from the file named by the ``NTLM_USER_FILE``
  environment variable.  :class:`NtlmAccounts` keeps one such file per process for every running
  lab and checks afterwards that the account may log on to *this* host.  A user name therefore has
  one password per process, like a domain account.  The file holds precomputed LM/NT hashes
  (smbpasswd format, hashed once with pyspnego's private ``_ntlm_raw.crypto`` helpers): with
  plain passwords the acceptor re-derives the LM hash with pure-Python DES on every logon, about
  60 % of its cost, and a password containing ``:`` could not be written at all.
* The final SPNEGO token (the mechListMIC) must reach the client in ``WWW-Authenticate`` on the
  200 response, or pypsrp's sequence numbers drift and it fails with ``BadMICError``.

No sockets here: :class:`ConnectionAuth` consumes header values and returns what to answer.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import spnego
import spnego.channel_bindings
import spnego.exceptions
from pypsrp.encryption import WinRMEncryption
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1  # SHIM: private, see the module docstring

from lab.config import Account, AuthMode, HostConfig

_NTLM_SIGNATURE = b"NTLMSSP\x00"


@dataclass(frozen=True)
class Authenticated:
    """The request may proceed as ``user``; ``encryption`` is set when messages are wrapped."""

    user: str
    encryption: WinRMEncryption | None = None
    final_token: str | None = None  # WWW-Authenticate value for the 200 that ends a handshake


@dataclass(frozen=True)
class Challenge:
    """Answer 401 with these ``WWW-Authenticate`` values (empty for a plain refusal)."""

    www_authenticate: tuple[str, ...]


AuthOutcome = Authenticated | Challenge


def _split_user(username: str) -> tuple[str, str]:
    domain, sep, user = username.partition("\\")
    return (domain, user) if sep else ("", username)


def _smbpasswd_line(domain: str, user: str, password: str) -> str:
    name = f"{domain}\\{user}" if domain else user
    lm, nt = lmowfv1(password).hex().upper(), ntowfv1(password).hex().upper()
    return f"{name}:0:{lm}:{nt}:[U]:LCT-00000000\n"


def _account_key(username: str) -> tuple[str, str]:
    domain, user = _split_user(username)
    return domain.upper(), user.upper()


class NtlmAccounts:
    """The process-wide NTLM credential file pyspnego's acceptor reads (``NTLM_USER_FILE``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passwords: dict[tuple[str, str], str] = {}
        self._owners: dict[tuple[str, str], int] = {}
        self._names: dict[tuple[str, str], tuple[str, str]] = {}  # as configured, for client_principal
        self._directory: Path | None = None

    def register(self, accounts: Iterable[Account]) -> None:
        with self._lock:
            for account in accounts:
                key = _account_key(account.username)
                known = self._passwords.get(key)
                if known is not None and known != account.password:
                    raise ValueError(
                        f"NTLM account {account.username!r} has two passwords in this process; pyspnego "
                        "checks NTLM against one credential file, so give it one password per process"
                    )
                self._passwords[key] = account.password
                self._names[key] = _split_user(account.username)
                self._owners[key] = self._owners.get(key, 0) + 1
            self._write()

    def unregister(self, accounts: Iterable[Account]) -> None:
        with self._lock:
            for account in accounts:
                key = _account_key(account.username)
                left = self._owners.get(key, 0) - 1
                if left > 0:
                    self._owners[key] = left
                else:
                    self._owners.pop(key, None)
                    self._passwords.pop(key, None)
                    self._names.pop(key, None)
            self._write()

    def _write(self) -> None:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="fleetfix-lab-ntlm-"))
            atexit.register(shutil.rmtree, self._directory, True)
        path = self._directory / "ntlm_users"
        lines = [_smbpasswd_line(*self._names[key], password) for key, password in self._passwords.items()]
        # Written whole then renamed, so an acceptor reading concurrently never sees half a file.
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
        os.environ["NTLM_USER_FILE"] = str(path)


NTLM_ACCOUNTS = NtlmAccounts()


class ConnectionAuth:
    """Authentication state of one HTTP connection to one listener."""

    def __init__(self, host: HostConfig, *, tls: bool, certificate_der: bytes | None = None) -> None:
        self.host = host
        self.tls = tls
        self._accounts = {account.username.lower(): account.password for account in host.accounts}
        self._cbt = self._channel_bindings(certificate_der) if tls and certificate_der else None
        self._context: spnego.ContextProxy | None = None
        self._scheme = "Negotiate"
        self.authenticated: Authenticated | None = None

    @staticmethod
    def _channel_bindings(certificate_der: bytes) -> spnego.channel_bindings.GssChannelBindings:
        # RFC 5929 tls-server-end-point; SHA-256 for the lab's ECDSA-with-SHA256 certificates.
        digest = hashlib.sha256(certificate_der).digest()
        return spnego.channel_bindings.GssChannelBindings(application_data=b"tls-server-end-point:" + digest)

    @property
    def basic_allowed(self) -> bool:
        return AuthMode.BASIC in self.host.auth and (self.tls or self.host.allow_unencrypted)

    @property
    def negotiate_allowed(self) -> bool:
        return AuthMode.NEGOTIATE in self.host.auth or AuthMode.NTLM in self.host.auth

    def challenge(self) -> Challenge:
        offers = []
        if self.negotiate_allowed:
            offers.append("Negotiate")
        if self.basic_allowed:
            offers.append('Basic realm="WSMAN"')
        return Challenge(tuple(offers))

    def authenticate(self, authorization: str | None) -> AuthOutcome:
        """Process the ``Authorization`` header of a request (``None`` when it has none)."""
        if not authorization:
            return self.authenticated if self.authenticated is not None else self.challenge()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "basic" and self.basic_allowed:
            self.authenticated = None
            return self._basic(token.strip())
        if scheme.lower() in ("negotiate", "ntlm") and self.negotiate_allowed:
            self.authenticated = None
            return self._negotiate(scheme, token.strip())
        return self.challenge()

    def _basic(self, token: str) -> AuthOutcome:
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Challenge(())
        if self.host.faults.auth_failure or self._accounts.get(user.lower()) != password:
            return Challenge(())
        return Authenticated(user=user)  # Basic is per request: nothing is kept on the connection

    def _negotiate(self, scheme: str, token: str) -> AuthOutcome:
        try:
            data = base64.b64decode(token, validate=True)
        except binascii.Error:
            return self._refuse()
        if self._context is None or self._context.complete:
            if not data.startswith(_NTLM_SIGNATURE) and AuthMode.NEGOTIATE not in self.host.auth:
                return self._refuse()  # a SPNEGO token where only raw NTLM is enabled
            self._scheme = scheme
            self._context = spnego.server(
                protocol="negotiate",
                options=spnego.NegotiateOptions.wrapping_winrm,
                channel_bindings=self._cbt,
            )
        try:
            out = self._context.step(data)
        except spnego.exceptions.SpnegoError:
            return self._refuse()
        if not self._context.complete:
            return Challenge((f"{self._scheme} {base64.b64encode(out or b'').decode()}",))
        return self._logged_on(out)

    def _logged_on(self, final: bytes | None) -> AuthOutcome:
        assert self._context is not None
        principal = self._context.client_principal or ""
        domain, user = _split_user(principal)
        allowed = principal.lower() in self._accounts or (not domain and user.lower() in self._accounts)
        if self.host.faults.auth_failure or not allowed:
            return self._refuse()
        self.authenticated = Authenticated(
            user=principal,
            encryption=WinRMEncryption(self._context, WinRMEncryption.SPNEGO),
            final_token=f"{self._scheme} {base64.b64encode(final).decode()}" if final else None,
        )
        return self.authenticated

    def _refuse(self) -> Challenge:
        self._context = None
        self.authenticated = None
        return Challenge(())

    def after_response(self) -> None:
        """The final handshake token goes out once, on the response that completed the logon."""
        if self.authenticated is not None and self.authenticated.final_token is not None:
            self.authenticated = Authenticated(self.authenticated.user, self.authenticated.encryption)
