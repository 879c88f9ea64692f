"""Logging set-up with secret redaction.

Secrets are passed by reference and revealed only at the edge that needs them (a transport's login).
Whoever reveals a secret registers it here first, so that if a library ever logs it (an HTTP debug
line, an exception message) the value is replaced by ``********`` before any handler writes it.
"""

from __future__ import annotations

import logging
import sys
import threading

REDACTED = "********"
_MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words; such secrets are refused anyway

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a revealed secret so that log records containing it are redacted."""
    if len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text``; longest first so overlapping values vanish whole."""
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Formats the record's message once, redacts it and freezes it, so args cannot leak later."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: str = "WARNING") -> None:
    """Send fleetfix's and the libraries' logs to stderr through the redacting filter."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fleetfix", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._fleetfix = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper() if level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"} else "WARNING")
