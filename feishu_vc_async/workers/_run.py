"""A worker, run in this process: its client open, the broker listened to until
``stop`` is set; then the chunks in hand are handed back once the meeting each is
writing is committed, and the discoveries in hand finished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from taskiq import AckableMessage, AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from .._cancel import unless_set
from .._constants import LOGGER_NAME
from ._broker import HeldMessage
from ._settings import WorkerSettings
from ._tasks import WorkerTasks

__all__ = ["run_worker"]

logger = logging.getLogger(LOGGER_NAME + ".workers")


class _HoldingReceiver(Receiver):
    """taskiq's receiver, holding each :class:`HeldMessage` while its task runs."""

    async def callback(self, message: bytes | AckableMessage, raise_err: bool = False) -> None:
        if not isinstance(message, HeldMessage):
            await super().callback(message, raise_err)
            return
        holding = asyncio.create_task(_hold(message))
        try:
            await super().callback(message, raise_err)
        finally:
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holding


async def _hold(message: HeldMessage) -> None:
    failing = False
    while True:
        await asyncio.sleep(message.hold_every)
        try:
            await message.hold()
        except Exception as exc:  # Redis away for a moment: the next hold may do
            if not failing:  # once while Redis is away, not every hold_every
                logger.warning("could not hold the task in hand: %s", type(exc).__name__)
            failing = True
        else:
            failing = False


async def run_worker(
    broker: AsyncBroker, tasks: WorkerTasks, settings: WorkerSettings, stop: asyncio.Event
) -> None:
    """Take tasks from ``broker`` until ``stop`` is set, ``settings.concurrency`` at a
    time with the client of ``settings`` (the only credentials a task uses). Every task
    acknowledges its own message after its commit; one that fails, or a chunk handed
    back on ``stop``, is left pending and comes back. Returns once the tasks in hand
    are done or handed back."""
    broker.is_worker_process = True
    started = await unless_set(broker.startup(), stop)
    if started.cancelled():
        await broker.shutdown()
        return  # stopped while the broker waited for Redis: nothing was taken
    started.result()  # its error, if any
    stopping = asyncio.create_task(_tell(stop, tasks.stopping))
    try:
        async with settings.open() as client:
            tasks.client = client
            try:
                with ThreadPoolExecutor(max_workers=1) as executor:
                    receiver = _HoldingReceiver(
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
        stopping.cancel()
        await broker.shutdown()


async def _tell(stop: asyncio.Event, stopping: asyncio.Event) -> None:
    await stop.wait()
    stopping.set()
