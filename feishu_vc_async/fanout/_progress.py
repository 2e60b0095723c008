"""Live counters of one fan-out, cheap to update on the hot path and to read any time."""

from __future__ import annotations

from typing import Any, Protocol

from .._clock import Clock, loop_time

__all__ = ["FanOutProgress", "StatsSource"]


class StatsSource(Protocol):
    """What the fan-out reads of ``VCClient.stats`` (a :class:`~._stats.ClientStats`)."""

    @property
    def requests(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    def recent_rate(self, window: float = ...) -> float: ...
    def latency_quantile(self, q: float = ...) -> float | None: ...


class FanOutProgress:
    """Counters of one fan-out: what a progress bar, log lines and a run's summary read.

    Meetings: ``total`` (``None`` unless the input has ``len()``), ``taken`` from the
    input, ``running``, ``done``, ``failed`` (invalid queries included), ``skipped``
    (already completed per ``resume``), ``skipped_failed`` (given up for good by an
    earlier run, per ``resume.failed``); ``pending`` and ``remaining`` when ``total``
    is known. Pages and ``participants`` yielded. ``requests``, ``retries`` and
    ``rate_limited`` (429s) are the client's counts since this fan-out started (another
    user of the same client in that time is counted too). ``rate`` is the client's
    current request rate and ``limit`` the configured one (req/s, ``None`` when
    unlimited); ``concurrency`` the current bound on meetings in flight; ``buffered``
    the items waiting for the consumer; ``eta`` seconds to the end, when ``total`` is
    known. ``elapsed`` stops when the fan-out ends.
    """

    __slots__ = (
        "_base",
        "_buffered",
        "_clock",
        "_started",
        "_stats",
        "_stopped",
        "_window",
        "concurrency",
        "done",
        "failed",
        "limit",
        "pages",
        "participants",
        "running",
        "skipped",
        "skipped_failed",
        "taken",
        "total",
    )

    def __init__(
        self,
        stats: StatsSource,
        *,
        total: int | None,
        limit: float | None,
        concurrency: int,
        window: float,
        clock: Clock = loop_time,
    ) -> None:
        self.total = total
        self.taken = 0
        self.running = 0
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.skipped_failed = 0
        self.pages = 0
        self.participants = 0
        self.concurrency = concurrency
        self.limit = limit
        self._stats = stats
        self._window = window
        self._clock = clock
        self._base = (stats.requests, stats.retries, stats.rate_limited)
        self._started = clock()
        self._stopped: float | None = None
        self._buffered: Any = None  # the receive stream, once the fan-out is entered

    def _start(self, buffered: Any) -> None:
        stats = self._stats
        self._base = (stats.requests, stats.retries, stats.rate_limited)
        self._started = self._clock()
        self._buffered = buffered

    def _stop(self) -> None:
        if self._stopped is None:
            self._stopped = self._clock()

    @property
    def requests(self) -> int:
        return self._stats.requests - self._base[0]

    @property
    def retries(self) -> int:
        return self._stats.retries - self._base[1]

    @property
    def rate_limited(self) -> int:
        return self._stats.rate_limited - self._base[2]

    @property
    def rate(self) -> float:
        """Requests per second the client sent recently."""
        return self._stats.recent_rate(min(self._window, max(self.elapsed, 0.001)))

    @property
    def elapsed(self) -> float:
        end = self._clock() if self._stopped is None else self._stopped
        return end - self._started

    @property
    def buffered(self) -> int:
        stream = self._buffered
        return 0 if stream is None else int(stream.statistics().current_buffer_used)

    @property
    def remaining(self) -> int | None:
        """Meetings not finished yet (running ones included); ``None`` without a total."""
        if self.total is None:
            return None
        finished = self.done + self.failed + self.skipped + self.skipped_failed
        return max(0, self.total - finished)

    @property
    def pending(self) -> int | None:
        """Meetings not started yet; ``None`` without a total."""
        remaining = self.remaining
        return None if remaining is None else max(0, remaining - self.running)

    @property
    def eta(self) -> float | None:
        """Seconds until the last meeting is done, at the recent pace; ``None`` if unknown."""
        remaining = self.remaining
        if remaining is None:
            return None
        if remaining == 0:
            return 0.0
        finished = self.done + self.failed
        pages_per_meeting = self.pages / finished if finished else 1.0
        # Pages cost one request each; at a steady state the request rate is the page rate.
        per_second = self.rate
        if per_second <= 0.0:
            elapsed = self.elapsed
            per_second = self.pages / elapsed if elapsed > 0 and self.pages else 0.0
        if per_second <= 0.0:
            per_second = self.limit or 0.0
        if per_second <= 0.0:
            return None
        return remaining * max(pages_per_meeting, 1.0) / per_second

    def snapshot(self) -> dict[str, Any]:
        """Every counter as a plain dict (for a log line or a JSON status endpoint)."""
        return {
            "total": self.total,
            "taken": self.taken,
            "pending": self.pending,
            "running": self.running,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "skipped_failed": self.skipped_failed,
            "pages": self.pages,
            "participants": self.participants,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "rate": self.rate,
            "limit": self.limit,
            "concurrency": self.concurrency,
            "buffered": self.buffered,
            "elapsed": self.elapsed,
            "eta": self.eta,
        }

    def __repr__(self) -> str:
        total = "?" if self.total is None else str(self.total)
        limit = "unlimited" if self.limit is None else f"{self.limit:.3g}/s"
        eta = self.eta
        eta_text = "?" if eta is None else f"{eta:.0f}s"
        return (
            f"<FanOutProgress done={self.done}/{total} running={self.running} failed={self.failed}"
            f" skipped={self.skipped} pages={self.pages} participants={self.participants}"
            f" requests={self.requests} retries={self.retries} 429s={self.rate_limited}"
            f" rate={self.rate:.3g}/s limit={limit} concurrency={self.concurrency} eta={eta_text}>"
        )
