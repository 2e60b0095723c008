"""See the exporter work in about a minute, with nothing to configure.

What it is: the embedded emulator (a local imitation of Feishu's meeting_list and
participant_list on 127.0.0.1, with generated meetings, people, pages, tokens and a
rate-limit gateway per API) holds a realistic month of meetings; the real
`feishu-vc export --since 32d --until now` code path (discovery through meeting_list,
tenant token, one rate limiter per API, fan-out, writer, checkpoint) finds them and
exports their participants to ./demo-output/, the meeting's topic and organizer joined
onto every row; the output is then checked row by row against the emulator's own data.

Then `feishu-vc sync` keeps a SQLite database current (``_demo_sync``): it backfills a
month, then takes two meetings that end while it follows.

What it is not: a call to the real platform. The emulator's limits are scaled (100
requests per 6 s by default) so the demo ends in about a minute; the real platform
allows 100 requests per minute per API, so the same export would take about ten times
longer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any, TextIO

import msgspec

from .._timeparse import parse_instant
from .._validate import int_between
from ..auth import AppCredentials
from ..client import VCClient
from ..export import ExportJob, ExportRun, MeetingRange, export, file_output
from ..export._rows import ALL_COLUMNS, RowBuilder
from ..meetings import Meeting, MeetingListQuery
from ..ratelimit import Limits, RateLimit
from ._demo_events import events_demo
from ._demo_sync import sync_demo
from ._exit import EXIT_FAILURES, EXIT_OK, EXIT_USAGE
from ._progress import ProgressDisplay, make_display, view_of
from ._summary import print_summary
from .emulator import MAX_MEETINGS

__all__ = ["add_arguments", "run"]

DEFAULT_MEETINGS = 500
DEFAULT_RATE = "100/6s"
_SAMPLE_FIELDS = ("meeting_no", "meeting_topic", "participant_name", "join_time", "time_in_meeting")
# The meeting's columns a range export can join onto each participant row.
_JOINED = ("meeting_topic", "organizer")
_SINCE, _UNTIL = "32d", "now"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", default="demo-output", help="where to write (default ./demo-output)"
    )
    parser.add_argument(
        "--meetings",
        type=int,
        default=DEFAULT_MEETINGS,
        help=f"meetings in the emulator, 1..{MAX_MEETINGS} (default {DEFAULT_MEETINGS})",
    )
    parser.add_argument(
        "--rate-limit",
        default=DEFAULT_RATE,
        metavar="N/PERIOD",
        help=f"the emulator's limit and the client's (default {DEFAULT_RATE})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument(
        "--progress", choices=("auto", "bar", "log", "none"), default="auto", help="progress"
    )


def run(args: argparse.Namespace, *, err: TextIO | None = None) -> int:
    """The demo; exit 2 for a bad option (named, with its rule), before anything starts."""
    stream = sys.stderr if err is None else err
    try:
        rate = RateLimit.parse(args.rate_limit)
    except ValueError as exc:
        print(f"feishu-vc demo: error: --rate-limit: {exc}", file=stream)
        return EXIT_USAGE
    try:
        int_between("--meetings", args.meetings, 1, MAX_MEETINGS)
    except ValueError as exc:
        print(f"feishu-vc demo: error: {exc}", file=stream)
        return EXIT_USAGE
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_demo(out_dir, args.meetings, rate, args.seed, args.progress))


async def _demo(out_dir: Path, count: int, rate: RateLimit, seed: int, progress: str) -> int:
    from ..emulator import Emulator

    out = out_dir / "participants.jsonl"
    print(
        "feishu-vc demo: exporting from the EMBEDDED EMULATOR on 127.0.0.1, not from Feishu.\n"
        f"  emulator limits {rate} per API ({rate.requests / rate.period:.3g} req/s each); the "
        "real platform allows 100/min (1.67 req/s) per API.",
        flush=True,
    )
    started = time.monotonic()
    async with Emulator(
        meetings=count, seed=seed, rate_limit=rate, meeting_list_rate_limit=rate
    ) as emu:
        # What `feishu-vc export --since 32d --until now --include-webinars --fields ...`
        # resolves its options to (the machine's zone does not matter for spans).
        now = time.time()
        wanted = MeetingRange(
            MeetingListQuery(
                start_time=parse_instant(_SINCE, tz=UTC, now=now),
                end_time=parse_instant(_UNTIL, tz=UTC, now=now),
                include_webinar=True,
            ),
            UTC,
            _SINCE,
            _UNTIL,
        )
        listed = emu.listed_meetings(
            wanted.query.start_time, wanted.query.end_time, include_webinar=True
        )
        people = sum(m.participant_count or 0 for m in listed)
        pages = -(-len(listed) // 100) + sum(
            max(1, -(-(m.participant_count or 0) // 100)) for m in listed
        )
        print(
            f"  the last 32 days hold {len(listed)} meetings ({people} participants, the largest "
            f"{max(m.participant_count or 0 for m in listed)}): about {pages} requests, "
            f"~{pages * rate.period / rate.requests:.0f} s here, ~{pages / 100:.0f} min at the "
            "real limit.\n",
            flush=True,
        )
        columns = (*ALL_COLUMNS[:3], *_JOINED, *ALL_COLUMNS[3:])
        job = ExportJob(wanted, file_output(out, columns=columns), mode="overwrite")
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=rate, meeting_list=rate),
        ) as client:
            outcome = await export(client, job, watch=lambda run: _display(progress, run))
        print_summary(outcome, out=sys.stdout, err=sys.stderr, quiet=False)
        checked, problems = _check(out, emu.participants, listed, columns)
    elapsed = time.monotonic() - started
    _describe(out_dir, out, outcome, checked, problems, elapsed)
    synced = await sync_demo(out_dir, rate, seed)
    synced += await events_demo(out_dir, rate, seed)
    for problem in synced:
        print(f"  Ground-truth check of the database FAILED: {problem}")
    ok = not problems and not synced and outcome.complete
    return EXIT_OK if ok else EXIT_FAILURES


def _display(mode: str, run: ExportRun) -> ProgressDisplay:
    return make_display(mode, lambda: view_of(run))


def _check(
    out: Path, truth: Any, listed: list[Meeting], columns: tuple[str, ...]
) -> tuple[int, list[str]]:
    """Compare the output with the emulator's ground truth (every participant of every
    meeting it lists for the range), as multisets of rows."""
    decoder = msgspec.json.Decoder(dict[str, Any])
    encoder = msgspec.json.Encoder(order="sorted")
    got: Counter[bytes] = Counter()
    with out.open("rb") as fh:
        for line in fh:
            got[encoder.encode(decoder.decode(line))] += 1
    builder = RowBuilder(columns)
    want: Counter[bytes] = Counter()
    for meeting in listed:
        query = meeting.query()
        for row in builder.rows(query, truth(query), meeting):
            want[encoder.encode(row)] += 1
    problems: list[str] = []
    missing = want - got
    extra = got - want
    if missing:
        problems.append(f"{sum(missing.values())} rows of the emulator are missing")
    if extra:
        problems.append(f"{sum(extra.values())} rows are not in the emulator's data")
    return sum(want.values()), problems


def _describe(
    out_dir: Path,
    out: Path,
    outcome: ExportRun,
    checked: int,
    problems: list[str],
    elapsed: float,
) -> None:
    print()
    if problems:
        print("Ground-truth check FAILED: " + "; ".join(problems))
    else:
        print(
            f"Ground-truth check passed: all {checked} rows match the emulator's data "
            "(none missing, none duplicated)."
        )
    print(f"\nWhat is in {out_dir}/ (gitignored):")
    checkpoint = out.with_name(out.name + ".checkpoint.json")
    print(f"  {out.name:<34} {outcome.ledger.rows_total} rows, one per participant, JSONL")
    print(
        f"  {checkpoint.name:<34} the checkpoint: the meetings found and where each stands "
        "(--resume continues from it)"
    )
    print("\nA few rows (some of their 33 columns):")
    decoder = msgspec.json.Decoder(dict[str, Any])
    with out.open("rb") as fh:
        for _, line in zip(range(3), fh, strict=False):
            row = decoder.decode(line)
            print("  " + "  ".join(f"{k}={row.get(k)!r}" for k in _SAMPLE_FIELDS))
    print(
        f"\nDemo took {elapsed:.0f} s. Next: `feishu-vc export --help`, `feishu-vc meetings "
        "--help` (the meetings alone), or point it at Feishu with FEISHU_APP_ID / "
        "FEISHU_APP_SECRET set."
    )
