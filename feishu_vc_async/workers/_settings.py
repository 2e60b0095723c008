"""What a worker's client is made of: its own options and ``FEISHU_*`` environment,
read once when the worker starts. Nothing of it travels through the broker: a task names
a tenant, a meeting and a database, the worker brings the credentials and the limits."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from ..cli._options import ClientSettings, add_client_arguments, client_settings
from ..client import VCClient

__all__ = ["WorkerSettings", "worker_settings"]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The worker's client settings (credentials, base URL, per-API limits and the
    Redis limiter shared per (API, app, tenant) with every other worker), and how many
    tasks it runs at once."""

    client: ClientSettings
    concurrency: int = 4

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[VCClient]:
        """The worker's one client, open for the worker's life."""
        async with self.client.open() as client:
            yield client


def worker_settings(
    argv: Sequence[str], env: Mapping[str, str], *, concurrency: int = 4
) -> WorkerSettings:
    """Settings from the client options of ``feishu-vc`` (``--app-id``, ``--base-url``,
    ``--rate-limit``, ``--redis-url``...) and ``env`` (``FEISHU_APP_ID``,
    ``FEISHU_APP_SECRET``, ``FEISHU_BASE_URL``, ``FEISHU_VC_REDIS_URL``...).
    ``ConfigError`` naming the option, before anything is opened."""
    parser = argparse.ArgumentParser(prog="feishu-vc worker", add_help=False)
    add_client_arguments(parser, participant_list=True)
    return WorkerSettings(client_settings(parser.parse_args(list(argv)), env), concurrency)
