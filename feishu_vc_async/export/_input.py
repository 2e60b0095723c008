"""Reading the meetings file (CSV or JSONL) into validated queries.

Every row is checked before any request is sent, and every bad row is reported at
once: a file with 3 mistakes gets 3 messages, each naming its line, the field, the
value and the rule, not one message per attempt.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from .._constants import LOGGER_NAME
from .._files import atomic_write
from .._timeparse import (
    TIME_RULE,
    check_unix_seconds,
    parse_feishu_time,
    parse_unix_or_iso,
    unix_from_datetime,
)
from ..errors import FeishuError, InvalidQueryError
from ..meetings import Meeting, parse_count
from ..models import MeetingQuery, UserIdType
from ._rows import MeetingRows

__all__ = [
    "BadRow",
    "InputFormat",
    "MeetingList",
    "MeetingsFileError",
    "load_meetings",
    "parse_meetings",
    "write_meetings",
    "write_meetings_csv",
]

InputFormat = Literal["csv", "jsonl"]

REQUIRED_COLUMNS = ("meeting_no", "meeting_start_time", "meeting_end_time")
OPTIONAL_COLUMNS = (
    "meeting_status",
    "user_id",
    "room_id",
    "webinar_user_role",
    "user_id_type",
)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# meeting_list's meeting_info fields: a list of meetings taken from its answers carries
# them. They describe the meeting, not the query, so they are read past; meeting_id is
# its name for meeting_no and stands in for it when meeting_no is absent.
MEETING_LIST_COLUMNS = (
    *Meeting.__struct_fields__,
    # what `feishu-vc meetings` writes besides the query's own columns
    *MeetingRows.COLUMNS,
)
MEETING_NO_ALIAS = "meeting_id"
# meeting_list's count of a meeting's participants: not part of the query, but what the
# export starts the largest meetings first by (a long meeting started last is a tail).
SIZE_COLUMN = "number_of_participants"
# How alike a column name must be to a missing known column to be taken for a typo of
# it (difflib's ratio): "meeting_strat_time" and "room_di" are, "meeting_name" is not.
TYPO_CUTOFF = 0.8
_TIME_COLUMNS = ("meeting_start_time", "meeting_end_time")
_STATUS_NAMES = {"ongoing": 1, "ended": 2, "upcoming": 3}
_STATUS_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)

logger = logging.getLogger(f"{LOGGER_NAME}.export")


@dataclass(frozen=True, slots=True)
class BadRow:
    """One broken rule in the meetings file. ``line`` is 1-based; 0 means the whole file."""

    line: int
    field: str | None
    value: object
    rule: str

    def describe(self, source: str = "") -> str:
        where = f"{source}:{self.line}" if self.line else source or "input"
        if self.field is None:
            return f"{where}: {self.rule}"
        return f"{where}: {self.field}={self.value!r}: {self.rule}"


class MeetingsFileError(FeishuError, ValueError):
    """The meetings file has bad rows; ``problems`` lists every one of them."""

    # How many problems the CLI prints: a wrong file can have 100,000 bad rows, and the
    # first few show what is wrong with all of them.
    REPORT_LIMIT: ClassVar[int] = 20

    def __init__(self, source: str, problems: list[BadRow]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the meetings file")

    def report(self, limit: int | None = None) -> list[str]:
        """One line per problem; with ``limit``, at most that many and then a count of
        the rest (``problems`` itself stays complete)."""
        shown = self.problems if limit is None else self.problems[: max(limit, 0)]
        lines = [p.describe(self.source) for p in shown]
        if len(shown) < len(self.problems):
            lines.append(f"... and {len(self.problems) - len(shown)} more problem(s)")
        return lines


class _CellError(Exception):
    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule


def _parse_time(field: str, value: object) -> int:
    """A time cell → unix seconds, by one rule for both time columns.

    Text: unix seconds or ISO 8601 with an offset (``_timeparse``), or the platform's
    display format ``2022.12.23 11:16:59 (GMT+08:00)``, which meeting_list answers in.
    A JSON number (JSONL): an integer, or a float with nothing after the point.
    Raises nothing but ``_CellError``.
    """
    if isinstance(value, bool):  # before int: a bool is an int
        raise _CellError(field, value, TIME_RULE)
    try:
        if isinstance(value, int):
            return check_unix_seconds(value)
        if isinstance(value, float):
            if not value.is_integer():  # also inf and nan
                raise ValueError("must be whole unix seconds")
            return check_unix_seconds(int(value))
        if not isinstance(value, str):
            raise ValueError(TIME_RULE)
        if not value.strip():
            raise ValueError("is required")
        if "(GMT" in value:
            return _parse_display_time(value)
        return parse_unix_or_iso(value)
    except ValueError as exc:
        raise _CellError(field, value, str(exc)) from None


def _parse_display_time(text: str) -> int:
    shown = parse_feishu_time(text.strip())
    if shown is None:
        raise ValueError(
            "a time in the platform's format must look like 2022.12.23 11:16:59 (GMT+08:00)"
        )
    return unix_from_datetime(shown)


def _optional_text(value: object) -> object:
    """Blank cells and nulls mean "not set"; anything else is kept for validate() to judge."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    return value


