"""``feishu-vc emulator``: serve an Emulator until Ctrl-C or SIGTERM.

The CLI module wires these two functions to the ``emulator`` sub-command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .._constants import AUTHORIZE_PATH
from .._timeparse import parse_unix_or_iso
from .._validate import int_between, non_negative_seconds, port, positive_seconds
from ..emulator import DefaultApp, Emulator, MeetingData, UserOAuth
from ..emulator._faults import FAULT_RATES, Faults, Latency
from ..ratelimit._protocol import RateLimit

__all__ = ["DEFAULT_ANCHOR", "MAX_MEETINGS", "add_arguments", "run"]

# The command's data does not move between days (the library's Emulator anchors at the
# start of yesterday unless told): a script written against it today works next month.
DEFAULT_ANCHOR = "2026-01-01"
# The emulator makes every meeting up front and holds it (about 0.8 GB and half a minute
# a million), and a webinar's people on first read: bounds that fail fast, not a machine.
MAX_MEETINGS = 1_000_000
MAX_WEBINAR_SIZE = 100_000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_MEETING_NO = re.compile(r"[0-9]{9}", re.ASCII)
# Faults' argument names → this command's options, for its messages.
_FAULT_OPTIONS = {
    **{name: f"--{name.replace('_', '-')}" for name in FAULT_RATES},
    "error_status": "--error-status",
    "revoke_token_after": "--revoke-after",
}
_FAULT_HELP = (  # of each of FAULT_RATES, in order
    "share of requests answered 121001 (HTTP --error-status)",
    "share whose connection is reset in the middle of the body",
    "share answered HTTP 200 with the JSON cut short",
    "share answered a proxy's HTML 502 page",
)
_FAULT_OPTION = re.compile(r"\b(?:" + "|".join(_FAULT_OPTIONS) + r")\b")


def _rate(text: str) -> RateLimit | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8787, help="port, 0..65535 (0: any free port; default 8787)"
    )
    _add_data_options(parser.add_argument_group("data"))
    _add_limit_options(parser.add_argument_group("rate limits"))
    _add_token_options(parser.add_argument_group("tokens"))
    _add_fault_options(
        parser.add_argument_group(
            "faults (of participant_list and meeting_list requests past auth and the gateway; "
            "one seeded draw per request picks at most one)"
        )
    )


def _add_data_options(data: argparse._ArgumentGroup) -> None:
    data.add_argument(
        "--meetings",
        type=int,
        default=200,
        help=f"number of ended meetings, 0..{MAX_MEETINGS} (default 200)",
    )
    data.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    data.add_argument(
        "--anchor",
        default=DEFAULT_ANCHOR,
        metavar="DATE",
        help="the newest ended meeting ends before this: a date (UTC midnight), unix "
        f"seconds or ISO 8601 with an offset (default {DEFAULT_ANCHOR}, so the data is the "
        "same every day)",
    )
    data.add_argument(
        "--webinars", type=int, default=None, help=f"number of webinars, 0..{MAX_MEETINGS}"
    )
    data.add_argument(
        "--webinar-size",
        type=int,
        default=3000,
        help=f"participants per webinar, 1..{MAX_WEBINAR_SIZE} (default 3000)",
    )
    data.add_argument(
        "--ongoing",
        type=int,
        default=None,
        help=f"ongoing meetings, 0..{MAX_MEETINGS} (default 1 from 20 meetings)",
    )
    data.add_argument(
        "--user-id-permission",
        action="store_true",
        help="the app may see user_id / employee_id",
    )
    data.add_argument(
        "--write-meetings",
        metavar="FILE",
        help="write the ended meetings to FILE as a `feishu-vc export --meetings` input "
        "(JSONL for .jsonl / .ndjson / .json, Parquet for .parquet / .pq, else CSV)",
    )


def _add_limit_options(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--rate-limit",
        type=_rate,
        default=RateLimit(),
        metavar="N/PERIOD",
        help='participant_list limit per app, e.g. "100/60s" (default) or "none"',
    )
    limits.add_argument(
        "--meeting-list-rate-limit",
        type=_rate,
        default=RateLimit(),
        metavar="N/PERIOD",
        help='meeting_list limit per app, a bucket of its own (default "100/60s")',
    )
    limits.add_argument("--window", choices=("sliding", "fixed"), default="sliding")
    limits.add_argument(
        "--listing",
        choices=("start", "overlap"),
        default="start",
        help="meeting_list lists a meeting whose start is in the range (default) or that "
        "overlaps it",
    )


def _add_token_options(tokens: argparse._ArgumentGroup) -> None:
    tokens.add_argument(
        "--token-lifetime", type=float, default=7200.0, help="tenant token lifetime in seconds"
    )
    tokens.add_argument(
        "--user-token-lifetime",
        type=float,
        default=7200.0,
        help="user token lifetime in seconds (OAuth and --print-user-token; default 7200)",
    )
    tokens.add_argument(
        "--print-user-token",
        action="store_true",
        help="register a user access token (u-...) of the app and print it",
    )


def _add_fault_options(faults: argparse._ArgumentGroup) -> None:
    faults.add_argument("--latency", type=float, default=0.0, help="added seconds per request")
    for name, answered in zip(FAULT_RATES, _FAULT_HELP, strict=True):
        faults.add_argument(_FAULT_OPTIONS[name], type=float, default=0.0, help=answered)
    faults.add_argument(
        "--error-status", type=int, default=500, help="HTTP status of --error-rate's (500..599)"
    )
    faults.add_argument(
        "--revoke-after",
        type=int,
        default=None,
        metavar="N",
        help="revoke the token of the Nth VC request (the next ones with it get 99991663)",
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of injected faults")
    faults.add_argument(
        "--deny-meeting",
        action="append",
        default=[],
        metavar="NUMBER",
        help="answer 121005 (no permission) for this meeting number; repeatable",
    )
    faults.add_argument(
        "--purge-meeting",
        action="append",
        default=[],
        metavar="NUMBER",
        help="answer 121004 (data gone) for this meeting number; repeatable",
    )


@dataclass
class _Settings:
    emulator: dict[str, Any]
    anchor: int
    write_meetings: Path | None
    denied: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)


def _anchor(text: str) -> int:
    """A date is its UTC midnight; otherwise unix seconds or ISO 8601 with an offset."""
    stripped = text.strip()
    try:
        if _DATE.fullmatch(stripped):
            anchor = int(datetime.fromisoformat(stripped).replace(tzinfo=UTC).timestamp())
        else:
            anchor = parse_unix_or_iso(stripped)
    except ValueError as exc:
        raise ValueError(f"--anchor {text!r}: a date (2026-01-01) or a time: {exc}") from None
    if anchor > time.time():
        raise ValueError(
            f"--anchor {text!r}: must not be in the future (meetings end before it, and a "
            "meeting may not start after now)"
        )
    return anchor


def _meeting_numbers(option: str, values: list[str]) -> list[str]:
    for value in values:
        if not _MEETING_NO.fullmatch(value):
            raise ValueError(f"{option} {value!r}: must be a meeting number of 9 ASCII digits")
    return values


def _meetings_file(given: str | None) -> Path | None:
    """``--write-meetings``; a Parquet one needs pyarrow, said now rather than after the
    data is made."""
    if not given:
        return None
    path = Path(given)
    from ..export._input import format_from_name

    if format_from_name(path) == "parquet":
        from ..export._parquet import require_pyarrow

        try:
            require_pyarrow()
        except ImportError as exc:
            raise ValueError(f"--write-meetings {path}: {exc}") from None
    return path


def _settings(args: argparse.Namespace) -> _Settings:
    """The options, checked by the project's one set of rules (``_validate``), each error
    naming the option; ``ValueError`` at the first broken one."""
    port("--port", args.port)
    int_between("--meetings", args.meetings, 0, MAX_MEETINGS)
    for option, value in (("--webinars", args.webinars), ("--ongoing", args.ongoing)):
        if value is not None:
            int_between(option, value, 0, MAX_MEETINGS)
    int_between("--webinar-size", args.webinar_size, 1, MAX_WEBINAR_SIZE)
    positive_seconds("--token-lifetime", args.token_lifetime)
    positive_seconds("--user-token-lifetime", args.user_token_lifetime)
    non_negative_seconds("--latency", args.latency)
    try:  # judged by Faults itself; its message then names the options
        faults = Faults(
            seed=args.fault_seed,
            error_status=args.error_status,
            revoke_token_after=args.revoke_after,
            **{name: getattr(args, name) for name in FAULT_RATES},
        )
    except ValueError as exc:
        raise ValueError(_FAULT_OPTION.sub(lambda m: _FAULT_OPTIONS[m[0]], str(exc))) from None
    anchor = _anchor(args.anchor)
    return _Settings(
        emulator={
            "meetings": args.meetings,
            "seed": args.seed,
            "rate_limit": args.rate_limit,
            "meeting_list_rate_limit": args.meeting_list_rate_limit,
            "meeting_listing": args.listing,
            "window": args.window,
            "token_lifetime": args.token_lifetime,
            "latency": Latency.constant(args.latency) if args.latency else 0.0,
            "faults": faults,
            "host": args.host,
            "port": args.port,
            "data": MeetingData(
                webinars=args.webinars,
                webinar_size=args.webinar_size,
                ongoing=args.ongoing,
                anchor=anchor,
            ),
            "app": DefaultApp(user_id_permission=args.user_id_permission),
            "oauth": UserOAuth(user_token_lifetime=args.user_token_lifetime),
        },
        anchor=anchor,
        write_meetings=_meetings_file(args.write_meetings),
        denied=_meeting_numbers("--deny-meeting", args.deny_meeting),
        purged=_meeting_numbers("--purge-meeting", args.purge_meeting),
    )


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _faults_text(faults: Faults, latency: float) -> str:
    parts = [
        f"{label} {rate:.3g}"
        for label, rate in (
            (f"HTTP {faults.error_status} 121001", faults.error_rate),
            ("reset mid-body", faults.reset_rate),
            ("cut-short 200", faults.truncate_rate),
            ("HTML 502", faults.html_rate),
        )
        if rate
    ]
    if faults.revoke_token_after is not None:
        parts.append(f"token revoked at VC request {faults.revoke_token_after}")
    if latency:
        parts.append(f"latency {latency:g}s")
    return ", ".join(parts)


def _banner(emu: Emulator, args: argparse.Namespace, settings: _Settings) -> list[str]:
    rate = "off" if args.rate_limit is None else f"{args.rate_limit} ({args.window})"
    listing = "off" if args.meeting_list_rate_limit is None else args.meeting_list_rate_limit
    starts = [q.meeting_start_time for q in emu.meetings]
    span = f" from {_day(min(starts))}" if starts else ""
    lines = [
        f"Feishu VC emulator serving at {emu.base_url} (not Feishu: generated data)",
        f"  app_id:     {emu.app_id}",
        f"  app_secret: {emu.app_secret}",
        f"  meetings:   {len(emu.meetings)} ended{span} to before {_day(settings.anchor)} "
        f"(--anchor), {len(emu.ongoing)} ongoing (seed {args.seed}), rate limit {rate}",
        f"  meeting_list: rate limit {listing}, listing by {args.listing}",
        f"  authorize:  {emu.accounts_url}{AUTHORIZE_PATH} "
        "(redirect to http://127.0.0.1:<any port>/callback)",
    ]
    faults = _faults_text(emu.faults, args.latency)
    if faults:
        lines.append(f"  faults:     {faults} (seed {args.fault_seed})")
    for option, numbers in (("denied", settings.denied), ("purged", settings.purged)):
        if numbers:
            lines.append(f"  {option}:     {', '.join(numbers)}")
    if emu.meetings:
        lines.append(
            "  e.g. meeting_no={0.meeting_no} meeting_start_time={0.meeting_start_time} "
            "meeting_end_time={0.meeting_end_time}".format(emu.meetings[0])
        )
    if settings.write_meetings is not None:
        lines.append(f"  meetings file: {settings.write_meetings} ({len(emu.meetings)} rows)")
    lines.append("Point `feishu-vc export` or your own code here (not at open.feishu.cn):")
    lines.append(
        f"  export FEISHU_BASE_URL={emu.base_url} FEISHU_APP_ID={emu.app_id} "
        f"FEISHU_APP_SECRET={emu.app_secret}"
    )
    return lines


async def _serve(args: argparse.Namespace, settings: _Settings) -> None:
    emu = Emulator(**settings.emulator)
    for number in settings.denied:
        emu.deny_meeting(number)
    for number in settings.purged:
        emu.purge_meeting(number)
    if settings.write_meetings is not None:
        from ..export._input_writer import write_meetings

        write_meetings(settings.write_meetings, emu.meetings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        lines = _banner(emu, args, settings)
        if args.print_user_token:
            token = emu.add_user_token(args.user_token_lifetime)
            lifetime = f"{args.user_token_lifetime:g}s"
            lines.append(f"  user token: {token} (lives {lifetime}); to export as that user:")
            lines.append(f"  export FEISHU_BASE_URL={emu.base_url} FEISHU_ACCESS_TOKEN={token}")
        lines.append("Press Ctrl-C to stop.")
        print("\n".join(lines), flush=True)
        await stop.wait()


def run(args: argparse.Namespace, *, err: TextIO | None = None) -> int:
    """Serve until interrupted; 0 on a clean stop, 2 for a bad option (named, with its
    rule), 1 if the server could not start."""
    stream = sys.stderr if err is None else err
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"feishu-vc emulator: error: {exc}", file=stream)
        return 2
    try:
        asyncio.run(_serve(args, settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        where = (
            f"write --write-meetings {settings.write_meetings}"
            if settings.write_meetings is not None and exc.filename == str(settings.write_meetings)
            else f"serve on {args.host}:{args.port}"
        )
        print(f"feishu-vc emulator: cannot {where}: {exc}", file=stream)
        return 1
    return 0
