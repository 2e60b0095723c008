"""``feishu-vc meetings``: the meetings of a date range, to CSV, JSONL or Parquet, or
into a database's meetings table.

Each row is a meeting as meeting_list describes it, led by the participant_list query
that reads it (number, exact start and end second, status): the file is a valid
``--meetings`` input of ``feishu-vc export`` (see ``_rows.MeetingRows``). The file is
written whole at the end through the export's formats (``write_rows``), owner-only,
under a temporary name renamed into place: a run that fails leaves no half file, and an
existing ``--out`` is replaced only with ``--overwrite``. A database ``--out`` gets the
meetings upserted into ``feishu_vc_meetings`` (their participants not exported: an
exported meeting keeps its count). Its exit codes are export's.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .._constants import API_MEETING_LIST
from .._scrub import redact_url
from ..client import VCClient
from ..errors import ConfigError, FeishuError
from ..export import (
    OUTPUT_FORMATS,
    DatabaseOutput,
    ExportError,
    is_database_url,
    stops_the_run,
)
from ..export._failures import error_text
from ..export._formats import RowFormat, row_format, write_rows
from ..export._range import MeetingRange
from ..export._rows import MeetingRows
from ..meetings import Meeting
from ..models import MeetingQuery, UserIdType
from ._exit import EXIT_FAILURES, EXIT_OK, EXIT_USAGE
from ._options import ClientSettings, add_client_arguments, client_settings
from ._outputs import database_from_args
from ._range import add_range_arguments, range_from_args
from ._summary import fatal_text

__all__ = ["add_meetings_arguments", "meetings_command"]


def add_meetings_arguments(parser: argparse.ArgumentParser) -> None:
    add_range_arguments(parser, required=True)
    io_group = parser.add_argument_group("output")
    io_group.add_argument(
        "--out",
        required=True,
        metavar="FILE|URL",
        help="where to write (.csv, .jsonl, .parquet), or a database (postgresql://..., "
        "sqlite:///path): its feishu_vc_meetings table",
    )
    io_group.add_argument("--db-schema", metavar="NAME", help="PostgreSQL: the tables' schema")
    io_group.add_argument("--table-prefix", default="", metavar="P", help="before each table")
    io_group.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's extension)"
    )
    io_group.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    io_group.add_argument(
        "--redact-pii",
        action="store_true",
        help="blank the organizer's email, mobile and employee_id",
    )
    io_group.add_argument(
        "--csv-raw",
        action="store_true",
        help="CSV cells exactly as sent (by default a cell starting with = + - @ gets a ')",
    )
    credentials = add_client_arguments(parser, participant_list=False)
    credentials.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of --user-id and of the organizer's user_id (default open_id)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no summary and no log line below ERROR (retries, warnings), even with -v",
    )


@dataclass(frozen=True, slots=True)
class _Listing:
    """A ``meetings`` run as the command line asked for it."""

    client: ClientSettings
    path: Path | str
    format: RowFormat | DatabaseOutput
    wanted: MeetingRange
    redact_pii: bool


def _database(args: argparse.Namespace) -> DatabaseOutput:
    for given, flag in ((args.format, "--format"), (args.csv_raw, "--csv-raw")):
        if given:
            raise ConfigError(f"{flag}: not for a database --out")
    return database_from_args(args, args.out, name="meetings")


def _listing(args: argparse.Namespace, env: Mapping[str, str]) -> _Listing:
    if is_database_url(args.out):
        database = _database(args)
        wanted = range_from_args(args, user_id_type=UserIdType(args.user_id_type))
        settings = client_settings(args, env)
        return _Listing(settings, database.where, database, wanted, args.redact_pii)
    if args.db_schema or args.table_prefix:
        raise ConfigError("--db-schema and --table-prefix: only for a database --out")
    path = Path(args.out)
    try:
        fmt = row_format(path, args.format, csv_raw=args.csv_raw)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("name the format", "--format")) from None
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    if not args.overwrite and (path.exists() or path.is_symlink()):
        raise ConfigError(f"--out {path} exists; pass --overwrite to replace it")
    wanted = range_from_args(args, user_id_type=UserIdType(args.user_id_type))
    return _Listing(client_settings(args, env), path, fmt, wanted, args.redact_pii)


def meetings_command(
    args: argparse.Namespace, env: Mapping[str, str], *, out: TextIO, err: TextIO
) -> int:
    """``feishu-vc meetings``: exit 0 written, 1 the listing failed (nothing written), 2 bad
    options or credentials, or a token that cannot be had (nothing, or nothing more,
    requested)."""
    try:
        listing = _listing(args, env)
    except ConfigError as exc:
        print(f"feishu-vc meetings: error: {exc}", file=err)
        return EXIT_USAGE
    settings = listing.client
    try:
        count, requests = asyncio.run(_write(listing))
    except ExportError as exc:  # the database cannot be used: nothing was requested
        print(f"feishu-vc meetings: error: {exc}", file=err)
        return EXIT_USAGE
    except FeishuError as exc:
        if stops_the_run(exc):
            reason = fatal_text(
                exc,
                base_url=settings.base_url,
                redis=settings.redis_url is not None,
                redact_pii=listing.redact_pii,
            )
            print(f"feishu-vc meetings: error: {reason}; nothing was written", file=err)
            return EXIT_USAGE
        print(
            f"feishu-vc meetings: error: listing the meetings failed, nothing was written: "
            f"{error_text(exc, redact_pii=listing.redact_pii)}",
            file=err,
        )
        return EXIT_FAILURES
    if not args.quiet:
        redis = settings.redis_url
        where = f" through {redact_url(redis)}" if redis else ""
        next_step = (
            "  their participants: feishu-vc export --since/--until (the same range) --out "
            "the same database"
            if isinstance(listing.format, DatabaseOutput)
            else f"  export their participants: feishu-vc export --meetings {listing.path} "
            "--out FILE"
        )
        print(
            f"Listed {count} meetings → {listing.path} ({requests} meeting_list requests"
            f"{where})\n  range: {listing.wanted.instants()}\n{next_step}",
            file=out,
        )
    return EXIT_OK


async def _write(listing: _Listing) -> tuple[int, int]:
    """List every meeting of the range into the file or the database; returns
    (meetings, requests). A database is checked (and locked) before the first request."""
    out = listing.format
    async with listing.client.open() as client:
        if isinstance(out, DatabaseOutput):
            async with out.lock():
                count = await out.put_listed(await _found(client, listing))
        else:
            builder = MeetingRows(redact_pii=listing.redact_pii)
            found = await _found(client, listing)
            rows = [tuple(builder.row(query, meeting).values()) for query, meeting in found]
            path = Path(listing.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_rows(path, out, MeetingRows.COLUMNS, [rows])
            count = len(rows)
        return count, client.stats.endpoint(API_MEETING_LIST).requests


async def _found(client: VCClient, listing: _Listing) -> list[tuple[MeetingQuery, Meeting]]:
    """Every meeting of the range: the participant_list query that reads it, and what
    meeting_list said."""
    query = listing.wanted.query
    found: list[tuple[MeetingQuery, Meeting]] = []
    async for meeting in client.meetings(query):
        read = MeetingRange.read(query, meeting)
        if read is not None:
            found.append((read, meeting))
    return found
