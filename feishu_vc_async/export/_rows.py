"""Participant → output row: the meeting's identity first, then every participant field.

Rows keep the wire values (Feishu time strings, ``"00:01:52"`` durations, ints, bools):
JSONL and CSV are lossless copies of what the platform sent. Typed columns are the
Parquet writer's job (``_writers.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..models import PARTICIPANT_FIELDS, MeetingQuery, Participant

__all__ = ["ALL_COLUMNS", "MEETING_COLUMNS", "PII_FIELDS", "RowBuilder", "parse_fields"]

MEETING_COLUMNS: tuple[str, ...] = ("meeting_no", "meeting_start_time", "meeting_end_time")
ALL_COLUMNS: tuple[str, ...] = MEETING_COLUMNS + PARTICIPANT_FIELDS
# What --redact-pii blanks: direct contact data and network addresses. The ids
# (user_id, open_id) stay: they are what joins the export to the rest of a tenant's data.
PII_FIELDS: tuple[str, ...] = ("phone", "email", "public_ip", "internal_ip", "employee_id")


def parse_fields(text: str | None) -> tuple[str, ...]:
    """``"meeting_no,participant_name,join_time"`` → columns, in the order given.

    ``None`` or ``""`` means every column. Unknown or repeated names raise ``ValueError``.
    """
    if not text:
        return ALL_COLUMNS
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        return ALL_COLUMNS
    unknown = [n for n in names if n not in ALL_COLUMNS]
    if unknown:
        raise ValueError(
            f"--fields: unknown column(s) {', '.join(unknown)}; known: {', '.join(ALL_COLUMNS)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--fields: column(s) named twice: {', '.join(repeated)}")
    return tuple(names)


class RowBuilder:
    """Builds the rows of one page: a dict per participant, keys in column order."""

    def __init__(self, columns: Sequence[str] = ALL_COLUMNS, *, redact_pii: bool = False) -> None:
        self.columns = tuple(columns)
        self.redact_pii = redact_pii
        self._meeting_cols = [c for c in self.columns if c in MEETING_COLUMNS]
        blanked = set(PII_FIELDS) if redact_pii else set()
        # (column, read-from-participant?) in output order; redacted ones read nothing.
        self._plan = [(c, c in PARTICIPANT_FIELDS and c not in blanked) for c in self.columns]

    def rows(
        self, query: MeetingQuery, participants: Iterable[Participant]
    ) -> list[dict[str, Any]]:
        meeting: dict[str, Any] = {
            "meeting_no": query.meeting_no,
            "meeting_start_time": query.meeting_start_time,
            "meeting_end_time": query.meeting_end_time,
        }
        out: list[dict[str, Any]] = []
        for p in participants:
            row: dict[str, Any] = {}
            for column, from_participant in self._plan:
                if from_participant:
                    row[column] = getattr(p, column)
                else:
                    row[column] = meeting.get(column)
            out.append(row)
        return out
