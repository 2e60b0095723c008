"""A tiny HTTP listener on 127.0.0.1 that records what reaches it.

It plays the other side of the emulator's outgoing traffic: the CLI's OAuth redirect
listener (a browser GET with ``code`` and ``state``) and a store app's event endpoint
(the app_ticket push, a JSON POST).

::

    async with Loopback() as listener:
        listener.url                       # http://127.0.0.1:<port>/callback
        hit = await listener.next()        # method, query, JSON body
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["Hit", "Loopback"]


@dataclass(frozen=True, slots=True)
class Hit:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # the JSON body, or None


class Loopback:
    def __init__(self, path: str = "/callback") -> None:
        self.path = path
        self.url = ""
        self.hits: asyncio.Queue[Hit] = asyncio.Queue()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        await self.hits.put(Hit(request.method, request.path, dict(request.query), body))
        if request.method == "GET":
            page = "<html><body><p id='done'>Login complete. You may close this window.</p>"
            return web.Response(text=page + "</body></html>", content_type="text/html")
        return web.json_response({"code": 0})

    async def __aenter__(self) -> Loopback:
        app = web.Application()
        app.router.add_route("*", self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{self.path}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next(self, timeout: float = 5.0) -> Hit:
        """The next request that arrived (waiting up to ``timeout`` seconds)."""
        return await asyncio.wait_for(self.hits.get(), timeout)
