"""Reading the meetings file (CSV, JSONL or Parquet) into validated queries.

Every row is checked before any request is sent, and every bad row is reported at
once: a file with 3 mistakes gets 3 messages, each naming its line (a Parquet file's
row), the field, the value and the rule, not one message per attempt. The rules for
columns are ``_input_columns``', those for cells ``_input_cells``'; a Parquet file is
read by ``_input_parquet``; writing a file is ``_input_writer``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import msgspec

from ..errors import FeishuError, InvalidQueryError
from ..models import MeetingQuery, UserIdType
from ._input_cells import CellError, row_to_query, size_cell
from ._input_columns import SIZE_COLUMN, IgnoredColumns, sort_columns
from ._input_parquet import Rows, is_parquet, parquet_rows
from ._input_problems import BadRow, Unit, header_problems

__all__ = [
    "BadRow",
    "InputFormat",
    "MeetingList",
    "MeetingsFileError",
    "format_from_name",
    "load_meetings",
    "parse_meetings",
]

InputFormat = Literal["csv", "jsonl", "parquet"]


class MeetingsFileError(FeishuError, ValueError):
    """The meetings file has bad rows; ``problems`` lists every one of them."""

    # How many problems the CLI prints: a wrong file can have 100,000 bad rows, and the
    # first few show what is wrong with all of them.
    REPORT_LIMIT: ClassVar[int] = 20

    def __init__(self, source: str, problems: list[BadRow], unit: Unit = "line") -> None:
        self.source = source
        self.problems = problems
        self.unit = unit
        super().__init__(f"{source}: {len(problems)} problem(s) in the meetings file")

    def report(self, limit: int | None = None) -> list[str]:
        """One line per problem; with ``limit``, at most that many and then a count of
        the rest (``problems`` itself stays complete)."""
        shown = self.problems if limit is None else self.problems[: max(limit, 0)]
        lines = [p.describe(self.source, self.unit) for p in shown]
        if len(shown) < len(self.problems):
            lines.append(f"... and {len(self.problems) - len(shown)} more problem(s)")
        return lines


def _sniff(text: str) -> InputFormat:
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            return "jsonl" if stripped.startswith("{") else "csv"
    return "csv"


def format_from_name(path: Path) -> InputFormat | None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return None


def _csv_rows(text: str, ignored: IgnoredColumns) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    positions: list[tuple[int, str]] = []  # (cell index, query column) of the used cells
    previous_end = 0
    try:
        for record in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lstrip("\ufeff") for cell in record]
                columns = sort_columns(tuple(header))
                problems = header_problems(header, columns, line)
                if problems:
                    yield from ((p.line, p) for p in problems)
                    return
                ignored.names.update(dict.fromkeys(columns.ignored))
                ignored.organizer_user_id |= "user_id" in columns.ignored
                positions = [(header.index(name), col) for name, col in columns.used.items()]
                continue
            if len(record) != len(header):
                yield (
                    line,
                    BadRow(
                        line,
                        None,
                        None,
                        f"expected {len(header)} cells like the header, found {len(record)}",
                    ),
                )
                continue
            yield line, {col: record[index] for index, col in positions}
    except csv.Error as exc:
        yield previous_end + 1, BadRow(previous_end + 1, None, None, f"not valid CSV: {exc}")


_JSON_DECODER = msgspec.json.Decoder()


def _jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)``, split on "\n" only (a trailing "\r" dropped).

    Not ``str.splitlines``: it also splits on U+2028, U+0085 and others, which JSON
    allows unescaped inside a string, and that would break a valid line in two and shift
    every later line number away from what an editor shows.
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        yield number, raw.removesuffix("\r")


def _jsonl_rows(
    text: str, ignored: IgnoredColumns
) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    for number, raw in _jsonl_lines(text):
        if not raw.strip():
            continue
        try:
            obj = _JSON_DECODER.decode(raw)
        except msgspec.DecodeError as exc:
            yield number, BadRow(number, None, None, f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield number, BadRow(number, None, None, "each line must be a JSON object")
            continue
        columns = sort_columns(tuple(obj))
        if columns.typos:
            yield number, BadRow(number, None, None, "; ".join(columns.typos))
            continue
        ignored.names.update(dict.fromkeys(columns.ignored))
        ignored.organizer_user_id |= "user_id" in columns.ignored
        yield number, {col: obj[name] for name, col in columns.used.items()}


def parse_meetings(
    data: bytes,
    *,
    fmt: InputFormat | None = None,
    source: str = "meetings",
    user_id_type: UserIdType | str = UserIdType.OPEN_ID,
    now: float | None = None,
) -> MeetingList:
    """Parse and validate a whole meetings file; raise :class:`MeetingsFileError` listing
    every bad row (no partial result: one bad row means nothing is exported).

    Columns the export does not use are read past, with one warning naming them on the
    ``feishu_vc_async.export`` logger; a name that looks like a typo of a missing known
    column is an error instead. Without ``fmt``, a Parquet file is known by its first
    and last bytes, JSONL by a first line that opens an object, anything else is CSV.
    """
    current = time.time() if now is None else now
    ignored = IgnoredColumns()
    if fmt is None:
        fmt = "parquet" if is_parquet(data) else _sniff(_text(data, source))
    read, unit = _READERS[fmt]
    rows = read(data, source, ignored)
    queries = _validate_rows(rows, source=source, user_id_type=user_id_type, now=current, unit=unit)
    ignored.warn(source)
    return queries


_Reader = Callable[[bytes, str, IgnoredColumns], Rows]
# Each format's rows, and what its problems count in (a Parquet file has no lines).
_READERS: Final[dict[InputFormat, tuple[_Reader, Unit]]] = {
    "csv": (lambda data, source, ignored: _csv_rows(_text(data, source), ignored), "line"),
    "jsonl": (lambda data, source, ignored: _jsonl_rows(_text(data, source), ignored), "line"),
    "parquet": (lambda data, _source, ignored: parquet_rows(data, ignored), "row"),
}


def _text(data: bytes, source: str) -> str:
    """A CSV or JSONL file's text; ``MeetingsFileError`` for bytes that are not."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise MeetingsFileError(
            source,
            [BadRow(line, None, None, "binary data (a NUL byte): expected CSV, JSONL or Parquet")],
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MeetingsFileError(
            source, [BadRow(line, None, None, "not UTF-8 text: expected CSV, JSONL or Parquet")]
        ) from None


