"""A store app's event endpoint on 127.0.0.1, as an app would run it: every pushed body
goes to :func:`handle_app_ticket_event`, which stores the ticket in the given sink (the
listener itself is the tests' :class:`~tests._loopback.Loopback`)."""

from __future__ import annotations

from aiohttp import web

from feishu_vc_async.auth import AppTicketSink, handle_app_ticket_event
from tests._loopback import Loopback

__all__ = ["TicketEndpoint"]


class TicketEndpoint(Loopback):
    def __init__(self, sink: AppTicketSink, app_id: str | None = None) -> None:
        super().__init__("/events")
        self.sink = sink
        self.app_id = app_id
        self.pushes = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if await handle_app_ticket_event(await request.read(), self.sink, app_id=self.app_id):
            self.pushes += 1
        return web.json_response({})
