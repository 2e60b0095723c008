"""Progress displays: log lines without a terminal, a live bar on one, nothing with -q."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import anyio
import pytest

from feishu_vc_async.export._progress import (
    LogProgress,
    ProgressDisplay,
    RichProgress,
    make_display,
)
from feishu_vc_async.ratelimit import RateLimit

LIMIT = RateLimit(100, 6)


@dataclass
class _Counters:
    """What a display reads of a run (``RunCounters``); ``ExportRun`` in real runs."""

    meetings_total: int = 500
    meetings_done: int = 120
    meetings_failed: int = 2
    pages: int = 300
    participants: int = 12000
    requests: int = 310
    retries: int = 3
    rate_limited: int = 1
    rate: float = 16.5
    rate_limit: RateLimit | None = LIMIT
    elapsed: float = 20.0
    eta: float | None = 95.0


_snap = _Counters()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_mode_picks_by_terminal() -> None:
    assert type(make_display("auto", _snap, stream=io.StringIO())) is LogProgress
    assert type(make_display("auto", _snap, stream=_Tty())) is RichProgress
    assert type(make_display("none", _snap, stream=_Tty())) is ProgressDisplay


@pytest.mark.virtual_time
async def test_log_lines_every_interval() -> None:
    stream = io.StringIO()
    async with make_display("log", _snap, log_interval=5.0, stream=stream):
        await anyio.sleep(16.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # at 5, 10 and 15 s
    assert lines[0] == (
        "export: meetings 122/500 (failed 2), pages 300, participants 12000, requests 310 "
        "at 16.5/s of 16.7/s, retries 3, 429s 1, elapsed 20s, ETA 01:35"
    )


@pytest.mark.virtual_time
async def test_bar_shows_every_counter() -> None:
    stream = _Tty()
    async with make_display("bar", _snap, stream=stream):
        await anyio.sleep(1.0)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue())
    for part in ("122/500", "2 failed", "ETA 01:35", "16.5/s of 16.7/s", "pages 300"):
        assert part in text
    for part in ("participants 12000", "retries 3", "429s 1"):
        assert part in text
