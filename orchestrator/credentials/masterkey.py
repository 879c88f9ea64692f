"""The master key that encrypts the credential vault.

It comes from ``FLEETFIX_MASTER_KEY`` (CI, containers, workers that get it from a secret manager) or
from the key file (``Settings.master_key_path``), which fleetfix creates on the first write.  Both
hold the URL-safe base64 encoding of 32 random bytes.  Like ssh with a private key, fleetfix refuses
a key file that group or others can access.  No message ever repeats what a key looks like.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.credentials.files import GROUP_OTHER_BITS, create_private_file
from orchestrator.errors import CredentialError
from orchestrator.logs import register_secret

log = logging.getLogger("fleetfix.credentials")

MASTER_KEY_ENV = "FLEETFIX_MASTER_KEY"
KEY_BYTES = 32
# 32 bytes are 43 base64 characters plus one '=' of padding, which we also accept without.
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_FORMAT_HINT = (
    "expected the URL-safe base64 encoding of 32 random bytes (44 characters); make one with "
    "python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)


def generate_master_key() -> str:
    """A new master key in its text form."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_master_key(text: str, *, source: str) -> bytes:
    """The 32 key bytes from their text form; ``source`` names where the text came from."""
    candidate = text.strip()
    if not _KEY_TEXT.fullmatch(candidate):
        raise CredentialError(f"{source} is not a valid master key: {_FORMAT_HINT}")
    register_secret(candidate)
    return base64.urlsafe_b64decode(candidate.rstrip("=") + "=")


def read_key_file(path: Path) -> bytes:
    """Read the key file, refusing it when its mode lets group or others in.

    Raises FileNotFoundError when it does not exist, so the caller decides whether to create one.
    The mode is checked on the opened descriptor so a swapped file cannot slip past the check.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CredentialError(f"cannot read master key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="ascii", errors="replace") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & GROUP_OTHER_BITS:
            raise CredentialError(
                f"master key file {path} is accessible by group or others (mode {mode:04o}); "
                f"restrict it with: chmod 600 {path}"
            )
        text = handle.read()
    return decode_master_key(text, source=f"master key file {path}")


@dataclass(frozen=True)
class MasterKeySource:
    """Where the vault's master key comes from: the environment first, then the key file."""

    path: Path
    environ: Mapping[str, str]

    def describe(self) -> str:
        """Where the key is taken from, for messages (never the key itself)."""
        return MASTER_KEY_ENV if MASTER_KEY_ENV in self.environ else f"key file {self.path}"

    def load(self, *, create: bool) -> bytes:
        """The key bytes; with ``create`` a missing key file is made (0600) rather than an error.

        Callers hold the vault lock when ``create`` is set, so two first writes make one key.
        """
        text = self.environ.get(MASTER_KEY_ENV)
        if text is not None:
            if not text.strip():
                # An empty value is usually a CI secret that was not configured; falling back to a
                # key file would silently encrypt under a different key.
                raise CredentialError(f"{MASTER_KEY_ENV} is set but empty; set it to the key or unset it")
            return decode_master_key(text, source=MASTER_KEY_ENV)
        try:
            return read_key_file(self.path)
        except FileNotFoundError:
            if not create:
                raise CredentialError(
                    f"no master key: {MASTER_KEY_ENV} is not set and the key file {self.path} does not exist"
                ) from None
        return self._create()

    def _create(self) -> bytes:
        text = generate_master_key()
        try:
            created = create_private_file(self.path, (text + "\n").encode("ascii"))
        except OSError as exc:
            raise CredentialError(f"cannot create master key file {self.path}: {exc.strerror}") from None
        if not created:  # someone else wrote it between our read and our create: use theirs
            return read_key_file(self.path)
        # A warning so it reaches the terminal at the default log level: losing this file loses the vault.
        log.warning(
            "created master key file %s; back it up, the credential vault cannot be read without it",
            self.path,
        )
        return decode_master_key(text, source=f"master key file {self.path}")


__all__ = ["KEY_BYTES", "MASTER_KEY_ENV", "MasterKeySource", "decode_master_key", "generate_master_key"]
