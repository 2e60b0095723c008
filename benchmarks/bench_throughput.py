"""Unthrottled pages per second and CPU seconds per 1,000 pages against the emulator.

Limits are off on both ends (emulator without gateway, client ``Limits.unlimited()``): this
measures what each client costs per page, not the platform's quota. The emulator runs in
its own process, so the SDK's blocking token fetch cannot stall it and
``time.process_time()`` of this process is the client's CPU alone. Every side fetches
the same meetings (a random mix of sizes) with the same number of meetings in flight
(``width``); the sides take turns run by run, in a rotating order, five runs each
(the SDK three), and the ratios are of medians.

The sides, each written the way its users write it:

* **ours**: ``VCClient(
    limits=Limits(participant_list=None),
).fan_out(queries, concurrency=width)``, pages
  counted and dropped;
* **raw aiohttp + msgspec** (the ceiling of doing nothing else): one
  ``aiohttp.ClientSession``, the tenant token fetched once with a POST, a page-token loop
  per meeting, ``asyncio.gather`` over meetings under a ``Semaphore(width)``, and
  ``msgspec.json.Decoder`` of a minimal answer (``code``, ``page_token``, ``has_more``)
  with every participant decoded into a struct of the same 28 fields as ours (the
  library's ``Participant``). No limiter, no retries, no validation: it is what any
  client's extra work (limiting, retrying, checking, counting) is measured against;
* **the aiolimiter script**: the same session, token, loop, gather and semaphore, plus
  ``aiolimiter.AsyncLimiter`` around every request, ``json.loads`` of the body into
  plain dicts, and on a 429 (or code 99991400) a sleep of ``x-ogw-ratelimit-reset``
  seconds and the same request again. Here its limit (10^9 per second) never binds:
  the script pays for its limiter without being slowed by it, as ours (without a
  limiter here) pays for none;
* **the SDK** (lark-oapi): ``client.vc.v1.participant_list.aget`` in a page-token loop,
  ``asyncio.gather`` + ``Semaphore(width)``; on fewer meetings (it needs ~17 ms of CPU
  per page).

Ours, the raw loop and the script fetch the meetings several times over in one run
(the list repeated), so a run lasts about a second or more and start-up (sessions,
connections, the token) is a small share of it. At 0 ms latency the figure is the
client's (and the emulator's) CPU per page; at 20 ms every side is bounded by
``width / latency`` (1,600 pages/s at 32 × 20 ms), so the goals against the peers are
judged at 0 ms and the 20 ms ratios are informative.

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

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.models import MeetingQuery

from ._emulator_proc import EmulatorProcess
from ._harness import BenchResult, Config, Stat
from ._peers import (
    Tally,
    aiolimiter_script,
    ours_fetch,
    raw_msgspec_loop,
    require_client,
    sdk_client,
    sdk_gather,
)

NAME = "throughput"
TITLE = "2. Unthrottled throughput against the emulator"
GOAL = 3.0
GOAL_TEXT = ">= 3x the SDK"
RAW_GOAL = 0.85
# The aiolimiter script's limit in this benchmark: far above anything served here.
NON_BINDING = (1_000_000_000, 1.0)
SIDES = {
    "ours": "ours (VCClient)",
    "raw": "raw aiohttp + msgspec",
    "aiolimiter": "aiolimiter script",
    "sdk": "lark-oapi aget + gather",
}


async def _timed(
    fn: Callable[[], Awaitable[Tally]],
) -> tuple[Tally, float, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    tally = await fn()
    return tally, time.perf_counter() - t0, time.process_time() - cpu0


async def _measure(
    emu: EmulatorProcess,
    meetings: Sequence[MeetingQuery],
    rounds: int,
    sdk_queries: Sequence[MeetingQuery],
    width: int,
    cfg: Config,
    sdk_repeats: int,
) -> tuple[dict[str, dict[str, list[float]]], str]:
    """Each side's runs: ours, the raw loop and the script over ``meetings`` repeated
    ``rounds`` times, ``cfg.repeats`` runs each; the SDK over ``sdk_queries``,
    ``sdk_repeats`` runs."""
    from feishu_vc_async.client import VCClient

    queries = list(meetings) * rounds
    mode = "?"
    out: dict[str, dict[str, list[float]]] = {
        side: {"pps": [], "cpu": [], "pages": []} for side in SIDES
    }
    sdk = sdk_client(emu.base_url, emu.app_id, emu.app_secret)
    creds = (emu.base_url, emu.app_id, emu.app_secret)
    async with VCClient(
        AppCredentials(emu.app_id, emu.app_secret),
        base_url=emu.base_url,
        limits=Limits(participant_list=None),
    ) as ours:
        runners: dict[str, Callable[[], Awaitable[Tally]]] = {
            "ours": lambda: ours_fetch(ours, queries, width),
            "raw": lambda: raw_msgspec_loop(*creds, queries, width),
            "aiolimiter": lambda: aiolimiter_script(
                *creds, queries, width, limit=NON_BINDING[0], period=NON_BINDING[1]
            ),
            "sdk": lambda: sdk_gather(sdk, sdk_queries, width),
        }
        warm = list(sdk_queries[: max(2, len(sdk_queries) // 10)])
        # Warm-up: token fetches, connection pool, imports, and every page once so the
        # emulator serves from its cache (it generates rows on first read).
        for _ in range(cfg.warmup):
            await sdk_gather(sdk, warm, width)
            await ours_fetch(ours, meetings, width)
            await raw_msgspec_loop(*creds, warm, width)
            await aiolimiter_script(
                *creds, warm, width, limit=NON_BINDING[0], period=NON_BINDING[1]
            )
        order = list(runners)
        for i in range(cfg.repeats):
            # A rotating order: no side always runs first (or right after the SDK).
            for side in order[i % len(order) :] + order[: i % len(order)]:
                if side == "sdk" and i >= sdk_repeats:
                    continue
                tally, wall, cpu = await _timed(runners[side])
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
    # Five runs of each side: on 2 cores shared with the emulator one run in three can
    # be off by a fifth, and the goals are ratios of medians. The SDK needs ~20 ms of
    # CPU per page: three of its runs keep this under a minute.
    cfg = replace(cfg, repeats=min(cfg.repeats, 5))
    sdk_repeats = min(cfg.repeats, 3)
    latencies = cfg.pick([0.0, 0.02], [0.0, 0.02])
    width = cfg.pick(32, 8)
    # ``meetings`` (a random mix of sizes, within the emulator's 512-meeting row cache)
    # repeated ``rounds[latency]`` times per run for ours, the raw loop and the script;
    # the first ``sdk_meetings`` once for the SDK.
    meetings, sdk_meetings = cfg.pick((480, 80), (48, 8))
    rounds = cfg.pick({0.0: 10, 0.02: 2}, {0.0: 1, 0.02: 1})
    res.params = {
        "latencies_ms": [int(x * 1000) for x in latencies],
        "width": width,
        "meetings": meetings,
        "rounds_per_run": {f"{int(k * 1000)}ms": v for k, v in rounds.items()},
        "meetings_sdk": sdk_meetings,
        "repeats": cfg.repeats,
        "sdk_repeats": sdk_repeats,
    }
    pages_seen: dict[str, Any] = {}
    mode = "?"
    for latency in latencies:
        ms = int(latency * 1000)
        with EmulatorProcess(meetings=meetings, latency=latency, seed=11, webinars=0) as emu:
            queries = [m.query for m in emu.meetings]
            data, mode = asyncio.run(
                _measure(
                    emu, queries, rounds[latency], queries[:sdk_meetings], width, cfg, sdk_repeats
                )
            )
            stats = emu.stats()
        pages_seen[f"{ms}ms"] = {side: int(data[side]["pages"][0]) for side in SIDES}
        for side, label in SIDES.items():
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
        client_bound = ms == 0
        res.ratio(
            f"lat{ms}.raw_ratio",
            f"Unthrottled pages/s, latency {ms} ms: ours vs raw aiohttp + msgspec",
            f"lat{ms}.ours.pages_per_s",
            f"lat{ms}.raw.pages_per_s",
            goal=RAW_GOAL if client_bound else None,
            goal_text=f">= {RAW_GOAL}x" if client_bound else "informative: latency-bound",
            headline=True,
        )
        res.ratio(
            f"lat{ms}.aiolimiter_ratio",
            f"Unthrottled pages/s, latency {ms} ms: ours vs the hand-written aiolimiter script",
            f"lat{ms}.ours.pages_per_s",
            f"lat{ms}.aiolimiter.pages_per_s",
            goal=1.0 if client_bound else None,
            goal_text="> 1x" if client_bound else "informative: latency-bound",
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
        for peer in ("raw", "aiolimiter"):
            res.ratio(
                f"lat{ms}.cpu_ratio_{peer}",
                f"Client CPU per page, latency {ms} ms: {SIDES[peer]} / ours",
                f"lat{ms}.ours.cpu_per_1000",
                f"lat{ms}.{peer}.cpu_per_1000",
                goal_text="informative",
            )
        res.notes.append(
            f"latency {ms} ms: emulator process used {stats['cpu_s']:.1f} CPU s for "
            f"{stats['requests']} requests."
        )
    res.params["pages_per_run"] = pages_seen
    res.notes.append(
        f"Ours fetched with {mode}; the raw loop, the aiolimiter script and the SDK with "
        f"a page-token loop per meeting under asyncio.gather + Semaphore({width})."
    )
    return res
