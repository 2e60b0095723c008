"""Writing meetings files: queries as the CSV, JSONL or Parquet that ``load_meetings``
reads back."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from .._files import atomic_write
from ..models import MeetingQuery
from ._formats import row_format, write_rows
from ._input import InputFormat, format_from_name
from ._input_columns import KNOWN_COLUMNS

__all__ = ["write_meetings", "write_meetings_csv"]


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
    """Write queries as a meetings file this module reads back: JSONL or Parquet (the
    export's typed columns, pyarrow) when ``fmt`` or the name's extension says so, else
    CSV; owner-only, replaced atomically. Return the row count."""
    rows = [_meeting_row(q) for q in queries]
    chosen = fmt or format_from_name(path)
    if chosen == "parquet":
        write_rows(
            path, row_format(path, "parquet"), KNOWN_COLUMNS, [[tuple(r.values()) for r in rows]]
        )
        return len(rows)
    if chosen == "jsonl":
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
