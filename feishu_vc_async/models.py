"""Typed models of participant_list, decoded straight from bytes, and the query of it.

The wire fields keep their wire names and are all optional: the server omits what the
token may not see (``user_id`` / ``employee_id`` need an extra scope). Unknown fields
are ignored, so a field the platform adds tomorrow never breaks decoding. The typed
views (``joined_at``, ``duration``, ``acceptance`` ...) are computed from the wire
strings on access; a malformed string gives ``None`` there, never a failed page.
"""

from __future__ import annotations

import contextlib
import enum
import time
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec

from ._constants import (
    MAX_MEETING_SPAN_SECONDS,
    MEETING_NO_LENGTH,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
)
from ._timeparse import parse_duration, parse_feishu_time
from .errors import InvalidQueryError

__all__ = [
    "AcceptStatus",
    "MeetingQuery",
    "MeetingStatus",
    "OpenIntEnum",
    "Participant",
    "ParticipantListResponse",
    "ParticipantPage",
    "UserIdType",
    "WebinarRole",
    "validate_page_size",
]


class OpenIntEnum(enum.IntEnum):
    """An int enum that keeps values the platform adds later (``UNKNOWN_<n>``) instead
    of failing on them: an answer from a newer server still loads."""

    @classmethod
    def _missing_(cls, value: object) -> OpenIntEnum | None:
        if isinstance(value, int) and not isinstance(value, bool):
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class AcceptStatus(OpenIntEnum):
    """The calendar response of an invitee."""

    ACCEPTED = 1
    REJECTED = 2
    TENTATIVE = 3
    NO_RESPONSE = 4


class WebinarRole(enum.StrEnum):
    GUEST = "0"
    AUDIENCE = "3"


class MeetingStatus(enum.IntEnum):
    ONGOING = 1
    ENDED = 2
    UPCOMING = 3


class UserIdType(enum.StrEnum):
    OPEN_ID = "open_id"
    UNION_ID = "union_id"
    USER_ID = "user_id"


# --- Wire models ---------------------------------------------------------------------


