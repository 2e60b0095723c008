"""The workers of one fan-out, sized by its tuner (``_tuning.Pool``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio.abc

__all__ = ["WorkerPool"]


class WorkerPool:
    """``limit`` is the goal, ``workers`` those alive: each worker (``work``) checks
    ``workers <= limit`` before it takes a meeting and counts itself out when it ends."""

    __slots__ = ("_exhausted", "_starved", "_tg", "_work", "limit", "workers")

    def __init__(
        self,
        limit: int,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        starved: Callable[[], bool],
        exhausted: Callable[[], bool],
    ) -> None:
        self.limit = limit
        self.workers = 0
        self._work = work
        self._starved = starved
        self._exhausted = exhausted
        self._tg: anyio.abc.TaskGroup | None = None

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start ``limit`` workers in ``tg``, where later ones start too."""
        self._tg = tg
        self.resize(self.limit)

    def resize(self, limit: int) -> None:
        """Start workers up to ``limit``; extra ones retire after their current meeting."""
        self.limit = limit
        tg = self._tg
        if tg is None or self._exhausted():
            return
        while self.workers < limit:
            self.workers += 1
            tg.start_soon(self._work, name="feishu_vc_async.fanout worker")

    def starved(self) -> bool:
        return self._starved()

    def exhausted(self) -> bool:
        return self._exhausted()
