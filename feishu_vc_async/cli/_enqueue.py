"""``feishu-vc export --since A --until B --out postgresql://... --broker redis://...``:
queue the window for ``feishu-vc worker``s instead of fetching here, then watch it to
its end (``feishu_vc_async.workers._enqueue``: the database's held meetings against the
meetings the discovery noted, and the stream's pending/lag) and sum it up.

Every option is checked before anything is queued (exit 2): ``--broker`` needs a date
range and a database ``--out`` (the workers share the tables; a file is refused), and
a database URL without a password (it would travel through the queue: give the workers
``PGPASSWORD`` or a ``.pgpass``). The workers bring their own credentials and limits;
this process makes no request to the platform. Exit 0 when every meeting found is in
the tables, 1 when some failed for good (named), 130 on Ctrl-C (the workers go on).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from .._scrub import redact_url
from ..errors import ConfigError
from ..export import ExportError, is_database_url
from ..models import UserIdType
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ._outputs import output_from_args
from ._range import range_from_args
from ._tenants import add_tenants_arguments, tenants_from_args, tenants_in_database

if TYPE_CHECKING:  # the workers extra is imported only when --broker is given
    from ..workers import WindowProgress

__all__ = ["add_broker_arguments", "add_export_broker_arguments", "enqueue_command"]

_POLL = 0.25  # seconds between two looks at the database and the stream
# meeting_list filters the discover task does not pass on.
_FILTERS = (("meeting_no", "--meeting-no"), ("user_id", "--user-id"), ("room_id", "--room-id"),
            ("meeting_type", "--meeting-type"), ("include_webinars", "--include-webinars"),
            ("include_external", "--include-external"))  # fmt: skip


def add_broker_arguments(
    parser: argparse.ArgumentParser, *, queued: str = "the range", db: str = "--out"
) -> argparse._ArgumentGroup:
    """``--broker`` and ``--queue`` (``export`` and ``sync``): what is ``queued`` for the
    workers, into the database of option ``db``. Returns the group, for more options."""
    group = parser.add_argument_group("workers (instead of fetching in this process)")
    group.add_argument(
        "--broker",
        metavar="URL",
        help=f"queue {queued} for `feishu-vc worker`s on this task queue (redis://host:port/db) "
        f"and wait for them; needs a database {db} without a password",
    )
    group.add_argument(
        "--queue", metavar="NAME", help="--broker: the stream's name (default: the workers')"
    )
    return group


def add_export_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``export``'s: ``--broker``, ``--queue``, ``--chunk`` and a store app's tenants."""
    group = add_broker_arguments(parser)
    group.add_argument(
        "--chunk",
        type=int,
        metavar="N",
        help="--broker: meetings per fetch task (default 50; smaller spreads a tenant's "
        "meetings over more workers)",
    )
    add_tenants_arguments(group)


@dataclass(frozen=True, slots=True)
class _Enqueue:
    broker: str
    queue: str | None
    tenants: tuple[str, ...] | None  # None: every tenant the tables know (``_tenants``)
    start: int
    end: int
    db_url: str
    db_schema: str | None
    where: str
    chunk: int | None = None  # meetings per fetch task; None: the workers' default


def _checked(args: argparse.Namespace) -> _Enqueue:
    """``ConfigError`` for anything that cannot go to the workers, before any queueing."""
    if args.meetings is not None:
        raise ConfigError("--broker: the workers export a date range (--since/--until)")
    if args.since is None or args.until is None:
        raise ConfigError("--broker: needs a date range, --since A --until B")
    if not is_database_url(args.out):
        raise ConfigError(
            "--broker: the workers write into a database: --out postgresql://user@host/db "
            "(a file output cannot be shared by workers)"
        )
    if urlsplit(args.out).password is not None:
        raise ConfigError(
            "--broker: --out holds a password, which would travel through the queue; "
            "give the workers PGPASSWORD or a .pgpass file instead"
        )
    output = output_from_args(args, True)
    given = [flag for name, flag in _FILTERS if getattr(args, name, None)]
    if given or args.status != "ended":
        raise ConfigError(f"--broker: the workers export ended meetings unfiltered, not {given}")
    meeting_range = range_from_args(args, user_id_type=UserIdType(args.user_id_type))
    tenants = tenants_from_args(args)
    scheme = args.broker.split("://", 1)[0]
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--broker: expected redis://host:port/db, not {redact_url(args.broker)}")
    chunk: int | None = getattr(args, "chunk", None)
    if chunk is not None and chunk < 1:
        raise ConfigError(f"--chunk: expected meetings per task >= 1, not {chunk}")
    query = meeting_range.query
    return _Enqueue(
        args.broker,
        args.queue,
        tenants,
        query.start_time,
        query.end_time,
        args.out,
        args.db_schema,
        output.where,
        chunk,
    )


