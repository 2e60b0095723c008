"""Meetings as meeting_list describes them, and the query that lists them.

``GET /open-apis/vc/v1/meeting_list`` lists a tenant's ongoing or ended meetings in a
time range, with the exact start and end second participant_list needs. A
:class:`Meeting` keeps every field of the reference under its wire name, all optional
(unknown fields are ignored, so a newer server never breaks decoding), plus the typed
views the wire lacks: times as aware datetimes, the duration as a timedelta, the
string counts as ints, the type and subtype as enums that keep unknown values.

A meeting number is not an identity: personal meeting numbers recur. A meeting is
``(meeting_id, start second)``, :attr:`Meeting.key`; :meth:`Meeting.query` is the
participant_list query that reads it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Final

import msgspec

from ._constants import MAX_MEETING_LIST_RANGE_SECONDS
from ._timeparse import parse_duration, parse_feishu_time
from .errors import InvalidQueryError
from .models import (
    ErrorDetail,
    MeetingQuery,
    MeetingStatus,
    OpenIntEnum,
    UserIdType,
    check_enum_field,
    check_meeting_no,
    check_optional_text,
    check_unix_field,
    coerce_enum_fields,
    to_unix,
)

__all__ = [
    "MEETING_LIST_DECODER",
    "Meeting",
    "MeetingListPage",
    "MeetingListQuery",
    "MeetingListResponse",
    "MeetingSubtype",
    "MeetingType",
    "ReservedRoom",
    "parse_count",
]


class MeetingType(OpenIntEnum):
    """``meeting_type``: as a filter, ``ALL`` lists every kind."""

    ALL = 1
    VIDEO_MEETING = 2
    LOCAL_SCREEN_SHARE = 3


class MeetingSubtype(OpenIntEnum):
    ALL = 0
    SCREEN_SHARE = 1
    WIRED_SHARE = 2
    MAGIC_SHARE = 3
    CHAT_ROOM = 4
    FEIYUE_MEETING = 5
    ENTERPRISE_PHONE = 6
    IP_PHONE = 7
    WEBINAR = 8
    OFFLINE_MEETING = 9
    MINUTES_MEETING = 10


class ReservedRoom(msgspec.Struct, kw_only=True, omit_defaults=True):
    room_id: str | None = None
    room_name: str | None = None


def parse_count(value: str | None) -> int | None:
    """The platform's counts are strings; ``None`` when absent or not a whole number."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


