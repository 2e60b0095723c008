"""Progress of an export: a live rich bar on a terminal, log lines to stderr otherwise.

Both read a :class:`RunView` of the run every tick (:func:`view_of`: the fan-out's
counters, the output's and the listing's, read where they are kept) and hold no state of
their own, so the bar, the log lines and the summary all say what the same counters say.

While the bar is live, log lines written to the same stream (the CLI's retry warnings)
go through the bar's rich console, which prints them above the bar and redraws it;
written past it, each would leave a half-drawn bar behind. A rate is shown against the
limit only once the run has lasted a whole period of the limit: before that, the first
request goes at once (the pacing's burst) and a few requests over a fraction of a
second would read as a multiple of the limit, so the count within the first period is
shown instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from .._constants import LOGGER_NAME
from ..export import ExportRun
from ..ratelimit import RateLimit

__all__ = [
    "ProgressDisplay",
    "RunView",
    "add_show_arguments",
    "in_first_period",
    "make_display",
    "view_of",
]


@dataclass(frozen=True, slots=True)
class RunView:
    """What a display shows of a run at one moment."""

    meetings_total: int
    meetings_done: int
    meetings_failed: int
    pages: int
    participants: int
    requests: int
    retries: int
    rate_limited: int
    rate: float
    rate_limit: RateLimit | None
    elapsed: float
    eta: float | None
    # A range export's discovery, in words (``None``: the meetings were given).
    discovery: str | None = None


def view_of(run: ExportRun) -> RunView:
    """The run as it stands: meetings from the run, pages and requests from its fan-out
    (zero before it starts), the listing from the client's meeting_list counters."""
    progress = run.progress
    discovery = None
    if run.job.range is not None:
        state = "stopped" if run.discovery_error else "listing" if run.discovering else "done"
        discovery = (
            f"{run.ledger.known} meetings found with {run.listing_requests} meeting_list "
            f"requests ({state})"
        )
    return RunView(
        meetings_total=run.ledger.known,
        meetings_done=run.meetings_done,
        meetings_failed=run.meetings_failed,
        pages=0 if progress is None else progress.pages,
        participants=0 if progress is None else progress.participants,
        requests=0 if progress is None else progress.requests,
        retries=0 if progress is None else progress.retries,
        rate_limited=0 if progress is None else progress.rate_limited,
        rate=0.0 if progress is None else progress.rate,
        rate_limit=run.client.rate_limit,
        elapsed=0.0 if progress is None else progress.elapsed,
        # How much is left is not known while meetings are still being found.
        eta=None if progress is None or run.discovering else progress.eta,
        discovery=discovery,
    )


def _eta_text(eta: float | None) -> str:
    if eta is None:
        return "--:--"
    eta = max(0.0, eta)
    minutes, seconds = divmod(int(eta + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def in_first_period(snap: RunView) -> bool:
    """The run has not yet lasted one period of its limit (no rate to speak of yet)."""
    limit = snap.rate_limit
    return limit is not None and snap.elapsed < limit.period


def _requests_text(snap: RunView) -> str:
    limit = snap.rate_limit
    if limit is None:
        return f"{snap.requests} at {snap.rate:.3g}/s (no limit)"
    if in_first_period(snap):
        return f"{snap.requests} in the first {limit.period:g}s (limit {limit.requests})"
    return f"{snap.requests} at {snap.rate:.3g}/s of {limit.requests / limit.period:.3g}/s"


def _finished(snap: RunView) -> int:
    return snap.meetings_done + snap.meetings_failed


def format_log_line(snap: RunView) -> str:
    found = "" if snap.discovery is None else f"discovery: {snap.discovery}; "
    return (
        f"export: {found}meetings {_finished(snap)}/{snap.meetings_total} "
        f"(failed {snap.meetings_failed}), pages {snap.pages}, participants {snap.participants}, "
        f"requests {_requests_text(snap)}, retries {snap.retries}, "
        f"429s {snap.rate_limited}, elapsed {snap.elapsed:.0f}s, ETA {_eta_text(snap.eta)}"
    )


Reader = Callable[[], RunView]


class ProgressDisplay:
    """Shows what ``read`` says every ``interval`` seconds; a no-op base."""

    interval = 1.0

    def __init__(self, read: Reader) -> None:
        self._read = read
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
            self.show(self._read())

    def start(self) -> None:
        pass

    def show(self, snap: RunView) -> None:
        pass

    def stop(self) -> None:
        pass


class LogProgress(ProgressDisplay):
    def __init__(self, read: Reader, *, interval: float, stream: TextIO) -> None:
        super().__init__(read)
        self.interval = interval
        self._stream = stream

    def show(self, snap: RunView) -> None:
        print(format_log_line(snap), file=self._stream, flush=True)


class RichProgress(ProgressDisplay):
    """Lines redrawn in place: the meetings bar with ETA, a range export's discovery,
    then the request counters."""

    interval = 0.25

    def __init__(self, read: Reader, *, stream: TextIO) -> None:
        super().__init__(read)
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
        snap = self._read()
        self._task_id = self._bar.add_task(
            "export", total=snap.meetings_total, completed=_finished(snap), failed="", eta=""
        )
        self._live.start()
        self._routed = _route_log_lines(self._stream, _ConsoleLines(self._live.console))
        self.show(snap)

    def show(self, snap: RunView) -> None:
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
            self.show(self._read())
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


def _route_log_lines(stream: TextIO, to: Any) -> list[tuple[logging.StreamHandler[Any], TextIO]]:
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
    read: Reader,
    *,
    log_interval: float = 5.0,
    stream: TextIO | None = None,
) -> ProgressDisplay:
    """``auto``: a bar when ``stream`` is a terminal, log lines otherwise; ``none``: nothing."""
    out = stream if stream is not None else sys.stderr
    if mode == "none":
        return ProgressDisplay(read)
    if mode == "bar":
        return RichProgress(read, stream=out)
    if mode == "auto" and out.isatty():
        try:
            return RichProgress(read, stream=out)
        except ImportError:  # without the `cli` extra a terminal gets log lines
            pass
    return LogProgress(read, interval=log_interval, stream=out)


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    """``--progress``, ``--log-interval``, ``-q`` (``export`` and ``sync``)."""
    show = parser.add_argument_group("progress")
    show.add_argument(
        "--progress",
        choices=("auto", "bar", "log", "none"),
        default="auto",
        help="live bar on a terminal, log lines otherwise (default auto)",
    )
    show.add_argument(
        "--log-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress log lines without a terminal (default 5)",
    )
    show.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary; errors only"
    )