def _status(value: object) -> object:
    value = _optional_text(value)
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _STATUS_NAMES:
            return _STATUS_NAMES[lowered]
        # ASCII only: int() would take "²" or "٢" too, or refuse 5000 digits by raising.
        if _STATUS_DIGITS.fullmatch(lowered):
            return int(lowered)
    return value


def _role(value: object) -> object:
    value = _optional_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _row_to_query(
    row: Mapping[str, Any], *, user_id_type: UserIdType | str, now: float
) -> MeetingQuery:
    """One row → a validated query; raises ``_CellError`` or ``InvalidQueryError``."""
    for name in REQUIRED_COLUMNS:
        if _optional_text(row.get(name)) is None:
            raise _CellError(name, row.get(name), "is required")
    raw_no = row["meeting_no"]
    meeting_no = raw_no.strip() if isinstance(raw_no, str) else raw_no
    if isinstance(meeting_no, bool) or not isinstance(meeting_no, str | int):
        raise _CellError("meeting_no", raw_no, "must be a string of digits")
    times = {name: _parse_time(name, row[name]) for name in _TIME_COLUMNS}
    kwargs: dict[str, Any] = {
        "meeting_no": meeting_no,
        "meeting_start_time": times["meeting_start_time"],
        "meeting_end_time": times["meeting_end_time"],
        "user_id": _optional_text(row.get("user_id")),
        "room_id": _optional_text(row.get("room_id")),
        "webinar_user_role": _role(row.get("webinar_user_role")),
        "user_id_type": _optional_text(row.get("user_id_type")) or user_id_type,
    }
    status = _status(row.get("meeting_status"))
    if status is not None:
        kwargs["meeting_status"] = status
    return MeetingQuery(**kwargs).validate(now=now)


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
    return None


@dataclass(slots=True)
class _Ignored:
    """Columns read past, across the whole file, for one warning at the end."""

    names: dict[str, None] = field(default_factory=dict)  # an ordered set
    organizer_user_id: bool = False

    def warn(self, source: str) -> None:
        if not self.names:
            return
        listed = ", ".join(map(repr, self.names))
        note = (
            "; user_id is meeting_list's organizer in a file keyed by meeting_id, not a "
            "participant filter (name the column meeting_no to filter by user_id)"
            if self.organizer_user_id
            else ""
        )
        logger.warning("%s: ignoring column(s) the export does not use: %s%s", source, listed, note)


