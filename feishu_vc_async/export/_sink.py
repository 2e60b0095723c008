"""Where pages go: the data file plus its checkpoint, kept consistent with each other.

Paths beside ``--out FILE``:

* ``FILE``                   the output (JSONL / CSV appended page by page; Parquet at the end)
* ``FILE.checkpoint.json``   finished and given-up meetings, next page tokens, the data
                             file's length and a hash of its tail
* ``FILE.journal.jsonl``     Parquet only: the JSONL spool the Parquet file is built from
* ``FILE.base``              Parquet only, during a ``--retry-failed`` of a finished export:
                             the rows it had (a hard link), which the journal is added to
* ``FILE.failures.jsonl``    meetings not exported: failed in the last run, or given up
                             for good by an earlier one (absent when there are none)
* ``FILE.lock``              while a run holds the output (``_lock``)

The rule that makes a resume exact: a page's rows are appended whole, and the
checkpoint that counts them is committed only after the data is fsynced. A crash
leaves the checkpoint describing a prefix of the data file; the next run checks that
prefix's tail against the checkpoint's hash, truncates the file to it and asks again
for the pages after it.

A fresh export touches nothing on disk until it has something to record (its first
page or failure): a run that stops before that (refused credentials, Redis down) leaves
the old output, checkpoint and failures as they were, so the corrected command runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .._files import atomic_write, fsync_dir, open_owner_only, replacing
from ..discovery import DiscoveryPosition
from ..errors import APIError, DecodeError
from ..fanout import MeetingFailure, PageItem, Resume
from ..meetings import Meeting, MeetingListQuery
from ..models import MeetingQuery
from ._checkpoint import (
    CheckpointError,
    CheckpointFile,
    CheckpointState,
    DiscoveryState,
    Found,
    fingerprint,
)
from ._config import ConfigError
from ._rows import RowBuilder
from ._writers import (
    AppendFile,
    JsonlEncoder,
    OutputFormat,
    csv_header,
    encode_csv,
    jsonl_to_parquet,
    require_pyarrow,
    tail_digest,
)

__all__ = ["ExportSink", "FailureRecord", "SinkPaths", "error_text", "failure_record"]


@dataclass(frozen=True, slots=True)
class SinkPaths:
    out: Path
    checkpoint: Path
    journal: Path
    failures: Path
    base: Path
    lock: Path

    @classmethod
    def beside(cls, out: Path) -> SinkPaths:
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


class FailureRecord(msgspec.Struct, kw_only=True):
    meeting_no: str
    key: str
    error: str
    code: int | None
    message: str
    log_id: str | None
    http_status: int | None
    pages_fetched: int
    # The platform's answer will not change (no such meeting, no permission, data gone,
    # a refused parameter): --resume does not ask again, --retry-failed does.
    permanent: bool = False


_FAILURES_ENCODER = msgspec.json.Encoder()
_FAILURES_DECODER = msgspec.json.Decoder(FailureRecord)


class ExportSink:
    """Appends pages, records failures, commits checkpoints, and finishes the output.
    Synchronous on purpose: a page is written with no ``await`` in between, so a
    cancellation (Ctrl-C) always falls between pages, never inside one.

    The resume state it keeps is the fan-out's own :class:`~feishu_vc_async.fanout.Resume`
    (:attr:`resume`): :meth:`open` loads it from the checkpoint for the fan-out to start
    from, and :meth:`write` / :meth:`record_failure` advance it once the page is in the
    data file. The export is *final* when every meeting is done or given up for good.
    """

    def __init__(
        self,
        out: Path,
        *,
        fmt: OutputFormat,
        queries: Sequence[MeetingQuery] = (),
        discovery: MeetingListQuery | None = None,
        identity: Sequence[str] | None = None,
        columns: Sequence[str],
        redact_pii: bool,
        page_size: int,
        csv_raw: bool = False,
        commit_interval: float = 0.5,
    ) -> None:
        """``queries``: the meetings of a meetings-file export. A range export passes the
        range to list instead (``discovery``) and what identifies it (``identity``: its
        options as typed); its meetings are added as they are found (:meth:`add_found`)."""
        self.paths = SinkPaths.beside(out)
        self.fmt = fmt
        self.csv_raw = csv_raw
        self.redact_pii = redact_pii
        self.columns = tuple(columns)
        # key → the meeting as meeting_list described it (range exports), for the
        # meeting columns --fields may join onto each row.
        self._meetings: dict[str, Meeting] = {}
        self.builder = RowBuilder(self.columns, redact_pii=redact_pii, meetings=self._meetings)
        self._jsonl = JsonlEncoder(self.columns)  # the Parquet journal's lines too
        self.commit_interval = commit_interval
        self._discovery_range = discovery
        self._fingerprint = fingerprint(
            identity if identity is not None else [q.key for q in queries],
            fmt=fmt,
            columns=self.columns,
            redact_pii=redact_pii,
            page_size=page_size,
            csv_raw=csv_raw,
        )
        # key → meeting number: the meetings of this export (a range export's grow as
        # they are found), and the failures file's lines about earlier runs.
        self._numbers = {q.key: q.meeting_no for q in queries}
        self._ckpt = CheckpointFile(self.paths.checkpoint)
        data_path = self.paths.journal if fmt == "parquet" else self.paths.out
        self._data = AppendFile(data_path)
        self._state: CheckpointState | None = None
        self._started = False  # a fresh export touched the disk (see _start)
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
        """Every meeting is done or given up for good, and the output final."""
        return self._state is not None and self._state.finalized

    @property
    def discovery(self) -> DiscoveryState | None:
        """A range export's discovery: its range, position and the meetings found."""
        return None if self._state is None else self._state.discovery

    @property
    def known(self) -> int:
        """Meetings of this export known so far (a range export's: found so far)."""
        return len(self._numbers)

    @property
    def started(self) -> bool:
        """Something of this export is on disk (a resumed one, or a fresh one that has
        recorded its first page or failure)."""
        return self._started

    def open(self, *, resume: bool, overwrite: bool, retry_failed: bool = False) -> Resume:
        """Continue the checkpoint (``resume``; ``retry_failed`` reopens a final one that
        gave meetings up) or plan a fresh start, and return the resume state. Raises
        ``CheckpointError`` when an unfinished export would be thrown away, or the
        checkpoint or the output it describes do not fit; ``ConfigError`` when ``--out``
        exists and is not this export's, without ``overwrite``."""
        if self.fmt == "parquet":
            require_pyarrow()  # fail before any request, not after the last page
        self.paths.out.parent.mkdir(parents=True, exist_ok=True)
        state = None if overwrite else self._ckpt.load()
        ours = (
            state is not None
            and state.fingerprint == self._fingerprint
            and state.format == self.fmt
        )
        if state is not None and not resume and not state.finalized:
            raise CheckpointError(
                f"{self.paths.checkpoint} holds an unfinished export; pass --resume to "
                "continue it or --overwrite to start again"
            )
        if resume and state is not None:
            if not ours:
                raise CheckpointError(
                    f"{self.paths.checkpoint} was written for another meetings list or other "
                    "options (format, --fields, --redact-pii, --page-size, --csv-raw); run "
                    "with the same ones, or start again with --overwrite"
                )
            self._state = state
            self._started = True
            for found in state.discovery.found if state.discovery is not None else ():
                self._know(found)
            if state.finalized and retry_failed and state.resume.failed:
                self._reopen_final(state)
            elif state.finalized:
                self._check_final_output(state)
                if self.fmt == "parquet":
                    self.paths.journal.unlink(missing_ok=True)
            else:
                self._reopen(state)
            return state.resume
        if not overwrite and (self.paths.out.exists() or self.paths.out.is_symlink()):
            if state is None:
                raise ConfigError(
                    f"--out {self.paths.out} exists and no checkpoint says it is this "
                    "export's output; pass --overwrite to replace it"
                )
            if not ours:
                raise ConfigError(
                    f"--out {self.paths.out} holds another finished export (other meetings "
                    "or options); pass --overwrite to replace it"
                )
        self._state = CheckpointState(
            fingerprint=self._fingerprint,
            format=self.fmt,
            data_file=self._data.path.name,
            discovery=(
                None
                if self._discovery_range is None
                else DiscoveryState(range=self._discovery_range)
            ),
        )
        return self._state.resume

    def _reopen(self, state: CheckpointState) -> None:
        if not self._data.path.exists():
            raise CheckpointError(
                f"{self._data.path} is gone but {self.paths.checkpoint} counts "
                f"{state.rows} rows in it; start again with --overwrite"
            )
        try:
            self._data.reopen(
                state.data_bytes, tail_bytes=state.tail_bytes, tail_sha256=state.tail_sha256
            )
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None

    def _reopen_final(self, state: CheckpointState) -> None:
        """--retry-failed of a final export: append to it again. A Parquet file cannot be
        appended to, so its rows become the base of a new journal."""
        self._check_final_output(state)
        if self.fmt == "parquet":
            _link_or_copy(self.paths.out, self.paths.base)
            self._data.create()
            state.base_file = self.paths.base.name
            state.data_bytes = 0
        else:
            self._reopen(state)
        state.finalized = False
        self._dirty = True
        self.commit()

    def _check_final_output(self, state: CheckpointState) -> None:
        out = self.paths.out
        if not out.exists():
            raise CheckpointError(
                f"{self.paths.checkpoint} says the export is complete but {out} is gone; "
                "start again with --overwrite"
            )
        if self.fmt == "parquet":
            return  # the journal its checkpoint vouched for is gone; the file was renamed in
        size = out.stat().st_size
        changed = size != state.data_bytes
        if not changed and state.tail_sha256:
            with out.open("rb") as fh:
                fh.seek(size - state.tail_bytes)
                changed = tail_digest(fh.read(state.tail_bytes)) != state.tail_sha256
        if changed:
            raise CheckpointError(
                f"{out} changed after the export completed ({size} bytes, the checkpoint "
                f"recorded {state.data_bytes} and a hash of its end); start again with "
                "--overwrite"
            )

    def _start(self) -> None:
        """A fresh export's first touch of the disk, at its first page or failure."""
        if self._started:
            return
        self._started = True
        # The old checkpoint goes first: a crash right after must not leave it describing
        # a file that is about to be truncated.
        self._ckpt.remove()
        for stale in (self.paths.journal, self.paths.failures, self.paths.base):
            stale.unlink(missing_ok=True)
        self._data.create(csv_header(self.columns) if self.fmt == "csv" else b"")
        self._dirty = True
        self.commit()

    # --- pages and failures ----------------------------------------------------------------

    def write(self, item: PageItem) -> int:
        """Append one page's rows, then record the page in the resume state; return the
        number of rows written."""
        state = self._state
        assert state is not None, "ExportSink.open() first"
        if item.query.key in state.resume.completed:
            return 0  # a page of a finished meeting would be a duplicate
        self._start()
        rows = self.builder.values(item.query, item.participants)
        if rows:
            data = (
                encode_csv(rows, raw=self.csv_raw)
                if self.fmt == "csv"
                else self._jsonl.encode(rows)
            )
            self._data.append(data)
        state.rows += len(rows)
        state.pages += 1
        state.resume.record(item)
        self.rows_this_run += len(rows)
        self.pages_this_run += 1
        self._dirty = True
        self._commit_now_and_then()
        return len(rows)

    def add_found(
        self, query: MeetingQuery, meeting: Meeting, position: DiscoveryPosition
    ) -> Found:
        """A range export's discovery found ``meeting`` (read with ``query``) and stands
        at ``position``; recorded with the next commit. Under ``redact_pii`` the
        organizer's contact data is not kept."""
        discovery = self._range_discovery()
        if self.redact_pii:
            meeting = msgspec.structs.replace(meeting, employee_id=None, email=None, mobile=None)
        found = Found(query=query, meeting=meeting)
        self._start()
        discovery.found.append(found)
        discovery.position = position
        self._know(found)
        self._dirty = True
        self._commit_now_and_then()
        return found

    def discovery_at(self, position: DiscoveryPosition) -> None:
        """Discovery moved on (through pages of meetings found before, or to its end)."""
        discovery = self._range_discovery()
        if position != discovery.position:
            discovery.position = position
            self._dirty = True
            if self._started:
                self._commit_now_and_then()

    def _range_discovery(self) -> DiscoveryState:
        state = self._state
        assert state is not None, "ExportSink.open() first"
        assert state.discovery is not None, "a range export's sink"
        return state.discovery

    def _know(self, found: Found) -> None:
        key = found.query.key
        self._numbers[key] = found.query.meeting_no
        self._meetings[key] = found.meeting

    def record_failure(self, item: MeetingFailure) -> None:
        """Record a failed meeting in the resume state (given up for good, if its error
        is permanent)."""
        assert self._state is not None, "ExportSink.open() first"
        self._start()
        self._state.resume.record(item)
        self._dirty = True
        self._commit_now_and_then()

    def _commit_now_and_then(self) -> None:
        # A checkpoint of 100k meetings is megabytes: commits are spaced so that they take
        # at most ~5 % of the time (commit_interval 0, in tests: after every item). Only
        # how much a crash makes the next run fetch again depends on this.
        gap = max(self.commit_interval, 20 * self._commit_cost) if self.commit_interval else 0.0
        if time.monotonic() - self._last_commit >= gap:
            self.commit()

    def commit(self) -> None:
        """Make everything written so far durable, then the checkpoint that counts it."""
        state = self._state
        if not self._dirty or state is None or not self._started:
            return
        started = time.monotonic()
        self._data.sync()
        tail = self._data.tail()
        state.data_bytes = self._data.length
        state.tail_bytes = len(tail)
        state.tail_sha256 = tail_digest(tail)
        self._ckpt.commit(state)
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
        if self._state is None:
            return 0
        return len(self._state.resume.completed & self._numbers.keys())

    @property
    def given_up(self) -> int:
        """Meetings of this export given up for good, by this run or earlier ones."""
        if self._state is None:
            return 0
        return len(self._state.resume.failed.keys() & self._numbers.keys())

    def finish(self) -> None:
        """Commit, build the Parquet file, and mark the export final when every meeting
        is done or given up for good. Also called after transient failures (the export
        then stays unfinished: the checkpoint is committed and the data file closed)."""
        state = self._state
        if state is None or state.finalized:
            return
        self._start()
        self.commit()
        self._data.close()
        base = self.paths.base if state.base_file else None
        if self.fmt == "parquet":
            jsonl_to_parquet(
                self.paths.journal, self.paths.out, self.columns, length=state.data_bytes, base=base
            )
        everything_known = state.discovery is None or state.discovery.position.done
        if everything_known and self.completed + self.given_up == len(self._numbers):
            state.finalized = True
            state.base_file = None
            self._dirty = True
            self.commit()
            if self.fmt == "parquet":
                self.paths.journal.unlink(missing_ok=True)
                if base is not None:
                    base.unlink(missing_ok=True)
                fsync_dir(self.paths.out.parent)

    def abort(self) -> None:
        """Interrupted or stopped: keep what is consistent (commit), close, build nothing."""
        if self._state is None or not self._started:
            return
        try:
            self.commit()
        finally:
            self._data.close()

    def write_failures(self, failures: Sequence[FailureRecord]) -> list[FailureRecord]:
        """Write ``FILE.failures.jsonl`` with :meth:`unexported` and return that."""
        if not self._started:
            return []  # nothing of this export on disk: an earlier file stays as it was
        path = self.paths.failures
        records = self.unexported(failures)
        if not records:
            path.unlink(missing_ok=True)
            return records
        atomic_write(path, _FAILURES_ENCODER.encode_lines(records))
        return records

    def unexported(self, failures: Sequence[FailureRecord]) -> list[FailureRecord]:
        """The meetings not exported: those earlier runs gave up for good and this one did
        not ask again (as the failures file describes them), then this run's ``failures``."""
        return [*self._earlier_failures({f.key for f in failures}), *failures]

    def _earlier_failures(self, this_run: set[str]) -> list[FailureRecord]:
        if self._state is None:
            return []
        given_up = {
            key: code
            for key, code in self._state.resume.failed.items()
            if key in self._numbers and key not in this_run
        }
        if not given_up:
            return []
        kept: dict[str, FailureRecord] = {}
        with contextlib.suppress(OSError):
            for line in self.paths.failures.read_bytes().splitlines():
                with contextlib.suppress(msgspec.DecodeError):
                    record = _FAILURES_DECODER.decode(line)
                    if record.key in given_up:
                        kept[record.key] = record
        return [
            kept.get(key)
            or FailureRecord(
                meeting_no=self._numbers[key],
                key=key,
                error="given up by an earlier run",
                code=code or None,
                message="failed for good in an earlier run",
                log_id=None,
                http_status=None,
                pages_fetched=0,
                permanent=True,
            )
            for key, code in given_up.items()
        ]


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


