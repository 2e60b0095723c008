"""One fan-out in a fresh process, for a clean peak RSS.

``python -m benchmarks._fanout_child MEETINGS_JSONL BASE_URL`` (credentials in the
environment: FEISHU_APP_ID / FEISHU_APP_SECRET) fans out over the meetings with limits
off, discards every page, and prints one JSON line: pages, participants, seconds, time
to the first item, CPU seconds and the peak RSS of this process (``ru_maxrss``).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.fanout import PageItem
from feishu_vc_async.models import MeetingQuery


async def _main(meetings_file: Path, base_url: str) -> dict[str, float]:
    # Read lazily: a generator, so the input list itself does not grow with the count.
    def queries() -> Iterator[MeetingQuery]:
        with meetings_file.open() as f:
            for line in f:
                m = json.loads(line)
                yield MeetingQuery(
                    meeting_no=m["meeting_no"],
                    meeting_start_time=m["start"],
                    meeting_end_time=m["end"],
                )

    start_rss = _rss_mb()
    sampled = start_rss

    async def sample() -> None:
        # ru_maxrss may be set by the imports; sampling shows the fan-out's own curve.
        nonlocal sampled
        while True:
            sampled = max(sampled, _rss_mb())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    pages = participants = failures = 0
    first: float | None = None
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    async with (
        VCClient(
            AppCredentials(os.environ["FEISHU_APP_ID"], os.environ["FEISHU_APP_SECRET"]),
            base_url=base_url,
            limits=Limits(participant_list=None),
        ) as client,
        client.fan_out(queries()) as results,
    ):
        async for item in results:
            if first is None:
                first = time.perf_counter() - t0
            if isinstance(item, PageItem):
                pages += 1
                participants += len(item.participants)
            else:
                failures += 1
    sampler.cancel()
    sampled = max(sampled, _rss_mb())
    return {
        "rss_before_mb": start_rss,
        "rss_sampled_max_mb": sampled,
        "pages": pages,
        "participants": participants,
        "failures": failures,
        "seconds": time.perf_counter() - t0,
        "first_item_s": first if first is not None else float("nan"),
        "cpu_s": time.process_time() - cpu0,
        # Linux reports kilobytes.
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    """The current resident set, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


def main() -> None:
    out = asyncio.run(_main(Path(sys.argv[1]), sys.argv[2]))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
