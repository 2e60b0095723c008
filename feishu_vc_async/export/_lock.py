"""One writer per output: an exclusive lock beside it, held for the whole run.

Two exports appending to the same file interleave pages and overwrite each other's
checkpoint, silently. So a run takes ``flock(LOCK_EX)`` on ``FILE.lock`` before it
touches anything and keeps it until it is done; a second run finds it taken and stops
with exit code 2, naming the holder (pid, host, start time: written into the lock file
by the holder). The kernel drops an ``flock`` when its process ends, ``kill -9``
included, so a lock file left behind by a dead run blocks nothing: only the lock is
trusted, never the file's content. The file is owner-only and removed when the run ends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from .._constants import LOGGER_NAME
from .._files import open_owner_only
from ._errors import OutputInUseError

__all__ = ["OutputInUseError", "output_lock"]

logger = logging.getLogger(f"{LOGGER_NAME}.export")

# A holder may unlink the file between our open and our lock; then we lock again.
_ATTEMPTS = 5
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class _Holder(msgspec.Struct):
    pid: int
    host: str
    started: str


def _holder_text(fh: BinaryIO) -> str:
    try:
        fh.seek(0)
        holder = msgspec.json.decode(fh.read(4096), type=_Holder)
    except (OSError, msgspec.DecodeError):
        return "a run that has just started"  # it has the lock, not yet written its name
    return f"pid {holder.pid} on {holder.host}, started {holder.started}"


def _locked_file_is_at(fh: BinaryIO, path: Path) -> bool:
    """Whether the file we locked is still the one at ``path`` (not unlinked meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _take(path: Path, out: Path) -> BinaryIO | None:
    """The open, locked lock file; ``None`` where the file system cannot lock."""
    for _ in range(_ATTEMPTS):
        fh = open_owner_only(path, "a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _BUSY:
                fh.close()
                logger.warning(
                    "cannot lock %s (%s); a second export to %s at the same time would not "
                    "be noticed",
                    path,
                    exc.strerror,
                    out,
                )
                return None
            holder = _holder_text(fh)
            fh.close()
            raise OutputInUseError(
                str(out),
                f"is being written by another export ({holder}; lock {path}); wait for it "
                "to end or stop it: two runs writing one output would corrupt it",
            ) from None
        if _locked_file_is_at(fh, path):
            return fh
        fh.close()
    raise OutputInUseError(str(out), f"cannot be locked: its lock {path} keeps being replaced")


@contextlib.contextmanager
def output_lock(path: Path, *, out: Path) -> Iterator[None]:
    """Hold the lock at ``path`` (beside ``out``) for the body; ``OutputInUseError`` when
    another run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = _take(path, out)
    if fh is None:
        yield
        return
    try:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        me = _Holder(pid=os.getpid(), host=socket.gethostname(), started=started)
        fh.truncate(0)
        fh.write(msgspec.json.encode(me))
        fh.flush()
        yield
    finally:
        # Unlinked while still held: a run that opened it meanwhile finds it gone once it
        # gets the lock (_locked_file_is_at) and takes a fresh one.
        path.unlink(missing_ok=True)
        fh.close()
