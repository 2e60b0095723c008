"""participant_list itself: parameter rules, meeting lookup, filters and paging; and the
parameter, token and page helpers that meeting_list (``_meeting_list``) shares with it.

Pure functions of (query parameters, data, now): no I/O, so every rule of the error
table is easy to read here in the order the server applies it.
"""

from __future__ import annotations

import base64
import hmac
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .._constants import (
    MAX_MEETING_SPAN_SECONDS,
    MEETING_NO_LENGTH,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    PAGE_SIZE_SERVER_DEFAULT,
)
from ..models import MeetingStatus, UserIdType
from ._data import Dataset
from ._meetings import MeetingInfo

__all__ = [
    "ERRORS",
    "ONGOING_END_SLACK",
    "ApiError",
    "PageTokens",
    "QueryRules",
    "answer_page",
    "check_meeting_no",
    "check_start",
    "id_type_param",
    "int_param",
    "optional_param",
    "page_json",
    "page_size_param",
    "page_window",
]

# How far past the emulator's clock an ongoing meeting's end may be (a client's clock
# running a little ahead).
ONGOING_END_SLACK = 60

# code -> (HTTP status, msg), as in participant_list's error table.
ERRORS: dict[int, tuple[int, str]] = {
    121001: (500, "internal error"),
    121002: (400, "not support"),
    121003: (400, "param error"),
    126003: (400, "meeting number invalid (cannot smaller than 0)"),
    126004: (400, "meeting number length not correct (supposed to be 9)"),
    126005: (400, "start time error (cannot larger than now or smaller than 0)"),
    126006: (400, "end time cannot exceed start time for one day or smaller than start time"),
    126007: (400, "userID and roomID cannot be set concurrently"),
    126009: (400, "cannot find meeting according to the params you provide"),
    126015: (400, "not support room_id"),
    121004: (404, "data not exist"),
    121005: (403, "no permission"),
}

_INT = re.compile(r"-?[0-9]+")
_ID_TYPES = {t.value: t for t in UserIdType}
_ROLES = ("0", "3")


class ApiError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code} {detail}")


