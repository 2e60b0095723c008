"""Reading a Parquet meetings file (pyarrow, the ``parquet`` extra) into the rows the
meetings-file loader validates.

A Parquet column is typed where a CSV cell is text, so each column the export uses is
turned into the values a CSV or JSONL file would give (text, integers, floats, flags,
nulls) and judged by the same cell rules (``_input_cells``): a file `feishu-vc meetings`
wrote loads as its CSV does. A timestamp is the instant it holds, in unix seconds; one
without a time zone, or with a fraction of a second, breaks the rule a text time would.
The columns read past, the typos and the missing ones are the CSV header's rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from ._input_columns import IgnoredColumns, sort_columns
from ._input_problems import BadRow, header_problems
from ._parquet import require_pyarrow

__all__ = ["PARQUET_EXTRA", "is_parquet", "parquet_rows"]

PARQUET_EXTRA: Final = "pip install 'feishu-vc-async[parquet]'"
# A Parquet file starts and ends with these four bytes.
_MAGIC: Final = b"PAR1"
_PER_SECOND: Final = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_WHOLE_SECONDS: Final = "must be whole seconds (the platform's times have no fraction)"

Rows = Iterator[tuple[int, dict[str, Any] | BadRow]]


def is_parquet(data: bytes) -> bool:
    return len(data) >= 12 and data.startswith(_MAGIC) and data.endswith(_MAGIC)


class _Fraction:
    """A timestamp cell with a fraction of a second: what its row reports."""

    __slots__ = ("text",)

    def __init__(self, value: int, per_second: int) -> None:
        seconds, fraction = divmod(value, per_second)
        digits = len(str(per_second)) - 1
        try:
            whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):  # past datetime's years
            self.text = f"{value} ({per_second} a second since 1970)"
            return
        self.text = f"{whole}.{fraction:0{digits}d}".rstrip("0") + "Z"


def _column(pa: Any, name: str, column: Any) -> list[Any] | BadRow:
    """A column's cells as a CSV or JSONL file gives them, or the whole column's problem."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    plain = (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )
    if plain:
        return list(column.to_pylist())
    if not pa.types.is_timestamp(kind):
        return BadRow(
            0,
            None,
            None,
            f"column {name} holds Parquet {kind}: expected text, a number or a timestamp "
            "with a time zone",
        )
    if kind.tz is None:
        return BadRow(
            0,
            None,
            None,
            f"column {name} is a timestamp without a time zone ({kind}), which names no "
            "instant: write it with one (UTC)",
        )
    # Raw integers in the column's unit: datetime would drop nanoseconds, or refuse them.
    per_second = _PER_SECOND[kind.unit]
    return [
        v if v is None else v // per_second if v % per_second == 0 else _Fraction(v, per_second)
        for v in column.cast(pa.int64()).to_pylist()
    ]


def parquet_rows(data: bytes, ignored: IgnoredColumns) -> Rows:
    """``(row number, row)`` from 1, or ``(0, problem)`` for the whole file; the columns
    read past are added to ``ignored``."""
    try:
        pa, pq = require_pyarrow()
    except ImportError:
        yield 0, BadRow(0, None, None, f"a Parquet meetings file needs pyarrow: {PARQUET_EXTRA}")
        return
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        header = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        yield 0, BadRow(0, None, None, f"not a readable Parquet file: {exc}")
        return
    columns = sort_columns(tuple(header))
    problems = header_problems(header, columns, 0)
    if problems:
        yield from ((0, p) for p in problems)
        return
    ignored.names.update(dict.fromkeys(columns.ignored))
    ignored.organizer_user_id |= "user_id" in columns.ignored
    try:
        table = parquet.read(columns=list(columns.used))
    except (pa.ArrowException, OSError) as exc:
        yield 0, BadRow(0, None, None, f"not a readable Parquet file: {exc}")
        return
    cells: dict[str, list[Any]] = {}
    for name, query_column in columns.used.items():
        found = _column(pa, name, table.column(name))
        if isinstance(found, BadRow):
            problems.append(found)
        else:
            cells[query_column] = found
    if problems:
        yield from ((0, p) for p in problems)
        return
    yield from _rows(cells, table.num_rows)


def _rows(cells: dict[str, list[Any]], count: int) -> Rows:
    for index in range(count):
        row = {name: values[index] for name, values in cells.items()}
        broken = next((n for n, v in row.items() if isinstance(v, _Fraction)), None)
        if broken is None:
            yield index + 1, row
        else:
            yield index + 1, BadRow(index + 1, broken, row[broken].text, _WHOLE_SECONDS)
