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
from ._webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookReceiver
from ._webhook_answer import WebhookAnswer

__all__ = [
    "ALL_MEETING_ENDED",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EventError",
    "EventHeader",
    "MeetingEnded",
    "UrlVerification",
    "WebhookAnswer",
    "WebhookReceiver",
    "decode_event",
    "decrypt",
    "encrypt",
    "ended_envelope",
    "meeting_ended",
    "signature",
]
