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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ..client import VCClient
from ..errors import AuthError, LoginRequiredError, RateLimiterError, TokenStoreError
from ..fanout import FanOutProgress, MeetingFailure, PageItem
from ..models import MeetingQuery
from ..ratelimit import RateLimit, RateLimiter
from ._checkpoint import CheckpointError
from ._config import ConfigError, ExportConfig, config_from_args, redact_url
from ._input import MeetingsFileError, load_meetings
from ._progress import make_display
from ._sink import ExportSink, FailureRecord, SinkPaths, failure_record

__all__ = ["ExportRun", "export_command", "print_summary", "run_export"]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
_MAX_LISTED_FAILURES = 20


class ExportRun:
    """One run of an export, as the bar, the log lines and the summary all read it.

    Meetings, pages, participants, requests, rates and times are the fan-out's own
    counters (:attr:`progress`, from the moment the fan-out starts); rows are the
    sink's (what is in the output). Nothing here is a copy: a display reads this object
    while the run goes on, and the summary reads it when it is over.
    """

    def __init__(self, sink: ExportSink, *, meetings_total: int, rate_limit: RateLimit | None):
        self.sink = sink
        self.meetings_total = meetings_total
        self.rate_limit = rate_limit
        self.progress: FanOutProgress | None = None
        self.meetings_done_before = 0  # finished by earlier runs (resume)
        self.failures: list[FailureRecord] = []
        self.already_complete = False
        self.fatal: str | None = None  # why the whole run stopped (credentials refused, ...)

    @property
    def paths(self) -> SinkPaths:
        return self.sink.paths

    # --- meetings --------------------------------------------------------------------

    @property
    def meetings_done(self) -> int:
        """Meetings finished, earlier runs included."""
        if self.progress is None:
            return self.sink.completed
        return self.progress.done + self.progress.skipped

    @property
    def meetings_failed(self) -> int:
        return 0 if self.progress is None else self.progress.failed

    # --- the fan-out's counters (zero before it starts) ------------------------------

    @property
    def pages(self) -> int:
        return 0 if self.progress is None else self.progress.pages

    @property
    def participants(self) -> int:
        return 0 if self.progress is None else self.progress.participants

    @property
    def requests(self) -> int:
        return 0 if self.progress is None else self.progress.requests

    @property
    def retries(self) -> int:
        return 0 if self.progress is None else self.progress.retries

    @property
    def rate_limited(self) -> int:
        return 0 if self.progress is None else self.progress.rate_limited

    @property
    def rate(self) -> float:
        return 0.0 if self.progress is None else self.progress.rate

    @property
    def limit_rate(self) -> float | None:
        limit = self.rate_limit
        return None if limit is None else limit.requests / limit.period

    @property
    def elapsed(self) -> float:
        return 0.0 if self.progress is None else self.progress.elapsed

    @property
    def eta(self) -> float | None:
        return None if self.progress is None else self.progress.eta

    # --- the output ------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows written by this run."""
        return self.sink.rows_this_run

    @property
    def rows_total(self) -> int:
        """Rows in the output, earlier runs included."""
        return self.sink.total_rows

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return EXIT_USAGE
        if self.failures or self.meetings_done < self.meetings_total:
            return EXIT_FAILURES
        return EXIT_OK


def _fatal_reason(error: BaseException) -> str | None:
    """Errors that every other meeting would hit too: stop instead of failing them all."""
    if isinstance(error, LoginRequiredError):
        return f"the user session ended: {error}"
    if isinstance(error, TokenStoreError):
        return f"the token store cannot be used: {error}"
    if isinstance(error, AuthError):
        return f"the platform refused the credentials: {error}"
    if isinstance(error, RateLimiterError):
        return f"the shared rate limiter cannot be used: {error}"
    return None


