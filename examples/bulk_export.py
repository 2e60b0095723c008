"""A bulk export in library code: fan_out over many meetings, with a checkpoint.

``client.fan_out(queries)`` pages through many meetings at once within the rate limit
and streams pages as they arrive. Each page's rows are appended to a JSONL file, then
a small checkpoint (the fan-out's ``Resume`` state plus the file's length) is written
atomically. Started again after a crash, it cuts the file back to the recorded length
and passes ``resume=`` to the fan-out: no row lost, none written twice.

(The ``feishu-vc export`` command does the same with CSV/Parquet, progress and
reporting; this is the core of it, to adapt in your own code.)

Against Feishu::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... python examples/bulk_export.py \\
        --meetings meetings.jsonl --out participants.jsonl

``meetings.jsonl`` holds one ``{"meeting_no", "meeting_start_time", "meeting_end_time"}``
object a line. Without credentials it exports the embedded emulator's meetings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import msgspec

from feishu_vc_async import (
    FEISHU_BASE_URL,
    AppCredentials,
    Limits,
    MeetingQuery,
    RateLimit,
    VCClient,
)
from feishu_vc_async.fanout import MeetingFailure, PageItem, Resume


class Checkpoint(msgspec.Struct):
    resume: Resume
    out_bytes: int = 0


def load_checkpoint(path: Path) -> Checkpoint:
    if not path.exists():
        return Checkpoint(resume=Resume())
    return msgspec.json.decode(path.read_bytes(), type=Checkpoint)


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(msgspec.json.encode(checkpoint))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # atomic: the old checkpoint or the new one, never half


async def export(
    client: VCClient, queries: list[MeetingQuery], out: Path, checkpoint_path: Path
) -> tuple[int, list[MeetingFailure]]:
    """Export ``queries`` to ``out``; returns (rows written by this run, failures)."""
    checkpoint = load_checkpoint(checkpoint_path)
    failures: list[MeetingFailure] = []
    rows = 0
    encoder = msgspec.json.Encoder()
    with out.open("ab") as fh:
        fh.truncate(checkpoint.out_bytes)  # drop what a crash wrote after the checkpoint
        fh.seek(checkpoint.out_bytes)
        async with client.fan_out(queries, resume=checkpoint.resume) as results:
            async for item in results:
                if isinstance(item, MeetingFailure):
                    failures.append(item)
                    continue
                assert isinstance(item, PageItem)
                lines = [
                    {"meeting_no": item.query.meeting_no, **msgspec.structs.asdict(p)}
                    for p in item.participants
                ]
                fh.write(encoder.encode_lines(lines))
                fh.flush()
                os.fsync(fh.fileno())
                rows += len(lines)
                checkpoint.resume.record(item)
                checkpoint.out_bytes = fh.tell()
                save_checkpoint(checkpoint_path, checkpoint)
    return rows, failures


async def run(
    *,
    base_url: str,
    app_id: str,
    app_secret: str,
    queries: list[MeetingQuery],
    out: Path,
    rate_limit: RateLimit | None = None,
) -> tuple[int, list[MeetingFailure]]:
    async with VCClient(
        AppCredentials(app_id, app_secret),
        base_url=base_url,
        limits=Limits(participant_list=rate_limit or RateLimit()),
    ) as client:
        rows, failures = await export(
            client, queries, out, out.with_name(out.name + ".checkpoint.json")
        )
        print(f"{rows} rows → {out}; {client.stats.requests} requests, {len(failures)} failed")
        for failure in failures:
            print(f"  {failure.query.meeting_no}: {failure.error}")
        return rows, failures


def count_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


async def self_check(out: Path) -> int:
    from feishu_vc_async.emulator import Emulator

    fast = RateLimit(100, 1.0)  # the emulator's limit is scaled; Feishu allows 100/min
    async with Emulator(meetings=40, seed=3, rate_limit=fast) as emu:
        await run(
            base_url=emu.base_url,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            queries=emu.meetings,
            out=out,
            rate_limit=fast,
        )
        want = sum(len(emu.participants(q)) for q in emu.meetings)
    got = count_lines(out)
    print(f"emulator ground truth: {want} rows → {'OK' if got == want else 'MISMATCH'}")
    return 0 if got == want else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=Path, help="JSONL of meetings (with credentials)")
    parser.add_argument("--out", type=Path, default=Path("participants.jsonl"))
    args = parser.parse_args()
    app_id, secret = os.environ.get("FEISHU_APP_ID"), os.environ.get("FEISHU_APP_SECRET")
    if not (app_id and secret):
        print("FEISHU_APP_ID / FEISHU_APP_SECRET not set: exporting the emulator's meetings")
        return asyncio.run(self_check(args.out))
    if args.meetings is None:
        parser.error("--meetings is required with credentials")
    decoder = msgspec.json.Decoder(MeetingQuery)
    queries = [decoder.decode(line) for line in args.meetings.read_bytes().splitlines() if line]
    _, failures = asyncio.run(
        run(
            base_url=os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL),
            app_id=app_id,
            app_secret=secret,
            queries=queries,
            out=args.out,
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
