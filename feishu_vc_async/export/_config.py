"""The export job's settings, resolved from arguments and the environment.

Anything wrong here is a configuration error (exit code 2) raised before any request.
Secrets are kept out of ``repr`` and out of every message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .._constants import FEISHU_BASE_URL, MAX_RETRIES, PAGE_SIZE_ITER_DEFAULT
from .._credentials import add_credential_arguments, resolve_credentials
from .._validate import base_url as check_base_url
from .._validate import non_negative_int, positive_int, positive_seconds
from ..auth import TokenProvider
from ..errors import ConfigError, InvalidQueryError
from ..models import UserIdType, validate_page_size
from ..ratelimit import RateLimit
from ._input import InputFormat
from ._range import MeetingRange, add_range_arguments, range_from_args
from ._rows import ALL_COLUMNS, JOINABLE_COLUMNS, parse_fields
from ._writers import OUTPUT_FORMATS, OutputFormat, format_from_path

__all__ = ["ConfigError", "ExportConfig", "ProgressMode", "config_from_args"]

ProgressMode = Literal["auto", "bar", "log", "none"]

ENV_REDIS_URL = "FEISHU_VC_REDIS_URL"
DEFAULT_RATE_LIMIT = "100/60s"


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """Everything an export run needs, checked when it is made (``ConfigError`` naming
    the option and the rule); ``config_from_args`` builds it from the command line, the
    demo and library code build it directly."""

    # The meetings: a file of them, or a date range to find them in (exactly one).
    meetings: Path | None
    out: Path
    fmt: OutputFormat
    meeting_range: MeetingRange | None = None
    meetings_format: InputFormat | None = None
    columns: tuple[str, ...] = ()
    redact_pii: bool = False
    csv_raw: bool = False  # CSV cells as sent, without the formula-injection guard
    resume: bool = False
    overwrite: bool = False
    retry_failed: bool = False  # also ask again for meetings given up for good (implies resume)
    app_id: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    # A ready token source instead (a user session, a store app's tenant: --auth user,
    # --app-type store); its own credentials live in it.
    token_provider: TokenProvider | None = None
    base_url: str = FEISHU_BASE_URL
    rate_limit: RateLimit = field(default_factory=RateLimit)
    meeting_list_rate_limit: RateLimit = field(default_factory=RateLimit)
    concurrency: int | None = None
    page_size: int = PAGE_SIZE_ITER_DEFAULT
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "feishu_vc"
    redis_fallback: bool = False  # Redis unreachable: pace this process alone for a while
    user_id_type: UserIdType = UserIdType.OPEN_ID
    max_retries: int = MAX_RETRIES
    progress: ProgressMode = "auto"
    log_interval: float = 5.0
    quiet: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "base_url", check_base_url(self.base_url, "--base-url"))
            validate_page_size(self.page_size)
            if self.concurrency is not None:
                positive_int("--concurrency", self.concurrency)
            non_negative_int("--max-retries", self.max_retries)
            positive_seconds("--log-interval", self.log_interval)
        except InvalidQueryError as exc:
            raise ConfigError(f"--page-size {self.page_size}: {exc.rule}") from None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if (self.meetings is None) == (self.meeting_range is None):
            raise ConfigError(
                "give the meetings either as a file (--meetings FILE) or as a date range "
                "(--since A --until B), one of the two"
            )
        if self.meeting_range is None:
            unknown = [c for c in self.columns if c not in ALL_COLUMNS]
            if unknown:
                raise ConfigError(
                    f"--fields: {', '.join(unknown)}: meeting columns need a range export "
                    "(--since/--until), where the meetings are known"
                )
        if self.retry_failed:
            object.__setattr__(self, "resume", True)
        if self.resume and self.overwrite:
            flag = "--retry-failed" if self.retry_failed else "--resume"
            raise ConfigError(f"give either {flag} or --overwrite, not both")
        if self.redis_fallback and self.redis_url is None:
            raise ConfigError("--redis-fallback needs --redis-url (or FEISHU_VC_REDIS_URL)")
        if self.access_token and (self.app_id or self.app_secret):
            raise ConfigError("give either an access token or app credentials, not both")
        if self.token_provider is not None and (
            self.access_token or self.app_id or self.app_secret
        ):
            raise ConfigError("give either a token provider or other credentials, not both")
        if self.token_provider is None and not self.access_token and not (
            self.app_id and self.app_secret
        ):
            raise ConfigError(
                "no credentials: set FEISHU_APP_ID and FEISHU_APP_SECRET (or --app-id and "
                "--app-secret) for a tenant token, or FEISHU_ACCESS_TOKEN (--access-token) "
                "for a token you already hold"
            )

    @property
    def identity(self) -> list[str] | None:
        """What identifies a range export's meetings for its checkpoint: the options as
        typed (so a resume of ``--since 7d`` continues the week it began with); ``None``
        for a meetings file (its queries identify it)."""
        found = self.meeting_range
        if found is None:
            return None
        return [
            "range",
            f"since={found.since_text}",
            f"until={found.until_text}",
            f"tz={found.zone}",
            *(f"{k}={v}" for k, v in sorted(found.query.to_params().items())
              if k not in ("start_time", "end_time")),
        ]

    @property
    def credential_kind(self) -> str:
        if self.token_provider is not None:
            return repr(self.token_provider)
        return "access token" if self.access_token else f"app {self.app_id}"


def redact_url(url: str) -> str:
    """A URL with any password replaced, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _same_file(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would overwrite ``b``.

    By identity (device and inode) when both exist: a hard link to the meetings file has
    another path but the same bytes. By resolved path when one does not exist yet.
    """
    try:
        return os.path.samestat(a.stat(), b.stat())
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop: opening it fails later, and says so
        return False


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> ExportConfig:
    """Turn parsed ``export`` arguments (see ``cli.py``) into an :class:`ExportConfig`."""
    out = Path(args.out)
    fmt: OutputFormat | None = args.format or format_from_path(out)
    if fmt is None:
        raise ConfigError(
            f"--out {out}: cannot tell the format from the extension; use .jsonl, .csv or "
            f".parquet, or --format {{{','.join(OUTPUT_FORMATS)}}}"
        )
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
    try:
        columns = parse_fields(args.fields, JOINABLE_COLUMNS if by_range else ALL_COLUMNS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rate = rate_option("--rate-limit", args.rate_limit)
    listing_rate = rate_option("--meeting-list-rate-limit", args.meeting_list_rate_limit)
    user_id_type = UserIdType(args.user_id_type)
    meeting_range = range_from_args(args, user_id_type=user_id_type) if by_range else None
    redis_url = redis_url_from(args, env)
    creds = resolve_credentials(args, env, redis_url=redis_url, redis_prefix=args.redis_prefix)
    if args.meetings is not None and _same_file(out, Path(args.meetings)):
        raise ConfigError("--out is the meetings file; choose another output path")
    return ExportConfig(
        meetings=None if args.meetings is None else Path(args.meetings),
        meeting_range=meeting_range,
        meetings_format=args.meetings_format,
        out=out,
        fmt=fmt,
        columns=columns,
        redact_pii=args.redact_pii,
        csv_raw=args.csv_raw,
        resume=args.resume,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        app_id=creds.app_id,
        app_secret=creds.app_secret,
        access_token=creds.access_token,
        token_provider=creds.token_provider,
        base_url=creds.base_url,
        rate_limit=rate,
        meeting_list_rate_limit=listing_rate,
        concurrency=args.concurrency,
        page_size=args.page_size,
        redis_url=redis_url,
        redis_prefix=args.redis_prefix,
        redis_fallback=args.redis_fallback,
        user_id_type=user_id_type,
        max_retries=MAX_RETRIES if args.max_retries is None else args.max_retries,
        progress="none" if args.quiet else args.progress,
        log_interval=args.log_interval,
        quiet=args.quiet,
    )


def redis_url_from(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """``--redis-url`` or ``$FEISHU_VC_REDIS_URL``, checked to be a Redis URL."""
    redis_url: str | None = args.redis_url or env.get(ENV_REDIS_URL) or None
    if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--redis-url {redact_url(redis_url)!r}: expected redis://host:port/db")
    return redis_url


def rate_option(option: str, text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def add_meeting_list_rate_argument(pacing: argparse._ArgumentGroup) -> None:
    pacing.add_argument(
        "--meeting-list-rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/PERIOD",
        help=f"meeting_list's own budget, paced apart from participant_list's (default "
        f"{DEFAULT_RATE_LIMIT}, the platform's limit)",
    )


def add_shared_pacing_arguments(pacing: argparse._ArgumentGroup) -> None:
    """Redis and retries: the pacing options every command that calls the platform has."""
    pacing.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"share the rate limit with other processes through Redis (env {ENV_REDIS_URL})",
    )
    pacing.add_argument(
        "--redis-fallback",
        action="store_true",
        help="if Redis cannot be reached, pace this process alone for a while (with a "
        "warning) instead of stopping; processes then no longer share one budget",
    )
    pacing.add_argument(
        "--redis-prefix",
        default="feishu_vc",
        help="key prefix in Redis; processes sharing a limit use the same (default feishu_vc)",
    )
    pacing.add_argument(
        "--max-retries", type=int, help="attempts after the first for a transient failure"
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` subcommand's options (kept beside the code that reads them)."""
    add_range_arguments(parser, required=False)
    io_group = parser.add_argument_group("input and output")
    io_group.add_argument(
        "--meetings",
        metavar="FILE",
        help="instead of a date range: a CSV or JSONL of meetings with meeting_no, "
        "meeting_start_time, meeting_end_time (unix seconds or ISO 8601 with offset) and "
        "optional meeting_status, user_id, room_id, webinar_user_role, user_id_type (a file "
        "`feishu-vc meetings` wrote is one)",
    )
    io_group.add_argument(
        "--meetings-format",
        choices=("csv", "jsonl"),
        help="format of --meetings (default: from its extension, else its first line)",
    )
    io_group.add_argument(
        "--out", required=True, metavar="FILE", help="output file (.jsonl, .csv, .parquet)"
    )
    io_group.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out's extension)"
    )
    io_group.add_argument(
        "--fields",
        metavar="COL,COL",
        help="columns to write, in this order (default: meeting_no, meeting_start_time, "
        "meeting_end_time, then every participant field); a range export can join meeting "
        "columns too: meeting_topic, organizer, meeting_type, number_of_participants, ... "
        "(see the README)",
    )
    io_group.add_argument(
        "--redact-pii",
        action="store_true",
        help="blank phone, email, public_ip, internal_ip and employee_id in every row",
    )
    io_group.add_argument(
        "--csv-raw",
        action="store_true",
        help="write CSV cells exactly as sent; by default a text cell starting with = + - @, "
        "a tab or a carriage return gets a leading ' so a spreadsheet does not run it",
    )
    io_group.add_argument(
        "--resume",
        action="store_true",
        help="continue from FILE.checkpoint.json (starts afresh when there is none); "
        "meetings that failed on a transient error are asked again, those that failed for "
        "good (no such meeting, data gone, no permission) are not",
    )
    io_group.add_argument(
        "--retry-failed",
        action="store_true",
        help="as --resume, and ask again for the meetings that failed for good too",
    )
    io_group.add_argument(
        "--overwrite",
        action="store_true",
        help="start again: replace an existing --out and discard its checkpoint (without "
        "it, an --out that is not this export's own output is refused)",
    )

    auth = add_credential_arguments(parser)
    auth.add_argument(
        "--user-id-type",
        choices=[t.value for t in UserIdType],
        default=UserIdType.OPEN_ID.value,
        help="id type of user_id in queries and rows (default open_id; a column overrides)",
    )

    pacing = parser.add_argument_group("pacing")
    pacing.add_argument(
        "--rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/PERIOD",
        help=f"requests per period, such as 100/60s or 20/1s (default {DEFAULT_RATE_LIMIT}, "
        "participant_list's platform limit)",
    )
    add_meeting_list_rate_argument(pacing)
    pacing.add_argument(
        "--concurrency", type=int, help="meetings fetched at once (default: the fan-out's)"
    )
    pacing.add_argument(
        "--page-size",
        type=int,
        default=PAGE_SIZE_ITER_DEFAULT,
        help=f"participants per request, 20..100 (default {PAGE_SIZE_ITER_DEFAULT})",
    )
    add_shared_pacing_arguments(pacing)

    show = parser.add_argument_group("progress")
    show.add_argument(
        "--progress",
        choices=("auto", "bar", "log", "none"),
        default="auto",
        help="live bar on a terminal, log lines otherwise (default auto)",
    )
    show.add_argument(
        "--log-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress log lines without a terminal (default 5)",
    )
    show.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary; errors only"
    )
