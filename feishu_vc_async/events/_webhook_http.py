"""The webhook receiver served over HTTP: an aiohttp handler and a raw ASGI 3 app.

Both refuse a body over the receiver's ``max_body`` before reading more than that: by
its Content-Length when it declares one, else as the bytes arrive (chunked). Neither
needs more than aiohttp (a dependency of the library); the ASGI app needs no framework
and mounts in one (``fastapi_app.mount("/feishu", receiver.asgi_app("/events"))``: see
``WebhookReceiver.asgi_app``; examples/fastapi_backend.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import StreamReader, web

from ._webhook_answer import Answering, WebhookAnswer, refusal

__all__ = ["ASGIApp", "Handler", "aiohttp_app", "aiohttp_handler", "asgi_app", "web"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]

_CHUNK = 64 * 1024


def _too_big(cap: int) -> WebhookAnswer:
    return refusal(413, f"the body is over max_body={cap} bytes")


def _declared_over(length: int | None, cap: int) -> bool:
    return length is not None and length > cap


def _response(answer: WebhookAnswer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, content_type="application/json")


def aiohttp_handler(receiver: Answering) -> Handler:
    """An aiohttp handler answering pushes with ``receiver`` (POST only)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _response(refusal(405, f"method {request.method} (pushes are POST)"))
        cap = receiver.max_body
        body = None
        if not _declared_over(request.content_length, cap):
            body = await _read_at_most(request.content, cap)
        if body is None:  # the rest is never read: the connection closes after the answer
            response = _response(_too_big(cap))
            response.force_close()
            return response
        return _response(await receiver.answer(request.headers, body))

    return handle


async def _read_at_most(stream: StreamReader, cap: int) -> bytes | None:
    """The whole body, or ``None`` once it is over ``cap`` bytes (no more is read)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(min(_CHUNK, cap + 1 - size)):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def aiohttp_app(receiver: Answering, path: str = "/") -> web.Application:
    """An aiohttp application answering pushes at ``path``."""
    app = web.Application()
    app.router.add_route("*", path, aiohttp_handler(receiver))
    return app


def _route(scope: MutableMapping[str, Any]) -> str:
    """The path within the app (less the ``root_path`` a framework mounted it at)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


async def _lifespan(
    receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send(send: Callable[[Message], Awaitable[None]], answer: WebhookAnswer) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    if answer.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _receive_at_most(
    receive: Callable[[], Awaitable[Message]], cap: int
) -> bytes | WebhookAnswer | None:
    """The whole body; a 413 once it is over ``cap``; ``None`` if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return _too_big(cap)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(headers: dict[str, str]) -> int | WebhookAnswer | None:
    text = headers.get("content-length")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        return refusal(400, "Content-Length is not a number")
    return int(text)


def asgi_app(receiver: Answering, path: str = "/") -> ASGIApp:
    """A raw ASGI 3 app answering pushes at ``path`` (POST only; 404 elsewhere)."""
    want = path.rstrip("/") or "/"

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":  # a websocket is refused by the server as it returns
            answer = await _http_answer(receiver, want, scope, receive)
            if answer is not None:  # None: the client left, nobody to answer
                await _send(send, answer)

    return app


async def _http_answer(
    receiver: Answering,
    want: str,
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
) -> WebhookAnswer | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    length = _content_length(headers)
    if isinstance(length, WebhookAnswer):
        return length
    if _route(scope) != want:
        return refusal(404, "not the webhook's path")
    if scope["method"] != "POST":
        return refusal(405, f"method {scope['method']} (pushes are POST)")
    if _declared_over(length, receiver.max_body):
        return _too_big(receiver.max_body)
    body = await _receive_at_most(receive, receiver.max_body)
    return await receiver.answer(headers, body) if isinstance(body, bytes) else body
