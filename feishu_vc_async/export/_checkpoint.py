"""The checkpoint beside a file output: the export's state plus where its data file stands.

Written whole (``_files.atomic_write``: a temporary file, fsynced, renamed over the old
one), always *after* the data it describes is fsynced. So at any moment — ``kill -9``
included — the checkpoint on disk names a prefix of the data file (``data_bytes``) that
holds exactly the rows its state counts, and a resumed run cuts the data file back to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from .._files import atomic_write, fsync_dir
from ._errors import CheckpointError
from ._state import ExportState

__all__ = ["CHECKPOINT_VERSION", "CheckpointFile", "FileCheckpoint"]

# 3: the export's state nested in ``state`` (2 kept its fields at the top level).
CHECKPOINT_VERSION = 3


class FileCheckpoint(msgspec.Struct, kw_only=True):
    version: int = CHECKPOINT_VERSION
    format: str
    # The file the rows are appended to: the output itself, or the Parquet journal.
    data_file: str
    data_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    # The last ``tail_bytes`` before ``data_bytes`` hash to ``tail_sha256``: checked before
    # a resume trusts the data file.
    tail_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    tail_sha256: str = ""
    # Parquet only: a finished export's rows that a run asking its failed meetings again
    # adds the journal to (a hard link of the output, made when that run began).
    base_file: str | None = None
    state: ExportState


class _Version(msgspec.Struct):
    version: int = 0


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(FileCheckpoint)


class CheckpointFile:
    """Atomic reads and writes of one checkpoint path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0

    def load(self) -> FileCheckpoint | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise CheckpointError(str(self.path), "is a directory, not a checkpoint") from None
        try:
            version = msgspec.json.decode(data, type=_Version).version
            if version != CHECKPOINT_VERSION:
                raise CheckpointError(
                    str(self.path),
                    f"has version {version}, this program reads {CHECKPOINT_VERSION}: finish "
                    "that export with the version that began it",
                )
            return _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            raise CheckpointError(str(self.path), f"is damaged ({exc})") from None

    def commit(self, checkpoint: FileCheckpoint) -> None:
        """Replace the checkpoint; durable when this returns."""
        atomic_write(self.path, _ENCODER.encode(checkpoint))
        self.commits += 1

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
