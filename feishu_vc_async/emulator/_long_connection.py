"""The long connection's server side: ``POST /callback/ws/endpoint`` and the WebSocket
it hands out (``../shared/spec/events.md`` section 3), each open connection one
:class:`~._events.EventSink` of the router.

The endpoint checks ``AppID``/``AppSecret`` as the token endpoint does (any custom app;
a wrong one answers code 514, HTTP 200, as the platform does), refuses an app's 51st
open connection (1000040350) and answers ``ws://HOST:PORT/ws/v2?device_id=&service_id=
&ticket=`` (the host the request named; a ticket good for one WebSocket opening) with
the ``ClientConfig`` of :class:`EventDelivery` (``config``; a test may change it: the
next pong carries it).

A connection sends each event as ``type=event`` data frames (``split_parts`` of them,
joined by a fresh ``message_id`` per delivery), answers each ping with a pong carrying
the config, records each ack in ``acks`` and drops (the TCP connection aborted, no
close frame) after every ``drop_every``-th event frame the emulator sent. Only the
default app's connections take events.

Re-delivery: an event sent on a connection that closes (dropped, or closed by the
client) before its ack goes back to the router at once, to another open connection or
held until one opens (the platform re-sends an unacked event; at once rather than on its
retry schedule, so a test waits on nothing). An ack of 500 counts as an answer: the
event is not sent again. An event whose connection stays open unacked waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any, NamedTuple

from aiohttp import web

from ..events._frames import (
    CONTROL,
    DATA,
    MAX_FRAME_BYTES,
    Frame,
    FrameError,
    Header,
    decode_frame,
    encode_frame,
)
from ..events._ws_endpoint import AUTH_FAILED, ENDPOINT_PATH, TOO_MANY_CONNECTIONS
from ..models import JSON_ENCODER
from ._answering import Answering, json_response
from ._events import EventRouter
from ._options import EventDelivery
from ._tokens import CredentialError, TokenStore

__all__ = ["MAX_CONNECTIONS", "WS_PATH", "LongConnections", "WsAck"]

MAX_CONNECTIONS = 50
WS_PATH = "/ws/v2"


class WsAck(NamedTuple):
    """One ack a client sent: the message it answers, that message's event (``""`` if the
    message is unknown or already answered), its code and ``biz_rt`` (ms, if sent)."""

    message_id: str
    event_id: str
    code: int | None
    biz_rt: int | None


def _event_id(envelope: bytes) -> str:
    try:
        return str(json.loads(envelope)["header"]["event_id"])
    except (ValueError, KeyError, TypeError):
        return ""


def _split(data: bytes, parts: int) -> list[bytes]:
    parts = max(1, min(parts, len(data)))
    size, extra = divmod(len(data), parts)
    out, at = [], 0
    for n in range(parts):
        end = at + size + (1 if n < extra else 0)
        out.append(data[at:end])
        at = end
    return out


class _Connection:
    """One open WebSocket: an event sink of the router."""

    def __init__(self, owner: LongConnections, ws: web.WebSocketResponse, request: web.Request):
        self._owner, self._ws, self._request = owner, ws, request
        self.closed = False
        self.unacked: dict[str, bytes] = {}

    async def deliver(self, envelope: bytes) -> None:
        if self.closed:  # the router chose it as it closed: another one takes it
            await self._owner.router.send(envelope)
            return
        message_id = self._owner.next_message_id()
        self.unacked[message_id] = envelope
        chunks = _split(envelope, self._owner.options.split_parts)
        trace = secrets.token_hex(8)
        for seq, chunk in enumerate(chunks):
            headers = (
                Header("type", "event"),
                Header("message_id", message_id),
                Header("sum", str(len(chunks))),
                Header("seq", str(seq)),
                Header("trace_id", trace),
            )
            frame = Frame(seq_id=seq, service=1, method=DATA, headers=headers, payload=chunk)
            if self.closed or not await self._send(encode_frame(frame)):
                return  # unacked: re-delivered as the connection closes
            if self._owner.frame_sent():
                self.drop()
                return

    async def _send(self, data: bytes) -> bool:
        try:
            await self._ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def drop(self) -> None:
        """Abort the TCP connection: no close frame, as a network failure looks."""
        self.detach()
        self._owner.drops += 1
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def detach(self) -> None:
        self.closed = True
        self._owner.router.disconnected(self)

    async def on_frame(self, data: bytes) -> None:
        try:
            frame = decode_frame(data)
        except FrameError:
            return
        if frame.method == CONTROL and frame.header("type") == "ping":
            self._owner.pings += 1
            pong = Frame(
                service=frame.service,
                method=CONTROL,
                headers=(Header("type", "pong"),),
                payload=JSON_ENCODER.encode(self._owner.config),
            )
            await self._send(encode_frame(pong))
        elif frame.method == DATA:
            self._ack(frame)

    def _ack(self, frame: Frame) -> None:
        message_id = frame.header("message_id") or ""
        envelope = self.unacked.pop(message_id, None)
        code: int | None = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            code = int(json.loads(frame.payload or b"").get("code"))
        rt = frame.header("biz_rt")
        biz_rt = int(rt) if rt is not None and rt.isascii() and rt.isdigit() else None
        event_id = "" if envelope is None else _event_id(envelope)
        self._owner.acks.append(WsAck(message_id, event_id, code, biz_rt))

    async def close(self) -> None:
        self.detach()
        await self._ws.close(code=1001, message=b"server shutting down")


class LongConnections:
    """The endpoint, the WebSocket route, the open connections and what they record:
    ``acks`` (:class:`WsAck`), ``pings``, ``drops``."""

    def __init__(
        self,
        answering: Answering,
        tokens: TokenStore,
        router: EventRouter,
        options: EventDelivery,
        app_id: str,
    ) -> None:
        self._answering, self._tokens, self.router = answering, tokens, router
        self.options, self._app_id = options, app_id
        self.config: dict[str, float | int] = {
            "PingInterval": options.ping_interval,
            "ReconnectCount": -1,
            "ReconnectInterval": options.reconnect_interval,
            "ReconnectNonce": options.reconnect_nonce,
        }
        self.acks: list[WsAck] = []
        self.pings = self.drops = 0
        self._frames = self._messages = self._services = 0
        self._tickets: dict[str, str] = {}  # ticket -> app_id, each good for one opening
        self._open: dict[_Connection, str] = {}  # connection -> app_id
        self._closing = False

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(ENDPOINT_PATH, self._endpoint)
        app.router.add_get(WS_PATH, self._socket)

    def next_message_id(self) -> str:
        self._messages += 1
        return f"msg_{self._messages:08d}"

    def frame_sent(self) -> bool:
        """Count an event frame sent; whether its connection drops now."""
        self._frames += 1
        every = self.options.drop_every
        return every > 0 and self._frames % every == 0

    def open_count(self, app_id: str) -> int:
        return sum(1 for owner in self._open.values() if owner == app_id)

    async def _endpoint(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        sent = body if isinstance(body, dict) else {}
        creds = {"app_id": sent.get("AppID"), "app_secret": sent.get("AppSecret")}
        try:
            app_id = self._tokens.authenticate(creds, store=False).app_id
        except CredentialError:
            return self._answer(request, at, AUTH_FAILED, "auth failed", None)
        if self.open_count(app_id) >= MAX_CONNECTIONS:
            return self._answer(request, at, TOO_MANY_CONNECTIONS, "too many connections", app_id)
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = app_id
        self._services += 1
        device = secrets.token_hex(8)
        url = f"ws://{request.host}{WS_PATH}?device_id={device}&service_id={self._services}&ticket={ticket}"
        data = {"URL": url, "ClientConfig": self.config}
        return self._answer(request, at, 0, "ok", app_id, data)

    def _answer(
        self, request: web.Request, at: Any, code: int, msg: str, app_id: str | None,
        data: dict[str, Any] | None = None,
    ) -> web.Response:  # fmt: skip
        self._answering.record(request, at, 200, code, app_id=app_id, token_request=True)
        body: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            body["data"] = data
        return json_response(JSON_ENCODER.encode(body), at.log_id)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        app_id = self._tickets.pop(request.query.get("ticket", ""), None)
        if app_id is None or self._closing or self.open_count(app_id) >= MAX_CONNECTIONS:
            return web.Response(status=403, text="forbidden")
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, timeout=2.0)
        await ws.prepare(request)
        conn = _Connection(self, ws, request)
        self._open[conn] = app_id
        try:
            if app_id == self._app_id:
                await self.router.connected(conn)
            async for message in ws:
                if message.type == web.WSMsgType.BINARY:
                    await conn.on_frame(message.data)
                elif message.type == web.WSMsgType.ERROR:
                    break
        finally:
            del self._open[conn]
            await self._closed(conn)
        return ws

    async def _closed(self, conn: _Connection) -> None:
        conn.detach()
        pending, conn.unacked = list(conn.unacked.values()), {}
        if self._closing:  # the router is closing too: kept as held
            self.router.held.extend(pending)
            return
        for envelope in pending:
            await self.router.send(envelope)

    async def close(self) -> None:
        """Close every open connection (a close frame, going away)."""
        self._closing = True
        await asyncio.gather(*(c.close() for c in list(self._open)), return_exceptions=True)
