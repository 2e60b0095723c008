"""Where pages go: the data file plus its checkpoint, kept consistent with each other.

Paths beside ``--out FILE``:

* ``FILE``                   the output (JSONL / CSV appended page by page; Parquet at the end)
* ``FILE.checkpoint.json``   finished meetings, next page tokens, the data file's length
* ``FILE.journal.jsonl``     Parquet only: the JSONL spool the Parquet file is built from
* ``FILE.failures.jsonl``    meetings that failed in the last run (absent when none did)

The rule that makes a resume exact: a page's rows are appended whole, and the
checkpoint that counts them is committed only after the data is fsynced. A crash
leaves the checkpoint describing a prefix of the data file; the next run truncates
the file to that prefix and asks again for the pages after it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .._files import atomic_write, fsync_dir
from ..fanout import PageItem, Resume
from ..models import MeetingQuery
from ._checkpoint import CheckpointError, CheckpointFile, CheckpointState, fingerprint
from ._rows import RowBuilder
from ._writers import (
    AppendFile,
    OutputFormat,
    csv_header,
    encode_csv,
    encode_jsonl,
    jsonl_to_parquet,
    require_pyarrow,
)

__all__ = ["ExportSink", "FailureRecord", "SinkPaths"]


@dataclass(frozen=True, slots=True)
class SinkPaths:
    out: Path
    checkpoint: Path
    journal: Path
    failures: Path

    @classmethod
    def beside(cls, out: Path) -> SinkPaths:
        def sibling(suffix: str) -> Path:
            return out.with_name(out.name + suffix)

        return cls(
            out=out,
            checkpoint=sibling(".checkpoint.json"),
            journal=sibling(".journal.jsonl"),
            failures=sibling(".failures.jsonl"),
        )


class FailureRecord(msgspec.Struct, kw_only=True):
    meeting_no: str
    key: str
    error: str
    code: int | None
    message: str
    log_id: str | None
    http_status: int | None
    pages_fetched: int


_FAILURES_ENCODER = msgspec.json.Encoder()


class ExportSink:
    """Appends pages, commits checkpoints, and finishes the output. Synchronous on
    purpose: a page is written with no ``await`` in between, so a cancellation (Ctrl-C)
    always falls between pages, never inside one.

    The resume state it keeps is the fan-out's own :class:`~feishu_vc_async.fanout.Resume`
    (:attr:`resume`): :meth:`open` loads it from the checkpoint for the fan-out to start
    from, and :meth:`write` records each page in it once the page is in the data file.
    """

    def __init__(
        self,
        out: Path,
        *,
        fmt: OutputFormat,
        queries: Sequence[MeetingQuery],
        columns: Sequence[str],
        redact_pii: bool,
        page_size: int,
        csv_raw: bool = False,
        commit_interval: float = 0.5,
    ) -> None:
        self.paths = SinkPaths.beside(out)
        self.fmt = fmt
        self.csv_raw = csv_raw
        self.columns = tuple(columns)
        self.builder = RowBuilder(self.columns, redact_pii=redact_pii)
        self.commit_interval = commit_interval
        self._fingerprint = fingerprint(
            queries,
            fmt=fmt,
            columns=self.columns,
            redact_pii=redact_pii,
            page_size=page_size,
            csv_raw=csv_raw,
        )
        self._keys = {q.key for q in queries}
        self._ckpt = CheckpointFile(self.paths.checkpoint)
        data_path = self.paths.journal if fmt == "parquet" else self.paths.out
        self._data = AppendFile(data_path)
        self._state: CheckpointState | None = None
        self._dirty = False
        self._last_commit = 0.0
        self._commit_cost = 0.0  # seconds the last commit took
        self.rows_this_run = 0
        self.pages_this_run = 0

    # --- opening -----------------------------------------------------------------------

    @property
    def resume(self) -> Resume:
        """The resume state of the export (what the fan-out starts from)."""
        assert self._state is not None, "ExportSink.open() first"
        return self._state.resume

    @property
    def finalized(self) -> bool:
        """Every meeting is done and the output final (nothing left to fetch)."""
        return self._state is not None and self._state.finalized

    def open(self, *, resume: bool, overwrite: bool) -> Resume:
        """Continue the checkpoint (``resume``) or start afresh, and return the resume
        state; raise ``CheckpointError`` when an unfinished export would be thrown away
        without ``overwrite``."""
        if self.fmt == "parquet":
            require_pyarrow()  # fail before any request, not after the last page
        self.paths.out.parent.mkdir(parents=True, exist_ok=True)
        state = self._ckpt.load() if (resume or not overwrite) else None
        if state is not None and not resume and not state.finalized:
            raise CheckpointError(
                f"{self.paths.checkpoint} holds an unfinished export; pass --resume to "
                "continue it or --overwrite to start again"
            )
        if resume and state is not None:
            if state.fingerprint != self._fingerprint or state.format != self.fmt:
                raise CheckpointError(
                    f"{self.paths.checkpoint} was written for another meetings list or other "
                    "options (format, --fields, --redact-pii, --page-size, --csv-raw); run "
                    "with the same ones, or start again with --overwrite"
                )
            self._state = state
            if state.finalized:
                self._check_final_output(state)
                if self.paths.journal.exists() and self.fmt == "parquet":
                    self.paths.journal.unlink()
                return state.resume
            if not self._data.path.exists():
                raise CheckpointError(
                    f"{self._data.path} is gone but {self.paths.checkpoint} counts "
                    f"{state.rows} rows in it; start again with --overwrite"
                )
            try:
                self._data.reopen(state.data_bytes)
            except ValueError as exc:
                raise CheckpointError(str(exc)) from None
            return state.resume
        self._start_fresh()
        return self.resume

    def _check_final_output(self, state: CheckpointState) -> None:
        out = self.paths.out
        if not out.exists():
            raise CheckpointError(
                f"{self.paths.checkpoint} says the export is complete but {out} is gone; "
                "start again with --overwrite"
            )
        if self.fmt != "parquet" and out.stat().st_size != state.data_bytes:
            raise CheckpointError(
                f"{out} changed after the export completed ({out.stat().st_size} bytes, the "
                f"checkpoint recorded {state.data_bytes}); start again with --overwrite"
            )

    def _start_fresh(self) -> None:
        # The old checkpoint goes first: a crash right after must not leave it describing
        # a file that is about to be truncated.
        self._ckpt.remove()
        for stale in (self.paths.journal, self.paths.failures):
            if stale.exists():
                stale.unlink()
        header = csv_header(self.columns) if self.fmt == "csv" else b""
        self._data.create(header)
        self._state = CheckpointState(
            fingerprint=self._fingerprint,
            format=self.fmt,
            data_file=self._data.path.name,
            data_bytes=self._data.length,
        )
        self._dirty = True
        self.commit()

    # --- pages ---------------------------------------------------------------------------

    def write(self, item: PageItem) -> int:
        """Append one page's rows, then record the page in the resume state; return the
        number of rows written."""
        state = self._state
        assert state is not None, "ExportSink.open() first"
        if item.query.key in state.resume.completed:
            return 0  # a page of a finished meeting would be a duplicate
        rows = self.builder.rows(item.query, item.participants)
        if rows:
            data = encode_csv(rows, raw=self.csv_raw) if self.fmt == "csv" else encode_jsonl(rows)
            self._data.append(data)
        state.data_bytes = self._data.length
        state.rows += len(rows)
        state.pages += 1
        state.resume.record(item)
        self.rows_this_run += len(rows)
        self.pages_this_run += 1
        self._dirty = True
        # A checkpoint of 100k meetings is megabytes: commits are spaced so that they take
        # at most ~5 % of the time (commit_interval 0, in tests: after every page). Only
        # how much a crash makes the next run fetch again depends on this.
        gap = max(self.commit_interval, 20 * self._commit_cost) if self.commit_interval else 0.0
        if time.monotonic() - self._last_commit >= gap:
            self.commit()
        return len(rows)

    def commit(self) -> None:
        """Make everything written so far durable, then the checkpoint that counts it."""
        if not self._dirty or self._state is None:
            return
        started = time.monotonic()
        self._data.sync()
        self._ckpt.commit(self._state)
        self._dirty = False
        self._last_commit = time.monotonic()
        self._commit_cost = self._last_commit - started

    # --- the end -------------------------------------------------------------------------

    @property
    def total_rows(self) -> int:
        return 0 if self._state is None else self._state.rows

    @property
    def completed(self) -> int:
        """Meetings of this export finished, by this run or earlier ones."""
        return 0 if self._state is None else len(self._state.resume.completed & self._keys)

    def finish(self) -> None:
        """Commit, build the Parquet file, and mark the export final when every meeting
        is done. Also called after failures (the export then stays unfinished: the
        checkpoint is committed and the data file closed, nothing else changes)."""
        state = self._state
        if state is None:
            return
        self.commit()
        if state.finalized:
            return
        self._data.close()
        if self.fmt == "parquet":
            jsonl_to_parquet(
                self.paths.journal, self.paths.out, self.columns, length=state.data_bytes
            )
        if self.completed == len(self._keys):
            state.finalized = True
            self._dirty = True
            self.commit()
            if self.fmt == "parquet":
                self.paths.journal.unlink(missing_ok=True)
                fsync_dir(self.paths.out.parent)

    def abort(self) -> None:
        """Interrupted: keep what is consistent (commit), close, build nothing."""
        if self._state is None:
            return
        try:
            self.commit()
        finally:
            self._data.close()

    def write_failures(self, failures: Sequence[FailureRecord]) -> None:
        path = self.paths.failures
        if not failures:
            path.unlink(missing_ok=True)
            return
        atomic_write(path, _FAILURES_ENCODER.encode_lines(list(failures)))


def failure_record(query: MeetingQuery, error: BaseException, pages_fetched: int) -> FailureRecord:
    """What a failed meeting's line in ``FILE.failures.jsonl`` says (never a secret: the
    library's errors carry none)."""
    code: Any = getattr(error, "code", None)
    status: Any = getattr(error, "http_status", None)
    log_id: Any = getattr(error, "log_id", None)
    message: Any = getattr(error, "msg", None) or str(error)
    return FailureRecord(
        meeting_no=query.meeting_no,
        key=query.key,
        error=type(error).__name__,
        code=code if isinstance(code, int) else None,
        message=str(message),
        log_id=log_id if isinstance(log_id, str) else None,
        http_status=status if isinstance(status, int) else None,
        pages_fetched=pages_fetched,
    )
