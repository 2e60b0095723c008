"""The webhook receiver: the platform's pushes judged and answered, framework-agnostic.

:meth:`WebhookReceiver.answer` takes a request's headers and raw body and returns the
answer; :mod:`._webhook_http` serves it under aiohttp or as a raw ASGI app. Answers:

* **200** ``{"challenge": ...}``: a URL verification whose token is the verification
  token (the platform does not sign these, encrypt key or not, so it is the one body
  taken unsigned; ``lark-oapi`` likewise checks no signature on it).
* **200** ``{"code": 0}``: an ``all_meeting_ended_v1`` event that ``on_ended`` took (it
  is where the caller durably queues the event: acknowledge first, work after, the
  platform waits 1-3 s); one whose ``event_id`` was taken before (a re-push, the
  platform's repeat) is not given to ``on_ended`` again; any other event type (or a
  schema 1.0 event, such as a store app's ``app_ticket``) goes to ``on_other`` when
  there is one, else is ignored, and is answered 200 all the same: an answer other than
  200 makes the platform push it again four times (after 5 s, 5 min, 1 h and 6 h) for
  nothing.
* **500**: ``on_ended`` (or ``on_other``) raised, so the event is not taken: the
  platform pushes it again.
* **401**: with an encrypt key, an event without the signature headers, a signature
  that does not match (checked on the raw bytes before anything is parsed), a
  timestamp more than ``max_age`` seconds from the clock (a replay); a token that is
  not the verification token (compared in constant time).
* **400**: a body that is not a JSON object, does not decrypt, is plaintext where an
  encrypt key is set (or encrypted where none is), or is not an event.
* **413**: a body over ``max_body`` bytes (the adapters stop reading at the cap).

Each refusal logs one line (``feishu_vc_async.events``, WARNING) with its status and
reason: never the key, the token, the body or the challenge.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

import msgspec

from .._validate import non_empty, positive_int, positive_seconds
from . import _webhook_http as http
from ._crypto import decrypt, require_cryptography, signature_matches
from ._ended import (
    ALL_MEETING_ENDED,
    EventError,
    EventHeader,
    MeetingEnded,
    UrlVerification,
    decode_event,
    meeting_ended,
)
from ._webhook_answer import WebhookAnswer, accepted, json_answer, log, refusal

__all__ = [
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookReceiver",
]

TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
SIGNATURE_HEADER = "X-Lark-Signature"
_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)


class _Encrypted(msgspec.Struct, frozen=True):
    encrypt: str | None = None


class _Schema1(msgspec.Struct, frozen=True):
    """A schema 1.0 event's top (``{"type": "event_callback", "token": ...}``)."""

    type: str
    token: str = ""


_OUTER = msgspec.json.Decoder(_Encrypted)
_SCHEMA1 = msgspec.json.Decoder(_Schema1)


