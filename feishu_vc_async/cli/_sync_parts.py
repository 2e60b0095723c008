"""What ``feishu-vc sync`` and ``sync --broker`` (``_sync_broker``) share: the job of
the options (the database, the cycles' spans, the filters and fetching options, checked)
and the two ends of a cycle's line."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from .._timeparse import parse_span
from ..errors import ConfigError
from ..export import DatabaseOutput, is_database_url
from ..models import UserIdType
from ..sync import SyncJob
from ._fetching import check_fetching
from ._outputs import database_from_args
from ._range import listing_from_args

__all__ = ["cycle_head", "job_from_args", "next_cycle"]


def _span(option: str, text: str) -> float:
    seconds = parse_span(text)
    if seconds is None or seconds <= 0:
        raise ConfigError(f"{option} {text!r}: must be a span such as 90s, 5m, 1h, 30d or 2w")
    return float(seconds)


def _output(args: argparse.Namespace) -> DatabaseOutput:
    if not is_database_url(args.db):
        raise ConfigError(f"--db {args.db!r}: expected postgresql://... or sqlite:///path/to.db")
    return database_from_args(args, args.db, name="sync", option="--db")


def job_from_args(args: argparse.Namespace) -> SyncJob:
    """The database, the cycles' spans, the filters and the fetching options, checked
    (``sync`` in this process and ``sync --broker`` alike)."""
    check_fetching(args)
    now = int(time.time())
    filters = listing_from_args(
        args, start_time=now, end_time=now, user_id_type=UserIdType(args.user_id_type)
    )
    try:
        return SyncJob(
            _output(args),
            since=_span("--since", args.since),
            interval=_span("--interval", args.interval),
            overlap=_span("--overlap", args.overlap),
            filters=filters.validate(now=now),
            page_size=args.page_size,
            concurrency=args.concurrency,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cycle_head(number: int, listed: int, listed_from: int, listed_to: int, new: int) -> str:
    """How a cycle's line begins, wherever its meetings were fetched."""
    return (
        f"sync cycle {number}: {_count(listed, 'meeting')} ended from "
        f"{_when(listed_from)} to {_when(listed_to)}, {new} new"
    )


def next_cycle(interval: float | None, seconds: float) -> str:
    """How a cycle's line ends: when the next begins (``None``: no next, ``--once``)."""
    return "" if interval is None else f"; next cycle in {max(0.0, interval - seconds):.0f} s"
