"""The platform's events: meetings told as they end (webhook and long connection)."""

from ._crypto import decrypt, encrypt, signature
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
from ._stream import EndedMeetings
from ._webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookReceiver
from ._webhook_answer import WebhookAnswer
from ._ws_endpoint import ClientConfig, LongConnectionError

__all__ = [
    "ALL_MEETING_ENDED",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ClientConfig",
    "EndedMeetings",
    "EventError",
    "EventHeader",
    "Frame",
    "FrameError",
    "Header",
    "LongConnection",
    "LongConnectionError",
    "MeetingEnded",
    "UrlVerification",
    "WebhookAnswer",
    "WebhookReceiver",
    "decode_event",
    "decode_frame",
    "decrypt",
    "encode_frame",
    "encrypt",
    "ended_envelope",
    "meeting_ended",
    "signature",
]
