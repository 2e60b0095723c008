"""A store app's event endpoint on 127.0.0.1, as an app would run it: every pushed body
goes to :func:`handle_app_ticket_event`, which stores the ticket in the given sink."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from feishu_vc_async.auth import AppTicketSink, handle_app_ticket_event

__all__ = ["TicketEndpoint"]


class TicketEndpoint:
    def __init__(self, sink: AppTicketSink, app_id: str | None = None) -> None:
        self.sink = sink
        self.app_id = app_id
        self.url = ""
        self.pushes = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if await handle_app_ticket_event(await request.read(), self.sink, app_id=self.app_id):
            self.pushes += 1
        return web.json_response({})

    async def __aenter__(self) -> TicketEndpoint:
        app = web.Application()
        app.router.add_post("/events", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/events"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
