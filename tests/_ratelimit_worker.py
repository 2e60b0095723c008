"""One worker process of the multi-process Redis limiter test (not a test module).

Run as ``python tests/_ratelimit_worker.py '<json config>'``. It opens its own VCClient
with its own RedisRateLimiter, prints ``ready``, waits for ``go`` on stdin, makes
``total`` participant_list requests with ``tasks`` concurrent callers, and prints one
JSON line with its counters. With ``"paged": true`` each of the ``total`` (default: all)
queries is read to its last page instead; ``fallback_local`` and ``reconnect_interval``
go to the limiter, and ``"log": true`` writes the limiter's log to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import msgspec

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit, RedisRateLimiter


async def main(config: dict[str, Any]) -> dict[str, int]:
    queries = msgspec.json.decode(str(config["queries"]).encode(), type=list[MeetingQuery])
    rate = RateLimit.parse(str(config["rate"]))
    limiter = RedisRateLimiter(
        str(config["redis_url"]),
        rate,
        prefix=str(config["prefix"]),
        margin=float(config["margin"]),
        fallback_local=bool(config.get("fallback_local", False)),
        reconnect_interval=float(config.get("reconnect_interval", 30.0)),
    )
    if config.get("log"):
        log = logging.getLogger("feishu_vc_async.ratelimit")
        log.addHandler(logging.StreamHandler(sys.stderr))
        log.setLevel(logging.INFO)
    total, tasks = int(config.get("total", len(queries))), int(config["tasks"])
    paged = bool(config.get("paged", False))
    loop = asyncio.get_running_loop()
    try:
        async with VCClient(
            AppCredentials(str(config["app_id"]), str(config["app_secret"])),
            base_url=str(config["base_url"]),
            limits=Limits(participant_list=limiter),
        ) as client:
            print("ready", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            remaining = iter(range(total))
            done = participants = 0

            async def worker() -> None:
                nonlocal done, participants
                for i in remaining:
                    query = queries[i % len(queries)]
                    if paged:
                        async for _ in client.participants(query, page_size=20):
                            participants += 1
                    else:
                        page = await client.participant_list(query, page_size=20)
                        participants += len(page.participants)
                    done += 1

            await asyncio.gather(*(worker() for _ in range(tasks)))
            return {
                "done": done,
                "participants": participants,
                "requests": client.stats.requests,
                "rate_limited": client.stats.rate_limited,
            }
    finally:
        await limiter.aclose()


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    print(json.dumps(result), flush=True)
