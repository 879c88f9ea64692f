"""Private files: owner-only directories, atomic 0600 writes and an advisory lock.

Key material and the credential file are written only through these helpers so that no code path
can leave a half-written file or one that another local user can read.  ``fcntl.flock`` ties
fleetfix to POSIX systems, which is where it runs (admin workstations, containers, workers).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
GROUP_OTHER_BITS = 0o077


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` owner-only if it is missing; an existing directory is left as it is."""
    if not directory.is_dir():
        # Only the last component gets the mode; parents are ordinary user directories (~/.local/share).
        directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    The temporary file sits in the same directory (``os.replace`` is atomic only within one file
    system) and ``mkstemp`` creates it 0600, so the file is private from its first byte.
    """
    ensure_private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` 0600 with ``data`` unless it exists; False if another writer got there first."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_directory(path.parent)
    return True


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600) for a read-modify-write cycle."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _fsync_directory(directory: Path) -> None:
    """Make a rename or creation durable; some file systems refuse fsync on directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
