"""The checkpoint beside an export: the fan-out's resume state plus the data file's length
and a hash of its tail.

Written whole (``_files.atomic_write``: a temporary file, fsynced, renamed over the old
one), always *after* the data it describes is fsynced. So at any moment — ``kill -9``
included — the checkpoint on disk names a prefix of the data file (``data_bytes``) that
holds exactly the pages its :class:`~feishu_vc_async.fanout.Resume` records, and a
resumed run cuts the data file back to it and hands that same ``Resume`` to the fan-out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from .._files import atomic_write, fsync_dir
from ..discovery import DiscoveryPosition
from ..errors import FeishuError
from ..fanout import Resume
from ..meetings import Meeting, MeetingListQuery
from ..models import MeetingQuery

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "CheckpointFile",
    "CheckpointState",
    "DiscoveryState",
    "Found",
]

CHECKPOINT_VERSION = 2


class CheckpointError(FeishuError, ValueError):
    """The checkpoint cannot be used for this run (other input or options, damaged)."""


class Found(msgspec.Struct, kw_only=True):
    """A meeting a range export's discovery found: the participant_list query it is read
    with (an ongoing meeting's end fixed when it was found) and what meeting_list said."""

    query: MeetingQuery
    meeting: Meeting


class DiscoveryState(msgspec.Struct, kw_only=True):
    """A range export's discovery: the range it lists (the instants resolved when the
    export began, so ``--since 7d --resume`` continues the same week), where the listing
    stands, and every meeting found so far, in the order found."""

    range: MeetingListQuery
    position: DiscoveryPosition = msgspec.field(default_factory=DiscoveryPosition)
    found: list[Found] = []


class CheckpointState(msgspec.Struct, kw_only=True):
    version: int = CHECKPOINT_VERSION
    # Hash of everything that shapes the output bytes: meetings, format, columns, ...
    fingerprint: str
    format: str
    # The file the pages are appended to: the output itself, or the Parquet journal.
    data_file: str
    data_bytes: int = 0
    # The last ``tail_bytes`` before ``data_bytes`` hash to ``tail_sha256``: checked before
    # a resume trusts the data file (empty in checkpoints of earlier versions: not checked).
    tail_bytes: int = 0
    tail_sha256: str = ""
    rows: int = 0
    pages: int = 0
    # The fan-out's own resume state: finished meetings, next page tokens, and meetings
    # given up for good.
    resume: Resume = msgspec.field(default_factory=Resume)
    # Parquet only: a finished export's rows that a --retry-failed run adds the journal to
    # (a hard link of the output, made when that run began).
    base_file: str | None = None
    # A range export's discovery (None: the meetings came from a file).
    discovery: DiscoveryState | None = None
    # Every meeting done or given up for good, and the output final (Parquet converted).
    finalized: bool = False


class _Version(msgspec.Struct):
    version: int


class _StateV1(msgspec.Struct, kw_only=True):
    """Version 1 kept the resume state in two fields of its own."""

    fingerprint: str
    format: str
    data_file: str
    data_bytes: int = 0
    rows: int = 0
    pages: int = 0
    completed: list[str] = []
    next_tokens: dict[str, str] = {}
    finalized: bool = False

    def upgraded(self) -> CheckpointState:
        return CheckpointState(
            fingerprint=self.fingerprint,
            format=self.format,
            data_file=self.data_file,
            data_bytes=self.data_bytes,
            rows=self.rows,
            pages=self.pages,
            resume=Resume(completed=set(self.completed), next_tokens=dict(self.next_tokens)),
            finalized=self.finalized,
        )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CheckpointState)


def fingerprint(
    meetings: Iterable[str],
    *,
    fmt: str,
    columns: Sequence[str],
    redact_pii: bool,
    page_size: int,
    csv_raw: bool = False,
) -> str:
    """Identify the run a checkpoint belongs to: the meetings (a file's query keys, or a
    range export's options as typed) and the options that shape the output; page_size is
    in it because page tokens are only meaningful for the page size that produced them."""
    h = hashlib.sha256()
    parts = [fmt, ",".join(columns), str(redact_pii), str(page_size)]
    if csv_raw:  # only when set, so checkpoints of earlier versions keep their fingerprint
        parts.append("csv_raw")
    for part in parts:
        h.update(part.encode())
        h.update(b"\x00")
    for meeting in meetings:
        h.update(meeting.encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


class CheckpointFile:
    """Atomic reads and writes of one checkpoint path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0

    def load(self) -> CheckpointState | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            version = msgspec.json.decode(data, type=_Version).version
            if version == 1:
                return msgspec.json.decode(data, type=_StateV1).upgraded()
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
        atomic_write(self.path, _ENCODER.encode(state))
        self.commits += 1

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
