"""The long connection (``../shared/spec/events.md`` section 3): ended meetings told over
a WebSocket the app opens, a plain coroutine in the caller's loop.

``await LongConnection(...).run()`` asks the endpoint where to connect, connects
(aiohttp's WebSocket client), pings on the server's ``PingInterval`` (a pong may carry a
new ``ClientConfig``, taken at once), joins a large event's parts, calls ``on_ended``
for each ``all_meeting_ended_v1`` and acks every event frame (``{"code":200}``, 500 when
``on_ended`` raised; other event types are acked 200 unread; a body that is not an
event is logged and acked 200: sending it again would not mend it). Events are handled
side by side, at most ``concurrency`` at once (each acked as its ``on_ended`` returns; a
durable ``on_ended`` such as ``EventSync.put`` then writes them in groups), the next
frame read only once one is free. A peer that stops answering is found by
aiohttp's heartbeat (a WebSocket ping every ``HEARTBEAT`` s, no pong in half of it: a
drop); the platform's pongs carry no such promise. Delivery is at least once: an event whose ack was
lost with its connection comes again (the same ``event_id``); dedupe downstream.

After a drop it reconnects on the server's schedule: a random 0..``ReconnectNonce`` s,
then every ``ReconnectInterval`` s, ``ReconnectCount`` times (-1: forever), then
:class:`LongConnectionError`. Endpoint errors: before the first connection has opened,
any failure (a refusal such as 514 auth failed or 1000040350 too many connections, an
unreachable endpoint) raises :class:`LongConnectionError` at once: a listener
misconfigured at start should fail loudly, not loop. Once it has connected, a refusal
that cannot pass (514, an unknown code: ``permanent``) still raises at once (the secret
was reset: retrying would hammer the endpoint for ever); the rest are retried.

Cancelling ``run()`` closes the WebSocket (a close frame), the session if it made it,
and leaves no task behind; an event whose ``on_ended`` was cancelled is not acked (the
platform sends it again). The app secret is in no log, repr or exception; the
connection URL's query (its tickets) neither.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import msgspec

from .._constants import LOGGER_NAME
from .._validate import base_url as check_base_url
from .._validate import positive_int
from ._ended import ALL_MEETING_ENDED, EventError, EventHeader, MeetingEnded, decode_event
from ._ended import meeting_ended as read_ended
from ._frames import (
    CONTROL,
    DATA,
    MAX_FRAME_BYTES,
    Frame,
    FrameError,
    Header,
    decode_frame,
    encode_frame,
)
from ._parts import PartJoiner
from ._ws_endpoint import ClientConfig, Endpoint, LongConnectionError, fetch_endpoint, shown_url

__all__ = ["LongConnection"]

log = logging.getLogger(LOGGER_NAME + ".events")

_ACK_OK: Final = b'{"code":200}'
_ACK_FAILED: Final = b'{"code":500}'
_OPEN_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)


class LongConnection:
    """One listener of the app's long connection; see the module docstring.

    ``session``: an aiohttp session to use (left open); without one, ``run()`` makes its
    own and closes it. ``rng``: the reconnect jitter's source. ``parts_timeout``: how
    long a large event's parts are waited for.
    """

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        app_secret: str,
        on_ended: Callable[[MeetingEnded], Awaitable[None]],
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        parts_timeout: float = 10.0,
        concurrency: int = 64,
    ) -> None:
        if not app_id or not app_secret:
            raise ValueError("app_id and app_secret are required")
        self._base_url = check_base_url(base_url)
        self._app_id, self._app_secret = app_id, app_secret
        self._on_ended = on_ended
        self._session = session
        self._rng = rng or random.Random()
        self._parts = PartJoiner(timeout=parts_timeout)
        self._concurrency = positive_int("concurrency", concurrency)
        self._config = ClientConfig()
        self._send_lock: asyncio.Lock | None = None  # made in run(): in its loop
        self._running = False
        self.connects = 0  # how many times the WebSocket opened
        self.acked = 0  # event frames acknowledged

    def __repr__(self) -> str:
        return f"LongConnection(base_url={self._base_url!r}, app_id={self._app_id!r})"

    @property
    def client_config(self) -> ClientConfig:
        """The schedule in force: the endpoint's, as the last pong updated it."""
        return self._config

    async def run(self) -> None:
        """Listen until cancelled (or :class:`LongConnectionError`, see the module)."""
        if self._running:
            raise RuntimeError("this LongConnection is already running")
        self._running = True
        self._send_lock = asyncio.Lock()
        owned = self._session is None
        session = self._session or aiohttp.ClientSession()
        try:
            await self._connect_and_serve(session, first=True)
            while True:
                await self._reconnect(session)
        finally:
            self._running = False
            if owned:
                await session.close()

    async def _connect_and_serve(self, session: aiohttp.ClientSession, *, first: bool) -> None:
        """One connection from endpoint to drop; raises what opening it raised."""
        endpoint = await fetch_endpoint(
            session, self._base_url, self._app_id, self._app_secret, config=self._config
        )
        self._config = endpoint.config
        try:
            ws = await session.ws_connect(
                endpoint.url,
                max_msg_size=MAX_FRAME_BYTES,
                autoping=True,
                heartbeat=HEARTBEAT,
                timeout=_WS_TIMEOUT,
            )
        except _OPEN_ERRORS as exc:
            raise LongConnectionError(
                f"the WebSocket at {shown_url(endpoint.url)} did not open ({type(exc).__name__})"
            ) from None
        async with ws:
            self.connects += 1
            log.info(
                "long connection open at %s%s", shown_url(endpoint.url), "" if first else " again"
            )
            await self._serve(ws, endpoint)
        log.info("long connection to %s dropped", shown_url(endpoint.url))

    async def _reconnect(self, session: aiohttp.ClientSession) -> None:
        """After a drop: wait a random 0..nonce, then try every interval, count times."""
        await asyncio.sleep(self._rng.uniform(0.0, self._config.reconnect_nonce))
        tries = 0
        while self._config.reconnect_count < 0 or tries < self._config.reconnect_count:
            tries += 1
            try:
                await self._connect_and_serve(session, first=False)
                return
            except LongConnectionError as exc:
                if exc.permanent:
                    raise
                log.warning("long connection: reconnect %d failed: %s", tries, exc)
            await asyncio.sleep(self._config.reconnect_interval)
        raise LongConnectionError(
            f"the long connection did not reopen in {tries} tries (ReconnectCount)"
        )

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, endpoint: Endpoint) -> None:
        self._parts.clear()  # a message's parts all come on one connection
        loop = asyncio.get_running_loop()
        pinger = loop.create_task(self._ping(ws, endpoint.service_id))
        free = asyncio.Semaphore(self._concurrency)
        handling: set[asyncio.Task[None]] = set()
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.BINARY:
                    await free.acquire()
                    task = loop.create_task(self._on_frame(ws, message.data))
                    handling.add(task)
                    task.add_done_callback(handling.discard)
                    task.add_done_callback(lambda _: free.release())
                elif message.type in _ENDS:
                    return
        except asyncio.CancelledError:
            for task in handling:
                task.cancel()
            raise
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            # A drop lets the events in hand finish (their acks are lost: they come
            # again); a cancelled run cancels them (not acked: they come again).
            await asyncio.gather(*handling, return_exceptions=True)

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, service: int) -> None:
        ping = encode_frame(Frame(service=service, method=CONTROL, headers=_PING_HEADERS))
        while not ws.closed:
            if not await self._send(ws, ping):
                return
            await asyncio.sleep(self._config.ping_interval)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, data: bytes) -> bool:
        assert self._send_lock is not None  # run() made it
        async with self._send_lock:
            try:
                await ws.send_bytes(data)
            except (ConnectionError, RuntimeError):  # closing: the receive loop ends it
                return False
            return True

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, data: bytes) -> None:
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            log.warning("long connection: a frame that is not pbbp2 ignored (%s)", exc.reason)
            return
        kind = frame.header("type")
        if frame.method == CONTROL:
            if kind == "pong" and frame.payload:
                self._take_config(frame.payload)
            return
        if frame.method != DATA:
            return
        payload = self._joined(frame)
        if payload is None:
            return
        start = time.monotonic()
        ok = await self._handle(payload) if kind == "event" else True
        took = round((time.monotonic() - start) * 1000)
        ack = msgspec.structs.replace(
            frame,
            payload=_ACK_OK if ok else _ACK_FAILED,
            headers=frame.with_header("biz_rt", str(took)),
        )
        if await self._send(ws, encode_frame(ack)):
            self.acked += 1

    def _joined(self, frame: Frame) -> bytes | None:
        total, seq = frame.header("sum") or "1", frame.header("seq") or "0"
        if not (total.isascii() and total.isdigit() and seq.isascii() and seq.isdigit()):
            log.warning(
                "long connection: a data frame with sum=%.20r seq=%.20r ignored", total, seq
            )
            return None
        if int(total) <= 1:
            return frame.payload or b""
        message_id = frame.header("message_id") or ""
        return self._parts.add(message_id, int(total), int(seq), frame.payload or b"")

    def _take_config(self, payload: bytes) -> None:
        try:
            raw = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return
        self._config = self._config.updated(raw)

    async def _handle(self, payload: bytes) -> bool:
        """Whether the event was handled (False: ``on_ended`` raised)."""
        try:
            header = decode_event(payload)
            if not isinstance(header, EventHeader) or header.event_type != ALL_MEETING_ENDED:
                return True
            ended = read_ended(payload)
        except EventError as exc:
            log.warning("long connection: an event not read, acked anyway: %s", exc.reason)
            return True
        try:
            await self._on_ended(ended)
        except Exception:
            log.exception("long connection: on_ended failed for event %s", ended.event_id)
            return False
        return True


# A WebSocket ping (RFC 6455: every server answers one) every HEARTBEAT s; no pong
# within half of it: the peer is dead, the connection dropped.
HEARTBEAT = 30.0
_WS_TIMEOUT: Final = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)
_PING_HEADERS: Final = (Header("type", "ping"),)
_ENDS: Final = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.ERROR,
)
