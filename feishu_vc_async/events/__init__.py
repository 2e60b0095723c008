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
from ._frames import Frame, FrameError, Header, decode_frame, encode_frame

__all__ = [
    "ALL_MEETING_ENDED",
    "EventError",
    "EventHeader",
    "Frame",
    "FrameError",
    "Header",
    "MeetingEnded",
    "UrlVerification",
    "decode_event",
    "decode_frame",
    "encode_frame",
    "ended_envelope",
    "meeting_ended",
]