def _validate_rows(
    rows: Iterable[tuple[int, dict[str, Any] | BadRow]],
    *,
    source: str,
    user_id_type: UserIdType | str,
    now: float,
    unit: Unit,
) -> MeetingList:
    problems: list[BadRow] = []
    queries: list[MeetingQuery] = []
    sizes: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, BadRow):
            problems.append(row)
            continue
        try:
            query = row_to_query(row, user_id_type=user_id_type, now=now)
        except CellError as exc:
            problems.append(BadRow(line, exc.field, exc.value, exc.rule))
            continue
        except InvalidQueryError as exc:
            problems.append(BadRow(line, exc.field, exc.value, exc.rule))
            continue
        previous = first_line.setdefault(query.key, line)
        if previous != line:
            problems.append(
                BadRow(line, "meeting_no", query.meeting_no, f"duplicate of {unit} {previous}")
            )
            continue
        queries.append(query)
        size = size_cell(row.get(SIZE_COLUMN))
        if size is not None:
            sizes[query.key] = size
    if not problems and not queries:
        empty = "it has no rows" if unit == "row" else "it is empty or has only a header"
        problems.append(BadRow(0, None, None, f"no meetings in the file ({empty})"))
    if problems:
        raise MeetingsFileError(source, problems, unit)
    return MeetingList(queries, sizes)


class MeetingList(list[MeetingQuery]):
    """The meetings of a file, in the file's order (what a checkpoint names), and
    ``sizes``: each one's number_of_participants by query key, where the file gives one
    that reads as a count (the export starts the largest first by them)."""

    def __init__(self, queries: Iterable[MeetingQuery], sizes: dict[str, int]) -> None:
        super().__init__(queries)
        self.sizes = sizes


def load_meetings(
    path: Path,
    *,
    fmt: InputFormat | None = None,
    user_id_type: UserIdType | str = UserIdType.OPEN_ID,
    now: float | None = None,
) -> MeetingList:
    """Read ``path`` (format from ``fmt``, the extension, or the first line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeetingsFileError(
            str(path), [BadRow(0, None, None, f"cannot read: {exc.strerror or exc}")]
        ) from None
    return parse_meetings(
        data,
        fmt=fmt or format_from_name(path),
        source=str(path),
        user_id_type=user_id_type,
        now=now,
    )
