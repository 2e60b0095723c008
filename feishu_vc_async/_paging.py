"""Following page tokens: the one stop rule, and iterators that need no finalizing.

:class:`PageCursor` is the rule every iterator shares (the client's and the fan-out's).
:class:`PageIterator` and :class:`ItemIterator` are plain objects with ``__anext__``,
not async generators: an async generator the caller leaves early (``break``) keeps a
suspended frame that only the garbage collector finalizes, later and elsewhere; these
hold no frame, so stopping early leaves nothing behind. ``aclose()`` (or ``async with``)
ends them explicitly.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from ._constants import LOGGER_NAME, MAX_PAGES
from .errors import PagingError

__all__ = ["ItemIterator", "Page", "PageCursor", "PageIterator", "page_bound"]

logger = logging.getLogger(LOGGER_NAME)

# Pages beyond twice the announced rows that a listing may still take.
_PAGE_SLACK = 5

P = TypeVar("P", bound="Page")
I = TypeVar("I")  # noqa: E741 - the item type


class Page(Protocol):
    """What a paged answer has: whether more follow, and the token of the next."""

    @property
    def has_more(self) -> bool: ...
    @property
    def page_token(self) -> str | None: ...


def page_bound(expected_rows: int | None, page_size: int) -> int:
    """The most pages a listing of ``expected_rows`` rows may take (the listing's own
    count, where it gave one): twice as many rows as announced, and a few pages more, is
    slack enough for a count that is off; without a count, :data:`MAX_PAGES`."""
    if expected_rows is None or expected_rows < 0:
        return MAX_PAGES
    return min(MAX_PAGES, math.ceil(2 * expected_rows / page_size) + _PAGE_SLACK)


class PageCursor:
    """Follows one listing's page tokens and says when to stop.

    The server's word is not trusted to end the pages. ``has_more == false`` ends them;
    a missing or empty token ends them too, with a warning naming ``what`` (the official
    Go SDK spins forever on ``""``). A token seen before (a loop) and a listing still
    going after ``max_pages`` pages (a server that hands out new tokens forever) raise
    :class:`~feishu_vc_async.errors.PagingError`: what was read is not the whole listing,
    and stopping quietly would pass it off as one (a loop repeats rows).
    """

    __slots__ = ("_max_pages", "_pages", "_seen", "_what", "token")

    def __init__(self, what: str, token: str | None = None, *, max_pages: int = MAX_PAGES) -> None:
        self._what = what
        self._max_pages = max_pages
        self._pages = 0
        # Built on the second page: most listings have one page and never need it.
        self._seen: set[str] | None = None
        self.token = token  # the token that fetches the next page; None: the first

    def follow(self, page: Page) -> str | None:
        """Record ``page`` (fetched with :attr:`token`); return the next page's token, or
        ``None`` when ``page`` was the last. :attr:`token` moves on to the result."""
        self._pages += 1
        following = page.page_token if page.has_more else None
        if page.has_more and not following:
            logger.warning(
                "%s: has_more is true but the page token is missing after page %d; stopping",
                self._what,
                self._pages,
            )
        elif following is not None:
            if self._pages >= self._max_pages:
                raise PagingError(
                    f"{self._what}: the server still had more after {self._pages} pages, "
                    f"more than the listing can hold (at most {self._max_pages}); "
                    "what was read is not the whole listing"
                )
            seen = self._seen
            if seen is None:
                seen = self._seen = {self.token} if self.token else set()
            if following in seen:
                raise PagingError(
                    f"{self._what}: the server repeated a page token after page "
                    f"{self._pages} (a loop); what was read is not the whole listing"
                )
            seen.add(following)
        self.token = following or None
        return self.token


class _Closing(abc.ABC):
    """``async with`` an iterator ends it (:meth:`aclose`) when the block is left."""

    __slots__ = ()

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class PageIterator(_Closing, Generic[P]):
    """Every page from ``cursor.token`` on: ``fetch(token)`` gets one page."""

    __slots__ = ("_cursor", "_done", "_fetch")

    def __init__(self, fetch: Callable[[str | None], Awaitable[P]], cursor: PageCursor) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> P:
        if self._done:
            raise StopAsyncIteration
        try:
            page = await self._fetch(self._cursor.token)
        except BaseException:
            self._done = True
            raise
        if self._cursor.follow(page) is None:
            self._done = True
        return page

    async def aclose(self) -> None:
        self._done = True


class ItemIterator(_Closing, Generic[P, I]):
    """The items of every page of ``pages``, ``items(page)`` picking them out."""

    __slots__ = ("_batch", "_index", "_items", "_pages")

    def __init__(self, pages: PageIterator[P], items: Callable[[P], Sequence[I]]) -> None:
        self._pages = pages
        self._items = items
        self._batch: Sequence[I] = ()
        self._index = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> I:
        while self._index >= len(self._batch):
            self._batch = self._items(await self._pages.__anext__())
            self._index = 0
        item = self._batch[self._index]
        self._index += 1
        return item

    async def aclose(self) -> None:
        self._batch = ()
        await self._pages.aclose()
