"""The ``feishu-vc`` command: ``export``, ``auth``, ``emulator`` and ``demo``.

Exit codes: 0 all meetings exported; 1 some meetings failed (listed, and written to
``OUT.failures.jsonl``); 2 bad input, options or credentials (nothing was requested,
or the platform refused the credentials), an output another run is writing, an access
token that cannot be had; 130 interrupted (Ctrl-C) and 143 terminated (SIGTERM): the
checkpoint is consistent, ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

from .._constants import LOGGER_NAME
from ._exit import EXIT_INTERRUPTED

__all__ = ["build_parser", "main"]


_VERBOSE_HELP = "log more (-v info, -vv debug); before or after the command; a -q overrides it"


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """``-v`` after the command too; counted apart, added to the one before it in main."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, dest="verbose_after", help=_VERBOSE_HELP
    )


def _version() -> str:
    try:
        return version("feishu-vc-async")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _add_emulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="run the embedded Feishu VC emulator (an HTTP server on 127.0.0.1)",
        description="Serve the emulator (participant_list, meeting_list, the token and OAuth "
        "endpoints) for your own tests; exit 2 for a bad option.",
    )
    from . import emulator as serve

    serve.add_arguments(parser)
    parser.set_defaults(handler=lambda args, _env, _out, err: serve.run(args, err=err))


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .export import add_export_arguments

    parser = sub.add_parser(
        "export",
        help="export participants of many meetings to JSONL, CSV or Parquet",
        description="Export the participants of every meeting in --meetings to --out, "
        "within the rate limit, resumable with --resume. Exit codes: 0 all exported; 1 "
        "some meetings failed (listed, and in OUT.failures.jsonl); 2 bad input, options "
        "or credentials, an output another export is writing, or no access token to be "
        "had (nothing more was requested); 130 interrupted (Ctrl-C) and 143 terminated "
        "(SIGTERM): the checkpoint is consistent, --resume continues.",
    )
    add_export_arguments(parser)
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from .export import export_command

    return export_command(args, env, out=out, err=err)


def _add_meetings(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .meetings import add_meetings_arguments

    parser = sub.add_parser(
        "meetings",
        help="list the meetings of a date range (meeting_list) to CSV, JSONL or Parquet",
        description="List every meeting from --since to --until, with its exact times, to "
        "--out: a file `feishu-vc export --meetings` takes. Exit 0: written; 1: the "
        "listing failed (nothing written); 2: bad options or credentials.",
    )
    add_meetings_arguments(parser)
    parser.set_defaults(handler=_run_meetings)


def _run_meetings(
    args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    from .meetings import meetings_command

    return meetings_command(args, env, out=out, err=err)


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .sync import add_sync_arguments

    parser = sub.add_parser(
        "sync",
        help="keep a database (PostgreSQL, SQLite) current with the meetings that end",
        description="Backfill the meetings that ended in --since into --db, then every "
        "--interval fetch the meetings that ended since (--once: catch up and exit; "
        "--broker: the workers fetch them). Its "
        "state lives in the database: a restart continues exactly. Exit codes: 0 caught up; "
        "1 some meetings failed (asked again next cycle); 2 bad options or credentials, a "
        "database that cannot be used or another sync holding it; 130 interrupted, 143 "
        "terminated (every meeting committed is kept).",
    )
    add_sync_arguments(parser)
    parser.set_defaults(handler=_run_sync)


def _run_sync(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from .sync import sync_command

    return sync_command(args, env, out=out, err=err)


def _add_worker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .worker import add_worker_arguments

    parser = sub.add_parser(
        "worker",
        help="run export tasks from a task queue (taskiq; the workers extra)",
        description="Take discovery and fetch tasks from --broker and commit each meeting "
        "into its database exactly once, paced through --redis-url's shared limits. "
        "SIGTERM finishes the tasks in hand; a killed worker's task comes back to another. "
        "Exit codes: 0 stopped; 2 bad options.",
    )
    add_worker_arguments(parser)
    parser.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from .worker import worker_command

    return worker_command(args, env, err=err)


def _add_auth(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .auth import add_auth_command

    add_auth_command(sub)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import demo

    parser = sub.add_parser(
        "demo",
        help="export from an in-process emulator, to see the tool work (about a minute)",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_arguments(parser)
    parser.set_defaults(handler=lambda args, _env, _out, err: demo.run(args, err=err))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feishu-vc",
        description="Feishu / Lark video-conference participant data: export, meetings, "
        "auth, emulator, demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_export(sub)
    _add_meetings(sub)
    _add_sync(sub)
    _add_worker(sub)
    _add_auth(sub)
    _add_emulator(sub)
    _add_demo(sub)
    _verbose_after_every_command(parser)
    return parser


def _verbose_after_every_command(parser: argparse.ArgumentParser) -> None:
    """``-v`` after any command, however deep (``feishu-vc auth login -v``)."""
    parser.set_defaults(verbose_after=0)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if "-v" not in command._option_string_actions:
                    _add_verbose(command)
                _verbose_after_every_command(command)


def _log_level(args: argparse.Namespace) -> int:
    """``-q`` (``export``, ``meetings``): errors only, whatever ``-v`` says; else
    warnings, ``-v`` info, ``-vv`` debug."""
    if getattr(args, "quiet", False):
        return logging.ERROR
    verbosity: int = args.verbose + args.verbose_after
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


@contextlib.contextmanager
def _logging_to_stderr(level: int, stream: TextIO) -> Iterator[None]:
    """The library's log lines to ``stream`` while a command runs; undone afterwards, so
    calling :func:`main` in-process (tests, embedding) leaves the logging setup as it was."""
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Entry point of ``feishu-vc`` and ``python -m feishu_vc_async``; returns the exit code.

    ``env``, ``stdout`` and ``stderr`` default to the process's own (tests pass theirs).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    err = sys.stderr if stderr is None else stderr
    try:
        with _logging_to_stderr(_log_level(args), err):
            code: int = args.handler(
                args,
                os.environ if env is None else env,
                sys.stdout if stdout is None else stdout,
                err,
            )
    except KeyboardInterrupt:
        print("feishu-vc: interrupted", file=err)
        return EXIT_INTERRUPTED
    return code
