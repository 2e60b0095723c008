"""Finding the meetings of a range: every meeting once, resumable, largest first.

:class:`MeetingIterator` reads meeting_list across a range of any length: it cuts the
range into windows one request may carry (a year), follows each window's pages with
the one page-token rule (``_paging.PageCursor``), and yields each meeting once, by
:attr:`Meeting.key`. Neighbouring windows share their boundary second and the platform
may list a meeting by its start or by any overlap with the range (the reference leaves
it open), so a meeting can be listed twice; the second listing is dropped either way.
Its :attr:`~MeetingIterator.position` says where to continue after a crash.

:class:`LargestFirst` hands discovered meetings to a fan-out while discovery goes on:
among the meetings found so far, the largest (``number_of_participants``) goes first,
so a long export does not end waiting on one big meeting started last.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Self, TypeVar

import msgspec

from ._constants import LOGGER_NAME, MAX_MEETING_LIST_RANGE_SECONDS
from ._paging import PageCursor
from .meetings import Meeting, MeetingListPage, MeetingListQuery
from .models import MeetingQuery, MeetingStatus, to_unix

__all__ = ["DiscoveryPosition", "LargestFirst", "MeetingIterator", "find_meetings", "largest_first"]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")
FetchPage = Callable[[MeetingListQuery, str | None], Awaitable[MeetingListPage]]


class DiscoveryPosition(msgspec.Struct, kw_only=True):
    """Where a listing stands: the window being read and the token of the page the next
    meeting comes from (``None``: the window's first page); ``done`` once all is read.
    Resuming from it repeats at most one page, whose meetings are then dropped as seen."""

    window: int = 0
    page_token: str | None = None
    done: bool = False


class MeetingIterator:
    """Every meeting of ``query``'s range (any length), each once; see the module doc.

    ``fetch(window, page_token)`` gets one page. ``position`` and ``seen`` (keys already
    yielded, e.g. by an interrupted run) continue an earlier listing. A meeting the
    answer does not identify (no number or start) cannot be read or deduplicated: it is
    skipped with a warning and counted in :attr:`unidentified`.
    """

    def __init__(
        self,
        fetch: FetchPage,
        query: MeetingListQuery,
        *,
        window_seconds: int = MAX_MEETING_LIST_RANGE_SECONDS,
        position: DiscoveryPosition | None = None,
        seen: Iterable[str] = (),
    ) -> None:
        self._fetch = fetch
        self._windows = query.windows(window_seconds)
        start = position or DiscoveryPosition()
        self._window = start.window
        self._cursor: PageCursor | None = None
        self._next_token = start.page_token
        self._done = start.done or start.window >= len(self._windows)
        self._batch: list[Meeting] = []
        self._index = 0
        self._batch_window = 0
        self._batch_token: str | None = None
        self.seen: set[str] = set(seen)
        self.pages = 0
        self.listed = 0  # meetings in the pages read, repeats included
        self.unidentified = 0

    @property
    def windows(self) -> int:
        return len(self._windows)

    @property
    def position(self) -> DiscoveryPosition:
        """Where to continue: the page the next meeting comes from."""
        if self._index < len(self._batch):
            return DiscoveryPosition(window=self._batch_window, page_token=self._batch_token)
        return DiscoveryPosition(window=self._window, page_token=self._next_token, done=self._done)

    @property
    def done(self) -> bool:
        return self._done and self._index >= len(self._batch)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Meeting:
        while True:
            while self._index < len(self._batch):
                meeting = self._batch[self._index]
                self._index += 1
                try:
                    key = meeting.key
                except ValueError as exc:
                    self.unidentified += 1
                    logger.warning("meeting_list: %s; skipped", exc)
                    continue
                if key not in self.seen:
                    self.seen.add(key)
                    return meeting
            if self._done:
                raise StopAsyncIteration
            await self._read_page()

    async def _read_page(self) -> None:
        window = self._windows[self._window]
        if self._cursor is None:
            self._cursor = PageCursor(
                f"meeting_list window {self._window + 1}/{len(self._windows)}",
                self._next_token,
            )
        token = self._cursor.token
        page = await self._fetch(window, token)
        self.pages += 1
        self.listed += len(page.meeting_list)
        self._batch, self._index = page.meeting_list, 0
        self._batch_window, self._batch_token = self._window, token
        following = self._cursor.follow(page)
        if following is not None:
            self._next_token = following
            return
        self._cursor = None
        self._next_token = None
        self._window += 1
        self._done = self._window >= len(self._windows)


def largest_first(items: Sequence[T], size_of: Callable[[T], int | None]) -> Sequence[T]:
    """``items`` with those of a known size largest first, the others after them in
    their order (a stable sort); ``items`` itself when none has a size.

    Pages of one meeting are sequential, so a big meeting started last is a tail of its
    own: the run ends a chain of its pages after everything else. Started first, its
    chain runs beside the rest. (:class:`LargestFirst` does the same for meetings that
    arrive while the fan-out runs.)
    """
    sizes = [size_of(item) for item in items]
    if not any(size is not None for size in sizes):
        return items
    order = sorted(range(len(items)), key=lambda i: -(sizes[i] or 0))
    return [items[i] for i in order]


class LargestFirst:
    """An async iterable of participant_list queries, largest meeting first.

    A producer :meth:`put`\\ s meetings as discovery finds them and :meth:`close`\\ s
    it at the end (with the error that ended discovery, if any); a consumer (a fan-out's
    workers) takes the largest meeting found so far, waiting while none is ready. Ties
    keep discovery order. ``close(error)`` makes the consumer raise ``error`` once the
    meetings already found are taken.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, MeetingQuery]] = []
        self._order = itertools.count()
        self._closed = False
        self._error: BaseException | None = None
        self._changed: asyncio.Event | None = None
        self.put_count = 0

    def put(self, query: MeetingQuery, size: int | None) -> None:
        if self._closed:
            raise RuntimeError("LargestFirst.put() after close()")
        # heapq is a min-heap: the negated size puts the largest first; unknown sizes last.
        heapq.heappush(self._heap, (-(size or 0), next(self._order), query))
        self.put_count += 1
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        self._closed = True
        self._error = error
        self._wake()

    def __len__(self) -> int:
        """Queries found and not taken yet."""
        return len(self._heap)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MeetingQuery:
        while not self._heap:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        return heapq.heappop(self._heap)[2]


