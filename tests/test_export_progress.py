"""Progress displays: log lines without a terminal, a live bar on one, nothing with -q."""

from __future__ import annotations

import io
import re

import anyio

from feishu_vc_async.export._progress import (
    LogProgress,
    ProgressDisplay,
    RichProgress,
    Snapshot,
    make_display,
)


def _snap(done: int = 120) -> Snapshot:
    return Snapshot(
        meetings_total=500,
        meetings_done=done,
        meetings_failed=2,
        pages=300,
        participants=12000,
        requests=310,
        retries=3,
        rate_limited=1,
        rate=16.5,
        limit_rate=100 / 6,
        elapsed=20.0,
        eta=95.0,
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_mode_picks_by_terminal() -> None:
    assert type(make_display("auto", _snap, stream=io.StringIO())) is LogProgress
    assert type(make_display("auto", _snap, stream=_Tty())) is RichProgress
    assert type(make_display("none", _snap, stream=_Tty())) is ProgressDisplay


async def test_log_lines_every_interval() -> None:
    stream = io.StringIO()
    async with make_display("log", _snap, log_interval=0.05, stream=stream):
        await anyio.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert lines[0] == (
        "export: meetings 122/500 (failed 2), pages 300, participants 12000, requests 310 "
        "at 16.5/s of 16.7/s, retries 3, 429s 1, elapsed 20s, ETA 01:35"
    )


async def test_bar_shows_every_counter() -> None:
    stream = _Tty()
    async with make_display("bar", _snap, stream=stream):
        await anyio.sleep(0.05)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue())
    for part in ("122/500", "2 failed", "ETA 01:35", "16.5/s of 16.7/s", "pages 300"):
        assert part in text
    for part in ("participants 12000", "retries 3", "429s 1"):
        assert part in text