def _make_client(cfg: ExportConfig) -> tuple[VCClient, RateLimiter | None]:
    """The run's client and its Redis limiter, if any (the run closes it); no I/O until
    the client is entered. Settings the client refuses raise ``ConfigError``."""
    limiter: RateLimiter | None = None
    if cfg.redis_url is not None:
        from ..ratelimit import RedisRateLimiter

        try:
            limiter = RedisRateLimiter(cfg.redis_url, cfg.rate_limit, prefix=cfg.redis_prefix)
        except (TypeError, ValueError):
            # redis-py's message may quote the URL, password included: not repeated here.
            raise ConfigError(
                f"--redis-url {redact_url(cfg.redis_url)!r}: not a usable Redis URL"
            ) from None
    try:
        client = VCClient(
            app_id=cfg.app_id,
            app_secret=cfg.app_secret,
            access_token=cfg.access_token,
            token_provider=cfg.token_provider,
            base_url=cfg.base_url,
            rate_limit=cfg.rate_limit,
            limiter=limiter,
            max_retries=cfg.max_retries,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return client, limiter


async def run_export(
    cfg: ExportConfig,
    queries: Sequence[MeetingQuery],
    *,
    progress_stream: TextIO | None = None,
) -> ExportRun:
    """Export ``queries`` as ``cfg`` says. Raises ``ConfigError`` or ``CheckpointError``
    (before any request) when the settings or the checkpoint do not fit; cancellation
    leaves the checkpoint consistent."""
    sink = ExportSink(
        cfg.out,
        fmt=cfg.fmt,
        queries=queries,
        columns=cfg.columns,
        redact_pii=cfg.redact_pii,
        page_size=cfg.page_size,
        csv_raw=cfg.csv_raw,
    )
    run = ExportRun(sink, meetings_total=len(queries), rate_limit=cfg.rate_limit)
    client, limiter = _make_client(cfg)  # before any file is touched
    try:
        resume = sink.open(resume=cfg.resume, overwrite=cfg.overwrite)
        run.meetings_done_before = sink.completed
        if sink.finalized:
            run.already_complete = True
            return run
        finished = False
        try:
            async with (
                client,
                client.fan_out(
                    queries, concurrency=cfg.concurrency, page_size=cfg.page_size, resume=resume
                ) as results,
            ):
                run.progress = results.progress
                display = make_display(
                    cfg.progress, run, log_interval=cfg.log_interval, stream=progress_stream
                )
                async with display:
                    async for item in results:
                        if isinstance(item, PageItem):
                            sink.write(item)
                            continue
                        assert isinstance(item, MeetingFailure)
                        run.fatal = _fatal_reason(item.error)
                        if run.fatal is not None:
                            break
                        run.failures.append(
                            failure_record(item.query, item.error, item.pages_fetched)
                        )
            finished = True
        finally:
            if finished:
                sink.finish()
            else:
                sink.abort()
            sink.write_failures(run.failures)
    finally:
        if limiter is not None:
            await limiter.aclose()
    return run


def print_summary(run: ExportRun, *, out: TextIO, err: TextIO, quiet: bool) -> None:
    """The end of a run: what was exported, at what rate, and what failed (with log ids)."""
    paths = run.paths
    if run.fatal is not None:
        print(f"feishu-vc export: error: {run.fatal}", file=err)
        print(f"  stopped; the checkpoint {paths.checkpoint} is consistent", file=err)
        return
    if not quiet:
        if run.already_complete:
            print(
                f"Nothing to do: {paths.out} already holds the whole export "
                f"({run.meetings_done}/{run.meetings_total} meetings, "
                f"{run.rows_total} rows).",
                file=out,
            )
            return
        failed = len(run.failures)
        print(
            f"Exported {run.meetings_done} of {run.meetings_total} meetings"
            + (f" ({failed} failed)" if failed else "")
            + f", {run.rows_total} participants → {paths.out}",
            file=out,
        )
        if run.meetings_done_before:
            print(
                f"  resumed: {run.meetings_done_before} meetings were done by an earlier "
                f"run; this run wrote {run.rows} rows in {run.pages} pages",
                file=out,
            )
        achieved = run.requests / run.elapsed if run.elapsed > 0 else 0.0
        limit = run.rate_limit
        limit_text = (
            "no limit"
            if limit is None
            else f"limit {limit} = {limit.requests / limit.period:.3g} req/s"
        )
        print(
            f"  {run.requests} requests ({run.retries} retries, "
            f"{run.rate_limited} rate-limited) in {run.elapsed:.1f} s: "
            f"{achieved:.3g} req/s achieved, {limit_text}",
            file=out,
        )
    if run.failures:
        stream = err if quiet else out
        print(f"Failed meetings (also in {paths.failures}):", file=stream)
        for record in run.failures[:_MAX_LISTED_FAILURES]:
            print(
                f"  {record.meeting_no}  code={record.code if record.code is not None else '-'}"
                f"  {record.message}  log_id={record.log_id or '-'}",
                file=stream,
            )
        more = len(run.failures) - _MAX_LISTED_FAILURES
        if more > 0:
            print(f"  ... and {more} more", file=stream)
        print("  run again with --resume to retry them", file=stream)


async def _main(
    cfg: ExportConfig, queries: Sequence[MeetingQuery], progress_stream: TextIO
) -> ExportRun:
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
        run = asyncio.run(_main(cfg, queries, stderr))
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
    print_summary(run, out=stdout, err=stderr, quiet=cfg.quiet)
    return run.exit_code


def _interrupted(out_path: Path, what: str, stream: TextIO) -> None:
    paths = SinkPaths.beside(out_path)
    print(
        f"feishu-vc export: {what}; the checkpoint {paths.checkpoint} is consistent: "
        "run the same command with --resume to continue",
        file=stream,
    )
