"""The platform's events: meetings told as they end (webhook and long connection)."""

from ._ended import (
    ALL_MEETING_ENDED,
    EventError,
    EventHeader,
    MeetingEnded,
    UrlVerification,
    decode_event,
    ended_envelope,
    meeting_ended,
)

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
