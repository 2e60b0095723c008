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
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from ._constants import LOGGER_NAME

__all__ = ["ItemIterator", "Page", "PageCursor", "PageIterator"]

logger = logging.getLogger(LOGGER_NAME)

P = TypeVar("P", bound="Page")
I = TypeVar("I")  # noqa: E741 - the item type


class Page(Protocol):
    """What a paged answer has: whether more follow, and the token of the next."""

    @property
    def has_more(self) -> bool: ...
    @property
    def page_token(self) -> str | None: ...


class PageCursor:
    """Follows one listing's page tokens and says when to stop.

    The server's word is not trusted to end the pages: besides ``has_more == false``,
    a missing or empty token and a token seen before (a server loop; the official Go
    SDK spins forever on ``""``) end the listing, with a warning naming ``what``.
    """

    __slots__ = ("_pages", "_seen", "_what", "token")

    def __init__(self, what: str, token: str | None = None) -> None:
        self._what = what
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
            seen = self._seen
            if seen is None:
                seen = self._seen = {self.token} if self.token else set()
            if following in seen:
                logger.warning(
                    "%s: the server repeated page token %r after page %d; "
                    "stopping to avoid a loop",
                    self._what,
                    following[:32],
                    self._pages,
                )
                following = None
            else:
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
