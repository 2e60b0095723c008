"""``feishu-vc sync --db URL``: keep a database current with the meetings that end.

The first run backfills the meetings that ended in ``--since``; then every ``--interval``
a cycle lists what ended since the watermark kept in the database and fetches the new
meetings (``feishu_vc_async.sync``). ``--once`` catches up and exits, for cron.
``--broker URL``: the same cycles, each window fetched by ``feishu-vc worker``s
(``_sync_broker``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from ..client import VCClient
from ..errors import ConfigError
from ..events import LongConnectionError
from ..export import ExportError, ExportRun
from ..export._run import Watch
from ..models import UserIdType
from ..sync import Cycle, EventSync, Sync, SyncJob, Taken, open_inbox
from ._events import EventSettings, add_event_arguments, event_settings, follow, taken_line
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from ._fetching import add_fetching_arguments
from ._options import ClientSettings, add_client_arguments, client_settings
from ._progress import ProgressDisplay, add_show_arguments, make_display, view_of
from ._range import add_filter_arguments
from ._summary import fatal_text
from ._sync_broker import add_broker_sync_arguments, broker_sync_command
from ._sync_parts import cycle_head, job_from_args, next_cycle

__all__ = ["add_sync_arguments", "cycle_line", "sync_command"]


@dataclass(frozen=True, slots=True)
class SyncCommand:
    job: SyncJob
    once: bool
    progress: str
    log_interval: float
    quiet: bool
    client: ClientSettings
    events: EventSettings | None = None
    db: tuple[str, str | None, str] = ("", None, "")  # the URL, schema, table prefix


def command_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> SyncCommand:
    """Parsed ``sync`` arguments → :class:`SyncCommand`, every option checked."""
    job = job_from_args(args)
    client = client_settings(args, env)
    return SyncCommand(
        job=job,
        once=args.once,
        progress="none" if args.quiet else args.progress,
        log_interval=args.log_interval,
        quiet=args.quiet,
        client=client,
        events=event_settings(args, env, client),
        db=(args.db, args.db_schema, args.table_prefix),
    )


def cycle_line(cycle: Cycle, *, where: str, interval: float | None) -> str:
    """The summary of one cycle."""
    run: ExportRun = cycle.run
    failed = f", {len(run.failures)} failed (asked again next cycle)" if run.failures else ""
    head = cycle_head(cycle.number, cycle.listed, cycle.listed_from, cycle.listed_to, cycle.new)
    return (
        f"{head}, {cycle.rows} participants → {where}{failed}, {cycle.requests} requests in "
        f"{cycle.seconds:.1f} s{next_cycle(interval, cycle.seconds)}"
    )


async def _run(cmd: SyncCommand, out: TextIO, err: TextIO) -> Cycle:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:  # SIGTERM as Ctrl-C: the meeting in hand is committed or dropped
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)

    def watch(run: ExportRun) -> ProgressDisplay:
        return make_display(
            cmd.progress, lambda: view_of(run), log_interval=cmd.log_interval, stream=err
        )

    def said(cycle: Cycle) -> None:
        if not cmd.quiet:
            interval = None if cmd.once else cmd.job.interval
            if cmd.events is not None:
                interval = cmd.events.following.reconcile
            print(cycle_line(cycle, where=cmd.job.output.where, interval=interval), file=out)
            out.flush()

    async with cmd.client.open() as client:
        if cmd.events is not None:
            return await _follow(cmd, cmd.events, client, watch, said, out)
        sync = Sync(client, cmd.job, watch=watch, on_cycle=said)
        return await sync.run(once=cmd.once)


async def _follow(
    cmd: SyncCommand,
    events: EventSettings,
    client: VCClient,
    watch: Watch,
    said: Callable[[Cycle], None],
    out: TextIO,
) -> Cycle:
    """Follow events until cancelled or a fatal error (the last cycle returned)."""
    cycles: list[Cycle] = []

    def cycled(cycle: Cycle) -> None:
        cycles.append(cycle)
        said(cycle)

    def taken(taken: Taken) -> None:
        if not cmd.quiet:
            print(taken_line(taken, where=cmd.job.output.where), file=out)
            out.flush()

    url, schema, prefix = cmd.db
    async with open_inbox(url, schema=schema, table_prefix=prefix) as inbox:
        sync = EventSync(
            client, cmd.job, inbox, events.following, watch=watch, on_cycle=cycled, on_taken=taken
        )

        def following(sources: str) -> None:
            if not cmd.quiet:
                print(f"sync: following events from {sources}", file=out)
                out.flush()

        await follow(events, sync, cmd.client, following)
    return cycles[-1]


def sync_command(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``feishu-vc sync``: returns the exit code (0, 1, 2, 130 or 143)."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    if args.broker:  # the workers fetch each cycle's window
        return broker_sync_command(args, out=stdout, err=stderr)
    try:
        cmd = command_from_args(args, env)
        last = asyncio.run(_run(cmd, stdout, stderr))
    except (ConfigError, ExportError) as exc:
        print(f"feishu-vc sync: error: {exc}", file=stderr)
        return EXIT_USAGE
    except LongConnectionError as exc:
        print(f"feishu-vc sync: error: the long connection: {exc}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("feishu-vc sync: interrupted; every meeting committed is kept", file=stderr)
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        print("feishu-vc sync: terminated; every meeting committed is kept", file=stderr)
        return EXIT_TERMINATED
    if last.run.fatal is not None:
        reason = fatal_text(
            last.run.fatal,
            base_url=cmd.client.base_url,
            redis=cmd.client.redis_url is not None,
            redact_pii=cmd.job.output.redact_pii,
        )
        print(f"feishu-vc sync: error: {reason}", file=stderr)
        return EXIT_USAGE
    return EXIT_OK if last.caught_up else EXIT_FAILURES


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``sync`` subcommand's options."""
    db = parser.add_argument_group("the database")
    db.add_argument(
        "--db",
        required=True,
        metavar="URL",
        help="postgresql://user@host:port/db or sqlite:///path/to.db (tables "
        "feishu_vc_meetings and feishu_vc_participants, created if missing)",
    )
    db.add_argument("--db-schema", metavar="NAME", help="PostgreSQL: the schema of the tables")
    db.add_argument("--table-prefix", default="", metavar="PREFIX", help="before each table name")
    db.add_argument(
        "--redact-pii",
        action="store_true",
        help="blank phone, email, public_ip, internal_ip and employee_id in every row",
    )
    cycles = parser.add_argument_group("cycles")
    cycles.add_argument(
        "--since",
        default="30d",
        metavar="SPAN",
        help="the first run backfills the meetings that ended this long ago (default 30d)",
    )
    cycles.add_argument(
        "--interval", default="5m", metavar="SPAN", help="between cycles (default 5m)"
    )
    cycles.add_argument(
        "--overlap",
        default="1h",
        metavar="SPAN",
        help="how late the platform may list a meeting after its end; each cycle looks "
        "back this far behind the last (default 1h)",
    )
    cycles.add_argument("--once", action="store_true", help="catch up once and exit (for cron)")
    filters = parser.add_argument_group("which meetings (meeting_list's filters)")
    add_filter_arguments(filters)
    credentials = add_client_arguments(parser, participant_list=True)
    credentials.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of user_id in filters and rows (default open_id)",
    )
    add_event_arguments(parser)
    add_fetching_arguments(parser)
    add_broker_sync_arguments(parser)
    add_show_arguments(parser)
