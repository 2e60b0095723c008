"""See the exporter work in about a minute, with nothing to configure.

What it is: the embedded emulator (a local imitation of Feishu's participant_list on
127.0.0.1, with generated people, pages, tokens and a rate-limit gateway) serves a
realistic mix of meetings; the real `feishu-vc export` code path (meetings file,
tenant token, rate limiter, fan-out, writer, checkpoint) exports them to
./demo-output/; the output is then checked row by row against the emulator's own data.

What it is not: a call to the real platform. The emulator's limit is scaled (100
requests per 6 s by default) so the demo ends in about a minute; the real platform
allows 100 requests per minute, so the same export would take about ten times longer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from .export._config import ExportConfig, ProgressMode
from .export._input import load_meetings, write_meetings_csv
from .export._rows import RowBuilder
from .export._run import ExportRun, print_summary, run_export
from .ratelimit import RateLimit

__all__ = ["add_arguments", "run"]

DEFAULT_MEETINGS = 500
DEFAULT_RATE = "100/6s"
_SAMPLE_FIELDS = ("meeting_no", "participant_name", "device", "join_time", "time_in_meeting")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", default="demo-output", help="where to write (default ./demo-output)"
    )
    parser.add_argument(
        "--meetings",
        type=int,
        default=DEFAULT_MEETINGS,
        help=f"meetings in the emulator (default {DEFAULT_MEETINGS})",
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


def run(args: argparse.Namespace) -> int:
    try:
        rate = RateLimit.parse(args.rate_limit)
    except ValueError as exc:
        print(f"feishu-vc demo: error: --rate-limit: {exc}", file=sys.stderr)
        return 2
    if args.meetings < 1:
        print("feishu-vc demo: error: --meetings must be at least 1", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_demo(out_dir, args.meetings, rate, args.seed, args.progress))


async def _demo(
    out_dir: Path, count: int, rate: RateLimit, seed: int, progress: ProgressMode
) -> int:
    from .emulator import Emulator

    meetings_file = out_dir / "meetings.csv"
    out = out_dir / "participants.jsonl"
    real_minutes = 0.0
    print(
        "feishu-vc demo: exporting from the EMBEDDED EMULATOR on 127.0.0.1, not from Feishu.\n"
        f"  emulator limit {rate} ({rate.requests / rate.period:.3g} req/s); the real platform "
        "allows 100/min (1.67 req/s).",
        flush=True,
    )
    started = time.monotonic()
    async with Emulator(meetings=count, seed=seed, rate_limit=rate) as emu:
        write_meetings_csv(meetings_file, emu.meetings)
        total_people = sum(len(emu.participants(q)) for q in emu.meetings)
        pages = sum(max(1, -(-len(emu.participants(q)) // 100)) for q in emu.meetings)
        real_minutes = pages / 100
        print(
            f"  {count} meetings ({total_people} participants, one webinar of "
            f"{max(len(emu.participants(q)) for q in emu.meetings)}), about {pages} requests: "
            f"~{pages * rate.period / rate.requests:.0f} s here, ~{real_minutes:.0f} min "
            "at the real limit.\n"
            f"  meetings file: {meetings_file}\n",
            flush=True,
        )
        # The settings `feishu-vc export --meetings ... --out ... --overwrite` would make.
        cfg = ExportConfig(
            meetings=meetings_file,
            out=out,
            fmt="jsonl",
            overwrite=True,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            base_url=emu.base_url,
            rate_limit=rate,
            progress=progress,
        )
        queries = load_meetings(meetings_file)
        outcome = await run_export(cfg, queries)
        print_summary(outcome, out=sys.stdout, err=sys.stderr, quiet=False)
        checked, problems = _check(out, emu.participants, queries)
    elapsed = time.monotonic() - started
    _describe(out_dir, out, meetings_file, outcome, checked, problems, elapsed)
    return 0 if not problems and outcome.exit_code == 0 else 1


def _check(out: Path, truth: Any, queries: list[Any]) -> tuple[int, list[str]]:
    """Compare the output with the emulator's ground truth, as multisets of rows."""
    decoder = msgspec.json.Decoder(dict[str, Any])
    encoder = msgspec.json.Encoder(order="sorted")
    got: Counter[bytes] = Counter()
    with out.open("rb") as fh:
        for line in fh:
            got[encoder.encode(decoder.decode(line))] += 1
    builder = RowBuilder()
    want: Counter[bytes] = Counter()
    for q in queries:
        for row in builder.rows(q, truth(q)):
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
    meetings_file: Path,
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
    print(f"  {out.name:<34} {outcome.rows_total} rows, one per participant, JSONL")
    print(f"  {outcome.paths.checkpoint.name:<34} the checkpoint (--resume continues from it)")
    print(f"  {meetings_file.name:<34} the meetings file the export read")
    print("\nA few rows (some of their 31 columns):")
    decoder = msgspec.json.Decoder(dict[str, Any])
    with out.open("rb") as fh:
        for _, line in zip(range(3), fh, strict=False):
            row = decoder.decode(line)
            print("  " + "  ".join(f"{k}={row.get(k)!r}" for k in _SAMPLE_FIELDS))
    print(
        f"\nDemo took {elapsed:.0f} s. Next: `feishu-vc export --help`, or point it at Feishu "
        "with FEISHU_APP_ID / FEISHU_APP_SECRET set."
    )
