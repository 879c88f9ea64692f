"""Logging set-up with secret redaction.

Secrets are passed by reference and revealed only at the edge that needs them (a transport's login).
Whoever reveals a secret registers it here first, so that if a library ever logs it (an HTTP debug
line, an exception message) the value is replaced by ``********`` before any handler writes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from urllib.parse import quote, quote_plus

REDACTED = "********"
# Shorter values would redact ordinary words; the vault and credential resolution refuse such secrets.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def _spellings(value: str) -> set[str]:
    """The forms a secret takes when a library logs it escaped rather than raw.

    A password with a quote, a backslash or an ``@`` does not appear verbatim in ``%r`` of a kwargs
    dict, in a JSON body or in a form-encoded token request, so the raw value alone would not match.
    """
    in_single_quotes = repr(value + '"')[1:-2]  # the trailing '"' forces repr's '...' form
    return {
        value,
        in_single_quotes,
        in_single_quotes.replace("\\'", "'"),  # repr's "..." form leaves single quotes alone
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        # surrogateescape: undecodable input bytes (surrogates) must not make registration fail
        quote(value, safe="", errors="surrogateescape"),
        quote_plus(value, safe="", errors="surrogateescape"),
    }


def register_secret(value: str) -> None:
    """Remember a revealed secret so that log records containing it (raw or escaped) are redacted."""
    if len(value) >= MIN_SECRET_LENGTH:
        spellings = _spellings(value)
        with _lock:
            _secrets.update(spellings)


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
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A library's log call with mismatched arguments must not raise at its call site.
            message = f"{record.msg} (unformattable log arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class RedactingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose every written line, and its own error reports, pass through redact()."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def emit(self, record: logging.LogRecord) -> None:
        # Always the current stderr: a caller that swapped it (a test runner capturing output, a
        # daemon reopening its streams) must not leave us writing to a closed file.
        self.stream = sys.stderr
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # The default prints the raw exception chain, which may carry a library's secret-bearing text.
        exc = sys.exc_info()[1]
        with contextlib.suppress(OSError):
            sys.stderr.write(redact(f"fleetfix: could not write a log record: {type(exc).__name__}: {exc}\n"))


def configure_logging(level: str = "WARNING") -> None:
    """Send fleetfix's and the libraries' logs to stderr through the redacting filter and handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RedactingStreamHandler):
            root.removeHandler(handler)
    handler = RedactingStreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper() if level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"} else "WARNING")
