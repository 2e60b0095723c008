"""``feishu-vc sync --db URL --broker redis://...``: the sync's cycles, each cycle's
window fetched by ``feishu-vc worker``s instead of this process.

Each cycle takes the window the in-process sync takes (``sync._state``: from the
watermark back a day and ``--overlap``, to now), queues it for the workers and watches
it to its end as ``export --broker`` does (``cli._enqueue``: the meetings the tables
hold against those the discovery found, and the stream); the watermark moves only when
every meeting found is in the tables (and the discovery's note of the window, read,
is dropped: a sync would otherwise leave a row per cycle). The sync's lock is held
throughout, as in-process: a second sync on the same tables, with or without
``--broker``, is refused.

Checked before anything is queued (exit 2), as ``export --broker`` checks: a ``--db``
without a password (it would travel through the queue), a redis:// broker, none of
meeting_list's filters (the workers list every ended meeting), and none of the options
only this process would apply (the workers fetch with their own settings into the
default tables, unredacted). Events are not taken through the workers yet:
``--webhook``/``--events`` are refused. This process makes no request to the platform
and needs no credentials: the workers bring theirs, and their limits.

One difference from the in-process sync: its first cycles skip meetings that ended
before the backfill's floor (``--since``); the workers take every meeting of the
window, so the first cycle may also take some that ended up to a day and ``--overlap``
before it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from .._constants import PAGE_SIZE_ITER_DEFAULT
from .._scrub import redact_url
from ..errors import ConfigError
from ..export import ExportError
from ..sync import SyncJob
from ..sync._state import cycle_start, end_cycle, load_state

# export --broker's pieces: its filter names, its window, its watch loop, its list of
# the meetings that failed for good (private there: another change is reshaping that
# module's options, and these are shared within cli/ only).
from ._enqueue import (
    _FILTERS,
    _Enqueue,
    _enqueue_and_watch,
    _print_missing,
    add_broker_arguments,
)
from ._exit import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from ._sync_parts import cycle_head, job_from_args, next_cycle
from ._tenants import tenants_from_args

if TYPE_CHECKING:  # the workers extra is imported only when --broker is given
    from ..workers import WindowProgress

__all__ = ["add_broker_sync_arguments", "broker_sync_command"]

# Options only a sync fetching in this process applies; the workers do not see them.
_IN_PROCESS_ONLY = (
    ("webhook", "--webhook", "events are not taken through the workers yet"),
    ("events", "--events", "events are not taken through the workers yet"),
    ("webhook_path", "--webhook-path", "events are not taken through the workers yet"),
    ("encrypt_key", "--encrypt-key", "events are not taken through the workers yet"),
    ("verification_token", "--verification-token", "events are not taken through the workers yet"),
    ("table_prefix", "--table-prefix", "the workers write the tables without a prefix"),
    ("redact_pii", "--redact-pii", "the workers write whole rows"),
    ("concurrency", "--concurrency", "each worker fetches one meeting at a time"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _BrokerSync:
    job: SyncJob  # its output: the sync's lock and state; its spans: the cycles'
    broker: str
    queue: str | None
    tenant: str  # "": a custom app's
    db_url: str
    db_schema: str | None
    once: bool
    quiet: bool
    log: bool  # progress lines while a window is worked on
    log_interval: float


@dataclass(frozen=True, slots=True)
class _Cycle:
    number: int
    listed_from: int
    listed_to: int
    new: int  # meetings of the window the tables did not hold before it
    seen: WindowProgress
    seconds: float


def add_broker_sync_arguments(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser, queued="each cycle's window", db="--db")


def _checked(args: argparse.Namespace) -> _BrokerSync:
    """``ConfigError`` for anything that cannot go to the workers, before any queueing."""
    for name, flag, why in _IN_PROCESS_ONLY:
        if getattr(args, name, None):
            raise ConfigError(f"{flag} with --broker: {why}; drop one of the two")
    if args.page_size != PAGE_SIZE_ITER_DEFAULT:
        raise ConfigError("--page-size with --broker: the workers page with their own size")
    if urlsplit(args.db).password is not None:
        raise ConfigError(
            "--broker: --db holds a password, which would travel through the queue; "
            "give the workers PGPASSWORD or a .pgpass file instead"
        )
    given = [flag for name, flag in _FILTERS if getattr(args, name, None)]
    if given:
        raise ConfigError(f"--broker: the workers sync ended meetings unfiltered, not {given}")
    tenants = tenants_from_args(args)
    if tenants is None or len(tenants) != 1:  # a sync's state is one tenant's
        raise ConfigError("sync --broker: one tenant a sync (--tenant-key)")
    tenant = tenants[0]
    if urlsplit(args.broker).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--broker: expected redis://host:port/db, not {redact_url(args.broker)}")
    try:
        from .. import workers  # noqa: F401  (here, not at the first cycle, to exit 2)
    except ImportError as exc:
        raise ConfigError(
            f"--broker needs the workers extra (feishu-vc-async[workers]): {exc}"
        ) from None
    return _BrokerSync(
        job_from_args(args), args.broker, args.queue, tenant, args.db, args.db_schema,
        args.once, args.quiet, not args.quiet and args.progress != "none", args.log_interval,
    )  # fmt: skip


async def _cycle(cmd: _BrokerSync, err: TextIO) -> _Cycle:
    """One cycle (the sync locked): queue the window, watch it to its end, keep the state."""
    from ..workers._tasks import window_note

    output = cmd.job.output
    began = time.monotonic()
    now = int(time.time())
    state = await load_state(output, cmd.job.since, now)
    start = cycle_start(state, cmd.job.overlap)
    before = await output.meetings_held(start)
    window = _Enqueue(  # by name: that module's window is being reshaped meanwhile
        broker=cmd.broker, queue=cmd.queue, tenants=(cmd.tenant,), start=start, end=now,
        db_url=cmd.db_url, db_schema=cmd.db_schema, where=output.where,
    )  # fmt: skip
    seen = await _enqueue_and_watch(window, err if cmd.log else None, cmd.log_interval)
    # The meetings this window's workers committed (the tables only grow), and those
    # they gave up: the in-process sync's "new", fetched or given up by this cycle.
    new = len(await output.meetings_held(start) - before) + len(seen.missing)
    # The discovery's note of this window is read: a sync would leave one a cycle.
    await output.drop_note(window_note(start, now))
    await end_cycle(output, state, now, seen.complete)
    return _Cycle(state.cycles, start, now, new, seen, time.monotonic() - began)


def _line(cycle: _Cycle, cmd: _BrokerSync) -> str:
    """The in-process sync's cycle line, with the workers in place of the requests."""
    seen = cycle.seen
    listed = seen.discovered or 0
    missing = len(seen.missing)
    failed = f", {missing} failed for good (asked again next cycle)" if missing else ""
    head = cycle_head(cycle.number, listed, cycle.listed_from, cycle.listed_to, cycle.new)
    later = next_cycle(None if cmd.once else cmd.job.interval, cycle.seconds)
    return (
        f"{head} → {cmd.job.output.where}{failed}, by the workers of "
        f"{redact_url(cmd.broker)} in {cycle.seconds:.1f} s{later}"
    )


