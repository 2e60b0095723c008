"""One row of a meetings file → a validated ``MeetingQuery``, cell by cell.

A cell is judged by the same rule whether it came from CSV text or a JSONL value: times
by ``_timeparse`` (or the platform's display format), a blank or null optional cell as
"not set", and everything else left for ``MeetingQuery.validate`` to name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._timeparse import (
    TIME_RULE,
    check_unix_seconds,
    parse_feishu_time,
    parse_unix_or_iso,
    unix_from_datetime,
)
from ..meetings import parse_count
from ..models import MeetingQuery, UserIdType
from ._input_columns import REQUIRED_COLUMNS

__all__ = ["CellError", "parse_time_cell", "row_to_query", "size_cell"]

_TIME_COLUMNS = ("meeting_start_time", "meeting_end_time")
_STATUS_NAMES = {"ongoing": 1, "ended": 2, "upcoming": 3}
_STATUS_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)


class CellError(Exception):
    """One cell breaking its rule; the loader reports it with the row's line."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule


def parse_time_cell(field: str, value: object) -> int:
    """A time cell → unix seconds, by one rule for both time columns.

    Text: unix seconds or ISO 8601 with an offset (``_timeparse``), or the platform's
    display format ``2022.12.23 11:16:59 (GMT+08:00)``, which meeting_list answers in.
    A JSON number (JSONL): an integer, or a float with nothing after the point.
    Raises nothing but ``CellError``.
    """
    if isinstance(value, bool):  # before int: a bool is an int
        raise CellError(field, value, TIME_RULE)
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
        raise CellError(field, value, str(exc)) from None


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


def row_to_query(
    row: Mapping[str, Any], *, user_id_type: UserIdType | str, now: float
) -> MeetingQuery:
    """One row → a validated query; raises ``CellError`` or ``InvalidQueryError``."""
    for name in REQUIRED_COLUMNS:
        if _optional_text(row.get(name)) is None:
            raise CellError(name, row.get(name), "is required")
    raw_no = row["meeting_no"]
    meeting_no = raw_no.strip() if isinstance(raw_no, str) else raw_no
    if isinstance(meeting_no, bool) or not isinstance(meeting_no, str | int):
        raise CellError("meeting_no", raw_no, "must be a string of digits")
    times = {name: parse_time_cell(name, row[name]) for name in _TIME_COLUMNS}
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


def size_cell(value: object) -> int | None:
    """A row's number_of_participants read as meeting_list's counts are (a JSON number
    too); ``None`` when absent or not a count: it only orders, so it is never an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return parse_count(value) if isinstance(value, str) else None
