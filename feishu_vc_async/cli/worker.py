"""``feishu-vc worker --broker URL``: run the tasks of ``feishu_vc_async.workers``.

The worker's client comes from its own options and ``FEISHU_*`` environment (the
credentials never travel through the broker). SIGTERM and Ctrl-C stop taking tasks;
the tasks in hand are finished (committed and acknowledged) before it exits 0. A worker
killed outright loses nothing: its unacknowledged task goes to another worker after
``--redeliver-after`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from ..errors import ConfigError
from ._exit import EXIT_OK, EXIT_USAGE
from ._options import ENV_REDIS_URL, add_client_arguments, client_settings

if TYPE_CHECKING:  # the workers extra is imported only by the command itself
    from taskiq import AsyncBroker

    from ..workers import WorkerSettings, WorkerTasks

__all__ = ["add_worker_arguments", "command_settings", "worker_command", "worker_settings"]


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    from ..workers import DEFAULT_QUEUE, REDELIVER_AFTER

    tasks = parser.add_argument_group("tasks")
    tasks.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/0",
        metavar="URL",
        help="the task queue: redis://host:port/db (default redis://127.0.0.1:6379/0)",
    )
    tasks.add_argument(
        "--queue", default=DEFAULT_QUEUE, help=f"the stream's name (default {DEFAULT_QUEUE})"
    )
    tasks.add_argument("--concurrency", type=int, default=4, help="tasks run at once (default 4)")
    tasks.add_argument(
        "--redeliver-after",
        type=float,
        default=REDELIVER_AFTER,
        metavar="SECONDS",
        help="take over a task unacknowledged this long (its worker died; default "
        f"{REDELIVER_AFTER:g}, longer than any task runs)",
    )
    add_client_arguments(parser, participant_list=True)
    # A store app's worker acts for the tenant of each task: --tenant-key is not needed.
    parser.set_defaults(tenants_from_tasks=True)


def worker_settings(
    argv: Sequence[str], env: Mapping[str, str], *, concurrency: int = 4
) -> WorkerSettings:
    """A worker's settings from ``feishu-vc``'s client options (``--app-id``,
    ``--base-url``, ``--rate-limit``, ``--redis-url``...) and ``env`` (``FEISHU_APP_ID``,
    ``FEISHU_APP_SECRET``, ``FEISHU_BASE_URL``, ``FEISHU_VC_REDIS_URL``...).
    ``ConfigError`` naming the option, before anything is opened."""
    from ..workers import WorkerSettings

    parser = argparse.ArgumentParser(prog="feishu-vc worker", add_help=False)
    add_client_arguments(parser, participant_list=True)
    parser.set_defaults(tenants_from_tasks=True)
    return WorkerSettings(client_settings(parser.parse_args(list(argv)), env), concurrency)


def command_settings(args: argparse.Namespace, env: Mapping[str, str]) -> WorkerSettings:
    """``feishu-vc worker``'s settings: its client options, and the broker's Redis as
    ``--redis-url`` unless one is given (workers pace one budget and share the tokens;
    each pacing alone would spend the whole budget). ``ConfigError`` naming the option."""
    from ..workers import WorkerSettings

    if args.concurrency < 1:
        raise ConfigError("--concurrency: must be at least 1")
    if not (args.redis_url or env.get(ENV_REDIS_URL)) and args.broker.startswith("redis"):
        args.redis_url = args.broker
    return WorkerSettings(client_settings(args, env), args.concurrency)


def worker_command(args: argparse.Namespace, env: Mapping[str, str], *, err: TextIO) -> int:
    """Run until SIGTERM / Ctrl-C (exit 0); 2 for bad options."""
    from ..workers import WorkerTasks, make_broker

    try:
        settings = command_settings(args, env)
        broker = make_broker(args.broker, queue=args.queue, redeliver_after=args.redeliver_after)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    asyncio.run(_serve(broker, WorkerTasks(broker), settings, err))
    return EXIT_OK


async def _serve(
    broker: AsyncBroker, tasks: WorkerTasks, settings: WorkerSettings, err: TextIO
) -> None:
    from ..workers import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        "worker: listening (SIGTERM finishes the tasks in hand, then exits)", file=err, flush=True
    )
    await run_worker(broker, tasks, settings, stop)
    print("worker: stopped", file=err, flush=True)
