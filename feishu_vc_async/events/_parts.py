"""A large event's parts joined by ``message_id`` in ``seq`` order, within bounds.

At most ``max_messages`` messages are pending (the oldest dropped for a new one), each
of at most ``max_parts`` parts and ``max_bytes`` bytes, for at most ``timeout`` seconds
after its first part (the platform sends all parts at once: one left over is lost, and
the platform re-sends the event it never got an ack for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ._frames import MAX_FRAME_BYTES

__all__ = ["PartJoiner"]


@dataclass
class _Pending:
    since: float
    parts: list[bytes | None]
    size: int = 0
    left: int = field(init=False)

    def __post_init__(self) -> None:
        self.left = len(self.parts)


class PartJoiner:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_messages: int = 64,
        max_parts: int = 256,
        max_bytes: int = MAX_FRAME_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout, self._clock = timeout, clock
        self._max_messages, self._max_parts, self._max_bytes = max_messages, max_parts, max_bytes
        self._pending: dict[str, _Pending] = {}
        self.dropped = 0  # messages given up on (timed out, over a bound, inconsistent)

    def __len__(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        self.dropped += len(self._pending)
        self._pending.clear()

    def add(self, message_id: str, total: int, seq: int, payload: bytes) -> bytes | None:
        """The whole payload once ``message_id``'s last part is here, else ``None`` (also
        for a part out of bounds, which drops its message)."""
        now = self._clock()
        self._expire(now)
        if not 0 <= seq < total <= self._max_parts:
            self._pending.pop(message_id, None)
            self.dropped += 1
            return None
        pending = self._pending.get(message_id)
        if pending is not None and len(pending.parts) != total:
            self._drop(message_id)
            pending = None
        if pending is None:
            while len(self._pending) >= self._max_messages:
                self._drop(next(iter(self._pending)))
            pending = self._pending[message_id] = _Pending(now, [None] * total)
        if pending.parts[seq] is None:
            pending.left -= 1
            pending.size += len(payload)
        else:
            pending.size += len(payload) - len(pending.parts[seq] or b"")
        pending.parts[seq] = payload
        if pending.size > self._max_bytes:
            self._drop(message_id)
            return None
        if pending.left:
            return None
        del self._pending[message_id]
        return b"".join(p or b"" for p in pending.parts)

    def _drop(self, message_id: str) -> None:
        if self._pending.pop(message_id, None) is not None:
            self.dropped += 1

    def _expire(self, now: float) -> None:
        for message_id in [m for m, p in self._pending.items() if now - p.since > self._timeout]:
            self._drop(message_id)
