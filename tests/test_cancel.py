"""A cancellation that ``asyncio.wait_for`` drops on Python 3.11 (the way redis-py sends
every command) is raised again by ``cancellable``: found when a stress run of the suite
hung in a task group waiting for a rate limiter's caller that had been cancelled and
went on taking slots."""

from __future__ import annotations

import asyncio
import sys

import pytest

from feishu_vc_async._cancel import cancellable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the race and the repair are asyncio's


async def _cancel_as_the_answer_arrives(wrap: bool) -> asyncio.Task[int]:
    """A task in ``wait_for`` whose inner future completes in the iteration where the
    task is cancelled; returns the task once it has ended."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[int] = loop.create_future()

    async def command() -> int:
        call = asyncio.wait_for(answer, 10)
        return await (cancellable(call) if wrap else call)

    task = asyncio.create_task(command())
    await asyncio.sleep(0)  # its first step: it now waits inside wait_for
    answer.set_result(7)
    task.cancel()
    await asyncio.wait([task])
    return task


async def test_a_cancel_dropped_by_wait_for_is_raised_again() -> None:
    task = await _cancel_as_the_answer_arrives(wrap=True)
    assert task.cancelled()


async def test_without_it_3_11_ends_the_task_as_if_never_cancelled() -> None:
    task = await _cancel_as_the_answer_arrives(wrap=False)
    if sys.version_info >= (3, 12):  # wait_for keeps the cancel from 3.12 on
        assert task.cancelled()
        return
    assert not task.cancelled()
    assert task.result() == 7
    assert task.cancelling() == 1  # the request is still counted: how cancellable tells


async def test_a_call_that_ends_uncancelled_returns_or_raises_as_it_did() -> None:
    assert await cancellable(asyncio.sleep(0, "ok")) == "ok"
    with pytest.raises(ZeroDivisionError):
        await cancellable(_fails())


async def _fails() -> None:
    raise ZeroDivisionError
