"""The file formats, one writer each: JSONL, CSV and Parquet.

A format turns rows (value tuples in column order) into bytes. JSONL and CSV are
appended to the output as they come. Parquet cannot be appended to (its footer is
written last), so its rows are spooled to a JSONL *journal* and the Parquet file is
built from it at the end (``journaled``). The export's file output
(``_file_output``) and ``feishu-vc meetings`` write through the same formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from .._files import open_owner_only, replacing
from ._parquet import jsonl_to_parquet, require_pyarrow
from ._writers import JsonlEncoder, csv_header, encode_csv

__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "RowFormat",
    "format_from_path",
    "row_format",
    "write_rows",
]

OutputFormat = Literal["jsonl", "csv", "parquet"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("jsonl", "csv", "parquet")
_SUFFIXES: Final[dict[str, OutputFormat]] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

Rows = Sequence[Sequence[Any]]


class RowFormat(Protocol):
    """How rows become a file of one format."""

    @property
    def name(self) -> OutputFormat: ...

    @property
    def shape(self) -> tuple[str, ...]:
        """What of this format shapes the bytes (its name, its options)."""
        ...

    @property
    def journaled(self) -> bool:
        """Rows go to a JSONL journal; :meth:`build` makes the output from it."""
        ...

    def header(self, columns: Sequence[str]) -> bytes: ...

    def encoder(self, columns: Sequence[str]) -> Callable[[Rows], bytes]: ...

    def build(
        self, journal: Path, out: Path, columns: Sequence[str], *, length: int, base: Path | None
    ) -> None:
        """Build ``out`` from the first ``length`` bytes of ``journal`` (after the rows of
        ``base``, an earlier output, when given)."""
        ...


class JsonlFormat:
    """One JSON object per row, keys the columns in order, every column present."""

    name: OutputFormat = "jsonl"
    shape: tuple[str, ...] = ("jsonl",)
    journaled: bool = False

    def header(self, columns: Sequence[str]) -> bytes:
        return b""

    def encoder(self, columns: Sequence[str]) -> Callable[[Rows], bytes]:
        return JsonlEncoder(columns).encode

    def build(
        self, journal: Path, out: Path, columns: Sequence[str], *, length: int, base: Path | None
    ) -> None:
        raise AssertionError("JSONL is appended to the output, not built")


class CsvFormat:
    """``csv.writer``'s bytes; text a spreadsheet would run as a formula gets a leading
    ``'`` unless ``raw``."""

    name: Final = "csv"
    journaled: Final = False

    def __init__(self, *, raw: bool = False) -> None:
        self.raw = raw
        self.shape = ("csv", "csv_raw") if raw else ("csv",)

    def header(self, columns: Sequence[str]) -> bytes:
        return csv_header(columns)

    def encoder(self, columns: Sequence[str]) -> Callable[[Rows], bytes]:
        raw = self.raw
        return lambda rows: encode_csv(rows, raw=raw)

    def build(
        self, journal: Path, out: Path, columns: Sequence[str], *, length: int, base: Path | None
    ) -> None:
        raise AssertionError("CSV is appended to the output, not built")


class ParquetFormat(JsonlFormat):
    """Typed columns (``_parquet``), built at the end from a journal of JSONL lines."""

    name: OutputFormat = "parquet"
    shape: tuple[str, ...] = ("parquet",)
    journaled: bool = True

    def __init__(self) -> None:
        require_pyarrow()  # refused when made, before any request, not after the last page

    def build(
        self, journal: Path, out: Path, columns: Sequence[str], *, length: int, base: Path | None
    ) -> None:
        jsonl_to_parquet(journal, out, columns, length=length, base=base)


_MAKERS: Final[dict[OutputFormat, Callable[[bool], RowFormat]]] = {
    "jsonl": lambda raw: JsonlFormat(),
    "csv": lambda raw: CsvFormat(raw=raw),
    "parquet": lambda raw: ParquetFormat(),
}


def format_from_path(path: Path) -> OutputFormat | None:
    return _SUFFIXES.get(path.suffix.lower())


def row_format(path: Path, name: OutputFormat | None = None, *, csv_raw: bool = False) -> RowFormat:
    """The format ``name``, else the one of ``path``'s extension; ``ValueError`` when
    neither says, ``ImportError`` when its library is missing (Parquet's pyarrow)."""
    chosen = name or format_from_path(path)
    if chosen is None:
        raise ValueError(
            f"{path}: cannot tell the format from the extension; use .jsonl, .csv or "
            f".parquet, or name the format ({', '.join(OUTPUT_FORMATS)})"
        )
    return _MAKERS[chosen](csv_raw)


def write_rows(path: Path, fmt: RowFormat, columns: Sequence[str], batches: Iterable[Rows]) -> None:
    """Write a whole file of ``batches`` of rows: owner-only, under a temporary name
    renamed into place, so a failure leaves no half file."""
    encode = fmt.encoder(columns)
    if not fmt.journaled:
        with replacing(path) as tmp, open_owner_only(tmp) as fh:
            fh.write(fmt.header(columns))
            for rows in batches:
                fh.write(encode(rows))
        return
    spool = path.with_name(f".{path.name}.journal")
    try:
        with open_owner_only(spool) as fh:
            for rows in batches:
                fh.write(encode(rows))
            length = fh.tell()
        fmt.build(spool, path, columns, length=length, base=None)
    finally:
        spool.unlink(missing_ok=True)
