"""Fan-out: page through many meetings at once and stream the merged results.

``async with client.fan_out(queries) as results: async for item in results: ...``
"""

from ._coordinator import FanOut, PageSource, Queries, fan_out
from ._items import FanOutItem, MeetingFailure, PageItem, Resume
from ._progress import Progress

__all__ = [
    "FanOut",
    "FanOutItem",
    "MeetingFailure",
    "PageItem",
    "PageSource",
    "Progress",
    "Queries",
    "Resume",
    "fan_out",
]