class _Refusal(EventError):
    """A push refused with ``status``; ``reason`` is safe to log (no secret in it)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WebhookReceiver:
    """Receives the platform's event pushes; see the module docstring for the answers.

    ``verification_token`` (``None``: not checked) and ``encrypt_key`` (``None``: bodies
    are plaintext and unsigned) are the app's, from its event subscription page (an
    empty one is a ValueError: pass ``None`` to mean none).
    ``on_ended`` is awaited with each ``all_meeting_ended_v1`` event, once per
    ``event_id`` among the last ``seen`` taken; it should only queue the event durably
    (the platform waits 1-3 s) and raise if it could not. ``on_other``, if given, is
    awaited with the plaintext JSON of every other event that passed the checks, e.g. a
    store app's ``app_ticket`` (``on_other=lambda body: handle_app_ticket_event(body,
    tickets, app_id=APP_ID)``); if it raises, the answer is 500. ``max_body``: bytes
    read at most; ``max_age``: seconds a signed push's timestamp may be from ``clock()``.
    """

    def __init__(
        self,
        *,
        verification_token: str | None,
        encrypt_key: str | None,
        on_ended: Callable[[MeetingEnded], Awaitable[None]],
        on_other: Callable[[bytes], Awaitable[object]] | None = None,
        max_body: int = 1 << 20,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.time,
        seen: int = 10_000,
    ) -> None:
        if verification_token is not None:
            non_empty("verification_token", verification_token)
        if encrypt_key is not None:
            non_empty("encrypt_key", encrypt_key)
            require_cryptography()
        self._token = None if verification_token is None else verification_token.encode()
        self._key = encrypt_key
        self._on_ended, self._on_other = on_ended, on_other
        self.max_body = positive_int("max_body", max_body)
        self.max_age = positive_seconds("max_age", max_age)
        self._clock = clock
        self._seen_max = positive_int("seen", seen)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[None]] = {}

    def __repr__(self) -> str:  # the token and the key are secrets
        return f"WebhookReceiver(encrypted={self._key is not None}, max_body={self.max_body})"

    async def answer(self, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """The answer to one push: its headers (any case) and its raw body."""
        try:
            return await self._answer({k.lower(): v for k, v in headers.items()}, body)
        except _Refusal as refused:
            return refusal(refused.status, refused.reason)

    async def _answer(self, headers: dict[str, str], body: bytes) -> WebhookAnswer:
        if len(body) > self.max_body:
            raise _Refusal(413, f"the body is over max_body={self.max_body} bytes")
        signed = self._signed(headers, body)
        plaintext = self._plaintext(body)
        try:
            parsed = decode_event(plaintext)
        except EventError as exc:
            return await self._schema1(plaintext, signed, exc)
        if isinstance(parsed, UrlVerification):
            self._check_token(parsed.token, "token")
            return json_answer(200, {"challenge": parsed.challenge}, "URL verification")
        self._check_signed(signed)
        self._check_token(parsed.token, "header.token")
        if parsed.event_type != ALL_MEETING_ENDED:
            return await self._other(plaintext, f"an event of type {parsed.event_type}")
        return await self._ended(plaintext, parsed)

    def _signed(self, headers: dict[str, str], body: bytes) -> bool:
        """Whether the push is signed (checked: a bad or stale signature refuses it)."""
        if self._key is None:
            return False
        names = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
        timestamp, nonce, given = (headers.get(n.lower()) for n in names)
        if timestamp is None and nonce is None and given is None:
            return False  # only a URL verification may come so
        if not (timestamp and nonce and given):
            raise _Refusal(401, "the signature headers are incomplete")
        if not signature_matches(given, timestamp, nonce, self._key, body):
            raise _Refusal(401, f"{SIGNATURE_HEADER} does not match the body")
        if not _SECONDS.fullmatch(timestamp):
            raise _Refusal(401, f"{TIMESTAMP_HEADER} is not unix seconds")
        off = int(timestamp) - self._clock()
        if abs(off) > self.max_age:
            raise _Refusal(401, f"the push is {off:+.0f} s from now, over max_age (a replay?)")
        return True

    def _plaintext(self, body: bytes) -> bytes:
        try:
            encrypted = _OUTER.decode(body).encrypt
        except msgspec.DecodeError:
            raise _Refusal(400, "the body is not a JSON object") from None
        if encrypted is None:
            if self._key is not None:
                raise _Refusal(400, "a plaintext body, but an encrypt_key is set")
            return body
        if self._key is None:
            raise _Refusal(400, "an encrypted body, but no encrypt_key is set")
        try:
            return decrypt(self._key, encrypted)
        except EventError as exc:
            raise _Refusal(400, exc.reason) from None

    def _check_signed(self, signed: bool) -> None:
        if self._key is not None and not signed:
            raise _Refusal(401, f"an event without the {SIGNATURE_HEADER} headers")

    def _check_token(self, given: str, field: str) -> None:
        if self._token is not None and not hmac.compare_digest(given.encode(), self._token):
            raise _Refusal(401, f"{field} is not the verification token")

    async def _schema1(self, plaintext: bytes, signed: bool, error: EventError) -> WebhookAnswer:
        """A schema 1.0 event is another event (``app_ticket``); anything else is 400."""
        try:
            top = _SCHEMA1.decode(plaintext)
        except msgspec.DecodeError:
            raise _Refusal(400, error.reason) from None
        if top.type == "url_verification":
            raise _Refusal(400, error.reason)
        self._check_signed(signed)
        self._check_token(top.token, "token")
        return await self._other(plaintext, f"a schema 1.0 event of type {top.type}")

    async def _other(self, plaintext: bytes, what: str) -> WebhookAnswer:
        """Any event but a meeting's end: to ``on_other`` if given (500 if it raises, so
        the platform pushes it again), else ignored; answered 200 either way."""
        if self._on_other is None:
            log.debug("webhook: ignored %s", what)
            return accepted(f"ignored {what}")
        try:
            await self._on_other(plaintext)
        except Exception as exc:
            raise _Refusal(500, f"on_other raised {type(exc).__name__} for {what}") from None
        return accepted(f"{what} given to on_other")

    async def _ended(self, plaintext: bytes, header: EventHeader) -> WebhookAnswer:
        try:
            event = meeting_ended(plaintext)
        except EventError as exc:
            raise _Refusal(400, exc.reason) from None
        event_id = header.event_id
        while (pending := self._inflight.get(event_id)) is not None:
            await asyncio.shield(pending)  # the same event, pushed again meanwhile
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            log.debug("webhook: event %s again, taken before", event_id)
            return accepted(f"event {event_id} taken before")
        done = asyncio.get_running_loop().create_future()
        self._inflight[event_id] = done
        try:
            await self._on_ended(event)
        except Exception as exc:
            failed = type(exc).__name__
            raise _Refusal(500, f"on_ended raised {failed} for event {event_id}") from None
        finally:
            del self._inflight[event_id]
            done.set_result(None)
        self._seen[event_id] = None
        if len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)
        return accepted(f"event {event_id} taken")

    # --- serving --------------------------------------------------------------------

    def aiohttp_handler(self) -> http.Handler:
        """An aiohttp handler (POST) answering pushes: add it to your own app's routes."""
        return http.aiohttp_handler(self)

    def aiohttp_app(self, path: str = "/") -> http.web.Application:
        """An aiohttp application answering pushes at ``path``."""
        return http.aiohttp_app(self, path)

    def asgi_app(self, path: str = "/") -> http.ASGIApp:
        """A raw ASGI 3 app answering pushes at ``path`` (relative to where it is mounted:
        ``fastapi_app.mount("/feishu", receiver.asgi_app("/events"))`` answers
        ``/feishu/events``; a Starlette Mount at ``/feishu/events`` itself answers that
        bare path with a 307 to ``/feishu/events/``, which the platform does not follow)."""
        return http.asgi_app(self, path)
