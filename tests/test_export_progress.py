"""Progress displays: log lines without a terminal, a live bar on one, nothing with -q."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from feishu_vc_async.cli.export import print_summary
from feishu_vc_async.export._progress import (
    LogProgress,
    ProgressDisplay,
    RichProgress,
    format_log_line,
    make_display,
)
from feishu_vc_async.export._run import ExportRun
from feishu_vc_async.export._sink import ExportSink
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
    discovery: str | None = None  # a range export's: "57 meetings found ..."


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
async def test_a_range_exports_discovery_is_shown_too() -> None:
    found = _Counters(discovery="57 meetings found with 1 meeting_list requests (listing)")
    stream = io.StringIO()
    async with make_display("log", found, log_interval=5.0, stream=stream):
        await anyio.sleep(6.0)
    (line,) = stream.getvalue().splitlines()
    assert line.startswith(
        "export: discovery: 57 meetings found with 1 meeting_list requests (listing); "
        "meetings 122/500"
    )
    tty = _Tty()
    async with make_display("bar", found, stream=tty):
        await anyio.sleep(1.0)
    assert "discovery: 57 meetings found" in tty.getvalue()


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


@pytest.mark.virtual_time
async def test_log_lines_during_the_bar_go_through_its_console() -> None:
    """A retry warning while the bar is live is printed above it, the bar redrawn below:
    not written through it, which leaves half-drawn bars on the screen."""
    stream = _Tty()
    handler = logging.StreamHandler(stream)  # as the CLI installs it
    logger = logging.getLogger("feishu_vc_async")
    logger.addHandler(handler)
    try:
        async with make_display("bar", _snap, stream=stream):
            await anyio.sleep(0.5)
            logger.warning("GET participant_list: retry 1/5 in 0.50s")
            await anyio.sleep(0.5)
        assert handler.stream is stream  # given back when the bar ends
        logger.warning("after the bar")
    finally:
        logger.removeHandler(handler)
    raw = stream.getvalue()
    at = raw.index("GET participant_list: retry 1/5")
    assert raw.count("retry 1/5") == 1
    assert raw[:at].endswith("\x1b[2K")  # the live lines were erased first...
    assert "122/500" in raw[at:]  # ...and the bar drawn again after it
    assert raw.endswith("after the bar\n")


def test_no_rate_against_the_limit_before_a_whole_period(tmp_path: Path) -> None:
    """3 requests in 0.4 s are 7.5 req/s, which against 100/60s reads as a violation; it
    is the pacing's first request, so the count in the first period is shown instead."""
    short = _Counters(requests=3, rate=7.5, elapsed=0.4, rate_limit=RateLimit(100, 60))
    line = format_log_line(short)
    assert "requests 3 in the first 60s (limit 100)" in line
    assert "7.5" not in line

    sink = ExportSink(
        tmp_path / "o.jsonl", fmt="jsonl", queries=[], columns=("meeting_no",),
        redact_pii=False, page_size=100,
    )
    run = ExportRun(sink, rate_limit=RateLimit(100, 60))
    for elapsed, requests in ((0.4, 3), (120.0, 198)):
        run.progress = SimpleNamespace(  # type: ignore[assignment]
            requests=requests, retries=0, rate_limited=0, elapsed=elapsed, done=0,
            skipped=0, failed=0, skipped_failed=0, pages=requests,
        )
        out = io.StringIO()
        print_summary(run, out=out, err=io.StringIO(), quiet=False)
        if elapsed < 60:
            assert "within the limit's first period (100/60s" in out.getvalue()
            assert "req/s achieved" not in out.getvalue()
        else:
            assert "1.65 req/s achieved, limit 100/60s = 1.67 req/s" in out.getvalue()
