"""Fan-out: page through many meetings at once and stream the merged results.

``async with client.fan_out(queries) as results: async for item in results: ...``
"""

from __future__ import annotations

from typing import Any

from .._deprecated import module_getattr
from ._coordinator import FanOut, PageSource, Queries
from ._items import FanOutItem, MeetingFailure, PageItem, Resume
from ._progress import FanOutProgress

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


def _fan_out(client: Any, queries: Queries, **options: Any) -> FanOut:
    return FanOut(client, queries, **options)


# Old names that keep working, with a DeprecationWarning, for one release.
_DEPRECATED: dict[str, tuple[str, Any]] = {
    "Progress": ("FanOutProgress", FanOutProgress),
    "fan_out": ("client.fan_out(queries, ...)", _fan_out),
}


__getattr__ = module_getattr(__name__, _DEPRECATED)