class Participant(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One participant, with the 28 fields of the reference under their wire names."""

    participant_name: str | None = None
    department: str | None = None
    user_id: str | None = None
    meeting_room_id: str | None = None
    employee_id: str | None = None
    phone: str | None = None
    email: str | None = None
    device: str | None = None
    app_version: str | None = None
    public_ip: str | None = None
    internal_ip: str | None = None
    use_rtc_proxy: bool | None = None
    location: str | None = None
    network_type: str | None = None
    protocol: str | None = None
    microphone: str | None = None
    speaker: str | None = None
    camera: str | None = None
    audio: bool | None = None
    video: bool | None = None
    sharing: bool | None = None
    join_time: str | None = None
    leave_time: str | None = None
    time_in_meeting: str | None = None
    leave_reason: str | None = None
    accept_status: int | None = None
    is_external: bool | None = None
    webinar_user_role: str | None = None

    @property
    def joined_at(self) -> datetime | None:
        return parse_feishu_time(self.join_time)

    @property
    def left_at(self) -> datetime | None:
        return parse_feishu_time(self.leave_time)

    @property
    def duration(self) -> timedelta | None:
        return parse_duration(self.time_in_meeting)

    @property
    def acceptance(self) -> AcceptStatus | None:
        status = self.accept_status
        if status is None:
            return None
        # A dict lookup, not the enum's call: read for every row of an export.
        return _ACCEPTANCE.get(status) or AcceptStatus(status)

    @property
    def webinar_role(self) -> WebinarRole | None:
        try:
            return None if self.webinar_user_role is None else WebinarRole(self.webinar_user_role)
        except ValueError:
            return None


PARTICIPANT_FIELDS: tuple[str, ...] = Participant.__struct_fields__
_ACCEPTANCE: Final[dict[int, AcceptStatus]] = {m.value: m for m in AcceptStatus}


class ParticipantPage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``data`` of one participant_list answer."""

    participants: list[Participant] = []
    page_token: str | None = None
    has_more: bool = False


class ErrorDetail(msgspec.Struct, kw_only=True):
    log_id: str | None = None


class ParticipantListResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The envelope ``{code, msg, data}`` (plus ``error`` on failures)."""

    code: int
    msg: str = ""
    data: ParticipantPage | None = None
    error: ErrorDetail | None = None

    @property
    def body_log_id(self) -> str | None:
        return self.error.log_id if self.error else None

    def value(self) -> ParticipantPage:
        # A success without ``data`` is a meeting without participants.
        return self.data if self.data is not None else _EMPTY_PAGE


class Envelope(msgspec.Struct, kw_only=True):
    """``code``, ``msg`` and ``error.log_id``: what the platform's JSON answers share."""

    code: int
    msg: str = ""
    error: ErrorDetail | None = None

    @property
    def body_log_id(self) -> str | None:
        return self.error.log_id if self.error else None


class ErrorEnvelope(Envelope, kw_only=True):
    """What every failing answer of the platform has in common."""

    def value(self) -> None:
        return None


_EMPTY_PAGE: Final = ParticipantPage()

# Built once: a Decoder compiles its type's plan at construction.
PARTICIPANT_LIST_DECODER = msgspec.json.Decoder(ParticipantListResponse)
ERROR_ENVELOPE_DECODER = msgspec.json.Decoder(ErrorEnvelope)
JSON_ENCODER = msgspec.json.Encoder()


# --- The query -----------------------------------------------------------------------


class MeetingQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which meeting to read, with the server's own rules checked by :meth:`validate`.

    Times are unix seconds or aware datetimes (stored as unix seconds). Construction
    never raises; the client validates before sending, and the fan-out turns an invalid
    query into a failure item for that meeting.
    """

    meeting_no: str
    meeting_start_time: int
    meeting_end_time: int
    meeting_status: MeetingStatus = MeetingStatus.ENDED
    user_id: str | None = None
    room_id: str | None = None
    webinar_user_role: WebinarRole | None = None
    user_id_type: UserIdType = UserIdType.OPEN_ID

    def __post_init__(self) -> None:
        force = msgspec.structs.force_setattr
        raw_no: object = self.meeting_no
        if isinstance(raw_no, int) and not isinstance(raw_no, bool):
            force(self, "meeting_no", str(raw_no))
        force(self, "meeting_start_time", to_unix(self.meeting_start_time))
        force(self, "meeting_end_time", to_unix(self.meeting_end_time))
        coerce_enum_fields(
            self,
            (
                ("meeting_status", MeetingStatus),
                ("webinar_user_role", WebinarRole),
                ("user_id_type", UserIdType),
            ),
        )

    def validate(self, *, now: float | None = None) -> MeetingQuery:
        """Raise :class:`InvalidQueryError` for the first broken rule; return ``self``."""
        check_meeting_no(self.meeting_no)
        check_unix_field("meeting_start_time", self.meeting_start_time, 126005)
        check_unix_field("meeting_end_time", self.meeting_end_time, 126006)
        start, end = self.meeting_start_time, self.meeting_end_time
        current = time.time() if now is None else now
        if start < 0:
            raise InvalidQueryError("meeting_start_time", start, "cannot be negative", 126005)
        if start > current:
            raise InvalidQueryError("meeting_start_time", start, "cannot be later than now", 126005)
        if end < start:
            raise InvalidQueryError(
                "meeting_end_time",
                end,
                f"cannot be earlier than meeting_start_time {start}",
                126006,
            )
        if end - start > MAX_MEETING_SPAN_SECONDS:
            raise InvalidQueryError(
                "meeting_end_time",
                end,
                f"cannot be more than one day ({MAX_MEETING_SPAN_SECONDS} s) "
                f"after meeting_start_time {start}",
                126006,
            )
        if self.user_id is not None and self.room_id is not None:
            raise InvalidQueryError(
                "user_id/room_id",
                (self.user_id, self.room_id),
                "set at most one of user_id and room_id",
                126007,
            )
        for name, enum_type in (
            ("meeting_status", MeetingStatus),
            ("webinar_user_role", WebinarRole),
            ("user_id_type", UserIdType),
        ):
            check_enum_field(name, getattr(self, name), enum_type)
        for name in ("user_id", "room_id"):
            check_optional_text(name, getattr(self, name))
        return self

    def to_params(self) -> dict[str, str]:
        """The query string of this query (without paging)."""
        params = {
            "meeting_no": self.meeting_no,
            "meeting_start_time": str(self.meeting_start_time),
            "meeting_end_time": str(self.meeting_end_time),
            "meeting_status": str(int(self.meeting_status)),
            "user_id_type": str(self.user_id_type),
        }
        if self.user_id is not None:
            params["user_id"] = self.user_id
        if self.room_id is not None:
            params["room_id"] = self.room_id
        if self.webinar_user_role is not None:
            params["webinar_user_role"] = str(self.webinar_user_role)
        return params

    @property
    def key(self) -> str:
        """A stable id of this query, for checkpoints and resume maps."""
        parts = [self.meeting_no, str(self.meeting_start_time), str(self.meeting_end_time)]
        if self.meeting_status != MeetingStatus.ENDED:
            parts.append(f"status={int(self.meeting_status)}")
        for name in ("user_id", "room_id", "webinar_user_role"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.user_id_type != UserIdType.OPEN_ID:
            parts.append(f"user_id_type={self.user_id_type}")
        return ":".join(parts)


# --- the rules both queries share ---------------------------------------------------


def check_meeting_no(value: object, name: str = "meeting_no") -> str:
    """A 9-digit meeting number, or :class:`InvalidQueryError` with the server's code."""
    if not isinstance(value, str) or not value.isascii() or not value.lstrip("-").isdigit():
        raise InvalidQueryError(name, value, "must be a string of digits", 126003)
    if value.startswith("-"):
        raise InvalidQueryError(name, value, "cannot be negative", 126003)
    if len(value) != MEETING_NO_LENGTH:
        raise InvalidQueryError(name, value, f"must be exactly {MEETING_NO_LENGTH} digits", 126004)
    return value


def check_unix_field(name: str, value: object, code: int) -> int:
    """Unix seconds (an int; an aware datetime was converted on construction)."""
    if isinstance(value, datetime):
        raise InvalidQueryError(name, value, "a datetime must be timezone-aware", code)
    if not isinstance(value, int) or isinstance(value, bool):
        rule = "must be unix seconds (int) or an aware datetime"
        raise InvalidQueryError(name, value, rule, code)
    return value


def check_enum_field(name: str, value: object, enum_type: type[enum.Enum]) -> None:
    """``value`` is ``None`` or a member of ``enum_type`` (121003 otherwise)."""
    if value is not None and not isinstance(value, enum_type):
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise InvalidQueryError(name, value, f"must be one of {allowed}", 121003)


def check_optional_text(name: str, value: object) -> None:
    """``value`` is ``None`` or a non-empty string (121003 otherwise)."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidQueryError(name, value, "must be a non-empty string", 121003)


def coerce_enum_fields(
    struct: msgspec.Struct, fields: tuple[tuple[str, type[enum.Enum]], ...]
) -> None:
    """Turn raw values of a frozen struct's enum fields into members where they are valid;
    an unknown value stays as given, for ``validate()`` to report by field name."""
    for name, enum_type in fields:
        raw = getattr(struct, name)
        if raw is not None and not isinstance(raw, enum_type):
            with contextlib.suppress(ValueError):
                msgspec.structs.force_setattr(struct, name, enum_type(raw))


def to_unix(value: Any) -> Any:
    """An aware datetime → unix seconds; anything else as given (for validate() to name)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return int(value.timestamp())
    return value


def validate_page_size(page_size: object) -> int:
    """Return ``page_size`` if it is an int in 20..100, else raise :class:`InvalidQueryError`."""
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or not PAGE_SIZE_MIN <= page_size <= PAGE_SIZE_MAX
    ):
        raise InvalidQueryError(
            "page_size",
            page_size,
            f"must be an integer from {PAGE_SIZE_MIN} to {PAGE_SIZE_MAX}",
            121003,
        )
    return page_size
