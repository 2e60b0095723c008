"""What a worker's client is made of: its own options and ``FEISHU_*`` environment,
read once when the worker starts (``feishu_vc_async.cli.worker.worker_settings`` reads
``feishu-vc``'s client options). Nothing of it travels through the broker: a task names
a tenant, a meeting and a database, the worker brings the credentials and the limits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..client import VCClient

__all__ = ["ClientSource", "WorkerSettings"]


class ClientSource(Protocol):
    """Opens the worker's client (the CLI's ``ClientSettings``: credentials, base URL,
    per-API limits and the Redis limiter shared per (API, app, tenant))."""

    def open(self) -> AbstractAsyncContextManager[VCClient]: ...


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The worker's client settings and how many tasks it runs at once."""

    client: ClientSource
    concurrency: int = 4

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[VCClient]:
        """The worker's one client, open for the worker's life."""
        async with self.client.open() as client:
            yield client
