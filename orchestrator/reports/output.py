"""Writing a report: all of it or nothing.

The text goes to a temporary file in the target's directory, is flushed to disk, and is renamed
over the target (atomic on POSIX file systems), so a reader -- a browser, node_exporter's textfile
collector, a mail job -- never sees half a report, and a failure leaves the old file untouched and
no temporary file behind.  The new file gets the permissions a plain ``open()`` would give it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import InputError, OutputFileError

STDOUT = "-"
OUT_FIELD = "-o"


def is_stdout(target: str) -> bool:
    return target == STDOUT


def check_target(path: Path) -> None:
    """InputError (``-o``) unless ``path`` can be written: its directory exists and is writable,
    and it is not itself a directory.  Called before any work, so bad input costs nothing."""
    directory = path.parent
    if path.is_dir():
        raise InputError(f"{path} is a directory: name the file to write", field=OUT_FIELD)
    if not directory.is_dir():
        raise InputError(f"cannot write {path}: directory {directory} does not exist", field=OUT_FIELD)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: directory {directory} is not writable", field=OUT_FIELD)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"cannot write {path}: the file is read-only", field=OUT_FIELD)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, chunks: Iterable[str], *, mode: int | None = None) -> int:
    """Write ``chunks`` (UTF-8, newlines untouched) to ``path`` atomically; the number of bytes.

    OSError becomes OutputFileError; any error (the chunks' producer failing included) removes
    the temporary file and leaves ``path`` as it was.
    """
    directory = path.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    written = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, _default_mode() if mode is None else mode)
        os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(temporary)
        raise
    return written


def write_stdout(chunks: Iterable[str]) -> int:
    """Write ``chunks`` to standard output; the number of bytes."""
    written = 0
    for chunk in chunks:
        sys.stdout.write(chunk)
        written += len(chunk.encode("utf-8"))
    sys.stdout.flush()
    return written


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


__all__ = ["OUT_FIELD", "STDOUT", "check_target", "is_stdout", "write_atomic", "write_stdout"]
