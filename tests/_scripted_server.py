"""A tiny aiohttp.web server on 127.0.0.1 whose answers a test scripts exactly.

Each path has a queue of :class:`Reply` (status, headers, body, delay, dropped
connection) or callables ``(request) -> Reply``; an unscripted request fails the test
(it answers 599 and is recorded in ``unexpected``). ``serve_tokens`` installs a tenant
token endpoint that counts its calls and hands out ``t-1``, ``t-2``, ...
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web

from feishu_vc_async._constants import PARTICIPANT_LIST_PATH, TENANT_TOKEN_PATH

LIST = PARTICIPANT_LIST_PATH
TOKEN = TENANT_TOKEN_PATH


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without an answer
    hang: bool = False  # never answer: the handler waits until the client or server quits

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body.encode() if isinstance(self.body, str) else self.body
        return msgspec.json.encode(self.json if self.json is not None else {})


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


Responder = Reply | Callable[[web.Request], Reply]


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``condition()`` holds (a request arrived, say): polls, fails after
    ``timeout`` seconds rather than hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


def page(
    participants: list[dict[str, Any]] | None = None,
    page_token: str | None = None,
    has_more: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {"participants": participants or [], "has_more": has_more}
    if page_token is not None:
        data["page_token"] = page_token
    return {"code": 0, "msg": "success", "data": data}


def error(code: int, msg: str = "error", log_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if log_id is not None:
        body["error"] = {"log_id": log_id}
    return body


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[str, deque[Responder]] = {}
        self.defaults: dict[str, Responder] = {}
        self.requests: list[Recorded] = []
        self.unexpected: list[Recorded] = []
        self.token_requests = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Responder) -> None:
        """Queue answers for ``path``, used one per request in order."""
        self.scripts.setdefault(path, deque()).extend(replies)

    def always(self, path: str, reply: Responder) -> None:
        """Answer ``path`` with ``reply`` whenever its queue is empty."""
        self.defaults[path] = reply

    def serve_tokens(
        self,
        app_id: str = "cli_test",
        app_secret: str = "s3cret-app-secret",
        expire: int = 7200,
        delay: float = 0.0,
        hang_first: bool = False,
    ) -> None:
        """``hang_first``: the first token request is never answered (a fetch that is
        surely still in flight), the others at once (after ``delay``)."""
        counter = itertools.count(1)

        def answer(request: web.Request) -> Reply:
            sent = msgspec.json.decode(self.requests[-1].body) if self.requests[-1].body else {}
            if sent.get("app_id") != app_id or sent.get("app_secret") != app_secret:
                return Reply(json={"code": 10014, "msg": "app secret invalid"})
            self.token_requests += 1
            token = f"t-{next(counter)}"
            return Reply(
                json={"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire},
                delay=delay,
                hang=hang_first and self.token_requests == 1,
            )

        self.always(TOKEN, answer)

    def list_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == LIST]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), body
        )
        self.requests.append(record)
        queue = self.scripts.get(request.path)
        responder = queue.popleft() if queue else self.defaults.get(request.path)
        if responder is None:
            self.unexpected.append(record)
            return web.Response(status=599, text="unscripted request")
        reply = responder(request) if callable(responder) else responder
        if reply.hang:
            await asyncio.Event().wait()  # cancelled when the connection or server closes
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # aiohttp treats this as a closed connection
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        return web.Response(status=reply.status, body=reply.payload(), headers=headers)

    async def __aenter__(self) -> ScriptedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
