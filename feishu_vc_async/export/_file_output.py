"""An export to a file: rows appended page by page, progress in a checkpoint beside it.

Paths beside ``FILE``:

* ``FILE``                   the output (JSONL / CSV appended page by page; Parquet built
                             at the end)
* ``FILE.checkpoint.json``   the export's state, the data file's committed length and a
                             hash of its tail (``_checkpoint``)
* ``FILE.journal.jsonl``     a journaled format (Parquet): the rows the output is built from
* ``FILE.base``              Parquet, while a finished export's failed meetings are asked
                             again: the rows it had (a hard link), which the journal adds to
* ``FILE.failures.jsonl``    meetings not exported (absent when there are none)
* ``FILE.lock``              while a run holds the output (``_lock``)

How it keeps the protocol's promise (``_output``) without transactions: a meeting's rows
are appended whole, and the checkpoint that counts them is written only after the data
is fsynced. A crash leaves the checkpoint describing a prefix of the data file; the next
run checks that prefix's tail against the checkpoint's hash, cuts the file back to it
and asks again for the meetings after it. Every file is owner-only (``_files``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from .._files import atomic_write, fsync_dir, open_owner_only, replacing
from ..meetings import Meeting
from ..models import MeetingQuery, Participant
from ._checkpoint import CheckpointFile, FileCheckpoint
from ._errors import OutputChangedError
from ._failures import FailureRecord
from ._formats import OutputFormat, RowFormat, row_format
from ._lock import output_lock
from ._rows import ALL_COLUMNS, RowBuilder, check_columns
from ._state import ExportState
from ._writers import AppendFile, tail_digest

__all__ = ["FileOutput", "FilePaths", "file_output"]

_FAILURES_ENCODER = msgspec.json.Encoder()
_FAILURES_DECODER = msgspec.json.Decoder(FailureRecord)


@dataclass(frozen=True, slots=True)
class FilePaths:
    out: Path
    checkpoint: Path
    journal: Path
    failures: Path
    base: Path
    lock: Path

    @classmethod
    def beside(cls, out: Path) -> FilePaths:
        def sibling(suffix: str) -> Path:
            return out.with_name(out.name + suffix)

        # The lock is beside the file actually written, so that two names of one file (a
        # symlink) are one lock.
        try:
            real = out.resolve()
        except (OSError, RuntimeError):  # a symlink loop: opening it fails later, and says so
            real = out
        return cls(
            out=out,
            checkpoint=sibling(".checkpoint.json"),
            journal=sibling(".journal.jsonl"),
            failures=sibling(".failures.jsonl"),
            base=sibling(".base"),
            lock=real.with_name(real.name + ".lock"),
        )


class FileOutput:
    """An :class:`~._output.Output` to one file of ``fmt`` (JSONL, CSV, Parquet).

    ``columns`` (``_rows``: the meeting's identity, the participant fields, a range
    export's meeting columns) in that order; ``redact_pii`` blanks personal data.
    Synchronous inside: no method awaits, so a cancellation (Ctrl-C) always falls
    between two calls, never inside a page."""

    def __init__(
        self,
        path: Path,
        fmt: RowFormat,
        *,
        columns: Sequence[str] = ALL_COLUMNS,
        redact_pii: bool = False,
    ) -> None:
        self.paths = FilePaths.beside(path)
        self.format = fmt
        self.columns = check_columns(columns)
        self.redact_pii = redact_pii
        self._builder = RowBuilder(self.columns, redact_pii=redact_pii)
        self._encode = fmt.encoder(self.columns)
        self._ckpt = CheckpointFile(self.paths.checkpoint)
        self._data = AppendFile(self.paths.journal if fmt.journaled else self.paths.out)
        self._base_file: str | None = None
        self._loaded: FileCheckpoint | None = None  # the checkpoint a resume continues

    @property
    def where(self) -> str:
        return str(self.paths.out)

    @property
    def progress_where(self) -> str:
        return f"the checkpoint {self.paths.checkpoint}"

    continues_by_default = False

    @property
    def shape(self) -> tuple[str, ...]:
        return (*self.format.shape, ",".join(self.columns), f"redact_pii={self.redact_pii}")

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        self.paths.out.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(self.paths.lock, out=self.paths.out):
            yield

    # --- opening -----------------------------------------------------------------------

    async def load(self) -> ExportState | None:
        checkpoint = self._ckpt.load()
        if checkpoint is None:
            return None
        self._base_file = checkpoint.base_file
        self._loaded = checkpoint
        return checkpoint.state

    async def occupied(self) -> bool:
        out = self.paths.out
        return out.exists() or out.is_symlink()

    async def start(self, state: ExportState, *, fresh: bool) -> None:
        if fresh:
            # The old checkpoint goes first: a crash right after must not leave it
            # describing a file that is about to be cut.
            self._ckpt.remove()
            for stale in (self.paths.journal, self.paths.failures, self.paths.base):
                stale.unlink(missing_ok=True)
            self._base_file = None
            self._data.create(self.format.header(self.columns))
        elif state.finalized:
            self._check_final()
            if self.format.journaled:
                self.paths.journal.unlink(missing_ok=True)  # built: the journal was kept late
        else:
            self._reopen()

    def _reopen(self) -> None:
        checkpoint = self._loaded
        assert checkpoint is not None, "load() first"
        data = self._data.path
        if data.is_dir() or not data.exists():
            raise OutputChangedError(
                str(data),
                f"is {'a directory' if data.is_dir() else 'gone'} but the checkpoint counts "
                f"{checkpoint.state.rows} rows in it",
            )
        try:
            self._data.reopen(
                checkpoint.data_bytes,
                tail_bytes=checkpoint.tail_bytes,
                tail_sha256=checkpoint.tail_sha256,
            )
        except ValueError as exc:
            raise OutputChangedError(str(data), str(exc)) from None

    def _check_final(self) -> None:
        out = self.paths.out
        if not out.is_file():
            raise OutputChangedError(
                str(out),
                f"is {'not a file' if out.exists() else 'gone'} but its checkpoint says the "
                "export is complete",
            )
        if self.format.journaled:
            return  # built from a journal its checkpoint vouched for, then renamed in
        checkpoint = self._loaded
        assert checkpoint is not None, "load() first"
        size = out.stat().st_size
        changed = size != checkpoint.data_bytes
        if not changed and checkpoint.tail_sha256:
            with out.open("rb") as fh:
                fh.seek(size - checkpoint.tail_bytes)
                changed = tail_digest(fh.read(checkpoint.tail_bytes)) != checkpoint.tail_sha256
        if changed:
            raise OutputChangedError(
                str(out),
                f"changed after the export completed ({size} bytes; the checkpoint recorded "
                f"{checkpoint.data_bytes} and a hash of its end)",
            )

    async def reopen_final(self, state: ExportState) -> None:
        """A journaled format cannot be appended to, so the final output's rows become
        the base of a new journal; the others are appended to as they are."""
        self._check_final()
        if self.format.journaled:
            _link_or_copy(self.paths.out, self.paths.base)
            self._data.create()
            self._base_file = self.paths.base.name
        else:
            self._reopen()

    # --- rows and progress -------------------------------------------------------------

    async def write(
        self,
        query: MeetingQuery,
        pages: Iterable[Sequence[Participant]],
        meeting: Meeting | None,
    ) -> int:
        written = 0
        for participants in pages:
            rows = self._builder.values(query, participants, meeting)
            if rows:
                self._data.append(self._encode(rows))
                written += len(rows)
        return written

    async def commit(self, state: ExportState) -> None:
        self._data.sync()
        tail = self._data.tail()
        self._ckpt.commit(
            FileCheckpoint(
                format=self.format.name,
                data_file=self._data.path.name,
                data_bytes=self._data.length,
                tail_bytes=len(tail),
                tail_sha256=tail_digest(tail),
                base_file=self._base_file,
                state=state,
            )
        )

    async def finish(self, state: ExportState) -> None:
        self._data.close()
        if self.format.journaled:
            base = self.paths.base if self._base_file else None
            length = self._data.length
            self.format.build(
                self.paths.journal, self.paths.out, self.columns, length=length, base=base
            )
        if state.finalized:
            self._base_file = None
        await self.commit(state)
        if state.finalized and self.format.journaled:
            self.paths.journal.unlink(missing_ok=True)
            self.paths.base.unlink(missing_ok=True)
            fsync_dir(self.paths.out.parent)

    async def close(self) -> None:
        self._data.close()

    # --- failures ----------------------------------------------------------------------

    async def earlier_failures(self) -> list[FailureRecord]:
        records: list[FailureRecord] = []
        with contextlib.suppress(OSError):
            for line in self.paths.failures.read_bytes().splitlines():
                with contextlib.suppress(msgspec.DecodeError):
                    records.append(_FAILURES_DECODER.decode(line))
        return records

    async def record_failures(self, records: Sequence[FailureRecord]) -> None:
        if records:
            atomic_write(self.paths.failures, _FAILURES_ENCODER.encode_lines(records))
        else:
            self.paths.failures.unlink(missing_ok=True)


def file_output(
    path: Path | str,
    fmt: OutputFormat | None = None,
    *,
    columns: Sequence[str] = ALL_COLUMNS,
    redact_pii: bool = False,
    csv_raw: bool = False,
) -> FileOutput:
    """A file output in the format ``fmt``, else the one of ``path``'s extension
    (``ValueError`` when neither says; ``ImportError`` without pyarrow for Parquet)."""
    where = Path(path)
    return FileOutput(
        where, row_format(where, fmt, csv_raw=csv_raw), columns=columns, redact_pii=redact_pii
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes ``src``'s content: a hard link, or an owner-only copy where the
    file system has none."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        with replacing(dst) as tmp, src.open("rb") as fin, open_owner_only(tmp) as fout:
            shutil.copyfileobj(fin, fout)
    fsync_dir(dst.parent)
