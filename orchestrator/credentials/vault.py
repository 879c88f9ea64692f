"""The encrypted credential file: ``vault:NAME`` -> username + secret.

File format (JSON, written atomically with mode 0600)::

    {
      "version": 1,
      "kdf": {"name": "HKDF-SHA256", "salt": "<base64>"},
      "cipher": "AES-256-GCM",
      "key_check": {"nonce": "<base64>", "ciphertext": "<base64>"},
      "entries": {
        "NAME": {"username": "...", "nonce": "<base64>", "ciphertext": "<base64>",
                 "created": "<ISO 8601 UTC>", "updated": "<ISO 8601 UTC>"}
      }
    }

The file key is derived from the master key with HKDF (salt per file), so the master key can key
other things later without two uses sharing one AES key.  Each secret is sealed with AES-256-GCM
under a fresh 96-bit nonce; the associated data binds it to the format version, the entry name and
the username, so an entry copied under another name or given another username fails to decrypt.
``key_check`` seals a constant: it tells "wrong master key" apart from "tampered entry", and stops
a write under a wrong key from mixing two keys in one file.

Names, usernames and timestamps are readable without the key (``creds list`` needs no key); only
secrets are encrypted.  Writers take an exclusive ``flock`` on ``<file>.lock`` around the whole
read-modify-write, so concurrent ``creds set`` never lose an entry; readers need no lock because
the file is only ever replaced whole.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.credentials.files import exclusive_lock, write_private_atomic
from orchestrator.credentials.masterkey import MasterKeySource
from orchestrator.credentials.reference import is_valid_name
from orchestrator.credentials.secret import Credential, Secret
from orchestrator.errors import CredentialError, InputError
from orchestrator.logs import MIN_SECRET_LENGTH

if TYPE_CHECKING:
    from orchestrator.config import Settings

log = logging.getLogger("fleetfix.credentials")

FORMAT_VERSION = 1
CIPHER = "AES-256-GCM"
KDF = "HKDF-SHA256"
_KDF_INFO = b"fleetfix credentials v1"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_KEY_CHECK = b"fleetfix master key check"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- the file as data -------------------------------------------------------------------------


class _Sealed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nonce: str
    ciphertext: str


class _Entry(_Sealed):
    username: str
    created: datetime
    updated: datetime


class _Kdf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["HKDF-SHA256"]
    salt: str


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    kdf: _Kdf
    cipher: Literal["AES-256-GCM"]
    key_check: _Sealed
    entries: dict[str, _Entry]


@dataclass(frozen=True)
class EntryInfo:
    """One vault entry without its secret: what ``creds list`` shows."""

    name: str
    username: str
    created: datetime
    updated: datetime

    @property
    def reference(self) -> str:
        return f"vault:{self.name}"

    def to_dict(self) -> dict[str, object]:
        """The documented JSON shape (docs/cli-json.md, ``creds``)."""
        return {
            "name": self.name,
            "reference": self.reference,
            "username": self.username,
            "created": _timestamp(self.created),
            "updated": _timestamp(self.updated),
        }


# --- validation shared by the vault and the CLI ------------------------------------------------


def check_name(name: str) -> None:
    """Raise InputError unless ``name`` can be a vault entry (and so a ``vault:NAME`` reference)."""
    if not is_valid_name(name):
        raise InputError(
            "invalid credential name: use 1-128 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit",
            field="NAME",
        )


def check_username(username: str) -> None:
    if not username.strip() or _CONTROL.search(username) or not _is_utf8(username):
        raise InputError("must be non-empty text on one line", field="username")


def check_secret(secret: str) -> None:
    # Shorter secrets could not be redacted from logs without redacting ordinary words.
    if len(secret) < MIN_SECRET_LENGTH:
        raise InputError(f"must be at least {MIN_SECRET_LENGTH} characters", field="secret")
    if not _is_utf8(secret):
        # Undecodable input bytes arrive as surrogates; the message must not say which or where.
        raise InputError("must be valid UTF-8 text", field="secret")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- crypto -----------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _aad(**fields: object) -> bytes:
    """Associated data as canonical JSON: unambiguous whatever characters names contain."""
    return json.dumps(
        {"format": "fleetfix-credentials", "version": FORMAT_VERSION, **fields}, sort_keys=True
    ).encode()


def _entry_aad(name: str, username: str) -> bytes:
    return _aad(entry=name, username=username)


class _FileCipher:
    """AES-256-GCM under the key derived for one credential file."""

    def __init__(self, master_key: bytes, salt: bytes) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_KDF_INFO)
        self._aead = AESGCM(hkdf.derive(master_key))

    def seal(self, plaintext: bytes, aad: bytes) -> _Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext, aad)
        return _Sealed(nonce=_b64encode(nonce), ciphertext=_b64encode(ciphertext))

    def open(self, sealed: _Sealed, aad: bytes) -> bytes | None:
        """The plaintext, or None when the key is wrong or anything sealed was altered."""
        try:
            return self._aead.decrypt(_b64decode(sealed.nonce), _b64decode(sealed.ciphertext), aad)
        except (InvalidTag, ValueError, binascii.Error):
            return None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the vault --------------------------------------------------------------------------------


class Vault:
    """The credential file at ``path``, encrypted under the master key from ``key``."""

    def __init__(self, path: Path, key: MasterKeySource) -> None:
        self.path = path
        self._key = key
        self._lock_path = path.with_name(path.name + ".lock")

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Vault:
        """The vault at ``settings.credentials_path`` keyed by FLEETFIX_MASTER_KEY or the key file."""
        source = MasterKeySource(settings.master_key_path, os.environ if environ is None else environ)
        return cls(settings.credentials_path, source)

    def set(self, name: str, username: str, secret: str | Secret) -> EntryInfo:
        """Add or replace entry ``name``. The first write creates the file (and the key file)."""
        plain = (secret if isinstance(secret, Secret) else Secret(secret)).reveal()  # registers it
        check_name(name)
        check_username(username)
        check_secret(plain)
        with self._writing(f"vault:{name}"):
            document = self._read()
            cipher, document = self._cipher_for_write(document, f"vault:{name}")
            previous = document.entries.get(name)
            moment = _now()
            sealed = cipher.seal(plain.encode("utf-8"), _entry_aad(name, username))
            document.entries[name] = _Entry(
                username=username,
                nonce=sealed.nonce,
                ciphertext=sealed.ciphertext,
                created=previous.created if previous else moment,
                updated=moment,
            )
            self._write(document)
        log.debug("stored vault:%s in %s", name, self.path)
        return self._info(name, document.entries[name])

    def get(self, name: str) -> Credential:
        """Decrypt entry ``name``; CredentialError names ``vault:NAME`` if missing or undecryptable."""
        reference = f"vault:{name}"
        document = self._read()
        entry = document.entries.get(name) if document else None
        if document is None or entry is None:
            raise CredentialError(f"{reference} not found in the credential file {self.path}")
        cipher = self._verified_cipher(document, self._key.load(create=False), reference)
        plaintext = cipher.open(entry, _entry_aad(name, entry.username))
        if plaintext is None:
            raise CredentialError(
                f"{reference} cannot be decrypted: the entry was altered, renamed or copied in {self.path}"
            )
        log.debug("revealed %s", reference)
        return Credential(username=entry.username, secret=Secret(plaintext.decode("utf-8")))

    def list(self) -> tuple[EntryInfo, ...]:
        """Every entry without secrets, sorted by name. Needs no master key."""
        document = self._read()
        if document is None:
            return ()
        return tuple(self._info(name, document.entries[name]) for name in sorted(document.entries))

    def delete(self, name: str) -> bool:
        """Remove entry ``name``; False if there was none. Needs no master key."""
        with self._writing(f"vault:{name}"):
            document = self._read()
            if document is None or name not in document.entries:
                return False
            del document.entries[name]
            self._write(document)
        log.debug("deleted vault:%s from %s", name, self.path)
        return True

    # --- helpers ---

    @staticmethod
    def _info(name: str, entry: _Entry) -> EntryInfo:
        return EntryInfo(name=name, username=entry.username, created=entry.created, updated=entry.updated)

    @contextmanager
    def _writing(self, reference: str) -> Iterator[None]:
        """Hold the vault lock around a read-modify-write; file-system errors become CredentialError."""
        try:
            with exclusive_lock(self._lock_path):
                yield
        except OSError as exc:
            raise CredentialError(f"cannot write {reference} to {self.path}: {exc.strerror}") from None

    def _cipher_for_write(self, document: _Document | None, reference: str) -> tuple[_FileCipher, _Document]:
        """The cipher for this file; a new file gets a salt and key check (and maybe a new key file)."""
        master_key = self._key.load(create=document is None)
        if document is not None:
            return self._verified_cipher(document, master_key, reference), document
        salt = os.urandom(_SALT_BYTES)
        cipher = _FileCipher(master_key, salt)
        document = _Document(
            version=FORMAT_VERSION,
            kdf=_Kdf(name=KDF, salt=_b64encode(salt)),
            cipher=CIPHER,
            key_check=cipher.seal(_KEY_CHECK, _aad(purpose="key-check")),
            entries={},
        )
        return cipher, document

    def _verified_cipher(self, document: _Document, master_key: bytes, reference: str) -> _FileCipher:
        try:
            salt = _b64decode(document.kdf.salt)
        except (ValueError, binascii.Error):
            raise CredentialError(f"credential file {self.path} is malformed at kdf.salt") from None
        cipher = _FileCipher(master_key, salt)
        if cipher.open(document.key_check, _aad(purpose="key-check")) != _KEY_CHECK:
            raise CredentialError(
                f"cannot use {reference}: the master key ({self._key.describe()}) is not the one "
                f"{self.path} was written with"
            )
        return cipher

    def _read(self) -> _Document | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise CredentialError(f"cannot read credential file {self.path}: {reason}") from None
        return _parse_document(text, self.path)

    def _write(self, document: _Document) -> None:
        text = json.dumps(document.model_dump(mode="json"), indent=2) + "\n"
        write_private_atomic(self.path, text.encode("utf-8"))


def _parse_document(text: str, path: Path) -> _Document:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialError(f"credential file {path} is not valid JSON (line {exc.lineno})") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise CredentialError(
            f"credential file {path} has format version {version!r}; this fleetfix reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        return _Document.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise CredentialError(f"credential file {path} is malformed at {where}: {error['msg']}") from None


__all__ = [
    "CIPHER",
    "FORMAT_VERSION",
    "KDF",
    "EntryInfo",
    "Vault",
    "check_name",
    "check_secret",
    "check_username",
]
