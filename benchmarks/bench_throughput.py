"""Unthrottled pages per second and CPU seconds per 1,000 pages against the emulator.

Limits are off on both ends (emulator without gateway, client ``rate_limit=None``): this
measures what each client costs per page, not the platform's quota. The emulator runs in
its own process, so the SDK's blocking token fetch cannot stall it and
``time.process_time()`` of this process is the client's CPU alone. Both sides fetch the
same meetings at the same width (meetings in flight), alternating run by run.

Most of the SDK's per-request CPU goes to creating a new ``httpx.AsyncClient`` for every
request, which loads the CA bundle into a fresh SSL context (``load_verify_locations``)
even for an ``http://`` base URL; the rest to its reflective object building.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from feishu_vc_async.models import MeetingQuery

from ._emulator_proc import EmulatorProcess
from ._harness import BenchResult, Config, Stat
from ._peers import Tally, ours_fetch, require_client, sdk_client, sdk_gather

NAME = "throughput"
TITLE = "2. Unthrottled throughput against the emulator"
GOAL = 3.0
GOAL_TEXT = ">= 3x the SDK"


async def _timed(
    fn: Callable[[], Awaitable[Tally]],
) -> tuple[Tally, float, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    tally = await fn()
    return tally, time.perf_counter() - t0, time.process_time() - cpu0


async def _measure(
    emu: EmulatorProcess,
    ours_queries: Sequence[MeetingQuery],
    sdk_queries: Sequence[MeetingQuery],
    width: int,
    cfg: Config,
) -> tuple[dict[str, dict[str, list[float]]], str]:
    from feishu_vc_async.client import VCClient

    mode = "?"
    out: dict[str, dict[str, list[float]]] = {
        side: {"pps": [], "cpu": [], "pages": []} for side in ("ours", "sdk")
    }
    sdk = sdk_client(emu.base_url, emu.app_id, emu.app_secret)
    async with VCClient(
        app_id=emu.app_id, app_secret=emu.app_secret, base_url=emu.base_url, rate_limit=None
    ) as ours:
        runners: dict[str, Callable[[], Awaitable[Tally]]] = {
            "ours": lambda: ours_fetch(ours, ours_queries, width),
            "sdk": lambda: sdk_gather(sdk, sdk_queries, width),
        }
        warm = list(sdk_queries[: max(2, len(sdk_queries) // 10)])
        # Warm-up: token fetches, connection pool, and every page once so the emulator
        # serves from its cache (it generates rows on first read).
        for _ in range(cfg.warmup):
            await sdk_gather(sdk, warm, width)
            await ours_fetch(ours, ours_queries, width)
        for _ in range(cfg.repeats):
            for side, runner in runners.items():
                tally, wall, cpu = await _timed(runner)
                if tally.errors:
                    raise RuntimeError(
                        f"{side}: {tally.errors} meetings failed: "
                        f"{tally.extra.get('error_codes', [])[:3]}"
                    )
                out[side]["pps"].append(tally.pages / wall)
                out[side]["cpu"].append(cpu / tally.pages * 1000)
                out[side]["pages"].append(tally.pages)
                if "mode" in tally.extra:
                    mode = str(tally.extra["mode"])
    return out, mode


def run(cfg: Config) -> BenchResult:
    require_client()
    res = BenchResult(NAME, TITLE)
    # The SDK needs ~30 ms of CPU per page: three repeats keep this near a minute.
    cfg = replace(cfg, repeats=min(cfg.repeats, 3))
    latencies = cfg.pick([0.0, 0.02], [0.0, 0.02])
    width = cfg.pick(32, 8)
    # Each side gets work for a few seconds per run: the SDK the first ``sdk_meetings``,
    # ours all ``meetings`` (the same random mix of sizes, about 6x the pages; within
    # the emulator's 512-meeting row cache).
    meetings, sdk_meetings = cfg.pick((480, 80), (48, 8))
    res.params = {
        "latencies_ms": [int(x * 1000) for x in latencies],
        "width": width,
        "meetings_ours": meetings,
        "meetings_sdk": sdk_meetings,
        "repeats": cfg.repeats,
    }
    pages_seen: dict[str, Any] = {}
    mode = "?"
    for latency in latencies:
        ms = int(latency * 1000)
        with EmulatorProcess(meetings=meetings, latency=latency, seed=11, webinars=0) as emu:
            queries = [m.query for m in emu.meetings]
            data, mode = asyncio.run(_measure(emu, queries, queries[:sdk_meetings], width, cfg))
            stats = emu.stats()
        pages_seen[f"{ms}ms"] = {
            "ours": int(data["ours"]["pages"][0]),
            "sdk": int(data["sdk"]["pages"][0]),
        }
        for side, label in (("ours", "ours (VCClient)"), ("sdk", "lark-oapi aget + gather")):
            res.add(
                f"lat{ms}.{side}.pages_per_s",
                f"latency {ms} ms — {label}: pages/s",
                Stat.of(data[side]["pps"], "pages/s"),
                better="higher",
            )
            res.add(
                f"lat{ms}.{side}.cpu_per_1000",
                f"latency {ms} ms — {label}: client CPU per 1,000 pages",
                Stat.of(data[side]["cpu"], "CPU s"),
            )
        res.ratio(
            f"lat{ms}.pps_ratio",
            f"Unthrottled pages/s, latency {ms} ms: ours vs SDK",
            f"lat{ms}.ours.pages_per_s",
            f"lat{ms}.sdk.pages_per_s",
            goal=GOAL,
            goal_text=GOAL_TEXT,
            headline=True,
        )
        res.ratio(
            f"lat{ms}.cpu_ratio",
            f"Client CPU per page, latency {ms} ms: SDK / ours",
            f"lat{ms}.ours.cpu_per_1000",
            f"lat{ms}.sdk.cpu_per_1000",
            headline=ms == 0,
            goal_text="informative",
        )
        res.notes.append(
            f"latency {ms} ms: emulator process used {stats['cpu_s']:.1f} CPU s for "
            f"{stats['requests']} requests."
        )
    res.params["pages_per_run"] = pages_seen
    res.notes.append(
        f"Ours fetched with {mode}; the SDK with aget in a page-token "
        "loop per meeting under asyncio.gather + Semaphore(width)."
    )
    return res
