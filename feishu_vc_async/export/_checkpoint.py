"""The checkpoint beside an export: which meetings are done, where the others stopped.

Written whole to a temporary file, fsynced, and renamed over the old one, always
*after* the data it describes is fsynced. So at any moment — ``kill -9`` included —
the checkpoint on disk names a prefix of the data file (``data_bytes``) that holds
exactly the pages it records, and a resumed run cuts the data file back to it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

from ..models import MeetingQuery
from ._writers import fsync_dir

__all__ = ["CHECKPOINT_VERSION", "CheckpointError", "CheckpointFile", "CheckpointState"]

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """The checkpoint cannot be used for this run (other input or options, damaged)."""


class CheckpointState(msgspec.Struct, kw_only=True):
    version: int = CHECKPOINT_VERSION
    # Hash of everything that shapes the output bytes: meetings, format, columns, ...
    fingerprint: str
    format: str
    # The file the pages are appended to: the output itself, or the Parquet journal.
    data_file: str
    data_bytes: int = 0
    rows: int = 0
    pages: int = 0
    completed: list[str] = []
    next_tokens: dict[str, str] = {}
    # All meetings done and the output final (the Parquet file converted).
    finalized: bool = False


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CheckpointState)


def fingerprint(
    queries: Sequence[MeetingQuery],
    *,
    fmt: str,
    columns: Sequence[str],
    redact_pii: bool,
    page_size: int,
) -> str:
    """Identify the run a checkpoint belongs to; page_size is in it because page tokens
    are only meaningful for the page size that produced them."""
    h = hashlib.sha256()
    for part in (fmt, ",".join(columns), str(redact_pii), str(page_size)):
        h.update(part.encode())
        h.update(b"\x00")
    for q in queries:
        h.update(q.key.encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


class CheckpointFile:
    """Atomic reads and writes of one checkpoint path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        self.commits = 0

    def load(self) -> CheckpointState | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            raise CheckpointError(
                f"checkpoint {self.path} is damaged ({exc}); start again with --overwrite"
            ) from None
        if state.version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint {self.path} has version {state.version}, this program writes "
                f"{CHECKPOINT_VERSION}; start again with --overwrite"
            )
        return state

    def commit(self, state: CheckpointState) -> None:
        """Replace the checkpoint with ``state``; durable when this returns."""
        with open(self._tmp, "wb") as fh:
            fh.write(_ENCODER.encode(state))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)
        self.commits += 1

    def remove(self) -> None:
        for p in (self.path, self._tmp):
            p.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
