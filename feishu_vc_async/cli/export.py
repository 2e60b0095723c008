"""``feishu-vc export``: its options, the client and job they describe, and the run.

Options and environment → :class:`ExportCommand` (checked here: ``ConfigError``, exit
code 2, before any request) → one client (``_options``) and one
:class:`~feishu_vc_async.export.ExportJob` → :func:`~feishu_vc_async.export.export`.
The library's typed errors come back as messages with advice about flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from .._scrub import redact_url
from .._validate import positive_seconds
from ..errors import ConfigError
from ..export import (
    OUTPUT_FORMATS,
    CheckpointError,
    CheckpointMismatchError,
    DatabaseOutputError,
    ExportError,
    ExportJob,
    ExportRun,
    FileOutput,
    MeetingsFileError,
    OpenMode,
    Output,
    OutputChangedError,
    OutputExistsError,
    UnfinishedExportError,
    export,
    is_database_url,
    load_meetings,
)
from ..export._input import InputFormat
from ..export._range import MeetingRange
from ..models import MeetingQuery, UserIdType
from ._enqueue import add_export_broker_arguments, enqueue_command
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from ._fetching import add_fetching_arguments, check_fetching
from ._options import ClientSettings, add_client_arguments, client_settings
from ._outputs import output_from_args, same_file
from ._progress import ProgressDisplay, add_show_arguments, make_display, view_of
from ._range import add_range_arguments, range_from_args
from ._summary import fatal_text, print_summary

__all__ = ["ExportCommand", "add_export_arguments", "command_from_args", "export_command"]

# What to do about each of the library's refusals, in this command's flags.
_ADVICE: Final[tuple[tuple[type[ExportError], str], ...]] = (
    (UnfinishedExportError, "pass --resume to continue it or --overwrite to start again"),
    (
        CheckpointMismatchError,
        "run with the same meetings and options (format, --fields, --redact-pii, "
        "--page-size, --csv-raw), or start again with --overwrite",
    ),
    (OutputChangedError, "start again with --overwrite"),
    (CheckpointError, "start again with --overwrite"),
    (OutputExistsError, "pass --overwrite to replace it"),
    (
        DatabaseOutputError,
        "nothing half-written is kept: run the same command again once the database can be used",
    ),
)


@dataclass(frozen=True, slots=True)
class ExportCommand:
    """An export as the command line asked for it."""

    output: Output
    meetings: Path | None  # a meetings file, else the range
    meeting_range: MeetingRange | None
    meetings_format: InputFormat | None
    user_id_type: UserIdType
    mode: OpenMode
    page_size: int
    concurrency: int | None
    progress: str
    log_interval: float
    quiet: bool
    client: ClientSettings

    def job(self) -> ExportJob:
        """The job: loads the meetings file (``MeetingsFileError``, before any request)."""
        meetings: MeetingRange | Sequence[MeetingQuery]
        if self.meetings is not None:
            meetings = load_meetings(
                self.meetings, fmt=self.meetings_format, user_id_type=self.user_id_type
            )
        else:
            assert self.meeting_range is not None
            meetings = self.meeting_range
        return ExportJob(
            meetings,
            self.output,
            mode=self.mode,
            page_size=self.page_size,
            concurrency=self.concurrency,
            # Meetings past the memory budget wait on the disk chosen for the output.
            spool_dir=_spool_dir(self.output),
        )


def _spool_dir(output: Output) -> Path | None:
    if isinstance(output, FileOutput) and (spool := output.paths.out.parent).is_dir():
        return spool
    return None


def _mode(args: argparse.Namespace) -> OpenMode:
    resuming = args.resume or args.retry_failed
    if resuming and args.overwrite:
        flag = "--retry-failed" if args.retry_failed else "--resume"
        raise ConfigError(f"give either {flag} or --overwrite, not both")
    if args.retry_failed:
        return "retry_failed"
    return "resume" if args.resume else "overwrite" if args.overwrite else "new"


def _which_meetings(args: argparse.Namespace) -> bool:
    """Whether the meetings are a range (else a file); ``ConfigError`` unless exactly one."""
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
    return by_range


def command_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> ExportCommand:
    """Parsed ``export`` arguments → :class:`ExportCommand`, every option checked."""
    by_range = _which_meetings(args)
    output = output_from_args(args, by_range)
    user_id_type = UserIdType(args.user_id_type)
    meeting_range = range_from_args(args, user_id_type=user_id_type) if by_range else None
    check_fetching(args)
    try:
        positive_seconds("--log-interval", args.log_interval)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if (
        args.meetings is not None
        and not is_database_url(args.out)
        and same_file(Path(args.out), Path(args.meetings))
    ):
        raise ConfigError("--out is the meetings file; choose another output path")
    return ExportCommand(
        output=output,
        meetings=None if args.meetings is None else Path(args.meetings),
        meeting_range=meeting_range,
        meetings_format=args.meetings_format,
        user_id_type=user_id_type,
        mode=_mode(args),
        page_size=args.page_size,
        concurrency=args.concurrency,
        progress="none" if args.quiet else args.progress,
        log_interval=args.log_interval,
        quiet=args.quiet,
        # Last: the credentials and the pacing, each read once, in their own module.
        client=client_settings(args, env),
    )


async def _run(cmd: ExportCommand, job: ExportJob, stream: TextIO) -> ExportRun:
    # SIGTERM ends the run like Ctrl-C does: cancel, commit the progress, exit.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)

    def watch(run: ExportRun) -> ProgressDisplay:
        return make_display(
            cmd.progress, lambda: view_of(run), log_interval=cmd.log_interval, stream=stream
        )

    async with cmd.client.open() as client:
        return await export(client, job, watch=watch)


def _advice(exc: ExportError) -> str:
    for kind, advice in _ADVICE:
        if isinstance(exc, kind):
            return f"; {advice}"
    return ""


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
    if getattr(args, "broker", None):  # the workers fetch: queue the range and wait
        return enqueue_command(args, env, out=stdout, err=stderr)
    if args.tenants is not None or args.tenants_file is not None:
        print("feishu-vc export: error: --tenants: with --broker only", file=stderr)
        return EXIT_USAGE
    try:
        cmd = command_from_args(args, env)
        job = cmd.job()
    except ConfigError as exc:
        print(f"feishu-vc export: error: {exc}", file=stderr)
        return EXIT_USAGE
    except MeetingsFileError as exc:
        print(
            f"feishu-vc export: error: {len(exc.problems)} problem(s) in {exc.source}; "
            "nothing was requested:",
            file=stderr,
        )
        for line in exc.report(limit=exc.REPORT_LIMIT):
            print(f"  {line}", file=stderr)
        return EXIT_USAGE
    redis = cmd.client.redis_url
    if redis and not cmd.quiet:
        print(
            f"sharing the rate limit {cmd.client.rate_limit} through {redact_url(redis)}",
            file=stderr,
        )
    try:
        run = asyncio.run(_run(cmd, job, stderr))
    except ExportError as exc:
        print(f"feishu-vc export: error: {exc}{_advice(exc)}", file=stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"feishu-vc export: error: {exc}", file=stderr)
        return EXIT_USAGE
    except OSError as exc:  # the output cannot be written: a disk full, a read-only dir
        print(f"feishu-vc export: error: cannot write the output: {exc}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _interrupted(cmd.output, "interrupted", stderr)
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        _interrupted(cmd.output, "terminated", stderr)
        return EXIT_TERMINATED
    return _ended(cmd, run, stdout, stderr)


def _ended(cmd: ExportCommand, run: ExportRun, out: TextIO, err: TextIO) -> int:
    if run.fatal is not None:
        reason = fatal_text(
            run.fatal,
            base_url=cmd.client.base_url,
            redis=cmd.client.redis_url is not None,
            redact_pii=cmd.output.redact_pii,
        )
        print(f"feishu-vc export: error: {reason}", file=err)
        if run.ledger.started:
            print(f"  stopped; {cmd.output.progress_where} is consistent", file=err)
        else:
            print("  stopped before writing anything", file=err)
        return EXIT_USAGE
    print_summary(run, out=out, err=err, quiet=cmd.quiet)
    return EXIT_OK if run.complete else EXIT_FAILURES


def _interrupted(output: Output, what: str, stream: TextIO) -> None:
    again = "" if output.continues_by_default else " with --resume"
    print(
        f"feishu-vc export: {what}; {output.progress_where} is consistent: "
        f"run the same command{again} to continue",
        file=stream,
    )


def _add_io_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input and output")
    group.add_argument(
        "--meetings",
        metavar="FILE",
        help="instead of a date range: a CSV, JSONL or Parquet file of meetings with meeting_no, "
        "meeting_start_time, meeting_end_time (unix seconds or ISO 8601 with offset) and "
        "optional meeting_status, user_id, room_id, webinar_user_role, user_id_type (a file "
        "`feishu-vc meetings` wrote is one)",
    )
    group.add_argument(
        "--meetings-format",
        choices=("csv", "jsonl", "parquet"),
        help="format of --meetings (default: from its extension, else its first line)",
    )
    group.add_argument(
        "--out",
        required=True,
        metavar="FILE|URL",
        help="output file (.jsonl, .csv, .parquet), or a database: postgresql://user@host:port/db "
        "or sqlite:///path/to.db (tables feishu_vc_meetings and feishu_vc_participants; a rerun "
        "continues where the last one stopped)",
    )
    group.add_argument(
        "--db-schema",
        metavar="NAME",
        help="PostgreSQL: the schema of the tables (created if missing; default: the search path)",
    )
    group.add_argument(
        "--table-prefix",
        default="",
        metavar="PREFIX",
        help="a database: put before each table name (default none)",
    )
    group.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's extension)"
    )
    group.add_argument(
        "--fields",
        metavar="COL,COL",
        help="columns to write, in this order (default: meeting_no, meeting_start_time, "
        "meeting_end_time, then every participant field); a range export can join meeting "
        "columns too: meeting_topic, organizer, meeting_type, number_of_participants, ... "
        "(see the README)",
    )
    group.add_argument(
        "--redact-pii",
        action="store_true",
        help="blank phone, email, public_ip, internal_ip and employee_id in every row",
    )
    group.add_argument(
        "--csv-raw",
        action="store_true",
        help="write CSV cells exactly as sent; by default a text cell starting with = + - @, "
        "a tab or a carriage return gets a leading ' so a spreadsheet does not run it",
    )


def _add_mode_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("an earlier run's output")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue from FILE.checkpoint.json (starts afresh when there is none; a database "
        "output always continues its saved export); "
        "meetings that failed on a transient error are asked again, those that failed for "
        "good (no such meeting, data gone, no permission) are not",
    )
    group.add_argument(
        "--retry-failed",
        action="store_true",
        help="as --resume, and ask again for the meetings that failed for good too",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="start again: replace an existing --out and discard its checkpoint (without "
        "it, an --out that is not this export's own output is refused); a database keeps its "
        "rows, and the meetings exported again replace theirs",
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` subcommand's options."""
    add_range_arguments(parser, required=False)
    _add_io_arguments(parser)
    _add_mode_arguments(parser)
    credentials = add_client_arguments(parser, participant_list=True)
    credentials.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of user_id in queries and rows (default open_id; a column overrides)",
    )
    add_fetching_arguments(parser)
    add_show_arguments(parser)
    add_export_broker_arguments(parser)