async def _enqueue_and_watch(job: _Enqueue, log: TextIO | None, every: float) -> WindowProgress:
    from ..workers import (
        CHUNK,
        DEFAULT_QUEUE,
        WorkerTasks,
        enqueue_window,
        make_broker,
        watch_window,
    )

    queue = job.queue or DEFAULT_QUEUE
    tenants = job.tenants
    if tenants is None:
        tenants = await tenants_in_database(job.db_url, job.db_schema)
    broker = make_broker(job.broker, queue=queue)
    await broker.startup()
    try:
        run = await enqueue_window(
            WorkerTasks(broker), tenants, job.start, job.end, job.db_url, job.db_schema,
            job.chunk or CHUNK,
        )  # fmt: skip
    finally:
        await broker.shutdown()
    loop = asyncio.get_running_loop()
    began = shown = loop.time()
    watch_args = (job.broker, queue, tenants, job.start, job.end, run, job.db_url)
    async with watch_window(*watch_args, job.db_schema) as watch:
        while not (seen := await watch.look()).done:
            if log is not None and loop.time() - shown >= every:
                shown = loop.time()
                print(_line(seen, shown - began), file=log, flush=True)
            await asyncio.sleep(_POLL)
    return seen


def _line(seen: WindowProgress, elapsed: float) -> str:
    found = "discovering" if seen.discovered is None else f"{seen.discovered} found"
    queue = f"{seen.pending} in hand, {seen.lag} waiting"
    if seen.pending is None:  # Redis away, or the stream gone (workers._enqueue)
        queue = "not known"
    return f"[{elapsed:6.1f}s] workers: {seen.held} meetings in the tables, {found}; queue: {queue}"


def enqueue_command(
    args: argparse.Namespace, env: Mapping[str, str], *, out: TextIO, err: TextIO
) -> int:
    """``export --broker``: 0, 1, 2 or 130 (module doc)."""
    try:
        job = _checked(args)
    except ConfigError as exc:
        print(f"feishu-vc export: error: {exc}", file=err)
        return EXIT_USAGE
    log = None if args.quiet or args.progress == "none" else err
    began = time.monotonic()
    try:
        seen = asyncio.run(_enqueue_and_watch(job, log, args.log_interval))
    except KeyboardInterrupt:
        print("feishu-vc export: interrupted; the workers go on with the queue", file=err)
        return EXIT_INTERRUPTED
    except (ExportError, ConfigError, ValueError, OSError) as exc:
        print(f"feishu-vc export: error: {exc}", file=err)
        return EXIT_USAGE
    _summary(job, seen, time.monotonic() - began, out if not args.quiet else None, err)
    return EXIT_OK if seen.complete else EXIT_FAILURES


def _summary(
    job: _Enqueue, seen: WindowProgress, elapsed: float, out: TextIO | None, err: TextIO
) -> None:
    failed = len(seen.missing)
    if out is not None:
        print(
            f"Exported {seen.held} of {seen.discovered} meetings"
            + (f" ({failed} failed for good)" if failed else "")
            + f" → {job.where}, by the workers of {redact_url(job.broker)} in {elapsed:.1f} s",
            file=out,
        )
    if seen.missing:
        _print_missing(seen.missing, out if out is not None else err)


def _print_missing(missing: Sequence[tuple[str, str, int]], stream: TextIO) -> None:
    print("Meetings not exported (failed for good; the workers' logs say why):", file=stream)
    for tenant, number, start in missing[:20]:
        print(f"  {number}@{start}" + (f"  tenant {tenant}" if tenant else ""), file=stream)
    if len(missing) > 20:
        print(f"  ... and {len(missing) - 20} more", file=stream)
