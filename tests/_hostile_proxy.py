"""A proxy in front of the emulator that answers badly where a test says so.

Every request is passed to the emulator and its answer passed back, except for the
misbehaviours a test switches on (``proxy.hostile[meeting_no] = "endless"``, say):

* ``"endless"``: a chunked 200 whose body never ends (until the client hangs up);
* ``"deep"``: a JSON answer nested 100,000 deep (1,000 already overflows a
  default recursion limit; a test process may have raised it);
* ``"new_token"``: the emulator's first page again and again, each with a fresh,
  never-repeating page token and ``has_more`` (a server that pages forever);
* ``"loop"``: the emulator's first page, each time handing out the same token;

and for the listing and the host: ``proxy.listing_fails_after`` fails meeting_list
(HTTP 500, 121001) for every page after that many; ``proxy.wrong_base`` answers every
path with an nginx-like 404 text page, as a host without the API under that path does.
``proxy.bytes_sent`` counts what an endless body pushed. Loopback only.
"""

from __future__ import annotations

import asyncio
import itertools
from types import TracebackType
from typing import Literal

import aiohttp
import msgspec
from aiohttp import web

from feishu_vc_async._constants import MEETING_LIST_PATH, PARTICIPANT_LIST_PATH

__all__ = ["HostileProxy"]

Hostility = Literal["endless", "deep", "new_token", "loop"]
_CHUNK = b" " * 65536
# Deeper than any recursion limit: the 1,000 already overflows Python's default,
# but a test process may run with a raised one (tests/_import_graph.py raises it).
_DEPTH = 100_000
_NOT_FOUND = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not "
    b"Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_JSON = {"Content-Type": "application/json; charset=utf-8"}


class HostileProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.hostile: dict[str, Hostility] = {}
        self.listing_fails_after: int | None = None
        self.wrong_base = False
        self.bytes_sent = 0
        self._listing_pages = 0
        self._tokens = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(
        self, request: web.Request, *, first_page: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        """The emulator's answer (``first_page``: asked without the made-up page token)."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        params = {k: v for k, v in request.query.items() if not (first_page and k == "page_token")}
        async with self._session.request(
            request.method,
            self.upstream + request.path,
            params=params,
            data=await request.read(),
            headers=headers,
        ) as resp:
            kept = {k: v for k, v in resp.headers.items() if k.lower() in ("x-tt-logid",)}
            return resp.status, {**_JSON, **kept}, await resp.read()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.wrong_base:
            return web.Response(status=404, body=_NOT_FOUND, content_type="text/html")
        if request.path == MEETING_LIST_PATH and self.listing_fails_after is not None:
            self._listing_pages += 1
            if self._listing_pages > self.listing_fails_after:
                body = msgspec.json.encode({"code": 121001, "msg": "internal error"})
                return web.Response(status=500, body=body, headers=_JSON)
        hostility = None
        if request.path == PARTICIPANT_LIST_PATH:
            hostility = self.hostile.get(request.query.get("meeting_no", ""))
        if hostility == "endless":
            return await self._endless(request)
        if hostility == "deep":
            # Deep in a field no answer has: read past, which recurses, not refused at once.
            deep = b'{"code":0,"msg":"success","extra":' + b"[" * _DEPTH + b"]" * _DEPTH + b"}"
            return web.Response(body=deep, headers=_JSON)
        tokens_made_up = hostility in ("new_token", "loop")
        status, headers, body = await self._forward(request, first_page=tokens_made_up)
        if tokens_made_up and status == 200:
            answer = msgspec.json.decode(body)
            token = f"fresh-{next(self._tokens)}" if hostility == "new_token" else "again"
            answer["data"]["page_token"] = token
            answer["data"]["has_more"] = True
            body = msgspec.json.encode(answer)
        return web.Response(status=status, body=body, headers=headers)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=_JSON)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"code":0,"msg":"success","data":{"participants":[')
        try:
            while True:  # until the client hangs up
                await response.write(_CHUNK)
                self.bytes_sent += len(_CHUNK)
                await asyncio.sleep(0)
        except ConnectionError:  # aiohttp says "Connection lost"
            return response

    async def __aenter__(self) -> HostileProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
        assert self._session is not None
        await self._runner.cleanup()
        await self._session.close()
