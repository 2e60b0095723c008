"""Files the library writes: owner-only, replaced atomically, durable when a call returns.

Exports hold personal data and token stores hold credentials, so every file is created
``0o600`` (whatever the umask says). A file replaced whole (a checkpoint, a failures
list, a Parquet file, a token store) is written under a temporary name in the same
directory, fsynced, and renamed over the old one, then the directory is fsynced: at any
moment, ``kill -9`` and power loss included, the path holds the old content or the new,
never a mix.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

__all__ = ["OWNER_ONLY", "atomic_write", "fsync_dir", "open_owner_only", "replacing"]

OWNER_ONLY = 0o600


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (a no-op where dirs cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_owner_only(path: Path, mode: str = "wb") -> BinaryIO:
    """Open ``path`` for binary writing (``"wb"``, ``"ab"``, ``"r+b"``, or ``"a+b"``: read
    and append, created if absent, never truncated); a file this creates is ``0o600``, and
    an existing one is made so."""
    flags = {
        "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        "r+b": os.O_RDWR,
        "a+b": os.O_RDWR | os.O_CREAT | os.O_APPEND,
    }[mode]
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), OWNER_ONLY)
    try:
        os.fchmod(fd, OWNER_ONLY)  # the umask or an older file may have left it wider
        return cast(BinaryIO, os.fdopen(fd, mode))
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write; on success it is
    made owner-only, fsynced and renamed over ``path``; on failure it is removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open_owner_only(tmp, "r+b") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, owner-only and durable (see the module doc)."""
    with replacing(path) as tmp, open_owner_only(tmp) as fh:
        fh.write(data)
