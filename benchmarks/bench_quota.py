"""Quota utilization under the emulator's sliding-window gateway, at scaled time.

The gateway allows ``limit`` requests in any ``period`` seconds (100 per 3 s here, the
real 100 per 60 s scaled down 20x). Ours: ``VCClient(rate_limit=RateLimit(limit,
period))`` fanning out over the meetings with its default concurrency. The SDK has no
limiter, so its users write one of:

* a sequential loop paced at ``period / limit`` start to start (the careful version);
* a sequential loop that sleeps ``period / limit`` after every call (issue 4: "sleeps
  0.6 s between calls" at 100 per 60 s);
* ``asyncio.gather`` with a semaphore and no limiter, sleeping ``x-ogw-ratelimit-reset``
  on a 429 and retrying (the platform's advice).

Utilization is read from the gateway's own log: admitted requests over what the limit
allows in the run's window, ``limit * window / period + 1``. The window opens when the
client starts (token fetch and ramp-up count against it) and closes at the last
admitted arrival (the latency of the last answer does not count) or, for a time-boxed
run, at its deadline. The SDK runs are time-boxed; their time to finish the same work
is projected from the rate they achieved, and says so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit

from ._emulator_proc import EmulatorProcess, MeetingFacts
from ._harness import BenchResult, Check, Config, Stat
from ._peers import Tally, ours_fetch, require_client, sdk_client, sdk_gather, sdk_meeting

NAME = "quota"
TITLE = "3. Quota utilization under the sliding gateway"
GOAL = 0.98
SDK_WIDTH = 32
# Enough in flight for 100 per 3 s at 800 ms (rate x latency = 27) with room to spare.
FIXED_CONCURRENCY = 48


@dataclass
class Outcome:
    utilization: float
    steady: float
    admitted: int
    refused: int
    finish_s: float
    projected: bool


def utilization(
    records: list[tuple[float, int]], rate: RateLimit, start: float, deadline: float | None
) -> tuple[float, int, int]:
    """(utilization, admitted, refused) of one run, from the gateway's arrival log.

    The run's window opens when the client starts (``start``, monotonic: the same clock
    as the emulator's log on Linux) and closes at the last admitted arrival, or at the
    deadline of a time-boxed run, whichever is later. What the limit allows in that
    window is ``limit * window / period + 1``.
    """
    admitted = sorted(t for t, status in records if status != 429)
    refused = sum(1 for _, status in records if status == 429)
    if not admitted:
        return 0.0, 0, refused
    end = admitted[-1] if deadline is None else max(admitted[-1], deadline)
    allowed = rate.requests * max(0.0, end - start) / rate.period + 1
    return len(admitted) / allowed, len(admitted), refused


def steady_state(
    records: list[tuple[float, int]], rate: RateLimit, start: float, deadline: float | None
) -> float:
    """Utilization over the middle half of the run's window: the steady state, without
    the ramp-up at the start or the tail of the last meetings' remaining pages (pages
    of one meeting are sequential, so the last few seconds hold too few requests for
    any client)."""
    admitted = sorted(t for t, status in records if status != 429)
    if not admitted:
        return 0.0
    end = admitted[-1] if deadline is None else max(admitted[-1], deadline)
    lo, hi = start + (end - start) / 4, end - (end - start) / 4
    allowed = rate.requests * (hi - lo) / rate.period
    if allowed <= 0:
        return 0.0
    return sum(1 for t in admitted if lo <= t < hi) / allowed


def workload(meetings: list[MeetingFacts], pages: int) -> tuple[list[MeetingQuery], int]:
    """Meetings of at most 3 pages, in order, until they hold ``pages`` pages.

    Small meetings keep the end of a run from being one long meeting paging alone (a
    tail that measures latency, not the limiter).
    """
    chosen: list[MeetingQuery] = []
    total = 0
    for m in meetings:
        n = max(1, math.ceil(m.participants / 100))
        if n > 3:
            continue
        chosen.append(m.query)
        total += n
        if total >= pages:
            break
    return chosen, total


async def _ours(
    emu: EmulatorProcess,
    queries: Sequence[MeetingQuery],
    rate: RateLimit,
    box: float,
    concurrency: int | None = None,
) -> Tally:
    """Ours over the workload, stopped after ``box`` seconds (then time-boxed like the
    SDK runs: utilization over the box, time to finish projected)."""
    from feishu_vc_async.client import VCClient

    app_id, secret = emu.add_app()  # a fresh gateway bucket and no cached token
    async with VCClient(
        app_id=app_id, app_secret=secret, base_url=emu.base_url, rate_limit=rate
    ) as client:
        t0 = time.perf_counter()
        start = time.monotonic()
        tally = Tally(extra={"start": start, "deadline": start + box})
        try:
            async with asyncio.timeout(box):
                await ours_fetch(client, queries, concurrency, tally)
        except TimeoutError:
            tally.extra["stopped_at_deadline"] = True
        tally.extra["finish_s"] = time.perf_counter() - t0
    tally.extra["app_id"] = app_id
    return tally


async def _sdk_sequential(
    emu: EmulatorProcess,
    queries: Sequence[MeetingQuery],
    rate: RateLimit,
    seconds: float,
    *,
    start_to_start: bool,
) -> Tally:
    app_id, secret = emu.add_app()
    client = sdk_client(emu.base_url, app_id, secret)
    tally = Tally()
    interval = rate.period / rate.requests
    next_slot = time.perf_counter()
    first = True

    async def pace() -> None:
        nonlocal next_slot, first
        if start_to_start:
            now = time.perf_counter()
            if next_slot > now:
                await asyncio.sleep(next_slot - now)
            next_slot = max(next_slot, time.perf_counter()) + interval
        elif not first:
            await asyncio.sleep(interval)
        first = False

    _sdk_token(client)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    tally.extra["start"] = time.monotonic()
    tally.extra["deadline"] = tally.extra["start"] + seconds
    for query in queries:
        await sdk_meeting(client, query, tally, pace=pace, wait_on_429=True, deadline=deadline)
        if time.perf_counter() >= deadline:
            break
    tally.extra["finish_s"] = time.perf_counter() - t0
    tally.extra["app_id"] = app_id
    return tally


def _sdk_token(client: Any) -> None:
    """Fetch the SDK's tenant token now (blocking, as the SDK does on a cold cache), so
    the timed part starts warm and no participant_list request is spent on it."""
    from lark_oapi.core.token.manager import TokenManager

    TokenManager.get_self_tenant_token(client.config)


async def _sdk_gather(
    emu: EmulatorProcess, queries: Sequence[MeetingQuery], seconds: float
) -> Tally:
    app_id, secret = emu.add_app()
    client = sdk_client(emu.base_url, app_id, secret)
    _sdk_token(client)
    t0 = time.perf_counter()
    start = time.monotonic()
    tally = await sdk_gather(client, queries, SDK_WIDTH, wait_on_429=True, deadline=t0 + seconds)
    tally.extra["start"] = start
    tally.extra["deadline"] = start + seconds
    tally.extra["finish_s"] = time.perf_counter() - t0
    tally.extra["app_id"] = app_id
    return tally


def _outcome(emu: EmulatorProcess, tally: Tally, rate: RateLimit, pages: int) -> Outcome:
    projected = bool(tally.extra.get("stopped_at_deadline")) or tally.pages < pages
    log = emu.log(str(tally.extra["app_id"]))
    start = float(tally.extra["start"])
    deadline = float(tally.extra["deadline"]) if projected else None
    util, admitted, refused = utilization(log, rate, start, deadline)
    steady = steady_state(log, rate, start, deadline)
    finish = float(tally.extra["finish_s"])
    if projected and tally.pages:
        finish = finish * pages / tally.pages
    return Outcome(util, steady, admitted, refused, finish, projected)


def run(cfg: Config) -> BenchResult:
    require_client()
    res = BenchResult(NAME, TITLE)
    rate = cfg.pick(RateLimit(100, 3.0), RateLimit(20, 1.0))
    pages = cfg.pick(300, 20)
    ours_runs = cfg.pick(2, 1)
    peer_seconds = cfg.pick(4.0, 0.75)
    # Ours is stopped at 1.6x the quota's floor: a slow ramp-up shows without eating the
    # whole budget.
    ours_box = 1.6 * pages * rate.period / rate.requests
    latencies = [0.05, 0.2, 0.8]
    res.params = {
        "gateway": f"sliding {rate}",
        "pages_per_run": pages,
        "latencies_ms": [int(x * 1000) for x in latencies],
        "ours_runs": ours_runs,
        "sdk_time_box_s": peer_seconds,
        "ours_time_box_s": ours_box,
        "sdk_gather_width": SDK_WIDTH,
    }
    interval = rate.period / rate.requests
    peers: dict[
        str, tuple[str, Callable[[EmulatorProcess, list[MeetingQuery]], Coroutine[Any, Any, Tally]]]
    ]
    peers = {
        "sdk_paced": (
            f"SDK sequential, paced {interval * 1000:.0f} ms start to start",
            lambda e, q: _sdk_sequential(e, q, rate, peer_seconds, start_to_start=True),
        ),
        "sdk_sleep": (
            f"SDK sequential, sleeps {interval * 1000:.0f} ms after each call (issue 4)",
            lambda e, q: _sdk_sequential(e, q, rate, peer_seconds, start_to_start=False),
        ),
        "sdk_gather": (
            f"SDK gather (width {SDK_WIDTH}), no limiter, waits reset on 429",
            lambda e, q: _sdk_gather(e, q, peer_seconds),
        ),
    }
    for latency in latencies:
        ms = int(latency * 1000)
        with EmulatorProcess(
            meetings=400, seed=13, latency=latency, webinars=0, rate=str(rate)
        ) as emu:
            queries, planned = workload(emu.meetings, pages)
            outcomes: list[Outcome] = []
            for _ in range(ours_runs):
                tally = asyncio.run(_ours(emu, queries, rate, ours_box))
                if tally.errors:
                    raise RuntimeError(f"ours: {tally.errors} meetings failed")
                outcomes.append(_outcome(emu, tally, rate, planned))
            res.add(
                f"lat{ms}.ours.utilization",
                f"latency {ms} ms — ours (VCClient + RateLimit): utilization",
                Stat.of([o.utilization for o in outcomes], "share"),
                better="higher",
            )
            res.add(
                f"lat{ms}.ours.utilization_steady",
                f"latency {ms} ms — ours: utilization in the steady state (middle half)",
                Stat.of([o.steady for o in outcomes], "share"),
                better="higher",
            )
            res.add(
                f"lat{ms}.ours.finish_s",
                f"latency {ms} ms — ours: time to finish {planned} pages"
                + (
                    f" (projected where stopped at {ours_box:g} s)"
                    if any(o.projected for o in outcomes)
                    else ""
                ),
                Stat.of([o.finish_s for o in outcomes], "s"),
            )
            res.add(
                f"lat{ms}.ours.rate_limited",
                f"latency {ms} ms — ours: 429s",
                Stat.of([o.refused for o in outcomes], "count"),
            )
            # The same with a fixed, ample concurrency: separates the limiter (pacing)
            # from the fan-out's adaptive concurrency (how fast it ramps up).
            tally = asyncio.run(_ours(emu, queries, rate, ours_box, FIXED_CONCURRENCY))
            fixed = o = _outcome(emu, tally, rate, planned)
            res.add(
                f"lat{ms}.ours_fixed.utilization",
                f"latency {ms} ms — ours, fan_out(concurrency={FIXED_CONCURRENCY}): utilization",
                Stat.of([o.utilization], "share"),
                better="higher",
            )
            res.add(
                f"lat{ms}.ours_fixed.utilization_steady",
                f"latency {ms} ms — ours, fan_out(concurrency={FIXED_CONCURRENCY}): "
                "utilization in the steady state (middle half)",
                Stat.of([o.steady], "share"),
                better="higher",
            )
            res.add(
                f"lat{ms}.ours_fixed.rate_limited",
                f"latency {ms} ms — ours, fan_out(concurrency={FIXED_CONCURRENCY}): 429s",
                Stat.of([o.refused], "count"),
            )
            whole = min(o.utilization for o in outcomes)
            steady = min(o.steady for o in outcomes)
            refusals = sum(o.refused for o in outcomes)
            res.checks.append(
                Check(
                    f"lat{ms}.ours.goal",
                    f"Quota utilization at {ms} ms latency, steady state: ours "
                    f"(worst of {len(outcomes)} runs)",
                    f"{steady:.3f}, {refusals} 429s (the same with fan_out(concurrency="
                    f"{FIXED_CONCURRENCY}): {fixed.steady:.3f}, {fixed.refused} 429s)",
                    f">= {GOAL} with zero 429s",
                    steady >= GOAL and refusals == 0,
                    headline=True,
                )
            )
            res.checks.append(
                Check(
                    f"lat{ms}.ours.whole",
                    f"Quota utilization at {ms} ms latency, whole run incl. ramp-up and "
                    f"tail: ours (worst of {len(outcomes)} runs)",
                    f"{whole:.3f}; {planned} pages in "
                    f"{max(o.finish_s for o in outcomes):.1f} s"
                    + (" (projected)" if any(o.projected for o in outcomes) else "")
                    + " "
                    f"(the quota's floor: {planned * rate.period / rate.requests:.1f} s)",
                    "informative",
                    None,
                    headline=True,
                )
            )
            for key, (label, runner) in peers.items():
                tally = asyncio.run(runner(emu, queries))
                o = _outcome(emu, tally, rate, planned)
                res.add(
                    f"lat{ms}.{key}.utilization",
                    f"latency {ms} ms — {label}: utilization",
                    Stat.of([o.utilization], "share"),
                    better="higher",
                )
                res.add(
                    f"lat{ms}.{key}.finish_s",
                    f"latency {ms} ms — {label}: time to finish {planned} pages"
                    + (f" (projected from a {peer_seconds:g} s run)" if o.projected else ""),
                    Stat.of([o.finish_s], "s"),
                )
                res.add(
                    f"lat{ms}.{key}.rate_limited",
                    f"latency {ms} ms — {label}: 429s",
                    Stat.of([o.refused], "count"),
                )
                res.ratio(
                    f"lat{ms}.{key}.finish_ratio",
                    f"Time to finish at {ms} ms: {label} / ours",
                    f"lat{ms}.ours.finish_s",
                    f"lat{ms}.{key}.finish_s",
                )
    res.notes.append(
        "Utilization comes from the gateway's log of admitted requests (arrival times), so "
        "client-side latency after the last request does not count against anyone. The "
        "emulator answers 429 at once (no latency)."
    )
    return res