async def _run(cmd: _BrokerSync, out: TextIO, err: TextIO) -> _Cycle:
    """Cycle until cancelled (``--once``: one cycle); returns the last cycle."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:  # SIGTERM as Ctrl-C: the workers go on, the state stays put
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    async with cmd.job.output.lock():
        while True:
            cycle = await _cycle(cmd, err)
            if not cmd.quiet:
                print(_line(cycle, cmd), file=out, flush=True)
            if cycle.seen.missing:
                _print_missing(cycle.seen.missing, err if cmd.quiet else out)
            if cmd.once:
                return cycle
            await asyncio.sleep(max(0.0, cmd.job.interval - cycle.seconds))


def broker_sync_command(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """``sync --broker``: 0 caught up, 1 some meetings failed for good (named), 2 bad
    options or a database another sync holds, 130 interrupted, 143 terminated."""
    try:
        cmd = _checked(args)
    except ConfigError as exc:
        print(f"feishu-vc sync: error: {exc}", file=err)
        return EXIT_USAGE
    from redis.exceptions import RedisError  # the workers extra's, there once checked

    try:
        last = asyncio.run(_run(cmd, out, err))
    except KeyboardInterrupt:
        print("feishu-vc sync: interrupted; the workers go on with the queue", file=err)
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        print("feishu-vc sync: terminated; the workers go on with the queue", file=err)
        return EXIT_TERMINATED
    except (ExportError, ConfigError, ValueError, OSError, RedisError) as exc:
        print(f"feishu-vc sync: error: {exc}", file=err)
        return EXIT_USAGE
    return EXIT_OK if last.seen.complete else EXIT_FAILURES
