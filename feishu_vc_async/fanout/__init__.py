"""Fan-out: page through many meetings at once and stream the merged results.

``async with client.fan_out(queries) as results: async for item in results: ...``
"""

from __future__ import annotations

from ._coordinator import FanOut, PageSource
from ._items import FanOutItem, MeetingFailure, PageItem, Resume
from ._progress import FanOutProgress
from ._queries import Queries

__all__ = [
    "FanOut",
    "FanOutItem",
    "FanOutProgress",
    "MeetingFailure",
    "PageItem",
    "PageSource",
    "Queries",
    "Resume",
]
