"""The tables of a database output, and the rows that go into them, for every database.

Three tables (names with an optional prefix), created when missing::

    feishu_vc_meetings       one row per meeting exported: its key, its times (unix
                             seconds and timestamps), what meeting_list said of it (where
                             known), how many participant rows it has, when it was written
    feishu_vc_participants   one row per row of participant_list: the meeting's key, the
                             row's place in the meeting, every wire field under its wire
                             name, and typed views of its times
    feishu_vc_progress       the progress of each export into these tables (its saved
                             state and the meetings it could not get), by tenant and name
    feishu_vc_schema         the version of these tables
    feishu_vc_inbox          (made by a sync that follows events) meetings told ended
                             by an event, kept until they are written

**Why a participant row is keyed by its place in the meeting.** participant_list gives a
row no id: a person who joined twice has two rows with the same user_id, a meeting room
or a phone caller has none, and one user on two devices can join in the same second. So
no set of wire fields is certain to tell two rows apart, and a key made of them would
merge rows that are not the same. The unit the platform answers, and that an output
commits, is the meeting: its rows are written whole, in the platform's order, and a
meeting written again replaces its rows whole (the old ones are deleted in the same
transaction). The key is therefore (tenant_key, meeting_no, meeting_start_time, row_no):
a meeting number is reused, a meeting number and start time are one meeting (as
participant_list itself is queried), and row_no is the row's place in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from msgspec.structs import astuple

from .._timeparse import parse_duration, parse_feishu_time
from ..meetings import Meeting
from ..models import PARTICIPANT_FIELDS, MeetingQuery, Participant
from ._rows import MEETING_INFO_COLUMNS, PII_FIELDS

__all__ = [
    "EXPORTED_COLUMNS",
    "INBOX",
    "MEETINGS",
    "PARTICIPANTS",
    "PROGRESS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Column",
    "Table",
    "meeting_record",
    "participant_records",
    "upsert_sql",
]

# The version of the tables this code writes; tables of a newer version are refused.
SCHEMA_VERSION: Final = 1

Kind = Literal["text", "bigint", "int", "bool", "timestamp", "bytes"]
Column = tuple[str, Kind]


class Table:
    """A table's name (without prefix), columns and key."""

    def __init__(self, name: str, columns: Sequence[Column], key: Sequence[str]) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.names = tuple(c for c, _ in self.columns)
        self.key = tuple(key)
        # Where its timestamp columns are (each store sends those in a form of its own).
        self.times_at = tuple(i for i, (_, kind) in enumerate(self.columns) if kind == "timestamp")


_BOOL_FIELDS = {"use_rtc_proxy", "audio", "video", "sharing", "is_external"}
_INT_FIELDS = {"accept_status"}


def _wire_kind(field: str) -> Kind:
    return "bool" if field in _BOOL_FIELDS else "int" if field in _INT_FIELDS else "text"


_MEETING_KEY: tuple[Column, ...] = (
    ("tenant_key", "text"),
    ("meeting_no", "text"),
    ("meeting_start_time", "bigint"),
)
# Meeting columns of meeting_list whose wire value is a count in a string.
_COUNTS = {"number_of_participants", "number_of_devices", "number_of_webinar_viewers"}
_MEETING_INFO_KINDS: dict[str, Kind] = {
    "meeting_type": "int",
    "meeting_subtype": "int",
    "meeting_audio": "bool",
    "meeting_video": "bool",
    "meeting_sharing": "bool",
    "recording": "bool",
    "telephone": "bool",
    "has_related_document": "bool",
    "ai_note": "bool",
    "meeting_is_external": "bool",
    **dict.fromkeys(_COUNTS, "bigint"),
}

MEETINGS = Table(
    "feishu_vc_meetings",
    (
        *_MEETING_KEY,
        ("meeting_end_time", "bigint"),
        ("started_at", "timestamp"),
        ("ended_at", "timestamp"),
        *((c, _MEETING_INFO_KINDS.get(c, "text")) for c in MEETING_INFO_COLUMNS),
        ("participant_rows", "bigint"),
        ("exported_at", "timestamp"),
    ),
    key=[c for c, _ in _MEETING_KEY],
)
PARTICIPANTS = Table(
    "feishu_vc_participants",
    (
        *_MEETING_KEY,
        ("row_no", "int"),
        *((f, _wire_kind(f)) for f in PARTICIPANT_FIELDS),
        ("joined_at", "timestamp"),
        ("left_at", "timestamp"),
        ("seconds_in_meeting", "bigint"),
    ),
    key=[*(c for c, _ in _MEETING_KEY), "row_no"],
)
PROGRESS = Table(
    "feishu_vc_progress",
    (
        ("tenant_key", "text"),
        ("name", "text"),
        ("state", "bytes"),
        ("failures", "bytes"),
        ("updated_at", "timestamp"),
    ),
    key=["tenant_key", "name"],
)
SCHEMA = Table("feishu_vc_schema", (("version", "int"),), key=["version"])
# Ended meetings told by events and not yet written (``_inbox``): made by the inbox.
INBOX = Table(
    "feishu_vc_inbox",
    (
        ("tenant_key", "text"),
        ("event_id", "text"),
        ("meeting_no", "text"),
        ("meeting_start_time", "bigint"),
        ("meeting_end_time", "bigint"),
        ("received_at", "bigint"),
    ),
    key=["tenant_key", "event_id"],
)

