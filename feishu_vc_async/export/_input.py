"""Reading the meetings file (CSV or JSONL) into validated queries.

Every row is checked before any request is sent, and every bad row is reported at
once: a file with 3 mistakes gets 3 messages, each naming its line, the field, the
value and the rule, not one message per attempt.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..errors import FeishuError, InvalidQueryError
from ..models import MeetingQuery, UserIdType

__all__ = ["BadRow", "InputFormat", "MeetingsFileError", "load_meetings", "parse_meetings"]

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
_TIME_COLUMNS = ("meeting_start_time", "meeting_end_time")
_STATUS_NAMES = {"ongoing": 1, "ended": 2, "upcoming": 3}


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

    def __init__(self, source: str, problems: list[BadRow]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the meetings file")

    def report(self) -> list[str]:
        return [p.describe(self.source) for p in self.problems]


class _CellError(Exception):
    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule


def _parse_time(field: str, value: object) -> int:
    """Unix seconds (int, or digits) or ISO 8601 with an offset → unix seconds."""
    if isinstance(value, bool):
        raise _CellError(field, value, "must be unix seconds or ISO 8601 with an offset")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _CellError(field, value, "must be whole unix seconds")
    if not isinstance(value, str):
        raise _CellError(field, value, "must be unix seconds or ISO 8601 with an offset")
    text = value.strip()
    if not text:
        raise _CellError(field, value, "is required")
    if text.lstrip("+-").isdigit():
        return int(text)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number.is_integer():
            return int(number)
        raise _CellError(field, value, "must be whole unix seconds")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _CellError(
            field, value, "must be unix seconds or ISO 8601 (e.g. 2024-05-01T09:00:00+08:00)"
        ) from None
    if parsed.tzinfo is None:
        raise _CellError(field, value, "an ISO 8601 time needs an offset such as +08:00 or Z")
    return int(parsed.timestamp())


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
        if lowered.isdigit():
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
    for line in text.splitlines():
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


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    previous_end = 0
    try:
        for record in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lstrip("\ufeff") for cell in record]
                header_line = line
                problems = _check_header(header, header_line)
                if problems:
                    yield from ((p.line, p) for p in problems)
                    return
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
            yield line, dict(zip(header, record, strict=True))
    except csv.Error as exc:
        yield previous_end + 1, BadRow(previous_end + 1, None, None, f"not valid CSV: {exc}")


def _check_header(header: list[str], line: int) -> list[BadRow]:
    problems: list[BadRow] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(
            BadRow(
                line,
                None,
                None,
                f"missing required column(s) {', '.join(missing)} "
                f"(the header must name {', '.join(REQUIRED_COLUMNS)})",
            )
        )
    unknown = [c for c in header if c not in KNOWN_COLUMNS]
    if unknown:
        problems.append(
            BadRow(
                line,
                None,
                None,
                f"unknown column(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(KNOWN_COLUMNS)})",
            )
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        problems.append(BadRow(line, None, None, f"column(s) named twice: {', '.join(duplicated)}"))
    return problems


_JSON_DECODER = msgspec.json.Decoder()


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    for number, raw in enumerate(text.splitlines(), start=1):
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
        unknown = [k for k in obj if k not in KNOWN_COLUMNS]
        if unknown:
            yield (
                number,
                BadRow(
                    number,
                    None,
                    None,
                    f"unknown key(s) {', '.join(map(repr, unknown))} "
                    f"(known: {', '.join(KNOWN_COLUMNS)})",
                ),
            )
            continue
        yield number, obj


def parse_meetings(
    data: bytes,
    *,
    fmt: InputFormat | None = None,
    source: str = "meetings",
    user_id_type: UserIdType | str = UserIdType.OPEN_ID,
    now: float | None = None,
) -> list[MeetingQuery]:
    """Parse and validate a whole meetings file; raise :class:`MeetingsFileError` listing
    every bad row (no partial result: one bad row means nothing is exported)."""
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
    rows = (_csv_rows if (fmt or _sniff(text)) == "csv" else _jsonl_rows)(text)
    return _validate_rows(rows, source=source, user_id_type=user_id_type, now=current)


def _validate_rows(
    rows: Iterable[tuple[int, dict[str, Any] | BadRow]],
    *,
    source: str,
    user_id_type: UserIdType | str,
    now: float,
) -> list[MeetingQuery]:
    problems: list[BadRow] = []
    queries: list[MeetingQuery] = []
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
    if not problems and not queries:
        problems.append(
            BadRow(0, None, None, "no meetings in the file (it is empty or has only a header)")
        )
    if problems:
        raise MeetingsFileError(source, problems)
    return queries


def load_meetings(
    path: Path,
    *,
    fmt: InputFormat | None = None,
    user_id_type: UserIdType | str = UserIdType.OPEN_ID,
    now: float | None = None,
) -> list[MeetingQuery]:
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


def write_meetings_csv(path: Path, queries: Iterable[MeetingQuery]) -> int:
    """Write queries as a meetings CSV this module reads back; return the row count."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(KNOWN_COLUMNS)
        for q in queries:
            writer.writerow(
                [
                    q.meeting_no,
                    q.meeting_start_time,
                    q.meeting_end_time,
                    int(q.meeting_status),
                    q.user_id or "",
                    q.room_id or "",
                    "" if q.webinar_user_role is None else str(q.webinar_user_role),
                    str(q.user_id_type),
                ]
            )
            count += 1
    return count