def int_param(params: Mapping[str, str], name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(121003, f"{name} is required")
        return None
    if not _INT.fullmatch(raw):
        raise ApiError(121003, f"{name} must be an integer")
    return int(raw)


def optional_param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None  # an empty value counts as not given


class PageTokens:
    """Opaque page tokens: the offset plus an HMAC binding it to the meeting and filters.

    A token from another meeting, other filters, another id type, or any made-up value
    fails the check (121003). ``page_size`` is not bound: a client may change it.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, scope: bytes, offset: int) -> bytes:
        return hmac.digest(self._key, scope + struct.pack(">I", offset), "sha256")[:12]

    def make(self, scope: bytes, offset: int) -> str:
        raw = struct.pack(">I", offset) + self._mac(scope, offset)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def read(self, scope: bytes, token: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise ApiError(121003, "page_token is not valid") from None
        if len(raw) != 16:
            raise ApiError(121003, "page_token is not valid")
        offset = int.from_bytes(raw[:4], "big")
        if not hmac.compare_digest(raw[4:], self._mac(scope, offset)):
            raise ApiError(121003, "page_token does not belong to this query")
        return offset


@dataclass(slots=True)
class QueryRules:
    """What the server knows beyond the data: denied and purged meetings, denied apps.

    A meeting is named by its number (every meeting that held it) or by
    ``(number, start)`` (that one meeting).
    """

    denied: set[str | tuple[str, int]] = field(default_factory=set)
    purged: set[str | tuple[str, int]] = field(default_factory=set)
    denied_apps: set[str] = field(default_factory=set)

    @staticmethod
    def _names(meeting: MeetingInfo, names: set[str | tuple[str, int]]) -> bool:
        return meeting.meeting_no in names or (meeting.meeting_no, meeting.start) in names

    def is_denied(self, meeting: MeetingInfo) -> bool:
        return self._names(meeting, self.denied)

    def is_purged(self, meeting: MeetingInfo) -> bool:
        return self._names(meeting, self.purged)


def page_size_param(params: Mapping[str, str]) -> int:
    page_size = int_param(params, "page_size", required=False)
    if page_size is None:
        return PAGE_SIZE_SERVER_DEFAULT
    if not PAGE_SIZE_MIN <= page_size <= PAGE_SIZE_MAX:
        raise ApiError(121003, f"page_size must be {PAGE_SIZE_MIN}..{PAGE_SIZE_MAX}")
    return page_size


def id_type_param(params: Mapping[str, str]) -> UserIdType:
    id_type = _ID_TYPES.get(optional_param(params, "user_id_type") or UserIdType.OPEN_ID.value)
    if id_type is None:
        raise ApiError(121003, "user_id_type must be open_id, union_id or user_id")
    return id_type


def check_meeting_no(raw_no: str) -> None:
    if not raw_no.isascii() or not raw_no.lstrip("-").isdigit() or raw_no.startswith("-"):
        raise ApiError(126003)
    if len(raw_no) != MEETING_NO_LENGTH:
        raise ApiError(126004)


def check_start(start: int, now: Callable[[], float]) -> None:
    if start < 0 or start > now():
        raise ApiError(126005)


def page_window(
    params: Mapping[str, str], total: int, page_size: int, tokens: PageTokens, scope: bytes
) -> tuple[int, int, str | None]:
    """The page ``params`` asks for among ``total`` items: ``(offset, stop, next_token)``,
    ``next_token`` ``None`` on the last page. A token not made for ``scope`` → 121003."""
    token = optional_param(params, "page_token")
    offset = 0 if token is None else tokens.read(scope, token)
    if offset >= total and offset != 0:
        raise ApiError(121003, "page_token is past the end")
    stop = offset + page_size
    return offset, stop, tokens.make(scope, stop) if stop < total else None


def page_json(list_key: bytes, items: Iterable[bytes], next_token: str | None) -> bytes:
    """A success body: ``page_token`` only while ``has_more`` is true."""
    head = b'{"code":0,"msg":"success","data":{"' + list_key + b'":['
    if next_token is None:
        return head + b",".join(items) + b'],"has_more":false}}'
    tail = b'],"page_token":"' + next_token.encode() + b'","has_more":true}}'
    return head + b",".join(items) + tail


def answer_page(
    params: Mapping[str, str],
    data: Dataset,
    rules: QueryRules,
    tokens: PageTokens,
    *,
    permitted: bool,
    now: Callable[[], float],
) -> bytes:
    """The body of a successful answer, or :class:`ApiError` for the first rule broken."""
    raw_no = params.get("meeting_no")
    start = int_param(params, "meeting_start_time", required=True)
    end = int_param(params, "meeting_end_time", required=True)
    if not raw_no:
        raise ApiError(121003, "meeting_no is required")
    assert start is not None
    assert end is not None
    status = int_param(params, "meeting_status", required=False)
    if status is not None and status not in MeetingStatus._value2member_map_:
        raise ApiError(121003, "meeting_status must be 1, 2 or 3")
    page_size = page_size_param(params)
    id_type = id_type_param(params)
    role = optional_param(params, "webinar_user_role")
    if role is not None and role not in _ROLES:
        raise ApiError(121003, 'webinar_user_role must be "0" or "3"')
    user_id = optional_param(params, "user_id")
    room_id = optional_param(params, "room_id")

    check_meeting_no(raw_no)
    check_start(start, now)
    if end < start or end - start > MAX_MEETING_SPAN_SECONDS:
        raise ApiError(126006)
    if user_id is not None and room_id is not None:
        raise ApiError(126007)

    meeting = data.find(raw_no, start)
    if meeting is None or not _end_matches(meeting, end, now):
        raise ApiError(126009)
    wanted = MeetingStatus.ONGOING if meeting.ongoing else MeetingStatus.ENDED
    if (status if status is not None else MeetingStatus.ENDED) != wanted:
        raise ApiError(126009, "the meeting is not in that status")
    if rules.is_denied(meeting):
        raise ApiError(121005)
    if rules.is_purged(meeting):
        raise ApiError(121004)
    if room_id is not None and meeting.webinar:
        raise ApiError(126015)
    if role is not None and not meeting.webinar:
        raise ApiError(121002, "webinar_user_role on a meeting that is not a webinar")

    rows = data.encoded(
        meeting, id_type, permitted, user_id=user_id, room_id=room_id, webinar_role=role
    )
    scope = f"{raw_no}|{start}|{end}|{user_id}|{room_id}|{role}|{id_type.value}".encode()
    offset, stop, next_token = page_window(params, len(rows), page_size, tokens, scope)
    return page_json(b"participants", rows[offset:stop], next_token)


def _end_matches(meeting: MeetingInfo, end: int, now: Callable[[], float]) -> bool:
    """Ended: the exact second (start is matched exactly by the lookup). Ongoing: any end
    from the start up to the current time, with a little slack for the client's clock."""
    if meeting.ongoing:
        return meeting.start <= end <= now() + ONGOING_END_SLACK
    return end == meeting.end
