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
from ._long_connection import LongConnection
from ._ws_endpoint import ClientConfig, LongConnectionError

__all__ = [
    "ALL_MEETING_ENDED",
    "ClientConfig",
    "EventError",
    "EventHeader",
    "Frame",
    "FrameError",
    "Header",
    "LongConnection",
    "LongConnectionError",
    "MeetingEnded",
    "UrlVerification",
    "decode_event",
    "decode_frame",
    "encode_frame",
    "ended_envelope",
    "meeting_ended",
]
