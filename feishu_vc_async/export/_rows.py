"""Participant → output row: the meeting's identity first, then every participant field.

Rows keep the wire values (Feishu time strings, ``"00:01:52"`` durations, ints, bools):
JSONL and CSV are lossless copies of what the platform sent. Typed columns are the
Parquet writer's job (``_parquet.py``).

A range export knows each meeting as meeting_list described it, so ``--fields`` can
join meeting columns onto every participant row (:data:`MEETING_INFO_COLUMNS`); the
same columns make the rows of ``feishu-vc meetings``. Where a participant field has the
same name (``department``, ``email``, ``audio`` ...), the meeting column's name says
whose it is: ``organizer_email``, ``meeting_audio``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

from msgspec.structs import astuple

from ..meetings import Meeting
from ..models import PARTICIPANT_FIELDS, MeetingQuery, Participant

__all__ = [
    "ALL_COLUMNS",
    "JOINABLE_COLUMNS",
    "MEETING_COLUMNS",
    "MEETING_INFO_COLUMNS",
    "PII_FIELDS",
    "MeetingRows",
    "RowBuilder",
    "check_columns",
]

MEETING_COLUMNS: tuple[str, ...] = ("meeting_no", "meeting_start_time", "meeting_end_time")
ALL_COLUMNS: tuple[str, ...] = MEETING_COLUMNS + PARTICIPANT_FIELDS
# What --redact-pii blanks: direct contact data and network addresses. The ids
# (user_id, open_id) stay: they are what joins the export to the rest of a tenant's data.
PII_FIELDS: tuple[str, ...] = (
    "phone",
    "email",
    "public_ip",
    "internal_ip",
    "employee_id",
    # the organizer's, among the meeting columns
    "organizer_email",
    "organizer_mobile",
    "organizer_employee_id",
)
# Column → the Meeting field it shows (reserved_rooms, a list of upcoming meetings' rooms,
# has no column).
MEETING_INFO_COLUMNS: dict[str, str] = {
    "meeting_topic": "meeting_topic",
    "meeting_type": "meeting_type",
    "meeting_subtype": "meeting_subtype",
    "meeting_duration": "meeting_duration",
    "meeting_instance_id": "meeting_instance_id",
    "organizer": "organizer",
    "organizer_department": "department",
    "organizer_user_id": "user_id",
    "organizer_employee_id": "employee_id",
    "organizer_email": "email",
    "organizer_mobile": "mobile",
    "number_of_participants": "number_of_participants",
    "number_of_devices": "number_of_devices",
    "number_of_webinar_viewers": "number_of_webinar_viewers",
    "meeting_audio": "audio",
    "meeting_video": "video",
    "meeting_sharing": "sharing",
    "recording": "recording",
    "telephone": "telephone",
    "has_related_document": "has_related_document",
    "ai_note": "ai_note",
    "meeting_is_external": "is_external",
}
# Columns --fields may name in a range export (the meetings are known there).
JOINABLE_COLUMNS: tuple[str, ...] = ALL_COLUMNS + tuple(MEETING_INFO_COLUMNS)


def check_columns(
    columns: Sequence[str], known: Sequence[str] = JOINABLE_COLUMNS
) -> tuple[str, ...]:
    """``columns`` as a tuple; ``ValueError`` naming any not in ``known`` or named twice."""
    names = tuple(columns)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"columns: unknown column(s) {', '.join(unknown)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"columns: named twice: {', '.join(repeated)}")
    if not names:
        raise ValueError("columns: at least one")
    return names


class RowBuilder:
    """Builds the rows of one page, in column order: :meth:`values` as tuples (what the
    writers encode), :meth:`rows` as dicts. The meeting columns come from the
    :class:`Meeting` meeting_list described (empty when it is not known)."""

    def __init__(self, columns: Sequence[str] = ALL_COLUMNS, *, redact_pii: bool = False) -> None:
        self.columns = tuple(columns)
        self.redact_pii = redact_pii
        blanked = set(PII_FIELDS) if redact_pii else set()
        self._joins = any(c in MEETING_INFO_COLUMNS and c not in blanked for c in self.columns)
        # A row is picked out of one flat tuple per participant: the meeting's values,
        # a None for redacted columns, then the participant's fields (msgspec's astuple,
        # in C); a page is then a few C calls per row instead of a Python step per cell.
        head = MEETING_COLUMNS + (tuple(MEETING_INFO_COLUMNS) if self._joins else ())
        blank = len(head)
        where = {c: i for i, c in enumerate(head)}
        where.update((f, blank + 1 + i) for i, f in enumerate(PARTICIPANT_FIELDS))
        picks = [blank if c in blanked else where[c] for c in self.columns]
        self._whole = self.columns == head + PARTICIPANT_FIELDS and not blanked & set(self.columns)
        self._pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
            itemgetter(*picks) if len(picks) > 1 else _one(picks[0])
        )

    def values(
        self,
        query: MeetingQuery,
        participants: Iterable[Participant],
        meeting: Meeting | None = None,
    ) -> list[tuple[Any, ...]]:
        """One tuple per participant, its values in column order."""
        head: tuple[Any, ...] = (
            query.meeting_no,
            query.meeting_start_time,
            query.meeting_end_time,
        )
        if self._joins:
            head += tuple(
                None if meeting is None else getattr(meeting, field)
                for field in MEETING_INFO_COLUMNS.values()
            )
        if self._whole:  # every column, in the default order: nothing to pick
            return [head + astuple(p) for p in participants]
        head += (None,)
        pick = self._pick
        return [pick(head + astuple(p)) for p in participants]

    def rows(
        self,
        query: MeetingQuery,
        participants: Iterable[Participant],
        meeting: Meeting | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per participant, keys in column order."""
        columns = self.columns
        values = self.values(query, participants, meeting)
        return [dict(zip(columns, v, strict=True)) for v in values]


def _one(index: int) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``itemgetter`` of one index gives the item, not a tuple of it."""
    return lambda values: (values[index],)


class MeetingRows:
    """The rows of ``feishu-vc meetings``: one per meeting, the participant_list query
    (number, exact start and end, status) first, then :data:`MEETING_INFO_COLUMNS`; a
    valid ``--meetings`` input of ``feishu-vc export``."""

    COLUMNS: tuple[str, ...] = (
        *MEETING_COLUMNS,
        "meeting_status",
        *MEETING_INFO_COLUMNS,
    )

    def __init__(self, *, redact_pii: bool = False) -> None:
        self._blanked = set(PII_FIELDS) if redact_pii else set()

    def row(self, query: MeetingQuery, meeting: Meeting) -> dict[str, Any]:
        row: dict[str, Any] = {
            "meeting_no": query.meeting_no,
            "meeting_start_time": query.meeting_start_time,
            "meeting_end_time": query.meeting_end_time,
            "meeting_status": int(query.meeting_status),
        }
        for column, field in MEETING_INFO_COLUMNS.items():
            row[column] = None if column in self._blanked else getattr(meeting, field)
        return row
