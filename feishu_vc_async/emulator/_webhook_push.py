"""The emulator's webhook: events POSTed to ``EventDelivery.webhook_url`` as the
platform does, and the URL verification it sends when a request URL is saved.

With an ``encrypt_key`` each body is ``{"encrypt": ...}`` (a fresh IV each push) and
signed with the three ``X-Lark-*`` headers, the timestamp read from the emulator's wall
clock; without one it is the plaintext envelope, unsigned. An answer other than 200, a
connection error or no answer within :data:`ANSWER_WITHIN` seconds is pushed again
after each of ``repush_after`` in turn, then given up. Every attempt is recorded
(:class:`WebhookPush`). The URL verification is never signed (the platform does not
sign it) but is encrypted when there is a key.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import msgspec

from .._constants import LOGGER_NAME
from .._validate import non_negative_seconds
from ..events import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventHeader,
    decode_event,
    encrypt,
    signature,
)
from ..events._crypto import require_cryptography
from ._oauth import LOOPBACK_HOSTS
from ._options import EventDelivery

__all__ = ["ANSWER_WITHIN", "WebhookPush", "WebhookPusher", "check_webhook_url", "verify_webhook"]

log = logging.getLogger(LOGGER_NAME + ".emulator")

# The platform waits 1-3 s for an answer before it counts the push failed.
ANSWER_WITHIN = 3.0
_TIMEOUT = aiohttp.ClientTimeout(total=ANSWER_WITHIN)
_ANSWER_READ = 64 * 1024  # of an answer, at most: a receiver that never ends must not grow us
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class WebhookPush:
    """One push of one event: its ``attempt`` (1 the first push, 2 the first re-push,
    ...), and the HTTP ``status`` answered or the ``error`` (an exception's name)."""

    event_id: str
    attempt: int
    status: int | None
    error: str | None = None


def check_webhook_url(url: str) -> str:
    """``url`` if it is an http URL on 127.0.0.1 (loopback), else ValueError: the
    emulator sends traffic nowhere else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"EventDelivery.webhook_url={url!r}: must be an http URL on 127.0.0.1")
    return url


class WebhookPusher:
    """An ``EventSink`` that pushes each event to the webhook URL (re-pushing on
    failure); ``pushes`` records every attempt."""

    def __init__(self, options: EventDelivery, *, clock: Callable[[], float]) -> None:
        if options.webhook_url is None:
            raise ValueError("EventDelivery.webhook_url: a pusher needs one")
        self.url = check_webhook_url(options.webhook_url)
        self._delays = tuple(
            non_negative_seconds("EventDelivery.repush_after", d) for d in options.repush_after
        )
        if options.encrypt_key is not None:
            require_cryptography()
        self._key = options.encrypt_key
        self._clock = clock
        self.pushes: list[WebhookPush] = []
        self._session: aiohttp.ClientSession | None = None

    def _signed(self, envelope: bytes) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self._key is None:
            return envelope, headers
        body = _ENCODER.encode({"encrypt": encrypt(self._key, envelope)})
        timestamp, nonce = str(int(self._clock())), secrets.token_hex(8)
        headers[TIMESTAMP_HEADER] = timestamp
        headers[NONCE_HEADER] = nonce
        headers[SIGNATURE_HEADER] = signature(timestamp, nonce, self._key, body)
        return body, headers

    async def deliver(self, envelope: bytes) -> None:
        """Push ``envelope`` until it is answered 200 or every re-push has failed."""
        header = decode_event(envelope)
        event_id = header.event_id if isinstance(header, EventHeader) else ""
        for attempt, delay in enumerate((0.0, *self._delays), 1):
            if delay:
                await asyncio.sleep(delay)
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
            status, error = await _post(self._session, self.url, *self._signed(envelope))
            self.pushes.append(WebhookPush(event_id, attempt, status, error))
            if status == 200:
                return
        log.warning("webhook push of event %s: given up after %d attempts", event_id, attempt)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """(status, None) as answered, or (None, the error's name)."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.content.read(_ANSWER_READ)
            return response.status, None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, type(exc).__name__


async def verify_webhook(url: str, *, token: str, encrypt_key: str | None) -> bool:
    """Send ``url`` the URL verification the platform sends when a request URL is saved
    (a fresh challenge, ``token``; encrypted with ``encrypt_key`` if any, unsigned) and
    say whether it was answered 200 with the same challenge."""
    check_webhook_url(url)
    challenge = secrets.token_urlsafe(16)
    check = {"challenge": challenge, "token": token, "type": "url_verification"}
    body = _ENCODER.encode(check)
    if encrypt_key is not None:
        body = _ENCODER.encode({"encrypt": encrypt(encrypt_key, body)})
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0 + ANSWER_WITHIN)) as s,
            s.post(url, data=body, headers=headers) as response,
        ):
            answer = await response.content.read(_ANSWER_READ)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("URL verification of %s failed: %s", url, type(exc).__name__)
        return False
    try:
        echoed = msgspec.json.decode(answer, type=dict[str, object]).get("challenge")
    except msgspec.DecodeError:
        echoed = None
    return status == 200 and echoed == challenge
