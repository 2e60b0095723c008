"""The bytes of a file output: JSONL (msgspec) and CSV encoders, and the append-only data
file.

:class:`AppendFile` counts the bytes appended so the checkpoint can record the exact
length that belongs to the meetings it names; a resumed run cuts the file back to that
length, which removes any partial tail a crash left behind. Every file is owner-only
(``_files``): an export holds personal data. (Which format a file is, and Parquet built
from a journal of these JSONL lines: ``_formats``.)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from .._files import open_owner_only

__all__ = [
    "TAIL_BYTES",
    "AppendFile",
    "JsonlEncoder",
    "csv_header",
    "encode_csv",
    "read_tail",
    "tail_digest",
]


# --- encoders ------------------------------------------------------------------------

_JSON = msgspec.json.Encoder()


class JsonlEncoder:
    """Rows (value tuples in column order) → JSONL bytes, one object per row, its keys
    the columns in order and every column present (``null`` when empty)."""

    def __init__(self, columns: Sequence[str]) -> None:
        # A Struct type of these columns: msgspec writes a struct's pre-encoded keys
        # without building a dict per row. Fields are named c0, c1, ... and renamed to the
        # columns, so that any column name is a valid field.
        fields = [f"c{i}" for i in range(len(columns))]
        self._row = msgspec.defstruct(
            "Row",
            [(f, Any) for f in fields],
            rename=dict(zip(fields, columns, strict=True)),
            gc=False,
        )

    def encode(self, rows: Iterable[Iterable[Any]]) -> bytes:
        row = self._row
        return _JSON.encode_lines([row(*values) for values in rows])


# A spreadsheet opening the CSV runs a cell that starts with one of these as a formula
# (OWASP, "CSV Injection"), and participants choose their own display names.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# A column's cells are checked joined, each after a NUL: a formula start after a NUL, and
# a character that makes csv.QUOTE_MINIMAL quote a cell (its quotes then doubled).
_FORMULA_CELL = re.compile("\x00[-=+@\t\r]")
_QUOTED = re.compile('[,"\r\n]')


def _csv_text(value: object, raw: bool) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        if not raw and value.startswith(_FORMULA_STARTS):
            # OWASP's neutralisation: a leading ' makes the spreadsheet show the text as
            # text. Only text from the platform: the ints this tool writes (unix seconds,
            # accept_status) are numbers, never formulas, and stay as they are.
            return "'" + value
        return value
    return str(value)


def _csv_column(values: Sequence[Any], raw: bool) -> Sequence[str]:
    """One column of a page as CSV cells. A page is encoded a column at a time: a column
    of text or of ints (most of them) is then checked by a scan or two of its joined text
    instead of a step per cell."""
    cells: Sequence[str]
    try:
        joined = "\x00" + "\x00".join(values)
    except TypeError:  # not text alone
        if set(map(type, values)) == {int}:
            return list(map(str, values))  # digits and "-": never quoted, never a formula
        cells = [_csv_text(v, raw) for v in values]
        joined = "\x00".join(cells)
    else:
        cells = values
        # A false alarm (a NUL inside a cell before a formula start) only costs the step
        # per cell.
        if not raw and _FORMULA_CELL.search(joined):
            cells = [_csv_text(v, raw) for v in values]
            joined = "\x00".join(cells)
    if _QUOTED.search(joined):
        cells = [_csv_quoted(c) for c in cells]
    return cells


def _csv_quoted(cell: str) -> str:
    if _QUOTED.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_header(columns: Sequence[str]) -> bytes:
    return encode_csv([columns], raw=True)


def encode_csv(rows: Sequence[Sequence[Any]], raw: bool = False) -> bytes:
    """Rows (values in column order) → CSV bytes, as ``csv.writer`` writes them (minimal
    quoting, CRLF). A text cell that a spreadsheet would run as a formula (it starts with
    = + - @, a tab or a carriage return) gets a leading ``'``, unless ``raw``
    (``--csv-raw``) asks for the platform's values unchanged."""
    if not rows:
        return b""
    columns = [_csv_column(column, raw) for column in zip(*rows, strict=True)]
    if len(columns) == 1:
        # A line of one empty cell would read back as no cell at all.
        columns = [[c or '""' for c in columns[0]]]
    return ("\r\n".join(map(",".join, zip(*columns, strict=True))) + "\r\n").encode("utf-8")


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
                f"is {size} bytes, shorter than the {length} bytes the checkpoint "
                "recorded: it was changed after the checkpoint"
            )
        fh = open_owner_only(self.path, "r+b")  # kept open across pages
        try:
            window = read_tail(fh, length, max(tail_bytes, min(TAIL_BYTES, length)))
            if tail_sha256 and tail_digest(window[len(window) - tail_bytes :]) != tail_sha256:
                raise ValueError(
                    f"does not match its checkpoint: the {tail_bytes} bytes before "
                    f"byte {length} changed after the checkpoint was written (another program "
                    "wrote to it, or it was edited); refusing to continue a damaged output; "
                    "continuing it would lose or repeat rows"
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
