"""``feishu-vc emulator``: serve an Emulator until Ctrl-C or SIGTERM.

The CLI module wires these two functions to the ``emulator`` sub-command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .._constants import AUTHORIZE_PATH
from ..ratelimit._protocol import RateLimit
from ._faults import Faults, Latency
from ._server import Emulator

__all__ = ["add_arguments", "run"]


def _rate(text: str) -> RateLimit | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (0 = any free port)")
    parser.add_argument("--meetings", type=int, default=200, help="number of meetings")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument("--webinars", type=int, default=None, help="number of webinars")
    parser.add_argument(
        "--webinar-size", type=int, default=3000, help="participants per webinar (default 3000)"
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=RateLimit(),
        metavar="N/PERIOD",
        help='participant_list limit per app, e.g. "100/60s" (default) or "none"',
    )
    parser.add_argument(
        "--meeting-list-rate-limit",
        type=_rate,
        default=RateLimit(),
        metavar="N/PERIOD",
        help='meeting_list limit per app, a bucket of its own (default "100/60s")',
    )
    parser.add_argument("--window", choices=("sliding", "fixed"), default="sliding")
    parser.add_argument(
        "--listing",
        choices=("start", "overlap"),
        default="start",
        help="meeting_list lists a meeting whose start is in the range (default) or that "
        "overlaps it",
    )
    parser.add_argument(
        "--ongoing", type=int, default=None, help="ongoing meetings (default 1 from 20 meetings)"
    )
    parser.add_argument(
        "--token-lifetime", type=float, default=7200.0, help="tenant token lifetime in seconds"
    )
    parser.add_argument(
        "--user-id-permission",
        action="store_true",
        help="the app may see user_id / employee_id",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="added seconds per request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 121001 answers")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of injected faults")


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults(seed=args.fault_seed, error_rate=args.error_rate)
    emu = Emulator(
        meetings=args.meetings,
        seed=args.seed,
        webinars=args.webinars,
        webinar_size=args.webinar_size,
        rate_limit=args.rate_limit,
        meeting_list_rate_limit=args.meeting_list_rate_limit,
        meeting_listing=args.listing,
        ongoing=args.ongoing,
        window=args.window,
        token_lifetime=args.token_lifetime,
        user_id_permission=args.user_id_permission,
        latency=Latency.constant(args.latency) if args.latency else 0.0,
        faults=faults,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        rate = "off" if args.rate_limit is None else f"{args.rate_limit} ({args.window})"
        listing = "off" if args.meeting_list_rate_limit is None else args.meeting_list_rate_limit
        lines = [
            f"Feishu VC emulator serving at {emu.base_url}",
            f"  app_id:     {emu.app_id}",
            f"  app_secret: {emu.app_secret}",
            f"  meetings:   {len(emu.meetings)} ended, {len(emu.ongoing)} ongoing "
            f"(seed {args.seed}), rate limit {rate}",
            f"  meeting_list: rate limit {listing}, listing by {args.listing}",
            f"  authorize:  {emu.accounts_url}{AUTHORIZE_PATH} "
            "(redirect to http://127.0.0.1:<any port>/callback)",
            "  e.g. meeting_no={0.meeting_no} meeting_start_time={0.meeting_start_time} "
            "meeting_end_time={0.meeting_end_time}".format(emu.meetings[0])
            if emu.meetings
            else "",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(line for line in lines if line), flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop, 1 if the server could not start."""
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"feishu-vc emulator: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0
