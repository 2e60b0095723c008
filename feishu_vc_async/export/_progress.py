"""Progress of an export: a live rich bar on a terminal, log lines to stderr otherwise.

Both read the run's own counters (:class:`RunCounters`, which ``ExportRun`` is) every
tick and hold no state of their own, so the bar, the log lines and the summary all say
what the same counters say.

While the bar is live, log lines written to the same stream (the CLI's retry warnings)
go through the bar's rich console, which prints them above the bar and redraws it;
written past it, each would leave a half-drawn bar behind. A rate is shown against the
limit only once the run has lasted a whole period of the limit: before that, the first
request goes at once (the pacing's burst) and a few requests over a fraction of a
second would read as a multiple of the limit, so the count within the first period is
shown instead.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from typing import Any, Protocol, TextIO

from .._constants import LOGGER_NAME
from ..ratelimit import RateLimit

__all__ = ["ProgressDisplay", "RunCounters", "in_first_period", "make_display"]


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
    def rate_limit(self) -> RateLimit | None: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def eta(self) -> float | None: ...
    @property
    def discovery(self) -> str | None:
        """A range export's discovery, in words (``None``: the meetings came from a file)."""
        ...


def _eta_text(eta: float | None) -> str:
    if eta is None:
        return "--:--"
    eta = max(0.0, eta)
    minutes, seconds = divmod(int(eta + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def in_first_period(snap: RunCounters) -> bool:
    """The run has not yet lasted one period of its limit (no rate to speak of yet)."""
    limit = snap.rate_limit
    return limit is not None and snap.elapsed < limit.period


def _requests_text(snap: RunCounters) -> str:
    limit = snap.rate_limit
    if limit is None:
        return f"{snap.requests} at {snap.rate:.3g}/s (no limit)"
    if in_first_period(snap):
        return f"{snap.requests} in the first {limit.period:g}s (limit {limit.requests})"
    return f"{snap.requests} at {snap.rate:.3g}/s of {limit.requests / limit.period:.3g}/s"


def _finished(snap: RunCounters) -> int:
    return snap.meetings_done + snap.meetings_failed


def format_log_line(snap: RunCounters) -> str:
    found = "" if snap.discovery is None else f"discovery: {snap.discovery}; "
    return (
        f"export: {found}meetings {_finished(snap)}/{snap.meetings_total} "
        f"(failed {snap.meetings_failed}), pages {snap.pages}, participants {snap.participants}, "
        f"requests {_requests_text(snap)}, retries {snap.retries}, "
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
    """Lines redrawn in place: the meetings bar with ETA, a range export's discovery,
    then the request counters."""

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
        self._stream = stream
        self._routed: list[tuple[logging.StreamHandler[Any], TextIO]] = []

    def start(self) -> None:
        snap = self._counters
        self._task_id = self._bar.add_task(
            "export", total=snap.meetings_total, completed=_finished(snap), failed="", eta=""
        )
        self._live.start()
        self._routed = _route_log_lines(self._stream, _ConsoleLines(self._live.console))
        self.show(snap)

    def show(self, snap: RunCounters) -> None:
        failed = f" ([red]{snap.meetings_failed} failed[/red])" if snap.meetings_failed else ""
        self._bar.update(
            self._task_id,
            total=snap.meetings_total,
            completed=_finished(snap),
            failed=failed,
            eta=_eta_text(snap.eta),
        )
        found = "" if snap.discovery is None else f"discovery: {snap.discovery}\n"
        self._text.plain = (
            f"{found}requests {_requests_text(snap)} · pages {snap.pages} · "
            f"participants {snap.participants} · retries {snap.retries} · "
            f"429s {snap.rate_limited}"
        )
        self._live.refresh()

    def stop(self) -> None:
        if self._task_id is not None:
            self.show(self._counters)
            for handler, stream in self._routed:
                handler.setStream(stream)
            self._routed = []
            self._live.stop()
            self._task_id = None


class _ConsoleLines(io.TextIOBase):
    """A text stream that prints each whole line through a rich console: above its live
    display, which is then redrawn below it."""

    def __init__(self, console: Any) -> None:
        self._console = console
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return len(text)


def _route_log_lines(
    stream: TextIO, to: Any
) -> list[tuple[logging.StreamHandler[Any], TextIO]]:
    """Point every log handler writing to ``stream`` (the library's and the root's) at
    ``to``; return them with their streams, to be put back."""
    routed: list[tuple[logging.StreamHandler[Any], TextIO]] = []
    for logger in (logging.getLogger(LOGGER_NAME), logging.getLogger()):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                routed.append((handler, handler.setStream(to) or stream))
    return routed


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
