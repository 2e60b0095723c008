"""The events the emulator sends as its meetings end (``all_meeting_ended_v1``).

:class:`EventFeed` makes each event once, when the wall clock (``Clocks.wall``) reaches
a ``MeetingsEnding`` meeting's end, in end order; its ``lose`` and ``repeat`` faults are
drawn per event from ``Random(seed)``. :class:`EventRouter` hands each event to the
app's delivery: its webhook when it has one (the pusher retries on its own schedule),
else one open long connection at random (the platform does not broadcast), else holds it
until a connection opens. ``announced`` is the ground truth of what was told, ``lost``
of what was dropped on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..events import MeetingEnded, ended_envelope
from ._ending import EndingMeetings
from ._meetings import MeetingInfo
from ._options import EventDelivery

__all__ = ["EventFeed", "EventRouter", "EventSink"]

# How often (real seconds) the feed looks at the clock when no end is near: a test's
# fake clock may jump at any time.
_POLL = 0.02


def _share(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"EventDelivery.{name}={value!r}: must be a share from 0 to 1")
    return value


class EventSink(Protocol):
    """One way of delivering events (a webhook pusher, a long connection)."""

    async def deliver(self, envelope: bytes) -> None:
        """Send one event's JSON; returns once it is sent (or given up on)."""
        ...


class EventFeed:
    """The ended events of ``ending``'s meetings as the clock reaches their ends."""

    def __init__(
        self,
        ending: EndingMeetings,
        *,
        app_id: str,
        tenant_key: str,
        seed: int,
        options: EventDelivery,
        clock: Callable[[], float],
    ) -> None:
        self._ending, self._clock = ending, clock
        self._app_id, self._tenant_key = app_id, tenant_key
        self._seed = seed
        self._lose = _share("lose", options.lose)
        self._repeat = _share("repeat", options.repeat)
        self.token = options.verification_token or _derived(f"token:{seed}:{app_id}")
        self._rng = random.Random(f"events:{seed}")
        self._told = 0  # how many of ending.finals have been made into events
        self.announced: list[MeetingEnded] = []
        self.lost: list[MeetingEnded] = []

    def event(self, meeting: MeetingInfo) -> MeetingEnded:
        """The event of ``meeting``'s end (the same id for the same seed and meeting)."""
        return MeetingEnded(
            event_id=_derived(f"event:{self._seed}:{meeting.index}"),
            tenant_key=self._tenant_key,
            app_id=self._app_id,
            meeting_id=meeting.instance_id,
            meeting_no=meeting.meeting_no,
            start_time=meeting.start,
            end_time=meeting.end,
            topic=meeting.topic,
            meeting_source=2,
            create_time_ms=meeting.end * 1000,
        )

    def due(self) -> list[bytes]:
        """The events of the meetings that ended since the last call, in end order (a
        lost one left out, a repeated one twice)."""
        ended = self._ending.ended()
        envelopes: list[bytes] = []
        for meeting in ended[self._told :]:
            event = self.event(meeting)
            if self._rng.random() < self._lose:
                self.lost.append(event)
                continue
            self.announced.append(event)
            envelope = ended_envelope(event, token=self.token)
            envelopes.append(envelope)
            if self._rng.random() < self._repeat:
                envelopes.append(envelope)
        self._told = len(ended)
        return envelopes

    def next_end(self) -> int | None:
        finals = self._ending.finals
        return finals[self._told].end if self._told < len(finals) else None

    async def run(self, router: EventRouter) -> None:
        """Hand each event to ``router`` as its meeting ends, until the last has."""
        while True:
            for envelope in self.due():
                await router.send(envelope)
            upcoming = self.next_end()
            if upcoming is None:
                return
            await asyncio.sleep(min(_POLL, max(0.0, upcoming - self._clock())))


class EventRouter:
    """Where each event goes: the webhook, else one open connection, else held."""

    def __init__(self, seed: int) -> None:
        self.webhook: EventSink | None = None
        self.connections: list[EventSink] = []
        self.held: deque[bytes] = deque()
        self._rng = random.Random(f"router:{seed}")
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, envelope: bytes) -> None:
        if self.webhook is not None:
            self._spawn(self.webhook.deliver(envelope))  # it retries on its own schedule
        elif self.connections:
            await self._rng.choice(self.connections).deliver(envelope)
        else:
            self.held.append(envelope)

    async def connected(self, sink: EventSink) -> None:
        """A long connection opened: it takes the held events, then its share."""
        self.connections.append(sink)
        while self.held and sink in self.connections:
            await sink.deliver(self.held.popleft())

    def disconnected(self, sink: EventSink) -> None:
        with contextlib.suppress(ValueError):
            self.connections.remove(sink)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _derived(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
