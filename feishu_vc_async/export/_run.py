"""The export job: meetings file → fan-out → rows on disk, with checkpoint and summary.

``export_command`` is what ``feishu-vc export`` runs; ``run_export`` is the async core,
also used by ``feishu-vc demo`` against its in-process emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .._constants import MAX_RETRIES
from ..client import VCClient
from ..errors import AuthError, RateLimiterError
from ..fanout import MeetingFailure, PageItem, Progress, Resume
from ..models import MeetingQuery
from ..ratelimit import RateLimit, RateLimiter
from ._checkpoint import CheckpointError
from ._config import ConfigError, ExportConfig, config_from_args, redact_url
from ._input import MeetingsFileError, load_meetings
from ._progress import Snapshot, make_display
from ._sink import ExportSink, FailureRecord, SinkPaths, failure_record

__all__ = ["ExportOutcome", "export_command", "print_summary", "run_export"]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
_MAX_LISTED_FAILURES = 20


@dataclass
class ExportOutcome:
    paths: SinkPaths
    meetings_total: int
    meetings_done: int = 0  # finished, earlier runs included
    meetings_done_before: int = 0  # finished by earlier runs (resume)
    failures: list[FailureRecord] = field(default_factory=list)
    rows_total: int = 0  # rows in the output, earlier runs included
    rows: int = 0  # rows written by this run
    pages: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    rate_limit: RateLimit | None = None
    already_complete: bool = False
    fatal: str | None = None  # a reason the whole run stopped (credentials refused, ...)

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return EXIT_USAGE
        if self.failures or self.meetings_done < self.meetings_total:
            return EXIT_FAILURES
        return EXIT_OK


def _snapshot(progress: Progress, total: int) -> Snapshot:
    return Snapshot(
        meetings_total=total,
        meetings_done=progress.done + progress.skipped,
        meetings_failed=progress.failed,
        pages=progress.pages,
        participants=progress.participants,
        requests=progress.requests,
        retries=progress.retries,
        rate_limited=progress.rate_limited,
        rate=progress.rate,
        limit_rate=progress.limit,
        elapsed=progress.elapsed,
        eta=progress.eta,
    )


def _fatal_reason(error: BaseException) -> str | None:
    """Errors that every other meeting would hit too: stop instead of failing them all."""
    if isinstance(error, AuthError):
        return f"the platform refused the credentials: {error}"
    if isinstance(error, RateLimiterError):
        return f"the shared rate limiter cannot be used: {error}"
    return None


def _make_client(cfg: ExportConfig, *, limiter: RateLimiter | None) -> VCClient:
    """A client for ``cfg`` (no I/O until entered); bad settings raise ``ConfigError``."""
    try:
        return VCClient(
            app_id=cfg.app_id,
            app_secret=cfg.app_secret,
            access_token=cfg.access_token,
            base_url=cfg.base_url,
            rate_limit=cfg.rate_limit,
            limiter=limiter,
            max_retries=MAX_RETRIES if cfg.max_retries is None else cfg.max_retries,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


async def _open_limiter(cfg: ExportConfig) -> RateLimiter | None:
    if cfg.redis_url is None:
        return None
    from ..ratelimit import RedisRateLimiter

    try:
        return RedisRateLimiter(cfg.redis_url, cfg.rate_limit, prefix=cfg.redis_prefix)
    except (TypeError, ValueError):
        # redis-py's message may quote the URL, password included: not repeated here.
        raise ConfigError(
            f"--redis-url {redact_url(cfg.redis_url)!r}: not a usable Redis URL"
        ) from None


async def run_export(
    cfg: ExportConfig,
    queries: Sequence[MeetingQuery],
    *,
    progress_stream: TextIO | None = None,
) -> ExportOutcome:
    """Export ``queries`` as ``cfg`` says. Raises ``CheckpointError`` (before any request)
    when the checkpoint does not fit; cancellation leaves the checkpoint consistent."""
    sink = ExportSink(
        cfg.out,
        fmt=cfg.fmt,
        queries=queries,
        columns=cfg.columns,
        redact_pii=cfg.redact_pii,
        page_size=cfg.page_size,
    )
    outcome = ExportOutcome(
        paths=sink.paths, meetings_total=len(queries), rate_limit=cfg.rate_limit
    )
    _make_client(cfg, limiter=None)  # checks the settings before any file is touched
    point = sink.open(resume=cfg.resume, overwrite=cfg.overwrite)
    outcome.meetings_done_before = len(point.completed & {q.key for q in queries})
    if point.already_finalized:
        outcome.already_complete = True
        outcome.meetings_done = outcome.meetings_done_before
        outcome.rows_total = sink.total_rows
        return outcome

    started = time.monotonic()
    finished = False
    limiter: RateLimiter | None = None
    try:
        limiter = await _open_limiter(cfg)
        client = _make_client(cfg, limiter=limiter)
        resume = Resume(completed=set(point.completed), next_tokens=dict(point.next_tokens))
        async with (
            client,
            client.fan_out(
                queries, concurrency=cfg.concurrency, page_size=cfg.page_size, resume=resume
            ) as results,
        ):
            total = len(queries)
            display = make_display(
                cfg.progress,
                lambda: _snapshot(results.progress, total),
                log_interval=cfg.log_interval,
                stream=progress_stream,
            )
            async with display:
                async for item in results:
                    if isinstance(item, PageItem):
                        sink.write_page(
                            item.query,
                            item.participants,
                            next_page_token=item.next_page_token,
                            is_last=item.is_last,
                        )
                        continue
                    assert isinstance(item, MeetingFailure)
                    outcome.fatal = _fatal_reason(item.error)
                    if outcome.fatal is not None:
                        break
                    outcome.failures.append(
                        failure_record(item.query, item.error, item.pages_fetched)
                    )
            progress = results.progress
            outcome.requests = progress.requests
            outcome.retries = progress.retries
            outcome.rate_limited = progress.rate_limited
        finished = True
    finally:
        outcome.elapsed = time.monotonic() - started
        try:
            if finished:
                # Final only when every meeting is in the checkpoint as finished.
                sink.finish(all_done=sink.completed == len(queries))
            else:
                sink.abort()
            sink.write_failures(outcome.failures)
        finally:
            if limiter is not None:
                await limiter.aclose()
        outcome.meetings_done = sink.completed
        outcome.rows = sink.rows_this_run
        outcome.pages = sink.pages_this_run
        outcome.rows_total = sink.total_rows
    return outcome


def print_summary(outcome: ExportOutcome, *, out: TextIO, err: TextIO, quiet: bool) -> None:
    """The end of a run: what was exported, at what rate, and what failed (with log ids)."""
    paths = outcome.paths
    if outcome.fatal is not None:
        print(f"feishu-vc export: error: {outcome.fatal}", file=err)
        print(f"  stopped; the checkpoint {paths.checkpoint} is consistent", file=err)
        return
    if not quiet:
        if outcome.already_complete:
            print(
                f"Nothing to do: {paths.out} already holds the whole export "
                f"({outcome.meetings_done}/{outcome.meetings_total} meetings, "
                f"{outcome.rows_total} rows).",
                file=out,
            )
            return
        failed = len(outcome.failures)
        print(
            f"Exported {outcome.meetings_done} of {outcome.meetings_total} meetings"
            + (f" ({failed} failed)" if failed else "")
            + f", {outcome.rows_total} participants → {paths.out}",
            file=out,
        )
        if outcome.meetings_done_before:
            print(
                f"  resumed: {outcome.meetings_done_before} meetings were done by an earlier "
                f"run; this run wrote {outcome.rows} rows in {outcome.pages} pages",
                file=out,
            )
        achieved = outcome.requests / outcome.elapsed if outcome.elapsed > 0 else 0.0
        limit = outcome.rate_limit
        limit_text = (
            "no limit"
            if limit is None
            else f"limit {limit} = {limit.requests / limit.period:.3g} req/s"
        )
        print(
            f"  {outcome.requests} requests ({outcome.retries} retries, "
            f"{outcome.rate_limited} rate-limited) in {outcome.elapsed:.1f} s: "
            f"{achieved:.3g} req/s achieved, {limit_text}",
            file=out,
        )
    if outcome.failures:
        stream = err if quiet else out
        print(f"Failed meetings (also in {paths.failures}):", file=stream)
        for record in outcome.failures[:_MAX_LISTED_FAILURES]:
            print(
                f"  {record.meeting_no}  code={record.code if record.code is not None else '-'}"
                f"  {record.message}  log_id={record.log_id or '-'}",
                file=stream,
            )
        more = len(outcome.failures) - _MAX_LISTED_FAILURES
        if more > 0:
            print(f"  ... and {more} more", file=stream)
        print("  run again with --resume to retry them", file=stream)


async def _main(
    cfg: ExportConfig, queries: Sequence[MeetingQuery], progress_stream: TextIO
) -> ExportOutcome:
    # SIGTERM ends the run like Ctrl-C does: cancel, commit the checkpoint, exit.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_export(cfg, queries, progress_stream=progress_stream)


def export_command(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``feishu-vc export``: returns the exit code (0, 1, 2, 130 or 143)."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    try:
        cfg = config_from_args(args, env)
    except ConfigError as exc:
        print(f"feishu-vc export: error: {exc}", file=stderr)
        return EXIT_USAGE
    try:
        queries = load_meetings(
            cfg.meetings, fmt=cfg.meetings_format, user_id_type=cfg.user_id_type
        )
    except MeetingsFileError as exc:
        lines = exc.report(limit=exc.REPORT_LIMIT)
        print(
            f"feishu-vc export: error: {len(exc.problems)} problem(s) in {exc.source}; "
            "nothing was requested:",
            file=stderr,
        )
        for line in lines:
            print(f"  {line}", file=stderr)
        return EXIT_USAGE
    if cfg.redis_url and not cfg.quiet:
        print(
            f"sharing the rate limit {cfg.rate_limit} through {redact_url(cfg.redis_url)}",
            file=stderr,
        )
    try:
        outcome = asyncio.run(_main(cfg, queries, stderr))
    except (CheckpointError, ConfigError, ImportError) as exc:
        print(f"feishu-vc export: error: {exc}", file=stderr)
        return EXIT_USAGE
    except OSError as exc:  # the output cannot be written: a disk full, a read-only dir
        print(f"feishu-vc export: error: cannot write the output: {exc}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _interrupted(cfg.out, "interrupted", stderr)
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        _interrupted(cfg.out, "terminated", stderr)
        return EXIT_TERMINATED
    print_summary(outcome, out=stdout, err=stderr, quiet=cfg.quiet)
    return outcome.exit_code


def _interrupted(out_path: Path, what: str, stream: TextIO) -> None:
    paths = SinkPaths.beside(out_path)
    print(
        f"feishu-vc export: {what}; the checkpoint {paths.checkpoint} is consistent: "
        "run the same command with --resume to continue",
        file=stream,
    )
