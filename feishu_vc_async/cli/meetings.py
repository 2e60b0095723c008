"""``feishu-vc meetings``: the meetings of a date range, to CSV, JSONL or Parquet.

Each row is a meeting as meeting_list describes it, led by the participant_list query
that reads it (number, exact start and end second, status): the file is a valid
``--meetings`` input of ``feishu-vc export`` (see ``_rows.MeetingRows``). The file is
written whole at the end, owner-only, under a temporary name renamed into place: a run
that fails leaves no half file, and an existing ``--out`` is replaced only with
``--overwrite``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, TextIO

from .._constants import API_MEETING_LIST, LOGGER_NAME, MAX_RETRIES
from .._files import open_owner_only, replacing
from ..client import VCClient
from ..errors import ConfigError, FeishuError, RateLimiterError
from ..export._config import redact_url
from ..export._range import MeetingRange
from ..export._rows import MeetingRows
from ..export._sink import error_text
from ..export._writers import (
    OUTPUT_FORMATS,
    JsonlEncoder,
    OutputFormat,
    csv_header,
    encode_csv,
    format_from_path,
    jsonl_to_parquet,
    require_pyarrow,
)
from ..models import UserIdType
from ..ratelimit import RateLimiter
from ._credentials import add_credential_arguments, resolve_credentials
from ._range import add_range_arguments, range_from_args
from .export import (
    add_meeting_list_rate_argument,
    add_shared_pacing_arguments,
    rate_option,
    redis_url_from,
)

__all__ = ["add_meetings_arguments", "meetings_command"]

logger = logging.getLogger(LOGGER_NAME + ".export")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_meetings_arguments(parser: argparse.ArgumentParser) -> None:
    add_range_arguments(parser, required=True)
    io_group = parser.add_argument_group("output")
    io_group.add_argument(
        "--out", required=True, metavar="FILE", help="where to write (.csv, .jsonl, .parquet)"
    )
    io_group.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's extension)"
    )
    io_group.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists"
    )
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
    credentials = add_credential_arguments(parser)
    credentials.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of --user-id and of the organizer's user_id (default open_id)",
    )
    pacing = parser.add_argument_group("pacing")
    add_meeting_list_rate_argument(pacing)
    add_shared_pacing_arguments(pacing)
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary; errors only")


def meetings_command(
    args: argparse.Namespace, env: Mapping[str, str], *, out: TextIO, err: TextIO
) -> int:
    """``feishu-vc meetings``: exit 0 written, 1 the listing failed (nothing written), 2 bad
    options or credentials (nothing requested)."""
    try:
        path = Path(args.out)
        fmt: OutputFormat | None = args.format or format_from_path(path)
        if fmt is None:
            raise ConfigError(
                f"--out {path}: cannot tell the format from the extension; use .csv, .jsonl "
                f"or .parquet, or --format {{{','.join(OUTPUT_FORMATS)}}}"
            )
        if fmt == "parquet":
            require_pyarrow()
        if not args.overwrite and (path.exists() or path.is_symlink()):
            raise ConfigError(f"--out {path} exists; pass --overwrite to replace it")
        user_id_type = UserIdType(args.user_id_type)
        wanted = range_from_args(args, user_id_type=user_id_type)
        rate = rate_option("--meeting-list-rate-limit", args.meeting_list_rate_limit)
        redis_url = redis_url_from(args, env)
        creds = resolve_credentials(args, env, redis_url=redis_url, redis_prefix=args.redis_prefix)
        limiter: RateLimiter | None = None
        if redis_url is not None:
            from ..ratelimit import RedisRateLimiter

            limiter = RedisRateLimiter(
                redis_url, rate, prefix=args.redis_prefix, fallback_local=args.redis_fallback
            )
        client = VCClient(
            **creds.client_kwargs(),
            base_url=creds.base_url,
            meeting_list_rate_limit=rate,
            meeting_list_limiter=limiter,
            max_retries=MAX_RETRIES if args.max_retries is None else args.max_retries,
        )
    except (ConfigError, ImportError, TypeError, ValueError) as exc:
        print(f"feishu-vc meetings: error: {exc}", file=err)
        return EXIT_USAGE
    try:
        count, requests = asyncio.run(_write(client, limiter, wanted, path, fmt, args))
    except RateLimiterError as exc:
        hint = " (--redis-fallback paces this process alone meanwhile)" if redis_url else ""
        print(f"feishu-vc meetings: error: {exc.problem}{hint}", file=err)
        return EXIT_USAGE
    except FeishuError as exc:
        print(
            f"feishu-vc meetings: error: listing the meetings failed, nothing was written: "
            f"{error_text(exc, redact_pii=args.redact_pii)}",
            file=err,
        )
        return EXIT_FAILED
    if not args.quiet:
        where = f" through {redact_url(redis_url)}" if redis_url else ""
        print(
            f"Listed {count} meetings → {path} ({requests} meeting_list requests{where})\n"
            f"  range: {wanted.describe()}\n"
            f"  export their participants: feishu-vc export --meetings {path} --out FILE",
            file=out,
        )
    return EXIT_OK


async def _write(
    client: VCClient,
    limiter: RateLimiter | None,
    wanted: MeetingRange,
    path: Path,
    fmt: OutputFormat,
    args: argparse.Namespace,
) -> tuple[int, int]:
    """List every meeting of the range into ``path``; returns (meetings, requests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with client:
            if fmt != "parquet":
                with replacing(path) as tmp, open_owner_only(tmp) as fh:
                    count = await _list_into(fh, client, wanted, fmt, args)
            else:
                # Parquet is built from a JSONL spool, as an export's journal is.
                spool = path.with_name(f".{path.name}.{os.getpid()}.jsonl")
                try:
                    with open_owner_only(spool) as fh:
                        count = await _list_into(fh, client, wanted, "jsonl", args)
                    length = spool.stat().st_size
                    jsonl_to_parquet(spool, path, MeetingRows.COLUMNS, length=length)
                finally:
                    spool.unlink(missing_ok=True)
        return count, client.stats.endpoint(API_MEETING_LIST).requests
    finally:
        if limiter is not None:
            await limiter.aclose()


async def _list_into(
    fh: BinaryIO,
    client: VCClient,
    wanted: MeetingRange,
    fmt: OutputFormat,
    args: argparse.Namespace,
) -> int:
    rows = MeetingRows(redact_pii=args.redact_pii)
    jsonl = JsonlEncoder(MeetingRows.COLUMNS)
    if fmt == "csv":
        fh.write(csv_header(MeetingRows.COLUMNS))
    count = 0
    async for meeting in client.meetings(wanted.query):
        try:
            query = meeting.query(user_id_type=wanted.query.user_id_type)
        except ValueError as exc:  # listed without a readable end: cannot be read
            logger.warning("meeting_list: %s; skipped", exc)
            continue
        row = [tuple(rows.row(query, meeting).values())]
        fh.write(encode_csv(row, raw=args.csv_raw) if fmt == "csv" else jsonl.encode(row))
        count += 1
    return count