@dataclass(frozen=True, slots=True)
class _Columns:
    """How one header (CSV) or one object's keys (JSONL) map onto the query's columns."""

    used: dict[str, str]  # name in the file → query column (meeting_id → meeting_no)
    ignored: tuple[str, ...]
    missing: tuple[str, ...]  # required columns absent
    typos: tuple[str, ...]  # rules: unknown names that look like a missing known column


@functools.lru_cache(maxsize=256)  # JSONL lines mostly repeat one set of keys
def _sort_columns(names: tuple[str, ...]) -> _Columns:
    present = set(names)
    # A meeting_list-shaped file: its meeting_id is the number, its user_id the organizer.
    keyed_by_id = "meeting_no" not in present and MEETING_NO_ALIAS in present
    if keyed_by_id:
        present |= {"meeting_no"}
    absent = [c for c in KNOWN_COLUMNS if c not in present]
    used: dict[str, str] = {}
    ignored: list[str] = []
    typos: list[str] = []
    for name in dict.fromkeys(names):
        if name in KNOWN_COLUMNS and not (keyed_by_id and name == "user_id"):
            used[name] = name
        elif keyed_by_id and name == MEETING_NO_ALIAS:
            used[name] = "meeting_no"
        elif name == SIZE_COLUMN:
            used[name] = name
        elif name in MEETING_LIST_COLUMNS:
            # What a list of meetings says of them: read past without a word, except the
            # organizer's user_id, which the warning explains.
            if name == "user_id":
                ignored.append(name)
        elif (guess := _likely_typo(name, absent)) is not None:
            typos.append(f"unknown column {name!r} (did you mean {guess!r}?)")
        else:
            ignored.append(name)
    missing = tuple(c for c in REQUIRED_COLUMNS if c not in present)
    return _Columns(used, tuple(ignored), missing, tuple(typos))


def _likely_typo(name: str, absent: Sequence[str]) -> str | None:
    """The missing known column ``name`` was probably meant to be, if any.

    Only columns the file lacks are candidates: next to a real meeting_no, a column
    "meeting_name" is another system's, not a typo. Required columns are tried first, so
    "meeting_start" is taken for meeting_start_time rather than meeting_status.
    """
    normal = name.strip().lower().replace("-", "_").replace(" ", "_")
    required = [c for c in absent if c in REQUIRED_COLUMNS]
    optional = [c for c in absent if c not in REQUIRED_COLUMNS]
    for pool in (required, optional):
        if normal in pool:  # "Meeting No", "ROOM-ID"
            return normal
        close = difflib.get_close_matches(normal, pool, n=1, cutoff=TYPO_CUTOFF)
        if close:
            return close[0]
    return None


def _csv_rows(text: str, ignored: _Ignored) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
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
                columns = _sort_columns(tuple(header))
                problems = _check_header(header, columns, line)
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


def _check_header(header: list[str], columns: _Columns, line: int) -> list[BadRow]:
    problems: list[BadRow] = []
    if columns.missing:
        problems.append(
            BadRow(
                line,
                None,
                None,
                f"missing required column(s) {', '.join(columns.missing)} "
                f"(the header must name {', '.join(REQUIRED_COLUMNS)})",
            )
        )
    problems.extend(BadRow(line, None, None, rule) for rule in columns.typos)
    # Only the columns read must be unique; a list from elsewhere may repeat the others.
    duplicated = sorted({c for c in header if c in columns.used and header.count(c) > 1})
    if duplicated:
        problems.append(BadRow(line, None, None, f"column(s) named twice: {', '.join(duplicated)}"))
    return problems


_JSON_DECODER = msgspec.json.Decoder()


def _jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)``, split on "\n" only (a trailing "\r" dropped).

    Not ``str.splitlines``: it also splits on U+2028, U+0085 and others, which JSON
    allows unescaped inside a string, and that would break a valid line in two and shift
    every later line number away from what an editor shows.
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        yield number, raw.removesuffix("\r")


