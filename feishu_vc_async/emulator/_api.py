"""participant_list itself: parameter rules, meeting lookup, filters and paging.

Pure functions of (query parameters, data, now): no I/O, so every rule of the error
table is easy to read here in the order the server applies it.
"""

from __future__ import annotations

import base64
import hmac
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .._constants import (
    MAX_MEETING_SPAN_SECONDS,
    MEETING_NO_LENGTH,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    PAGE_SIZE_SERVER_DEFAULT,
)
from ..models import MeetingStatus, UserIdType
from ._data import Dataset, MeetingInfo

__all__ = ["ERRORS", "ApiError", "PageTokens", "QueryRules", "answer_page"]

# code -> (HTTP status, msg), as in the reference's error table.
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


def _int_param(params: Mapping[str, str], name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(121003, f"{name} is required")
        return None
    if not _INT.fullmatch(raw):
        raise ApiError(121003, f"{name} must be an integer")
    return int(raw)


def _optional(params: Mapping[str, str], name: str) -> str | None:
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
    """What the server knows beyond the data: denied and purged meetings."""

    denied: set[str] = field(default_factory=set)
    purged: set[str] = field(default_factory=set)


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
    start = _int_param(params, "meeting_start_time", required=True)
    end = _int_param(params, "meeting_end_time", required=True)
    if not raw_no:
        raise ApiError(121003, "meeting_no is required")
    assert start is not None
    assert end is not None
    status = _int_param(params, "meeting_status", required=False)
    if status is not None and status not in MeetingStatus._value2member_map_:
        raise ApiError(121003, "meeting_status must be 1, 2 or 3")
    page_size = _int_param(params, "page_size", required=False)
    if page_size is None:
        page_size = PAGE_SIZE_SERVER_DEFAULT
    elif not PAGE_SIZE_MIN <= page_size <= PAGE_SIZE_MAX:
        raise ApiError(121003, f"page_size must be {PAGE_SIZE_MIN}..{PAGE_SIZE_MAX}")
    id_type_raw = _optional(params, "user_id_type") or UserIdType.OPEN_ID.value
    id_type = _ID_TYPES.get(id_type_raw)
    if id_type is None:
        raise ApiError(121003, "user_id_type must be open_id, union_id or user_id")
    role = _optional(params, "webinar_user_role")
    if role is not None and role not in _ROLES:
        raise ApiError(121003, 'webinar_user_role must be "0" or "3"')
    user_id = _optional(params, "user_id")
    room_id = _optional(params, "room_id")

    if not raw_no.isascii() or not raw_no.lstrip("-").isdigit() or raw_no.startswith("-"):
        raise ApiError(126003)
    if len(raw_no) != MEETING_NO_LENGTH:
        raise ApiError(126004)
    if start < 0 or start > now():
        raise ApiError(126005)
    if end < start or end - start > MAX_MEETING_SPAN_SECONDS:
        raise ApiError(126006)
    if user_id is not None and room_id is not None:
        raise ApiError(126007)

    meeting = data.by_no.get(raw_no)
    if meeting is None or not _times_match(meeting, start, end):
        raise ApiError(126009)
    if (status if status is not None else MeetingStatus.ENDED) != MeetingStatus.ENDED:
        raise ApiError(126009, "the meeting is not in that status")  # all are ended
    if raw_no in rules.denied:
        raise ApiError(121005)
    if raw_no in rules.purged:
        raise ApiError(121004)
    if room_id is not None and meeting.webinar:
        raise ApiError(126015)
    if role is not None and not meeting.webinar:
        raise ApiError(121002, "webinar_user_role on a meeting that is not a webinar")

    rows = data.encoded(
        meeting, id_type, permitted, user_id=user_id, room_id=room_id, webinar_role=role
    )
    scope = f"{raw_no}|{start}|{end}|{user_id}|{room_id}|{role}|{id_type_raw}".encode()
    token = _optional(params, "page_token")
    offset = 0 if token is None else tokens.read(scope, token)
    if offset >= len(rows) and offset != 0:
        raise ApiError(121003, "page_token is past the end")
    stop = offset + page_size
    parts = [b'{"code":0,"msg":"success","data":{"participants":[', b",".join(rows[offset:stop])]
    if stop < len(rows):
        parts.append(
            b'],"page_token":"' + tokens.make(scope, stop).encode() + b'","has_more":true}}'
        )
    else:
        parts.append(b'],"has_more":false}}')
    return b"".join(parts)


def _times_match(meeting: MeetingInfo, start: int, end: int) -> bool:
    """Times identify the meeting to the minute (one SDK notes: exact to the minute)."""
    return start // 60 == meeting.start // 60 and end // 60 == meeting.end // 60
