"""The emulator's events, as one part of the server (like ``_vc_apis`` and
``_identity``): the feed of ended events, the router, the webhook pusher and the long
connections, started and closed together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from ._answering import Answering
from ._ending import EndingMeetings
from ._events import EventFeed, EventRouter
from ._long_connection import LongConnections
from ._options import EventDelivery
from ._tokens import TokenStore
from ._webhook_push import WebhookPush, WebhookPusher, verify_webhook

__all__ = ["EventParts"]


class EventParts:
    """``feed`` (``emu.events``), ``router`` (``emu.event_router``), the webhook pusher
    (when ``options.webhook_url`` is set) and ``long_connections``."""

    def __init__(
        self,
        ending: EndingMeetings,
        options: EventDelivery,
        answering: Answering,
        tokens: TokenStore,
        app_id: str,
        tenant_key: str,
        seed: int,
        clock: Callable[[], float],
    ) -> None:
        self.options = options
        self.feed = EventFeed(
            ending, app_id=app_id, tenant_key=tenant_key, seed=seed, options=options, clock=clock
        )
        self.router = EventRouter(seed)
        self._pusher = None if options.webhook_url is None else WebhookPusher(options, clock=clock)
        self.router.webhook = self._pusher
        self.long_connections = LongConnections(answering, tokens, self.router, options, app_id)
        self._task: asyncio.Task[None] | None = None

    def add_routes(self, app: web.Application) -> None:
        self.long_connections.add_routes(app)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.feed.run(self.router))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.long_connections.close()
        await self.router.close()
        if self._pusher is not None:
            await self._pusher.close()

    @property
    def webhook_pushes(self) -> list[WebhookPush]:
        return self._pusher.pushes if self._pusher is not None else []

    async def verify_webhook(self, url: str | None) -> bool:
        url = url or self.options.webhook_url
        if url is None:
            raise ValueError("verify_webhook: no url, and EventDelivery.webhook_url is None")
        return await verify_webhook(
            url, token=self.feed.token, encrypt_key=self.options.encrypt_key
        )
