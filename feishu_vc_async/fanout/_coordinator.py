"""The coordinator: lazy input, a pool of workers, one bounded output stream.

``FanOut`` is an async context manager owning an anyio task group and a memory stream,
as aiometer's ``amap`` does, rather than an async generator yielding from inside a task
group (which leaks tasks and swallows cancellation when the consumer stops early)::

    input ──▶ worker ─┐   (each worker: take a query, fetch its pages in order)
          ──▶ worker ─┼──▶ bounded stream ──▶ consumer (async for)
          ──▶ worker ─┘

A worker takes the next query only when it is free, so the input is read as capacity
frees up (a list or tuple, already in memory, is started largest meeting first where
its items say their size: ``discovery.largest_first``); it holds at most one page while
the stream is full, so memory is bounded by ``concurrency + buffer_size`` pages whatever
the input's length. Workers are long-lived
(no task per meeting on the hot path); the tuner sizes the pool while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
    Sized,
)
from types import TracebackType
from typing import Any, Final, Protocol, Self

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._clock import Clock
from .._constants import LOGGER_NAME, PAGE_SIZE_ITER_DEFAULT
from .._paging import PageCursor, page_bound
from .._validate import non_negative_int, positive_int
from ..discovery import largest_first
from ..errors import FeishuError, InvalidQueryError
from ..models import MeetingQuery, Participant, ParticipantPage, validate_page_size
from ..ratelimit import RateLimit
from ._items import FanOutItem, MeetingFailure, PageItem, Resume
from ._participants import MeetingParticipants
from ._pool import WorkerPool
from ._progress import FanOutProgress, StatsSource
from ._queries import Queries, listed_size, query_or_failure
from ._tuning import ADAPTIVE_START, UNLIMITED_CONCURRENCY, Tuner

__all__ = ["FanOut", "PageSource"]

logger = logging.getLogger(f"{LOGGER_NAME}.fanout")

# A worker lets other tasks run after this many input items that needed no request
# (resumed or invalid), so a long run of them cannot hold the event loop: every ready
# worker runs once per loop turn, so a turn handles up to workers × this many.
_YIELD_EVERY = 8
# Bounds of the default output buffer (items, i.e. pages).
_BUFFER_MIN = 16
_BUFFER_MAX = 128
# How long an async-iterable input may take to close after the fan-out ends.
_ACLOSE_TIMEOUT = 5.0
_END: Final = object()


class PageSource(Protocol):
    """What the fan-out needs of a client (``VCClient`` is one): its participant_list
    counters, the limit it is paced to (the pool is sized from it) and its clock."""

    @property
    def stats(self) -> StatsSource: ...
    @property
    def rate_limit(self) -> RateLimit | None: ...
    @property
    def clock(self) -> Clock: ...
    async def participant_list(
        self, query: MeetingQuery, *, page_size: int = ..., page_token: str | None = ...
    ) -> ParticipantPage: ...


class FanOut:
    """Pages of many meetings, merged in completion order; made by ``client.fan_out``.

    ::

        async with client.fan_out(queries) as results:
            async for item in results:          # PageItem | MeetingFailure
                ...
            print(results.progress)

    Each meeting's pages come in order; meetings run concurrently. A failing meeting
    yields one :class:`MeetingFailure` and the others go on, unless ``fail_fast``: then
    the first failure cancels everything and is raised out of the ``async with``.
    Leaving the block early (``break``, an exception, a timeout) cancels every request
    in flight before ``__aexit__`` returns and closes an async-generator input; the
    client stays usable.

    ``queries``: any iterable or async iterable of :class:`MeetingQuery` or
    :class:`~feishu_vc_async.meetings.Meeting` (meeting_list's, read as ``meeting.query()``
    with open_id; pass ``meeting.query(user_id_type=...)`` for other ids),
    read lazily (it may be endless); a list or tuple of meetings is started largest
    first (``discovery.largest_first``). Items come out with their query. ``concurrency``:
    meetings in flight; by default tuned to the rate of the client's limiter (32 when it
    has none), a worker added per limiter slot until the first answers say the latency.
    ``buffer_size``: pages waiting for the consumer before fetching stalls. ``resume``:
    skip ``resume.completed`` keys and the ``resume.failed`` ones (given up for good by
    an earlier run; ``retry_failed=True`` asks for those again), and start others at
    ``resume.next_tokens[key]``. A meeting's pages are bounded
    (:func:`~feishu_vc_async._paging.page_bound`) by the rows it is expected to hold:
    a Meeting's ``number_of_participants``, else ``expected_rows(query)`` when given; a
    meeting whose server repeats a page token or pages past that bound fails with a
    :class:`~feishu_vc_async.errors.PagingError`.
    """

    def __init__(
        self,
        client: PageSource,
        queries: Queries,
        *,
        concurrency: int | None = None,
        page_size: int = PAGE_SIZE_ITER_DEFAULT,
        fail_fast: bool = False,
        resume: Resume | None = None,
        buffer_size: int | None = None,
        retry_failed: bool = False,
        expected_rows: Callable[[MeetingQuery], int | None] | None = None,
    ) -> None:
        self._page_size = validate_page_size(page_size)
        self._expected_rows = expected_rows
        if concurrency is not None:
            positive_int("concurrency", concurrency)
        if buffer_size is not None:
            non_negative_int("buffer_size", buffer_size)
        self._client = client
        self._queries = queries
        self._fail_fast = fail_fast
        self._resume = resume
        self._retry_failed = retry_failed
        rate_limit = client.rate_limit
        rate = None if rate_limit is None else rate_limit.requests / rate_limit.period
        window = 10.0 if rate_limit is None else max(1.0, min(rate_limit.period, 10.0))
        adaptive = concurrency is None and rate is not None
        if concurrency is None:
            concurrency = UNLIMITED_CONCURRENCY if rate is None else ADAPTIVE_START
        if buffer_size is None:
            buffer_size = min(_BUFFER_MAX, max(_BUFFER_MIN, 2 * concurrency))
        self._buffer_size = buffer_size
        total = len(queries) if isinstance(queries, Sized) else None
        self.progress = FanOutProgress(
            client.stats,
            total=total,
            limit=rate,
            concurrency=concurrency,
            window=window,
            clock=client.clock,
        )
        self._pool = WorkerPool(
            concurrency, self._worker, starved=self._starved, exhausted=self._exhausted
        )
        self._tuner = (
            Tuner(self._pool, self.progress, client.stats, rate=rate, clock=client.clock)
            if adaptive and rate is not None
            else None
        )
        self._state = "new"  # new → open → closed
        self._error: FeishuError | None = None
        self._input_done = False
        self._blocked_senders = 0
        self._sync_input: Iterator[Any] | None = None
        self._async_input: AsyncIterator[Any] | None = None
        self._input_lock: anyio.Lock | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._send: MemoryObjectSendStream[FanOutItem] | None = None
        self._receive: MemoryObjectReceiveStream[FanOutItem] | None = None

    # --- the context manager ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a FanOut can be entered only once; call fan_out() again")
        self._state = "open"
        source = self._queries
        if isinstance(source, AsyncIterable):
            self._async_input = aiter(source)
            self._input_lock = anyio.Lock(fast_acquire=True)
        elif isinstance(source, Sequence) and not isinstance(source, str):
            self._sync_input = iter(largest_first(source, listed_size))
        else:
            self._sync_input = iter(source)
        send, receive = anyio.create_memory_object_stream[FanOutItem](self._buffer_size)
        self._send, self._receive = send, receive
        self.progress._start(receive)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._pool.start(tg)
        if self._tuner is not None:
            tg.start_soon(self._tuner.ramp, name="feishu_vc_async.fanout ramp")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tg = self._tg
        assert tg is not None
        assert self._send is not None
        assert self._receive is not None
        self._state = "closed"
        try:
            tg.cancel_scope.cancel()
            if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
                # The body's own exception goes out as itself: a task group would wrap it
                # in an ExceptionGroup, breaking the caller's `except ValueError`.
                await _unwrapped(tg.__aexit__(None, None, None))
                return False
            suppressed = bool(await _unwrapped(tg.__aexit__(exc_type, exc, tb)))
        finally:
            self._send.close()
            self._receive.close()
            self.progress._stop()
            await self._close_input()
        if self._error is not None:
            # fail_fast: our own cancellation ended the body; the failure replaces it.
            raise self._error
        return suppressed

    async def _close_input(self) -> None:
        iterator = self._async_input
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            # Close an async generator now, even while cancelled: left to the garbage
            # collector it would be finalized out of context.
            with anyio.move_on_after(_ACLOSE_TIMEOUT, shield=True):
                await aclose()

    # --- consuming -------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> FanOutItem:
        receive = self._receive
        if receive is None or self._state != "open":
            raise RuntimeError("iterate a FanOut inside `async with client.fan_out(...)`")
        if self._error is not None:
            raise self._error
        try:
            # A ready item is taken without a trip through the event loop.
            return receive.receive_nowait()
        except anyio.WouldBlock:
            pass
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None

    def meeting_participants(self) -> AsyncIterator[tuple[MeetingQuery, Participant]]:
        """Every participant with its meeting, as ``(query, participant)``, across pages;
        failed meetings are left out (they count in ``progress.failed``; use
        ``fail_fast=True`` to raise instead)."""
        return MeetingParticipants(self)

    # --- producing -------------------------------------------------------------------

    async def _next_input(self) -> object:
        """The next item of the input, or ``_END``."""
        if self._input_done:
            return _END
        sync_input = self._sync_input
        if sync_input is not None:
            item = next(sync_input, _END)
        else:
            lock = self._input_lock
            iterator = self._async_input
            assert lock is not None
            assert iterator is not None
            async with lock:  # an async iterator must not be advanced by two tasks at once
                if self._exhausted():  # another worker may have seen the end meanwhile
                    return _END
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    item = _END
        if item is _END:
            self._input_done = True
        return item

    async def _worker(self) -> None:
        pool = self._pool
        progress = self.progress
        resume = self._resume
        skip_failed = resume is not None and not self._retry_failed
        idle = 0  # input items taken without a request since the last checkpoint
        try:
            while pool.workers <= pool.limit:  # a smaller limit retires workers
                item = await self._next_input()
                if item is _END:
                    return
                progress.taken += 1
                token: str | None = None
                failure: MeetingFailure | None = None
                query = query_or_failure(item)
                expected = listed_size(item)
                if isinstance(query, MeetingFailure):
                    failure = query
                else:
                    if resume is not None:
                        key = query.key
                        done_before = key in resume.completed
                        if done_before or (skip_failed and key in resume.failed):
                            if done_before:
                                progress.skipped += 1
                            else:
                                progress.skipped_failed += 1
                            idle += 1
                            if idle >= _YIELD_EVERY:
                                idle = 0
                                await anyio.lowlevel.checkpoint()
                            continue
                        token = resume.next_tokens.get(key) or None
                    try:
                        query.validate()
                    except InvalidQueryError as exc:
                        failure = MeetingFailure(query, exc, 0, token)
                if failure is not None:
                    progress.failed += 1
                    await self._fail(failure)
                    idle += 1
                    if idle >= _YIELD_EVERY:
                        idle = 0
                        await anyio.lowlevel.checkpoint()
                    continue
                assert isinstance(query, MeetingQuery)
                if expected is None and self._expected_rows is not None:
                    expected = self._expected_rows(query)
                await self._meeting(query, token, page_bound(expected, self._page_size))
        finally:
            pool.workers -= 1
            if pool.workers == 0 and self._input_done:
                assert self._send is not None
                self._send.close()

    def _exhausted(self) -> bool:
        return self._input_done

    def _starved(self) -> bool:
        return not self._input_done and self._blocked_senders == 0

    async def _fail(self, failure: MeetingFailure) -> None:
        if self._fail_fast:
            if self._error is None:
                self._error = failure.error
                assert self._tg is not None
                self._tg.cancel_scope.cancel()
            return
        await self._emit(failure)

    async def _emit(self, item: FanOutItem) -> None:
        send = self._send
        assert send is not None
        try:
            send.send_nowait(item)
        except anyio.WouldBlock:
            # The consumer is behind: stall here (backpressure).
            self._blocked_senders += 1
            try:
                await send.send(item)
            finally:
                self._blocked_senders -= 1

    async def _meeting(self, query: MeetingQuery, token: str | None, max_pages: int) -> None:
        """Fetch one meeting's pages in order, from ``token`` (``None``: the first page)."""
        client = self._client
        progress = self.progress
        tuner = self._tuner
        page_size = self._page_size
        cursor = PageCursor(f"meeting {query.meeting_no}", token, max_pages=max_pages)
        index = 0
        progress.running += 1
        running = True
        try:
            while True:
                token = cursor.token
                try:
                    page = await client.participant_list(
                        query, page_size=page_size, page_token=token
                    )
                    if tuner is not None:
                        tuner.observe()
                    following = cursor.follow(page)  # a PagingError fails the meeting
                except FeishuError as exc:
                    running = False
                    progress.running -= 1
                    progress.failed += 1
                    await self._fail(MeetingFailure(query, exc, index, token))
                    # The consumer may stop at this failure (a token every meeting needs
                    # cannot be had): let its cancellation land before this worker starts
                    # the next meeting and asks for that token again.
                    await anyio.lowlevel.checkpoint()
                    return
                participants = page.participants
                progress.pages += 1
                progress.participants += len(participants)
                if following is None:
                    running = False
                    progress.running -= 1
                    progress.done += 1
                    await self._emit(PageItem(query, participants, token, None, True, index))
                    return
                await self._emit(PageItem(query, participants, token, following, False, index))
                index += 1
        finally:
            if running:
                progress.running -= 1


async def _unwrapped(exiting: Awaitable[bool | None]) -> bool | None:
    """Await a task group's exit. A group of one error (the input iterator's own
    exception, a bug), or of several of one type (the same bug hit by several workers
    at once), is raised as its first error, so callers can catch it by type."""
    try:
        return await exiting
    except BaseExceptionGroup as group:
        first = group.exceptions[0]
        if not isinstance(first, BaseExceptionGroup) and all(
            type(e) is type(first) for e in group.exceptions
        ):
            raise first from None
        raise
