"""The event a meeting's end is told by (``vc.meeting.all_meeting_ended_v1``), read and
written in one place: the webhook receiver, the long connection, the sync that follows
events and the emulator that sends them all share these structs.

The envelope is schema 2.0 (``../shared/spec/events.md``). The platform sends the
meeting's ``id``, ``start_time`` and ``end_time`` as strings of unix seconds (node-sdk and
the platform's CLI read them so; lark-oapi declares ints): both are accepted. What
participant_list needs, ``meeting_no`` and the exact start and end seconds, is all in it.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from .._timeparse import check_unix_seconds
from ..errors import FeishuError
from ..models import MeetingQuery, MeetingStatus

__all__ = [
    "ALL_MEETING_ENDED",
    "EventError",
    "EventHeader",
    "MeetingEnded",
    "UrlVerification",
    "decode_event",
    "ended_envelope",
    "meeting_ended",
]

ALL_MEETING_ENDED: Final = "vc.meeting.all_meeting_ended_v1"

_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


class EventError(FeishuError, ValueError):
    """An event body that is not what the platform sends: ``reason`` says which rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventHeader(msgspec.Struct, frozen=True):
    event_id: str
    event_type: str
    create_time: str | int = ""
    token: str = ""
    app_id: str = ""
    tenant_key: str = ""

    def __repr__(self) -> str:  # the verification token is a secret
        return f"EventHeader(event_id={self.event_id!r}, event_type={self.event_type!r})"


class _UserId(msgspec.Struct, frozen=True, omit_defaults=True):
    union_id: str | None = None
    user_id: str | None = None
    open_id: str | None = None


class _User(msgspec.Struct, frozen=True, omit_defaults=True):
    id: _UserId | None = None
    user_role: int | None = None
    user_type: int | None = None


class _Meeting(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str | int
    meeting_no: str
    start_time: str | int
    end_time: str | int
    topic: str = ""
    meeting_source: int | None = None
    host_user: _User | None = None
    owner: _User | None = None


class _EndedBody(msgspec.Struct, frozen=True):
    meeting: _Meeting


class _Envelope(msgspec.Struct, frozen=True):
    header: EventHeader
    event: msgspec.Raw = msgspec.Raw(b"null")
    schema: str = ""


class UrlVerification(msgspec.Struct, frozen=True, tag="url_verification", tag_field="type"):
    """The platform's check of a request URL: answered ``{"challenge": challenge}``."""

    challenge: str
    token: str = ""

    def __repr__(self) -> str:
        return "UrlVerification(challenge=..., token=...)"


class MeetingEnded(msgspec.Struct, frozen=True, kw_only=True):
    """One meeting's end, as an event told it. ``query`` is what participant_list takes."""

    event_id: str
    tenant_key: str
    app_id: str
    meeting_id: str
    meeting_no: str
    start_time: int
    end_time: int
    topic: str = ""
    meeting_source: int | None = None
    create_time_ms: int | None = None

    @property
    def query(self) -> MeetingQuery:
        return MeetingQuery(
            meeting_no=self.meeting_no,
            meeting_start_time=self.start_time,
            meeting_end_time=self.end_time,
            meeting_status=MeetingStatus.ENDED,
        )

    @property
    def key(self) -> tuple[str, str, int]:
        """(tenant_key, meeting_no, start): the meeting's key in a database output."""
        return (self.tenant_key, self.meeting_no, self.start_time)


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_VERIFICATION = msgspec.json.Decoder(UrlVerification)
_ENDED = msgspec.json.Decoder(_EndedBody)
_ENCODER = msgspec.json.Encoder()


def decode_event(body: bytes) -> EventHeader | UrlVerification:
    """The header of a schema 2.0 event (its body is read by type, e.g. with
    :func:`meeting_ended`), or a URL verification; :class:`EventError` for anything
    else. ``body`` is the plaintext JSON (decrypted first where it was encrypted)."""
    try:
        probe = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError as exc:
        raise EventError(f"the body is not a JSON object ({exc})") from None
    if "type" in probe and "header" not in probe:
        try:
            return _VERIFICATION.decode(body)
        except msgspec.DecodeError as exc:
            raise EventError(f"not a URL verification ({exc})") from None
    if "header" not in probe:
        raise EventError("not a schema 2.0 event (no header) nor a URL verification")
    try:
        return _ENVELOPE.decode(body).header
    except msgspec.DecodeError as exc:
        raise EventError(f"a malformed event header ({exc})") from None


def meeting_ended(body: bytes) -> MeetingEnded:
    """The meeting of an ``all_meeting_ended_v1`` event's plaintext JSON body;
    :class:`EventError` naming the field for anything else."""
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.DecodeError as exc:
        raise EventError(f"a malformed event ({exc})") from None
    header = envelope.header
    if header.event_type != ALL_MEETING_ENDED:
        raise EventError(f"event_type {header.event_type!r} is not {ALL_MEETING_ENDED}")
    try:
        meeting = _ENDED.decode(envelope.event).meeting
    except msgspec.DecodeError as exc:
        raise EventError(f"a malformed {ALL_MEETING_ENDED} event ({exc})") from None
    start = _seconds("event.meeting.start_time", meeting.start_time)
    end = _seconds("event.meeting.end_time", meeting.end_time)
    if end < start:
        raise EventError(f"event.meeting.end_time {end} is before start_time {start}")
    if not meeting.meeting_no:
        raise EventError("event.meeting.meeting_no is empty")
    created = header.create_time
    return MeetingEnded(
        event_id=header.event_id,
        tenant_key=header.tenant_key,
        app_id=header.app_id,
        meeting_id=str(meeting.id),
        meeting_no=meeting.meeting_no,
        start_time=start,
        end_time=end,
        topic=meeting.topic,
        meeting_source=meeting.meeting_source,
        create_time_ms=int(created) if _DIGITS.fullmatch(str(created)) else None,
    )


def _seconds(field: str, value: str | int) -> int:
    text = str(value)
    if not _DIGITS.fullmatch(text):
        raise EventError(f"{field} {value!r} is not unix seconds")
    try:
        return check_unix_seconds(int(text))
    except ValueError as exc:
        raise EventError(f"{field} {value!r} {exc}") from None


def ended_envelope(ended: MeetingEnded, *, token: str, host_open_id: str | None = None) -> bytes:
    """The JSON the platform sends for ``ended`` (its times as strings, as it sends
    them), with ``token`` as the verification token: what the emulator pushes."""
    host = None if host_open_id is None else _User(_UserId(open_id=host_open_id), 1, 1)
    envelope = {
        "schema": "2.0",
        "header": {
            "event_id": ended.event_id,
            "event_type": ALL_MEETING_ENDED,
            "create_time": str(ended.create_time_ms or ended.end_time * 1000),
            "token": token,
            "app_id": ended.app_id,
            "tenant_key": ended.tenant_key,
        },
        "event": {
            "meeting": _Meeting(
                id=ended.meeting_id,
                meeting_no=ended.meeting_no,
                start_time=str(ended.start_time),
                end_time=str(ended.end_time),
                topic=ended.topic,
                meeting_source=ended.meeting_source,
                host_user=host,
                owner=host,
            ),
            "operator": host,
        },
    }
    return _ENCODER.encode(envelope)
