"""Progress of an export: a live rich bar on a terminal, log lines to stderr otherwise.

Both read one :class:`Snapshot` taken every tick; neither holds state of its own, so
what the bar shows and what the summary says come from the same counters.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["ProgressDisplay", "Snapshot", "make_display"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    meetings_total: int
    meetings_done: int  # finished, including those finished by an earlier run
    meetings_failed: int
    pages: int
    participants: int
    requests: int
    retries: int
    rate_limited: int
    rate: float  # requests/s over the last few seconds
    limit_rate: float | None  # the configured limit in requests/s
    elapsed: float
    eta: float | None  # seconds, when known

    @property
    def meetings_finished(self) -> int:
        return self.meetings_done + self.meetings_failed


def _eta_text(eta: float | None) -> str:
    if eta is None:
        return "--:--"
    eta = max(0.0, eta)
    minutes, seconds = divmod(int(eta + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _rate_text(snap: Snapshot) -> str:
    limit = "off" if snap.limit_rate is None else f"{snap.limit_rate:.3g}/s"
    return f"{snap.rate:.3g}/s of {limit}"


def format_log_line(snap: Snapshot) -> str:
    return (
        f"export: meetings {snap.meetings_finished}/{snap.meetings_total} "
        f"(failed {snap.meetings_failed}), pages {snap.pages}, participants {snap.participants}, "
        f"requests {snap.requests} at {_rate_text(snap)}, retries {snap.retries}, "
        f"429s {snap.rate_limited}, elapsed {snap.elapsed:.0f}s, ETA {_eta_text(snap.eta)}"
    )


class ProgressDisplay:
    """Ticks ``snapshot`` every ``interval`` seconds and shows it; a no-op base."""

    interval = 1.0

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProgressDisplay:
        self.start()
        self._task = asyncio.create_task(self._tick(), name="export-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                # Ours ended; if our caller is being cancelled too, let that continue.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    self.stop()
                    raise
        self.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.show(self._snapshot())

    def start(self) -> None:
        pass

    def show(self, snap: Snapshot) -> None:
        pass

    def stop(self) -> None:
        pass


class LogProgress(ProgressDisplay):
    def __init__(
        self, snapshot: Callable[[], Snapshot], *, interval: float, stream: TextIO
    ) -> None:
        super().__init__(snapshot)
        self.interval = interval
        self._stream = stream

    def show(self, snap: Snapshot) -> None:
        print(format_log_line(snap), file=self._stream, flush=True)


class RichProgress(ProgressDisplay):
    """Two lines, redrawn in place: the meetings bar with ETA, then the request counters."""

    interval = 0.25

    def __init__(self, snapshot: Callable[[], Snapshot], *, stream: TextIO) -> None:
        super().__init__(snapshot)
        try:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.text import Text
        except ImportError as exc:  # pragma: no cover - the dev install has rich
            raise ImportError(
                "the progress bar needs rich: pip install 'feishu-vc-async[cli]' "
                "(or pass --progress log)"
            ) from exc
        self._bar: Any = Progress(
            TextColumn("[bold]meetings"),
            BarColumn(bar_width=30),
            TextColumn(
                "{task.completed}/{task.total}{task.fields[failed]} · ETA {task.fields[eta]}"
            ),
        )
        self._text: Any = Text()
        # auto_refresh off: redrawn by our own tick, so no extra thread.
        self._live: Any = Live(
            Group(self._bar, self._text),
            console=Console(file=stream),
            auto_refresh=False,
            transient=False,
        )
        self._task_id: Any = None

    def start(self) -> None:
        snap = self._snapshot()
        self._task_id = self._bar.add_task(
            "export", total=snap.meetings_total, completed=snap.meetings_finished, failed="", eta=""
        )
        self._live.start()
        self.show(snap)

    def show(self, snap: Snapshot) -> None:
        failed = f" ([red]{snap.meetings_failed} failed[/red])" if snap.meetings_failed else ""
        self._bar.update(
            self._task_id,
            completed=snap.meetings_finished,
            failed=failed,
            eta=_eta_text(snap.eta),
        )
        self._text.plain = (
            f"requests {snap.requests} at {_rate_text(snap)} · pages {snap.pages} · "
            f"participants {snap.participants} · retries {snap.retries} · "
            f"429s {snap.rate_limited}"
        )
        self._live.refresh()

    def stop(self) -> None:
        if self._task_id is not None:
            self.show(self._snapshot())
            self._live.stop()
            self._task_id = None


def make_display(
    mode: str,
    snapshot: Callable[[], Snapshot],
    *,
    log_interval: float = 5.0,
    stream: TextIO | None = None,
) -> ProgressDisplay:
    """``auto``: a bar when ``stream`` is a terminal, log lines otherwise; ``none``: nothing."""
    out = stream if stream is not None else sys.stderr
    if mode == "none":
        return ProgressDisplay(snapshot)
    if mode == "bar":
        return RichProgress(snapshot, stream=out)
    if mode == "auto" and out.isatty():
        try:
            return RichProgress(snapshot, stream=out)
        except ImportError:  # without the `cli` extra a terminal gets log lines
            pass
    return LogProgress(snapshot, interval=log_interval, stream=out)
