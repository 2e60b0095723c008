"""``FanOut.meeting_participants()``: the pages of a fan-out as one stream of rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Self

from ..models import MeetingQuery, Participant
from ._items import FanOutItem, PageItem

__all__ = ["MeetingParticipants"]


class MeetingParticipants:
    """Every participant of the pages ``items`` yields, as ``(query, participant)``;
    failure items are passed over. An iterator object, not an async generator, so that
    a ``break`` leaves nothing to finalize."""

    __slots__ = ("_index", "_items", "_page", "_query")

    def __init__(self, items: AsyncIterator[FanOutItem]) -> None:
        self._items = items
        self._page: list[Participant] = []
        self._index = 0
        self._query: MeetingQuery | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[MeetingQuery, Participant]:
        while self._index >= len(self._page):
            item = await self._items.__anext__()
            if isinstance(item, PageItem):
                self._page = item.participants
                self._index = 0
                self._query = item.query
        participant = self._page[self._index]
        self._index += 1
        assert self._query is not None
        return self._query, participant
