"""Asyncio workers in several processes sharing one rate limit through Redis.

The platform's limit (100/min for participant_list) is per app, not per process. Each
process here runs a pool of asyncio tasks with its own VCClient; all of them take their
slots from one ``RedisRateLimiter``, so together they never exceed the app's limit (and
a 429 seen by one process pauses all of them).

Against Feishu (every process of every host pointing at the same Redis)::

    FEISHU_APP_ID=cli_... FEISHU_APP_SECRET=... \\
        python examples/worker_pool.py --redis-url redis://127.0.0.1:6379/0 \\
        --meetings meetings.jsonl --processes 4 --tasks 8

Without credentials it starts the emulator with a scaled limit (40 per 4 s: the real
platform allows 100 per minute), runs the pool against it and checks that every
participant arrived and the emulator never had to answer 429.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from feishu_vc_async import (
    FEISHU_BASE_URL,
    AppCredentials,
    FeishuError,
    Limits,
    MeetingQuery,
    RateLimit,
    VCClient,
)
from feishu_vc_async.ratelimit import RedisRateLimiter


async def _work(
    settings: dict[str, Any], queries: list[MeetingQuery], tasks: int
) -> dict[str, Any]:
    rate = RateLimit(settings["requests"], settings["period"])
    limiter = RedisRateLimiter(
        settings["redis_url"], rate, prefix=settings["prefix"], margin=settings.get("margin")
    )
    queue: asyncio.Queue[MeetingQuery] = asyncio.Queue()
    for query in queries:
        queue.put_nowait(query)
    counts = {"meetings": 0, "participants": 0, "failed": 0}
    try:
        async with VCClient(
            AppCredentials(settings["app_id"], settings["app_secret"]),
            base_url=settings["base_url"],
            limits=Limits(participant_list=limiter),  # ours to close, not the client's
        ) as client:

            async def worker() -> None:
                while not queue.empty():
                    query = queue.get_nowait()
                    try:
                        async for _ in client.participants(query):
                            counts["participants"] += 1
                        counts["meetings"] += 1
                    except FeishuError as exc:
                        counts["failed"] += 1
                        print(f"[{os.getpid()}] {query.meeting_no}: {exc}", file=sys.stderr)

            async with asyncio.TaskGroup() as group:
                for _ in range(tasks):
                    group.create_task(worker())
            counts["requests"] = client.stats.requests
            counts["rate_limited"] = client.stats.rate_limited
    finally:
        await limiter.aclose()
    return {"pid": os.getpid(), **counts}


def process_main(settings: dict[str, Any], queries: list[MeetingQuery], tasks: int) -> Any:
    """The body of one worker process: its own event loop, client and limiter handle."""
    return asyncio.run(_work(settings, queries, tasks))


async def run_pool(
    settings: dict[str, Any], queries: list[MeetingQuery], *, processes: int, tasks: int
) -> list[dict[str, Any]]:
    """Split ``queries`` over ``processes`` processes of ``tasks`` asyncio tasks each."""
    chunks = [queries[i::processes] for i in range(processes)]
    loop = asyncio.get_running_loop()
    # spawn: a clean interpreter per worker (no event loop or socket inherited by fork).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(pool, process_main, settings, chunk, tasks) for chunk in chunks
        ]
        return list(await asyncio.gather(*futures))


def _report(results: list[dict[str, Any]]) -> None:
    for r in results:
        print(
            f"  process {r['pid']}: {r['meetings']} meetings, {r['participants']} participants, "
            f"{r['requests']} requests, {r['rate_limited']} rate-limited, {r['failed']} failed"
        )


async def self_check(redis_url: str, prefix: str, processes: int, tasks: int) -> int:
    from feishu_vc_async.emulator import Emulator, MeetingData

    # Scaled 15x; about twice the limit's worth of requests, so the processes must share.
    rate = RateLimit(40, 4.0)
    async with Emulator(
        meetings=40, seed=5, rate_limit=rate, data=MeetingData(webinar_size=300)
    ) as emu:
        # The emulator makes a meeting's people on first read, inside its request handler;
        # that stalls its event loop and bunches the arrival times it records. Made up
        # front, the check below measures the limiter rather than the emulator.
        for query in emu.meetings:
            emu.participants(query)
        settings = {
            "base_url": emu.base_url,
            "app_id": emu.app_id,
            "app_secret": emu.app_secret,
            "redis_url": redis_url,
            "prefix": prefix,
            "requests": rate.requests,
            "period": rate.period,
        }
        results = await run_pool(settings, emu.meetings, processes=processes, tasks=tasks)
        want = sum(len(emu.participants(q)) for q in emu.meetings)
        refused = sum(1 for r in emu.requests if r.status == 429)
        busiest = emu.max_in_window(rate.period)
    _report(results)
    got = sum(r["participants"] for r in results)
    print(
        f"{processes} processes × {tasks} tasks: {got}/{want} participants; emulator limit "
        f"{rate} (scaled; Feishu allows 100/min): busiest {rate.period:g} s held {busiest} "
        f"requests, {refused} answered 429"
    )
    ok = got == want and refused == 0 and busiest <= rate.requests
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("FEISHU_VC_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis every process shares (env FEISHU_VC_REDIS_URL)",
    )
    parser.add_argument("--prefix", default="feishu_vc_example", help="Redis key prefix")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=4, help="asyncio tasks per process")
    parser.add_argument("--meetings", type=Path, help="JSONL of meetings (with credentials)")
    args = parser.parse_args()
    app_id, secret = os.environ.get("FEISHU_APP_ID"), os.environ.get("FEISHU_APP_SECRET")
    if not (app_id and secret):
        print("FEISHU_APP_ID / FEISHU_APP_SECRET not set: running against the emulator")
        return asyncio.run(self_check(args.redis_url, args.prefix, args.processes, args.tasks))
    if args.meetings is None:
        parser.error("--meetings is required with credentials")
    decoder = msgspec.json.Decoder(MeetingQuery)
    queries = [decoder.decode(line) for line in args.meetings.read_bytes().splitlines() if line]
    rate = RateLimit()
    settings = {
        "base_url": os.environ.get("FEISHU_BASE_URL", FEISHU_BASE_URL),
        "app_id": app_id,
        "app_secret": secret,
        "redis_url": args.redis_url,
        "prefix": args.prefix,
        "requests": rate.requests,
        "period": rate.period,
    }
    results = asyncio.run(run_pool(settings, queries, processes=args.processes, tasks=args.tasks))
    _report(results)
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
