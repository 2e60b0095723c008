"""The ``feishu-vc`` command: ``export``, ``emulator`` and ``demo``.

Exit codes: 0 all meetings exported; 1 some meetings failed (listed, and written to
``OUT.failures.jsonl``); 2 bad input, options or credentials (nothing was requested,
or the platform refused the credentials); 130 interrupted (Ctrl-C; the checkpoint is
consistent, ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from ._constants import LOGGER_NAME

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _version() -> str:
    try:
        return version("feishu-vc-async")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _add_emulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="run the embedded Feishu VC emulator (an HTTP server on 127.0.0.1)",
        description="Serve the participant_list emulator for your own tests.",
    )
    from .emulator import _serve as serve

    parser.set_defaults(handler=lambda args: int(serve.run(args)))


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .export._config import add_export_arguments

    parser = sub.add_parser(
        "export",
        help="export participants of many meetings to JSONL, CSV or Parquet",
        description="Export the participants of every meeting in --meetings to --out, "
        "within the rate limit, resumable with --resume. Exit 0: all exported; 1: some "
        "meetings failed (see OUT.failures.jsonl); 2: bad input, options or credentials; "
        "130: interrupted.",
    )
    add_export_arguments(parser)
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .export._run import export_command

    return export_command(args, os.environ)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import demo

    parser = sub.add_parser(
        "demo",
        help="export from an in-process emulator, to see the tool work (about a minute)",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_arguments(parser)
    parser.set_defaults(handler=demo.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feishu-vc",
        description="Feishu / Lark video-conference participant data: export, emulator, demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_export(sub)
    _add_emulator(sub)
    _add_demo(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``feishu-vc`` and ``python -m feishu_vc_async``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("feishu-vc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
