"""Output writers: JSONL (msgspec), CSV, and Parquet (pyarrow, the ``parquet`` extra).

JSONL and CSV are append-only byte files: a page of rows is encoded whole and appended,
and :class:`AppendFile` counts the bytes so the checkpoint can record the exact length
that belongs to the pages it names. A resumed run cuts the file back to that length,
which removes any partial tail a crash left behind.

Parquet cannot be appended to after a crash (its footer is written last), so a Parquet
export spools pages to a JSONL *journal* beside the output, with the same append-and-
truncate rules, and converts the journal to a typed Parquet file at the end of each run
(written to a temporary name, then renamed into place). Every file is owner-only
(``_files``): an export holds personal data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from .._files import open_owner_only
from ._parquet import jsonl_to_parquet, parquet_schema, require_pyarrow

__all__ = [
    "TAIL_BYTES",
    "AppendFile",
    "OutputFormat",
    "csv_header",
    "encode_csv",
    "encode_jsonl",
    "format_from_path",
    "jsonl_to_parquet",
    "parquet_schema",
    "read_tail",
    "require_pyarrow",
    "tail_digest",
]

OutputFormat = Literal["jsonl", "csv", "parquet"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("jsonl", "csv", "parquet")
_SUFFIXES: dict[str, OutputFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

def format_from_path(path: Path) -> OutputFormat | None:
    return _SUFFIXES.get(path.suffix.lower())


# --- encoders ------------------------------------------------------------------------

_JSON = msgspec.json.Encoder()


def encode_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return _JSON.encode_lines(rows)


# A spreadsheet opening the CSV runs a cell that starts with one of these as a formula
# (OWASP, "CSV Injection"), and participants choose their own display names.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object, raw: bool) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not raw and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        # OWASP's neutralisation: a leading ' makes the spreadsheet show the text as text.
        # Only text from the platform: the ints this tool writes (unix seconds,
        # accept_status) are numbers, never formulas, and stay as they are.
        return "'" + value
    return value


def csv_header(columns: Sequence[str]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerow(columns)
    return buf.getvalue().encode("utf-8")


def encode_csv(rows: Sequence[dict[str, Any]], raw: bool = False) -> bytes:
    """Rows → CSV bytes. A text cell that a spreadsheet would run as a formula (it starts
    with = + - @, a tab or a carriage return) gets a leading ``'``, unless ``raw``
    (``--csv-raw``) asks for the platform's values unchanged."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([_csv_cell(v, raw) for v in row.values()])
    return buf.getvalue().encode("utf-8")


# --- the append-only data file ---------------------------------------------------------


# How much of the data file's end a checkpoint vouches for: a hash of the last bytes
# before the committed length is checked before a resume cuts the file back to it, so an
# output another program wrote to or edited is refused instead of continued. A window,
# not the whole file, so that checking costs the same for a gigabyte as for a kilobyte.
TAIL_BYTES = 64 * 1024


def tail_digest(window: bytes) -> str:
    return hashlib.sha256(window).hexdigest()


class AppendFile:
    """A binary file that is only appended to, with its length known at every moment,
    and the last :data:`TAIL_BYTES` of it at hand for the checkpoint's :func:`tail_digest`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.length = 0
        self._fh: BinaryIO | None = None
        self._tail = bytearray()

    def create(self, header: bytes = b"") -> None:
        """Start the file afresh (an existing one is replaced) with ``header``."""
        self._fh = open_owner_only(self.path)  # kept open across pages
        self.length = 0
        self._tail = bytearray()
        if header:
            self.append(header)

    def reopen(self, length: int, *, tail_bytes: int = 0, tail_sha256: str = "") -> None:
        """Continue after a checkpoint: check that the ``tail_bytes`` before ``length``
        still hash to ``tail_sha256`` (when given), then cut the file back to ``length``.
        ``ValueError`` when the file is shorter or its tail differs."""
        size = self.path.stat().st_size
        if size < length:
            raise ValueError(
                f"{self.path} is {size} bytes, shorter than the {length} bytes the checkpoint "
                "recorded: it was changed after the checkpoint; start again with --overwrite"
            )
        fh = open_owner_only(self.path, "r+b")  # kept open across pages
        try:
            window = read_tail(fh, length, max(tail_bytes, min(TAIL_BYTES, length)))
            if tail_sha256 and tail_digest(window[len(window) - tail_bytes :]) != tail_sha256:
                raise ValueError(
                    f"{self.path} does not match its checkpoint: the {tail_bytes} bytes before "
                    f"byte {length} changed after the checkpoint was written (another program "
                    "wrote to it, or it was edited); refusing to continue a damaged output; "
                    "start again with --overwrite"
                )
            fh.truncate(length)
            fh.seek(length)
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        self.length = length
        self._tail = bytearray(window[-TAIL_BYTES:])

    def append(self, data: bytes) -> int:
        assert self._fh is not None, "AppendFile used before create() or reopen()"
        self._fh.write(data)
        self.length += len(data)
        if len(data) >= TAIL_BYTES:
            self._tail = bytearray(data[-TAIL_BYTES:])
        else:
            tail = self._tail
            tail += data
            if len(tail) > 2 * TAIL_BYTES:  # trimmed now and then, not on every page
                del tail[: len(tail) - TAIL_BYTES]
        return self.length

    def tail(self) -> bytes:
        """The last :data:`TAIL_BYTES` written (all of them in a shorter file)."""
        return bytes(self._tail[-TAIL_BYTES:])

    def sync(self) -> None:
        """Flush and fsync: the bytes counted so far are on disk when this returns."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            try:
                self.sync()
            finally:
                self._fh.close()
                self._fh = None


def read_tail(fh: BinaryIO, end: int, size: int) -> bytes:
    """The ``size`` bytes of ``fh`` before offset ``end`` (fewer at the file's start)."""
    start = max(0, end - size)
    fh.seek(start)
    return fh.read(end - start)
