"""``feishu-vc export``: its options, the job they describe, and the summary.

Exit codes: see ``_main``. Anything wrong with the options is a ``ConfigError`` (exit
code 2) raised before any request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from .._constants import MAX_RETRIES, PAGE_SIZE_ITER_DEFAULT
from ..errors import ConfigError
from ..export._checkpoint import CheckpointError
from ..export._config import DEFAULT_RATE_LIMIT, ENV_REDIS_URL, ExportConfig, redact_url
from ..export._input import MeetingsFileError, load_meetings
from ..export._lock import OutputInUseError
from ..export._progress import in_first_period
from ..export._range import MeetingRange
from ..export._rows import ALL_COLUMNS, JOINABLE_COLUMNS, parse_fields
from ..export._run import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, ExportRun, run_export
from ..export._sink import SinkPaths, error_text
from ..export._writers import OUTPUT_FORMATS, OutputFormat, format_from_path
from ..models import MeetingQuery, UserIdType
from ..ratelimit import RateLimit
from ._credentials import add_credential_arguments, resolve_credentials
from ._range import add_range_arguments, range_from_args

__all__ = [
    "add_export_arguments",
    "add_meeting_list_rate_argument",
    "add_shared_pacing_arguments",
    "config_from_args",
    "export_command",
    "print_summary",
    "rate_option",
    "redis_url_from",
]

_MAX_LISTED_FAILURES = 20


def _same_file(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would overwrite ``b``.

    By identity (device and inode) when both exist: a hard link to the meetings file has
    another path but the same bytes. By resolved path when one does not exist yet.
    """
    try:
        return os.path.samestat(a.stat(), b.stat())
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop: opening it fails later, and says so
        return False


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> ExportConfig:
    """Turn parsed ``export`` arguments (see ``cli.py``) into an :class:`ExportConfig`."""
    out = Path(args.out)
    fmt: OutputFormat | None = args.format or format_from_path(out)
    if fmt is None:
        raise ConfigError(
            f"--out {out}: cannot tell the format from the extension; use .jsonl, .csv or "
            f".parquet, or --format {{{','.join(OUTPUT_FORMATS)}}}"
        )
    by_range = args.since is not None or args.until is not None
    if args.meetings is not None and by_range:
        raise ConfigError("give either --meetings or --since/--until, not both")
    if args.meetings is None and not by_range:
        raise ConfigError(
            "which meetings? --since A --until B (find them by date range) or "
            "--meetings FILE (a list of them)"
        )
    if by_range and (args.since is None or args.until is None):
        raise ConfigError("a date range needs both --since and --until")
    try:
        columns = parse_fields(args.fields, JOINABLE_COLUMNS if by_range else ALL_COLUMNS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rate = rate_option("--rate-limit", args.rate_limit)
    listing_rate = rate_option("--meeting-list-rate-limit", args.meeting_list_rate_limit)
    user_id_type = UserIdType(args.user_id_type)
    meeting_range = range_from_args(args, user_id_type=user_id_type) if by_range else None
    redis_url = redis_url_from(args, env)
    creds = resolve_credentials(args, env, redis_url=redis_url, redis_prefix=args.redis_prefix)
    if args.meetings is not None and _same_file(out, Path(args.meetings)):
        raise ConfigError("--out is the meetings file; choose another output path")
    return ExportConfig(
        meetings=None if args.meetings is None else Path(args.meetings),
        meeting_range=meeting_range,
        meetings_format=args.meetings_format,
        out=out,
        fmt=fmt,
        columns=columns,
        redact_pii=args.redact_pii,
        csv_raw=args.csv_raw,
        resume=args.resume,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        app_id=creds.app_id,
        app_secret=creds.app_secret,
        access_token=creds.access_token,
        token_provider=creds.token_provider,
        base_url=creds.base_url,
        rate_limit=rate,
        meeting_list_rate_limit=listing_rate,
        concurrency=args.concurrency,
        page_size=args.page_size,
        redis_url=redis_url,
        redis_prefix=args.redis_prefix,
        redis_fallback=args.redis_fallback,
        user_id_type=user_id_type,
        max_retries=MAX_RETRIES if args.max_retries is None else args.max_retries,
        progress="none" if args.quiet else args.progress,
        log_interval=args.log_interval,
        quiet=args.quiet,
    )


def redis_url_from(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """``--redis-url`` or ``$FEISHU_VC_REDIS_URL``, checked to be a Redis URL."""
    redis_url: str | None = args.redis_url or env.get(ENV_REDIS_URL) or None
    if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--redis-url {redact_url(redis_url)!r}: expected redis://host:port/db")
    return redis_url


def rate_option(option: str, text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def add_meeting_list_rate_argument(pacing: argparse._ArgumentGroup) -> None:
    pacing.add_argument(
        "--meeting-list-rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/PERIOD",
        help=f"meeting_list's own budget, paced apart from participant_list's (default "
        f"{DEFAULT_RATE_LIMIT}, the platform's limit)",
    )


def add_shared_pacing_arguments(pacing: argparse._ArgumentGroup) -> None:
    """Redis and retries: the pacing options every command that calls the platform has."""
    pacing.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"share the rate limit with other processes through Redis (env {ENV_REDIS_URL})",
    )
    pacing.add_argument(
        "--redis-fallback",
        action="store_true",
        help="if Redis cannot be reached, pace this process alone for a while (with a "
        "warning) instead of stopping; processes then no longer share one budget",
    )
    pacing.add_argument(
        "--redis-prefix",
        default="feishu_vc",
        help="key prefix in Redis; processes sharing a limit use the same (default feishu_vc)",
    )
    pacing.add_argument(
        "--max-retries", type=int, help="attempts after the first for a transient failure"
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` subcommand's options (kept beside the code that reads them)."""
    add_range_arguments(parser, required=False)
    io_group = parser.add_argument_group("input and output")
    io_group.add_argument(
        "--meetings",
        metavar="FILE",
        help="instead of a date range: a CSV or JSONL of meetings with meeting_no, "
        "meeting_start_time, meeting_end_time (unix seconds or ISO 8601 with offset) and "
        "optional meeting_status, user_id, room_id, webinar_user_role, user_id_type (a file "
        "`feishu-vc meetings` wrote is one)",
    )
    io_group.add_argument(
        "--meetings-format",
        choices=("csv", "jsonl"),
        help="format of --meetings (default: from its extension, else its first line)",
    )
    io_group.add_argument(
        "--out", required=True, metavar="FILE", help="output file (.jsonl, .csv, .parquet)"
    )
    io_group.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's extension)"
    )
    io_group.add_argument(
        "--fields",
        metavar="COL,COL",
        help="columns to write, in this order (default: meeting_no, meeting_start_time, "
        "meeting_end_time, then every participant field); a range export can join meeting "
        "columns too: meeting_topic, organizer, meeting_type, number_of_participants, ... "
        "(see the README)",
    )
    io_group.add_argument(
        "--redact-pii",
        action="store_true",
        help="blank phone, email, public_ip, internal_ip and employee_id in every row",
    )
    io_group.add_argument(
        "--csv-raw",
        action="store_true",
        help="write CSV cells exactly as sent; by default a text cell starting with = + - @, "
        "a tab or a carriage return gets a leading ' so a spreadsheet does not run it",
    )
    io_group.add_argument(
        "--resume",
        action="store_true",
        help="continue from FILE.checkpoint.json (starts afresh when there is none); "
        "meetings that failed on a transient error are asked again, those that failed for "
        "good (no such meeting, data gone, no permission) are not",
    )
    io_group.add_argument(
        "--retry-failed",
        action="store_true",
        help="as --resume, and ask again for the meetings that failed for good too",
    )
    io_group.add_argument(
        "--overwrite",
        action="store_true",
        help="start again: replace an existing --out and discard its checkpoint (without "
        "it, an --out that is not this export's own output is refused)",
    )

    auth = add_credential_arguments(parser)
    auth.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of user_id in queries and rows (default open_id; a column overrides)",
    )

    pacing = parser.add_argument_group("pacing")
    pacing.add_argument(
        "--rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/PERIOD",
        help=f"requests per period, such as 100/60s or 20/1s (default {DEFAULT_RATE_LIMIT}, "
        "participant_list's platform limit)",
    )
    add_meeting_list_rate_argument(pacing)
    pacing.add_argument(
        "--concurrency", type=int, help="meetings fetched at once (default: the fan-out's)"
    )
    pacing.add_argument(
        "--page-size",
        type=int,
        default=PAGE_SIZE_ITER_DEFAULT,
        help=f"participants per request, 20..100 (default {PAGE_SIZE_ITER_DEFAULT})",
    )
    add_shared_pacing_arguments(pacing)

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


def print_summary(run: ExportRun, *, out: TextIO, err: TextIO, quiet: bool) -> None:
    """The end of a run: what was exported, at what rate, and what was not (with log ids)."""
    paths = run.paths
    if run.fatal is not None:
        print(f"feishu-vc export: error: {run.fatal}", file=err)
        if run.sink.started:
            print(f"  stopped; the checkpoint {paths.checkpoint} is consistent", file=err)
        else:
            print("  stopped before writing anything; run the same command again", file=err)
        return
    if not quiet:
        if run.already_complete:
            given_up = f", {len(run.unexported)} failed for good" if run.unexported else ""
            print(
                f"Nothing to do: the export to {paths.out} is finished "
                f"({run.meetings_done}/{run.meetings_total} meetings{given_up}, "
                f"{run.rows_total} rows); nothing was requested.",
                file=out,
            )
        else:
            failed = run.meetings_failed
            print(
                f"Exported {run.meetings_done} of {run.meetings_total} meetings"
                + (f" ({failed} failed)" if failed else "")
                + f", {run.rows_total} participants → {paths.out}",
                file=out,
            )
            _print_discovery(run, out)
            if run.meetings_done_before:
                print(
                    f"  resumed: {run.meetings_done_before} meetings were done by an earlier "
                    f"run; this run wrote {run.rows} rows in {run.pages} pages",
                    file=out,
                )
            print(
                f"  {run.requests} requests ({run.retries} retries, {run.rate_limited} "
                f"rate-limited) in {run.elapsed:.1f} s: {_achieved_text(run)}",
                file=out,
            )
    if run.unexported:
        _print_unexported(run, err if quiet else out)


def _print_discovery(run: ExportRun, out: TextIO) -> None:
    """A range export: the instants the range was read as, and what discovery found."""
    state = run.sink.discovery
    asked = run.meeting_range
    if state is None or asked is None:
        return
    used = MeetingRange(state.range, asked.zone, asked.since_text, asked.until_text)
    print(f"  range: {used.describe()}", file=out)
    print(f"  discovery: {run.discovery}", file=out)
    if run.discovery_error is not None:
        print(
            f"  discovery stopped early: {error_text(run.discovery_error, redact_pii=True)}; "
            "the meetings found were exported: run the same command with --resume to "
            "continue the listing",
            file=out,
        )


def _achieved_text(run: ExportRun) -> str:
    limit = run.rate_limit
    achieved = run.requests / run.elapsed if run.elapsed > 0 else 0.0
    if limit is None:
        return f"{achieved:.3g} req/s, no limit"
    if in_first_period(run):
        # Too short to be a rate: the pacing's first request goes at once, and a few
        # requests over a fraction of a second read as a multiple of the limit.
        return (
            f"all within the limit's first period ({limit}: at most {limit.requests} "
            "requests in any period); too short a run to measure a rate"
        )
    return (
        f"{achieved:.3g} req/s achieved, limit {limit} = "
        f"{limit.requests / limit.period:.3g} req/s"
    )


def _print_unexported(run: ExportRun, stream: TextIO) -> None:
    records = run.unexported
    print(f"Meetings not exported (also in {run.paths.failures}):", file=stream)
    for record in records[:_MAX_LISTED_FAILURES]:
        code = record.code if record.code is not None else "-"
        kind = "for good" if record.permanent else "transient"
        print(
            f"  {record.meeting_no}  code={code}  {record.message}  "
            f"log_id={record.log_id or '-'}  ({kind})",
            file=stream,
        )
    more = len(records) - _MAX_LISTED_FAILURES
    if more > 0:
        print(f"  ... and {more} more", file=stream)
    permanent = sum(1 for r in records if r.permanent)
    transient = len(records) - permanent
    if transient:
        print(
            f"  {transient} failed on a transient error: run the same command with --resume "
            "to retry them",
            file=stream,
        )
    if permanent:
        print(
            f"  {permanent} failed for good (no such meeting, data gone, no permission, a "
            "refused parameter): --resume does not ask again, --retry-failed does",
            file=stream,
        )
    if run.finished and not run.already_complete:
        print(
            "  The export is finished: every other meeting is in the output.",
            file=stream,
        )


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
        queries = (
            []
            if cfg.meetings is None
            else load_meetings(cfg.meetings, fmt=cfg.meetings_format, user_id_type=cfg.user_id_type)
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
    except (CheckpointError, ConfigError, OutputInUseError, ImportError) as exc:
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