def error_text(error: BaseException, *, redact_pii: bool) -> str:
    """What an export shows and stores of an error. Under ``--redact-pii`` the start of
    an undecodable body is left out: a cut-short page holds phones, emails and IP
    addresses that no pattern can reliably pick out (an employee id looks like anything),
    and the log id still identifies the answer for the platform's support. Secrets and
    tokens are already scrubbed from every error (``_scrub``)."""
    if isinstance(error, DecodeError):
        return error.describe(snippet=not redact_pii)
    return str(error)


def failure_record(item: MeetingFailure, *, redact_pii: bool = False) -> FailureRecord:
    """What a failed meeting's line in ``FILE.failures.jsonl`` says."""
    error = item.error
    # An API error's own words; its code and log id have fields of their own.
    message = error.msg if isinstance(error, APIError) and error.msg else None
    code: Any = getattr(error, "code", None)
    status: Any = getattr(error, "http_status", None)
    log_id: Any = getattr(error, "log_id", None)
    return FailureRecord(
        meeting_no=item.query.meeting_no,
        key=item.query.key,
        error=type(error).__name__,
        code=code if isinstance(code, int) else None,
        message=message or error_text(error, redact_pii=redact_pii),
        log_id=log_id if isinstance(log_id, str) else None,
        http_status=status if isinstance(status, int) else None,
        pages_fetched=item.pages_fetched,
        permanent=error.permanent,
    )
