"""meeting_list itself: parameter rules, which meetings are listed, what an item says.

Pure functions of (query parameters, data, now), like participant_list's in ``_api``,
whose parameter, page-token and page helpers they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from .._constants import MAX_MEETING_LIST_RANGE_SECONDS
from .._timeparse import format_duration
from ..meetings import Meeting
from ..models import JSON_ENCODER, MeetingStatus, UserIdType
from ._api import (
    ERRORS,
    ApiError,
    PageTokens,
    QueryRules,
    check_meeting_no,
    check_start,
    id_type_param,
    int_param,
    optional_param,
    page_json,
    page_size_param,
    page_window,
)
from ._data import Dataset, feishu_time
from ._meetings import MeetingInfo

__all__ = [
    "MEETING_LIST_ERRORS",
    "ListedMeeting",
    "ListingRule",
    "MeetingListQuery",
    "answer_meeting_list",
    "list_meetings",
    "listed_meeting",
    "listing_params",
]

ListingRule = Literal["start", "overlap"]

# code -> (HTTP status, msg), as in meeting_list's error table.
MEETING_LIST_ERRORS: dict[int, tuple[int, str]] = {
    **{code: ERRORS[code] for code in (121001, 121002, 121003, 126003, 126004, 126005)},
    126006: (400, "end time cannot exceed start time for one year or smaller than start time"),
    126008: (400, "meeting_no, user_id, room_id and meeting_type cannot be set concurrently"),
    **{code: ERRORS[code] for code in (126015, 121004, 121005)},
    126016: (400, "time range of upcoming meetings cannot exceed one month"),
}

_FILTERS = ("meeting_no", "user_id", "room_id", "meeting_type")
_BOOLS = {"true": True, "false": False}


# An item is the library's own model of a meeting, so the two cannot drift apart.
# Fields left ``None`` are absent from the JSON: the organizer's ``employee_id``,
# ``email`` and ``mobile`` without the user-id scope, ``meeting_end_time`` of an ongoing
# meeting, ``number_of_webinar_viewers`` of anything but a webinar; ``reserved_rooms``
# (upcoming meetings only) is never present.
ListedMeeting = Meeting


@dataclass(frozen=True, slots=True)
class MeetingListQuery:
    """A meeting_list request that passed every parameter rule."""

    start: int
    end: int
    status: MeetingStatus
    meeting_no: str | None
    user_id: str | None
    room_id: str | None
    meeting_type: int | None
    include_webinar: bool
    include_external: bool
    id_type: UserIdType

    @property
    def scope(self) -> bytes:
        """What a page token is bound to: everything but ``page_size``."""
        return JSON_ENCODER.encode(
            [
                "meeting_list",
                self.start,
                self.end,
                int(self.status),
                self.meeting_no,
                self.user_id,
                self.room_id,
                self.meeting_type,
                self.include_webinar,
                self.include_external,
                self.id_type.value,
            ]
        )


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    raw = optional_param(params, name)
    if raw is None:
        return False
    # Any case: the Python SDK sends str(True), "True".
    value = _BOOLS.get(raw.lower())
    if value is None:
        raise ApiError(121003, f"{name} must be true or false")
    return value


def _choice_param(params: Mapping[str, str], name: str, allowed: tuple[int, ...]) -> int | None:
    value = int_param(params, name, required=False)
    if value is not None and value not in allowed:
        raise ApiError(121003, f"{name} must be one of {', '.join(map(str, allowed))}")
    return value


def parse_meeting_list(
    params: Mapping[str, str], *, now: Callable[[], float]
) -> tuple[MeetingListQuery, int]:
    """The query and page size, or :class:`ApiError` for the first rule broken."""
    start = int_param(params, "start_time", required=True)
    end = int_param(params, "end_time", required=True)
    assert start is not None
    assert end is not None
    # 3 (upcoming) appears in answers only: it cannot be asked for.
    status = _choice_param(params, "meeting_status", (1, 2))
    meeting_type = _choice_param(params, "meeting_type", (1, 2, 3))
    page_size = page_size_param(params)
    id_type = id_type_param(params)
    include_webinar = _bool_param(params, "include_webinar")
    include_external = _bool_param(params, "include_external_meetings")
    meeting_no = optional_param(params, "meeting_no")

    if meeting_no is not None:
        check_meeting_no(meeting_no)
    check_start(start, now)
    if end < start or end - start > MAX_MEETING_LIST_RANGE_SECONDS:
        raise ApiError(126006)
    if sum(optional_param(params, name) is not None for name in _FILTERS) > 1:
        raise ApiError(126008)
    query = MeetingListQuery(
        start=start,
        end=end,
        status=MeetingStatus(status or MeetingStatus.ENDED),
        meeting_no=meeting_no,
        user_id=optional_param(params, "user_id"),
        room_id=optional_param(params, "room_id"),
        meeting_type=meeting_type,
        include_webinar=include_webinar,
        include_external=include_external,
        id_type=id_type,
    )
    return query, page_size


def _in_range(meeting: MeetingInfo, query: MeetingListQuery, rule: ListingRule, now: int) -> bool:
    if rule == "start":
        return query.start <= meeting.start <= query.end
    end = now if meeting.ongoing else meeting.end
    return meeting.start <= query.end and end >= query.start


def select(
    query: MeetingListQuery, data: Dataset, rule: ListingRule, now: Callable[[], float]
) -> list[MeetingInfo]:
    """The meetings ``query`` lists, in listing order (start time, then instance id)."""
    ongoing = query.status == MeetingStatus.ONGOING
    pool: list[MeetingInfo]
    if query.meeting_no is not None:
        pool = [m for m in data.numbered(query.meeting_no) if m.ongoing == ongoing]
    elif ongoing:
        pool = data.ongoing_listed()
    else:
        # Only meetings starting in this window can be in range under either rule.
        earliest = query.start if rule == "start" else query.start - data.longest
        pool = data.ended_starting(earliest, query.end)
    member = None
    if query.user_id is not None:
        member = data.person(query.id_type, query.user_id)
    elif query.room_id is not None:
        member = data.room(query.room_id)
    if member is None and (query.user_id or query.room_id):
        return []
    current = int(now())
    return [
        m
        for m in pool
        if _in_range(m, query, rule, current)
        and (query.include_webinar or not m.webinar)
        and (query.include_external or not m.external)
        and query.meeting_type in (None, 1, m.meeting_type)
        and (member is None or member in data.cast(m))
    ]


def list_meetings(
    params: Mapping[str, str],
    data: Dataset,
    rules: QueryRules,
    *,
    rule: ListingRule,
    now: Callable[[], float],
) -> tuple[MeetingListQuery, int, list[MeetingInfo]]:
    """Every meeting a request lists (all pages), its query and page size."""
    query, page_size = parse_meeting_list(params, now=now)
    if query.meeting_no is not None and query.meeting_no in rules.denied:
        raise ApiError(121005)
    return query, page_size, select(query, data, rule, now)


def listed_meeting(
    meeting: MeetingInfo, data: Dataset, id_type: UserIdType, permitted: bool
) -> ListedMeeting:
    """What meeting_list says of ``meeting`` to an app (``permitted``: the user-id scope).

    The organizer's fields follow participant_list's rows: ``user_id`` per ``id_type``
    (none under ``user_id`` without the scope); here ``employee_id``, ``email`` and
    ``mobile`` also need the scope. Times are shown in the organizer's time zone.
    """
    host = data.organizer(meeting)
    uid = host.user_id_as(id_type)
    if id_type is UserIdType.USER_ID and not permitted:
        uid = None
    viewers = meeting.viewers
    return ListedMeeting(
        meeting_id=meeting.meeting_no,
        meeting_topic=meeting.topic,
        meeting_type=meeting.meeting_type,
        organizer=host.name,
        department=host.department,
        user_id=uid,
        employee_id=host.employee_id if permitted else None,
        email=host.email if permitted else None,
        mobile=host.phone if permitted else None,
        meeting_start_time=feishu_time(meeting.start, host.tz),
        meeting_end_time=None if meeting.ongoing else feishu_time(meeting.end, host.tz),
        meeting_duration=format_duration(timedelta(seconds=meeting.end - meeting.start)),
        number_of_participants=str(meeting.participant_count),
        number_of_devices=str(meeting.devices),
        audio=meeting.audio,
        video=meeting.video,
        sharing=meeting.sharing,
        recording=meeting.recording,
        telephone=meeting.telephone,
        has_related_document=meeting.has_related_document,
        ai_note=meeting.ai_note,
        is_external=meeting.external,
        meeting_subtype=meeting.meeting_subtype,
        meeting_instance_id=meeting.instance_id,
        number_of_webinar_viewers=None if viewers is None else str(viewers),
    )


def answer_meeting_list(
    params: Mapping[str, str],
    data: Dataset,
    rules: QueryRules,
    tokens: PageTokens,
    *,
    permitted: bool,
    rule: ListingRule,
    now: Callable[[], float],
) -> bytes:
    """The body of a successful answer, or :class:`ApiError` for the first rule broken."""
    query, page_size, found = list_meetings(params, data, rules, rule=rule, now=now)
    offset, stop, next_token = page_window(params, len(found), page_size, tokens, query.scope)
    items = (
        JSON_ENCODER.encode(listed_meeting(m, data, query.id_type, permitted))
        for m in found[offset:stop]
    )
    return page_json(b"meeting_list", items, next_token)


def listing_params(
    start: int,
    end: int,
    status: MeetingStatus | int,
    user_id_type: UserIdType | str,
    include_webinar: bool,
    include_external: bool,
) -> dict[str, str]:
    """meeting_list's query parameters as a request carries them (the ground truth's)."""
    return {
        "start_time": str(start),
        "end_time": str(end),
        "meeting_status": str(int(status)),
        "user_id_type": str(user_id_type),
        "include_webinar": str(include_webinar).lower(),
        "include_external_meetings": str(include_external).lower(),
    }