def _jsonl_rows(text: str, ignored: _Ignored) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
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
        columns = _sort_columns(tuple(obj))
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
    column is an error instead.
    """
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise MeetingsFileError(
            source, [BadRow(line, None, None, "binary data (a NUL byte): expected CSV or JSONL")]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MeetingsFileError(
            source, [BadRow(line, None, None, "not UTF-8 text: expected CSV or JSONL")]
        ) from None
    current = time.time() if now is None else now
    ignored = _Ignored()
    reader = _csv_rows if (fmt or _sniff(text)) == "csv" else _jsonl_rows
    queries = _validate_rows(
        reader(text, ignored), source=source, user_id_type=user_id_type, now=current
    )
    ignored.warn(source)
    return queries


def _validate_rows(
    rows: Iterable[tuple[int, dict[str, Any] | BadRow]],
    *,
    source: str,
    user_id_type: UserIdType | str,
    now: float,
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
            query = _row_to_query(row, user_id_type=user_id_type, now=now)
        except _CellError as exc:
            problems.append(BadRow(line, exc.field, exc.value, exc.rule))
            continue
        except InvalidQueryError as exc:
            problems.append(BadRow(line, exc.field, exc.value, exc.rule))
            continue
        previous = first_line.setdefault(query.key, line)
        if previous != line:
            problems.append(
                BadRow(line, "meeting_no", query.meeting_no, f"duplicate of line {previous}")
            )
            continue
        queries.append(query)
        size = _size(row.get(SIZE_COLUMN))
        if size is not None:
            sizes[query.key] = size
    if not problems and not queries:
        problems.append(
            BadRow(0, None, None, "no meetings in the file (it is empty or has only a header)")
        )
    if problems:
        raise MeetingsFileError(source, problems)
    return MeetingList(queries, sizes)


class MeetingList(list[MeetingQuery]):
    """The meetings of a file, in the file's order (what a checkpoint names), and
    ``sizes``: each one's number_of_participants by query key, where the file gives one
    that reads as a count (the export starts the largest first by them)."""

    def __init__(self, queries: Iterable[MeetingQuery], sizes: dict[str, int]) -> None:
        super().__init__(queries)
        self.sizes = sizes


def _size(value: object) -> int | None:
    """A row's number_of_participants read as meeting_list's counts are (a JSON number
    too); ``None`` when absent or not a count: it only orders, so it is never an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return parse_count(value) if isinstance(value, str) else None


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


def _meeting_row(query: MeetingQuery) -> dict[str, Any]:
    """A query as a meetings file row, in ``KNOWN_COLUMNS`` order; ``None``: not given."""
    role = query.webinar_user_role
    return {
        "meeting_no": query.meeting_no,
        "meeting_start_time": query.meeting_start_time,
        "meeting_end_time": query.meeting_end_time,
        "meeting_status": int(query.meeting_status),
        "user_id": query.user_id or None,
        "room_id": query.room_id or None,
        "webinar_user_role": None if role is None else str(role),
        "user_id_type": str(query.user_id_type),
    }


def write_meetings(
    path: Path, queries: Iterable[MeetingQuery], fmt: InputFormat | None = None
) -> int:
    """Write queries as a meetings file this module reads back: JSONL when ``fmt`` or the
    name's extension says so, else CSV; owner-only, replaced atomically. Return the row
    count."""
    rows = [_meeting_row(q) for q in queries]
    if (fmt or format_from_name(path)) == "jsonl":
        given = [{k: v for k, v in row.items() if v is not None} for row in rows]
        data = msgspec.json.Encoder().encode_lines(given)
    else:
        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(KNOWN_COLUMNS)
        writer.writerows(["" if v is None else v for v in row.values()] for row in rows)
        data = buf.getvalue().encode("utf-8")
    atomic_write(path, data)
    return len(rows)


def write_meetings_csv(path: Path, queries: Iterable[MeetingQuery]) -> int:
    """Write queries as a meetings CSV this module reads back; return the row count."""
    return write_meetings(path, queries, "csv")
