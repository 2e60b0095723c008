"""Progress of an export: a live rich bar on a terminal, log lines to stderr otherwise.

Both read the run's own counters (:class:`RunCounters`, which ``ExportRun`` is) every
tick and hold no state of their own, so the bar, the log lines and the summary all say
what the same counters say.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Protocol, TextIO

__all__ = ["ProgressDisplay", "RunCounters", "make_display"]


class RunCounters(Protocol):
    """What a display reads of a run (see ``ExportRun``)."""

    @property
    def meetings_total(self) -> int: ...
    @property
    def meetings_done(self) -> int: ...
    @property
    def meetings_failed(self) -> int: ...
    @property
    def pages(self) -> int: ...
    @property
    def participants(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def limit_rate(self) -> float | None: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def eta(self) -> float | None: ...


def _eta_text(eta: float | None) -> str:
    if eta is None:
        return "--:--"
    eta = max(0.0, eta)
    minutes, seconds = divmod(int(eta + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _rate_text(snap: RunCounters) -> str:
    limit = "off" if snap.limit_rate is None else f"{snap.limit_rate:.3g}/s"
    return f"{snap.rate:.3g}/s of {limit}"


def _finished(snap: RunCounters) -> int:
    return snap.meetings_done + snap.meetings_failed


def format_log_line(snap: RunCounters) -> str:
    return (
        f"export: meetings {_finished(snap)}/{snap.meetings_total} "
        f"(failed {snap.meetings_failed}), pages {snap.pages}, participants {snap.participants}, "
        f"requests {snap.requests} at {_rate_text(snap)}, retries {snap.retries}, "
        f"429s {snap.rate_limited}, elapsed {snap.elapsed:.0f}s, ETA {_eta_text(snap.eta)}"
    )


class ProgressDisplay:
    """Shows ``counters`` every ``interval`` seconds; a no-op base."""

    interval = 1.0

    def __init__(self, counters: RunCounters) -> None:
        self._counters = counters
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
            self.show(self._counters)

    def start(self) -> None:
        pass

    def show(self, snap: RunCounters) -> None:
        pass

    def stop(self) -> None:
        pass


class LogProgress(ProgressDisplay):
    def __init__(self, counters: RunCounters, *, interval: float, stream: TextIO) -> None:
        super().__init__(counters)
        self.interval = interval
        self._stream = stream

    def show(self, snap: RunCounters) -> None:
        print(format_log_line(snap), file=self._stream, flush=True)


class RichProgress(ProgressDisplay):
    """Two lines, redrawn in place: the meetings bar with ETA, then the request counters."""

    interval = 0.25

    def __init__(self, counters: RunCounters, *, stream: TextIO) -> None:
        super().__init__(counters)
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
        snap = self._counters
        self._task_id = self._bar.add_task(
            "export", total=snap.meetings_total, completed=_finished(snap), failed="", eta=""
        )
        self._live.start()
        self.show(snap)

    def show(self, snap: RunCounters) -> None:
        failed = f" ([red]{snap.meetings_failed} failed[/red])" if snap.meetings_failed else ""
        self._bar.update(
            self._task_id,
            completed=_finished(snap),
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
            self.show(self._counters)
            self._live.stop()
            self._task_id = None


def make_display(
    mode: str,
    counters: RunCounters,
    *,
    log_interval: float = 5.0,
    stream: TextIO | None = None,
) -> ProgressDisplay:
    """``auto``: a bar when ``stream`` is a terminal, log lines otherwise; ``none``: nothing."""
    out = stream if stream is not None else sys.stderr
    if mode == "none":
        return ProgressDisplay(counters)
    if mode == "bar":
        return RichProgress(counters, stream=out)
    if mode == "auto" and out.isatty():
        try:
            return RichProgress(counters, stream=out)
        except ImportError:  # without the `cli` extra a terminal gets log lines
            pass
    return LogProgress(counters, interval=log_interval, stream=out)
