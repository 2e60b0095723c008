"""What a fan-out reads: queries, or meeting_list's meetings standing for theirs."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable

from ..errors import InvalidQueryError
from ..meetings import Meeting
from ..models import MeetingQuery
from ._items import MeetingFailure

__all__ = ["Queries", "listed_size", "query_or_failure"]

# A Meeting (from meeting_list) stands for its query and says its size.
Queries = Iterable[MeetingQuery | Meeting] | AsyncIterable[MeetingQuery | Meeting]


def listed_size(item: object) -> int | None:
    """What an input item says of its size: a Meeting's ``number_of_participants``."""
    return item.participant_count if isinstance(item, Meeting) else None


def query_or_failure(item: object) -> MeetingQuery | MeetingFailure:
    """The query an input item stands for, or the failure item it gives instead."""
    if isinstance(item, Meeting):
        return _query_of(item)
    if isinstance(item, MeetingQuery):
        return item
    error = InvalidQueryError("query", item, "must be a MeetingQuery or Meeting")
    return MeetingFailure(item, error, 0, None)  # type: ignore[arg-type]


def _query_of(meeting: Meeting) -> MeetingQuery | MeetingFailure:
    try:
        return meeting.query()
    except ValueError as exc:
        # A meeting that names no readable number or time fails with what it says of
        # itself as a query, not the Meeting: the organizer's email and mobile would go
        # wherever the failure is logged.
        stand_in = MeetingQuery(
            meeting_no=meeting.meeting_id or "",
            meeting_start_time=meeting.start_seconds or 0,
            meeting_end_time=meeting.end_seconds or 0,
        )
        error = InvalidQueryError("meeting", meeting.meeting_id, str(exc))
        return MeetingFailure(stand_in, error, 0, None)