async def find_meetings(
    meetings: Callable[[MeetingListQuery], AsyncIterator[Meeting]],
    meeting_no: str,
    start: int | datetime | date,
    end: int | datetime | None = None,
    *,
    tz: tzinfo = UTC,
    ongoing: bool = True,
) -> list[Meeting]:
    """``VCClient.find_meetings``: the meetings numbered ``meeting_no`` that start in a
    day or a range, listed through ``meetings`` (a client's :meth:`VCClient.meetings`)."""
    if isinstance(start, date) and not isinstance(start, datetime):
        if end is not None:
            raise ValueError("end: give either a day or a start and an end, not both")
        begin = datetime.combine(start, datetime.min.time(), tz)
        start, end = begin, begin + timedelta(days=1) - timedelta(seconds=1)
    if end is None:
        raise ValueError("end: required unless start is a day (a datetime.date)")
    statuses = (MeetingStatus.ENDED, MeetingStatus.ONGOING) if ongoing else (MeetingStatus.ENDED,)
    found: list[Meeting] = []
    now = time.time()
    for status in statuses:
        query = MeetingListQuery(
            start_time=to_unix(start),
            end_time=to_unix(end),
            meeting_no=meeting_no,
            meeting_status=status,
            include_webinar=True,
            include_external_meetings=True,
        )
        if status is MeetingStatus.ONGOING and query.end_time < now - 86_400:
            continue  # nothing of a range long past is still going on
        found += [meeting async for meeting in meetings(query)]
    return found