# Where each participant field sits in a participants record (after the key and row_no).
_FIELD_AT = {f: 4 + i for i, f in enumerate(PARTICIPANT_FIELDS)}
_PII_AT = tuple(_FIELD_AT[f] for f in PII_FIELDS if f in _FIELD_AT)
_JOIN, _LEAVE, _TIME_IN = (
    PARTICIPANT_FIELDS.index(f) for f in ("join_time", "leave_time", "time_in_meeting")
)


def participant_records(
    tenant_key: str,
    query: MeetingQuery,
    participants: Iterable[Participant],
    *,
    first_row: int = 0,
    redact_pii: bool = False,
    instant: Callable[[str | None], Any] = parse_feishu_time,
) -> list[tuple[Any, ...]]:
    """The participants table's records of a meeting's rows (``first_row``: the place of
    the first of them in the meeting), in :data:`PARTICIPANTS` column order; under
    ``redact_pii`` the contact data and addresses are blanked. ``instant`` makes a
    timestamp column's value of a platform time string (the store's own form of it;
    an aware ``datetime`` by default)."""
    records: list[tuple[Any, ...]] = []
    append = records.append
    number, start = query.meeting_no, query.meeting_start_time
    row = first_row
    for participant in participants:
        wire = astuple(participant)
        spent = parse_duration(wire[_TIME_IN])
        append(
            (
                tenant_key,
                number,
                start,
                row,
                *wire,
                instant(wire[_JOIN]),
                instant(wire[_LEAVE]),
                None if spent is None else int(spent.total_seconds()),
            )
        )
        row += 1
    if redact_pii and records:
        blank = set(_PII_AT)
        records = [tuple(None if i in blank else v for i, v in enumerate(r)) for r in records]
    return records


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def meeting_record(
    tenant_key: str,
    query: MeetingQuery,
    meeting: Meeting | None,
    rows: int | None,
    *,
    redact_pii: bool = False,
    now: datetime | None = None,
) -> tuple[Any, ...]:
    """The meetings table's record of a meeting written with ``rows`` participant rows
    (``None``: listed, its participants not exported), in :data:`MEETINGS` column order
    (what meeting_list said, where it is known)."""
    start, end = query.meeting_start_time, query.meeting_end_time
    info: list[Any] = []
    for column, field in MEETING_INFO_COLUMNS.items():
        value = None if meeting is None else getattr(meeting, field)
        if redact_pii and column in PII_FIELDS:
            value = None
        info.append(_count(value) if column in _COUNTS else value)
    return (
        tenant_key,
        query.meeting_no,
        start,
        end,
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
        *info,
        rows,
        None if rows is None else now or datetime.now(UTC),
    )


# What a listing alone (``feishu-vc meetings``) must not take from an exported meeting.
EXPORTED_COLUMNS = ("participant_rows", "exported_at")


def upsert_sql(
    name: str, table: Table, placeholder: Callable[[int], str], *, keep: Sequence[str] = ()
) -> str:
    """An INSERT of one record of ``table`` (as ``name``) that replaces the row of the
    same key (PostgreSQL and SQLite alike), but where the row's ``keep`` columns hold a
    value, keeps it; ``placeholder(i)``: the i-th parameter."""
    columns = ", ".join(f'"{c}"' for c in table.names)
    values = ", ".join(placeholder(i) for i in range(1, len(table.names) + 1))
    key = ", ".join(f'"{c}"' for c in table.key)
    updates = ", ".join(
        f'"{c}" = coalesce(t."{c}", EXCLUDED."{c}")' if c in keep else f'"{c}" = EXCLUDED."{c}"'
        for c in table.names
        if c not in table.key
    )
    return (
        f"INSERT INTO {name} AS t ({columns}) VALUES ({values}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
