"""A worker, run in this process: its client open, the broker listened to until
``stop`` is set; the tasks in hand are finished (committed, acknowledged) first."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from taskiq import AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from ._settings import WorkerSettings
from ._tasks import WorkerTasks

__all__ = ["run_worker"]


async def run_worker(
    broker: AsyncBroker, tasks: WorkerTasks, settings: WorkerSettings, stop: asyncio.Event
) -> None:
    """Take tasks from ``broker`` until ``stop`` is set, ``settings.concurrency`` at a
    time with the client of ``settings`` (the only credentials a task uses). Every task
    acknowledges its own message after its commit; one that fails is left pending and
    comes back. Returns once the tasks in hand are done."""
    broker.is_worker_process = True
    await broker.startup()
    try:
        async with settings.open() as client:
            tasks.client = client
            try:
                with ThreadPoolExecutor(max_workers=1) as executor:
                    receiver = Receiver(
                        broker,
                        executor=executor,
                        max_async_tasks=settings.concurrency,
                        run_startup=False,
                        ack_type=AcknowledgeType.MANUAL,
                    )
                    await receiver.listen(stop)
            finally:
                tasks.client = None
    finally:
        await broker.shutdown()