class Meeting(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One meeting of meeting_list, every field of the reference under its wire name.

    ``meeting_id`` is the 9-digit meeting number (participant_list's ``meeting_no``);
    ``organizer``, ``department``, ``user_id``, ``employee_id``, ``email``, ``mobile``
    describe the organizer.
    """

    meeting_id: str | None = None
    meeting_topic: str | None = None
    meeting_type: int | None = None
    organizer: str | None = None
    department: str | None = None
    user_id: str | None = None
    employee_id: str | None = None
    email: str | None = None
    mobile: str | None = None
    meeting_start_time: str | None = None
    meeting_end_time: str | None = None
    meeting_duration: str | None = None
    number_of_participants: str | None = None
    number_of_devices: str | None = None
    audio: bool | None = None
    video: bool | None = None
    sharing: bool | None = None
    recording: bool | None = None
    telephone: bool | None = None
    reserved_rooms: list[ReservedRoom] | None = None
    has_related_document: bool | None = None
    ai_note: bool | None = None
    is_external: bool | None = None
    meeting_subtype: int | None = None
    meeting_instance_id: str | None = None
    number_of_webinar_viewers: str | None = None

    # --- typed views -------------------------------------------------------------

    @property
    def started_at(self) -> datetime | None:
        return parse_feishu_time(self.meeting_start_time)

    @property
    def ended_at(self) -> datetime | None:
        """``None`` for an ongoing meeting (the platform gives no end yet)."""
        return parse_feishu_time(self.meeting_end_time)

    @property
    def start_seconds(self) -> int | None:
        """The exact start as unix seconds, what participant_list matches."""
        started = self.started_at
        return None if started is None else int(started.timestamp())

    @property
    def end_seconds(self) -> int | None:
        ended = self.ended_at
        return None if ended is None else int(ended.timestamp())

    @property
    def ongoing(self) -> bool:
        """Listed without an end: the meeting has not ended."""
        return not self.meeting_end_time

    @property
    def duration(self) -> timedelta | None:
        return parse_duration(self.meeting_duration)

    @property
    def participant_count(self) -> int | None:
        return parse_count(self.number_of_participants)

    @property
    def device_count(self) -> int | None:
        return parse_count(self.number_of_devices)

    @property
    def webinar_viewer_count(self) -> int | None:
        return parse_count(self.number_of_webinar_viewers)

    @property
    def kind(self) -> MeetingType | None:
        """``meeting_type`` as an enum (a value the platform adds later still loads)."""
        return None if self.meeting_type is None else MeetingType(self.meeting_type)

    @property
    def subkind(self) -> MeetingSubtype | None:
        """``meeting_subtype`` as an enum (a value the platform adds later still loads)."""
        return None if self.meeting_subtype is None else MeetingSubtype(self.meeting_subtype)

    @property
    def key(self) -> str:
        """The meeting's identity, ``<number>@<start unix seconds>`` (a number recurs; the
        instance id is not always present). Raises ``ValueError`` when the answer lacks
        the number or a readable start."""
        start = self.start_seconds
        if not self.meeting_id or start is None:
            raise ValueError(self._unidentified())
        return f"{self.meeting_id}@{start}"

    def query(
        self,
        *,
        now: float | None = None,
        user_id_type: UserIdType = UserIdType.OPEN_ID,
    ) -> MeetingQuery:
        """The participant_list query that reads this meeting: the exact unix seconds; an
        ongoing meeting ends ``now`` (default: the current time) with status ongoing.
        Raises ``ValueError`` when the answer lacks the number or a readable start."""
        start = self.start_seconds
        if not self.meeting_id or start is None:
            raise ValueError(self._unidentified())
        if self.ongoing:
            end = int(time.time() if now is None else now)
            status = MeetingStatus.ONGOING
        else:
            end_seconds = self.end_seconds
            if end_seconds is None:
                raise ValueError(
                    f"meeting {self.meeting_id}: meeting_end_time "
                    f"{self.meeting_end_time!r} is not a time"
                )
            end, status = end_seconds, MeetingStatus.ENDED
        return MeetingQuery(
            meeting_no=self.meeting_id,
            meeting_start_time=start,
            meeting_end_time=max(end, start),
            meeting_status=status,
            user_id_type=user_id_type,
        )

    def _unidentified(self) -> str:
        return (
            f"meeting {self.meeting_id!r} has no usable meeting_id and meeting_start_time "
            f"({self.meeting_start_time!r}): it cannot be identified"
        )


class MeetingListPage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``data`` of one meeting_list answer."""

    meeting_list: list[Meeting] = []
    page_token: str | None = None
    has_more: bool = False


_EMPTY_PAGE: Final = MeetingListPage()


class MeetingListResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The envelope ``{code, msg, data}`` (plus ``error`` on failures)."""

    code: int
    msg: str = ""
    data: MeetingListPage | None = None
    error: ErrorDetail | None = None

    @property
    def body_log_id(self) -> str | None:
        return self.error.log_id if self.error else None

    def value(self) -> MeetingListPage:
        return self.data if self.data is not None else _EMPTY_PAGE


MEETING_LIST_DECODER = msgspec.json.Decoder(MeetingListResponse)

_FILTERS: Final = ("meeting_no", "user_id", "room_id", "meeting_type")
_REQUESTABLE: Final = (MeetingStatus.ONGOING, MeetingStatus.ENDED)
# MeetingType keeps unknown values when decoding answers; a filter takes only these.
_FILTER_TYPES: Final = tuple(MeetingType)


class MeetingListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which meetings to list, with the server's own rules checked by :meth:`validate`.

    Times are unix seconds or aware datetimes (stored as unix seconds). At most one of
    ``meeting_no``, ``user_id``, ``room_id``, ``meeting_type`` (126008; setting
    ``meeting_type=ALL`` counts as setting it). ``meeting_status`` is ``ENDED`` (the
    default) or ``ONGOING``; upcoming meetings cannot be asked for. One request covers at
    most a year (126006); ``VCClient.meetings`` splits a longer range into windows.
    """

    start_time: int
    end_time: int
    meeting_status: MeetingStatus = MeetingStatus.ENDED
    meeting_no: str | None = None
    user_id: str | None = None
    room_id: str | None = None
    meeting_type: MeetingType | None = None
    include_external_meetings: bool = False
    include_webinar: bool = False
    user_id_type: UserIdType = UserIdType.OPEN_ID

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "start_time", to_unix(self.start_time))
        msgspec.structs.force_setattr(self, "end_time", to_unix(self.end_time))
        coerce_enum_fields(
            self,
            (
                ("meeting_status", MeetingStatus),
                ("meeting_type", MeetingType),
                ("user_id_type", UserIdType),
            ),
        )

    def validate(self, *, now: float | None = None, whole_range: bool = False) -> MeetingListQuery:
        """Raise :class:`InvalidQueryError` for the first broken rule; return ``self``.

        ``whole_range``: the range may be longer than one request allows (it will be
        split into windows)."""
        start = check_unix_field("start_time", self.start_time, 126005)
        end = check_unix_field("end_time", self.end_time, 126006)
        current = time.time() if now is None else now
        if start < 0:
            raise InvalidQueryError("start_time", start, "cannot be negative", 126005)
        if start > current:
            raise InvalidQueryError("start_time", start, "cannot be later than now", 126005)
        if end < start:
            raise InvalidQueryError(
                "end_time", end, f"cannot be earlier than start_time {start}", 126006
            )
        if not whole_range and end - start > MAX_MEETING_LIST_RANGE_SECONDS:
            raise InvalidQueryError(
                "end_time",
                end,
                f"cannot be more than one year ({MAX_MEETING_LIST_RANGE_SECONDS} s) after "
                f"start_time {start}",
                126006,
            )
        check_enum_field("meeting_status", self.meeting_status, MeetingStatus)
        if self.meeting_status not in _REQUESTABLE:
            raise InvalidQueryError(
                "meeting_status",
                self.meeting_status,
                "must be 1 (ongoing) or 2 (ended): upcoming meetings cannot be listed",
                121003,
            )
        if self.meeting_type is not None and self.meeting_type not in _FILTER_TYPES:
            raise InvalidQueryError(
                "meeting_type", self.meeting_type, "must be 1 (all), 2 or 3", 121003
            )
        check_enum_field("user_id_type", self.user_id_type, UserIdType)
        if self.meeting_no is not None:
            check_meeting_no(self.meeting_no)
        for name in ("user_id", "room_id"):
            check_optional_text(name, getattr(self, name))
        given = [name for name in _FILTERS if getattr(self, name) is not None]
        if len(given) > 1:
            raise InvalidQueryError(
                "/".join(given),
                tuple(getattr(self, name) for name in given),
                "set at most one of meeting_no, user_id, room_id and meeting_type",
                126008,
            )
        for name in ("include_external_meetings", "include_webinar"):
            if not isinstance(getattr(self, name), bool):
                value = getattr(self, name)
                raise InvalidQueryError(name, value, "must be true or false", 121003)
        return self

    def to_params(self) -> dict[str, str]:
        """The query string of this query (without paging)."""
        params = {
            "start_time": str(self.start_time),
            "end_time": str(self.end_time),
            "meeting_status": str(int(self.meeting_status)),
            "user_id_type": str(self.user_id_type),
        }
        for name in ("meeting_no", "user_id", "room_id"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.meeting_type is not None:
            params["meeting_type"] = str(int(self.meeting_type))
        for name in ("include_external_meetings", "include_webinar"):
            if getattr(self, name):
                params[name] = "true"
        return params

    def windows(self, span: int = MAX_MEETING_LIST_RANGE_SECONDS) -> list[MeetingListQuery]:
        """This range cut into consecutive windows of at most ``span`` seconds, each a
        query one request may carry. Neighbours share their boundary second, so a meeting
        starting on it is in both (listing by start or by overlap alike): the reader of
        the windows drops what it has already seen (``Meeting.key``)."""
        if span < 1:
            raise ValueError(f"span={span!r}: must be at least 1 second")
        cuts = list(range(self.start_time, self.end_time, span)) or [self.start_time]
        return [
            msgspec.structs.replace(self, start_time=lo, end_time=min(lo + span, self.end_time))
            for lo in cuts
        ]
