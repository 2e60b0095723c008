"""Quota utilization under the emulator's sliding-window gateway, at scaled time.

The gateway allows ``limit`` requests in any ``period`` seconds (100 per 3 s here, the
real 100 per 60 s scaled down 20x). The work: the emulator's own mix of meeting sizes
(its generator's distribution, large meetings included) taken in the generator's order
until about 300 pages, skipping any meeting whose chain of pages alone would take
longer than the quota needs for the whole work (so the floor stays the quota's). Every
side gets the same meetings in the same order: largest first, by the participant counts
meeting_list reports (checked equal to the rows participant_list returns), as a sorted
list (what ``discovery.LargestFirst`` gives once discovery has put every meeting).

Ours: ``VCClient(
    limits=Limits(participant_list=RateLimit(limit, period)),
)`` fanning out over the meetings
with its default concurrency. The peers, each written the way its users write it:

* the aiolimiter script: ``aiohttp`` + ``aiolimiter.AsyncLimiter(100, 3)`` (the way a
  user writes ``AsyncLimiter(100, 60)`` for the platform), ``json.loads``, on a 429
  ``asyncio.sleep(float(resp.headers["x-ogw-ratelimit-reset"]))`` and retry, the token
  fetched once with a POST, a page-token loop per meeting, ``asyncio.gather`` under a
  ``Semaphore(32)`` (the SDK gather's width: more than the 27 in flight that 100 per
  3 s needs at 800 ms). It runs to completion. aiolimiter's bucket holds ``limit``
  requests, so it sends 100 at once and then 100 per 3 s: the gateway refuses what goes
  past 100 in the first window (about one refusal per request the burst took early),
  and the script sleeps the reset. The burst into the empty window buys back about
  the time those sleeps cost, so its whole run can come out near (or under) the
  sustained-rate floor: read its 429s beside it;
* the SDK has no limiter, so its users write one of: a sequential loop paced at
  ``period / limit`` start to start (the careful version); a sequential loop that
  sleeps ``period / limit`` after every call (issue 4: "sleeps 0.6 s between calls" at
  100 per 60 s); ``asyncio.gather`` with a semaphore and no limiter, sleeping
  ``x-ogw-ratelimit-reset`` on a 429 and retrying (the platform's advice). The SDK runs
  are time-boxed; their time to finish the same work is projected from the rate they
  achieved, and says so.

The score is the whole run against the true floor (:func:`true_floor`): from the
client's start (token fetch and ramp-up count) to the last admitted arrival at the
gateway (the latency of the last answer does not count), against
``max(requests × period / limit, longest chain of pages × latency)``. Utilization
(admitted requests over what the limit allows in the run's window, ``limit × window /
period + 1``) and the steady state (the middle half of the window, without ramp-up and
tail) are kept as informative figures. All are read from the gateway's own log.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.models import MeetingQuery
from feishu_vc_async.ratelimit import RateLimit

from ._emulator_proc import EmulatorProcess, MeetingFacts
from ._harness import BenchResult, Check, Config, Stat
from ._peers import (
    Tally,
    aiolimiter_script,
    ours_fetch,
    require_client,
    sdk_client,
    sdk_gather,
    sdk_meeting,
)

NAME = "quota"
TITLE = "3. Quota utilization under the sliding gateway"
# The whole run against the true floor, ours: at least this, with zero 429s.
GOAL = 0.95
SDK_WIDTH = 32
# The aiolimiter script runs to completion unless it takes longer than this many times
# the floor (then it is stopped and its time to finish projected, and says so).
SCRIPT_BOX = 2.5
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
    # The whole run (start to last admitted arrival, projected for a stopped run) and
    # the floor over it: true_floor / span.
    span_s: float = 0.0
    vs_floor: float = 0.0


@dataclass(frozen=True)
class Workload:
    queries: list[MeetingQuery]  # largest first
    pages: int  # requests at the least: one per page
    longest_chain: int  # pages of the largest meeting
    skipped: int  # meetings left out: their chain alone would exceed the quota's floor
    sizes_checked: int  # meetings whose meeting_list size equals their rows
    sizes_differ: int


def true_floor(requests: int, rate: RateLimit, longest_chain: int, latency: float) -> float:
    """The least time any client can take, from its start to the last admitted arrival,
    to have ``requests`` requests admitted when one meeting needs ``longest_chain``
    pages, one after the other, each taking ``latency``:
    ``max(requests × period / limit, longest_chain × latency)``.

    The first term is the quota at its sustained rate; the second is the chain of the
    largest meeting: its pages are sequential (each needs the previous page's token),
    however early it starts. The first term does not credit a burst into an empty
    window: a sliding gateway admits ``limit`` requests at once at the start, but that
    spends the same budget early, and whether the platform's window slides or is fixed
    is not documented (a client must not count on either). It counts each request's
    full interval and the chain each page's full latency, although the span ends at an
    arrival: the floor is generous to the client by at most one interval (1/requests of
    it) or one latency.
    """
    return max(requests * rate.period / rate.requests, longest_chain * latency)


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


def pages_of(participants: int) -> int:
    return max(1, math.ceil(participants / 100))


def workload(
    meetings: list[MeetingFacts],
    pages: int,
    rate: RateLimit,
    latency: float,
    listed_sizes: dict[str, int] | None = None,
) -> Workload:
    """The emulator's meetings in its generator's order, whatever their size, until they
    hold ``pages`` pages; a meeting whose chain alone (its pages × ``latency``) would
    exceed the quota's floor for ``pages`` requests is skipped. Sorted largest first by
    the size meeting_list reports (``listed_sizes``, by query key; the rows' count where
    it has none), ties in the generator's order.
    """
    quota_floor = pages * rate.period / rate.requests
    chosen: list[MeetingFacts] = []
    total = skipped = 0
    for m in meetings:
        n = pages_of(m.participants)
        if n * latency > quota_floor:
            skipped += 1
            continue
        chosen.append(m)
        total += n
        if total >= pages:
            break
    listed = listed_sizes or {}
    same = sum(1 for m in chosen if listed.get(m.query.key) == m.participants)

    def size(m: MeetingFacts) -> int:
        return listed.get(m.query.key, m.participants)

    ordered = sorted(chosen, key=size, reverse=True)  # stable: ties keep their order
    return Workload(
        queries=[m.query for m in ordered],
        pages=total,
        longest_chain=max((pages_of(m.participants) for m in chosen), default=0),
        skipped=skipped,
        sizes_checked=same,
        sizes_differ=len(chosen) - same,
    )


def listed_sizes(emu: EmulatorProcess) -> dict[str, int]:
    """``number_of_participants`` of every meeting as meeting_list lists it, by key."""
    starts = [m.query.meeting_start_time for m in emu.meetings]
    ends = [m.query.meeting_end_time for m in emu.meetings]
    listed = emu.listed(min(starts), max(ends) + 1, webinars=True, external=True)
    return {
        MeetingQuery(
            meeting_no=m.meeting_no, meeting_start_time=m.start, meeting_end_time=m.end
        ).key: m.listed_participants
        for m in listed
    }


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
        AppCredentials(app_id, secret),
        base_url=emu.base_url,
        limits=Limits(participant_list=rate),
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


async def _script(
    emu: EmulatorProcess, queries: Sequence[MeetingQuery], rate: RateLimit, box: float
) -> Tally:
    """The aiolimiter script, run to completion (stopped after ``box`` seconds if it
    takes that long: then projected like a time-boxed run)."""
    app_id, secret = emu.add_app()
    t0 = time.perf_counter()
    start = time.monotonic()
    tally = Tally(extra={"start": start, "deadline": start + box})
    try:
        async with asyncio.timeout(box):
            await aiolimiter_script(
                emu.base_url,
                app_id,
                secret,
                queries,
                SDK_WIDTH,
                limit=rate.requests,
                period=rate.period,
                tally=tally,
            )
    except TimeoutError:
        tally.extra["stopped_at_deadline"] = True
    tally.extra["finish_s"] = time.perf_counter() - t0
    tally.extra["app_id"] = app_id
    return tally


def _outcome(
    emu: EmulatorProcess, tally: Tally, rate: RateLimit, work: Workload, floor: float
) -> Outcome:
    pages = work.pages
    projected = bool(tally.extra.get("stopped_at_deadline")) or tally.pages < pages
    log = emu.log(str(tally.extra["app_id"]))
    start = float(tally.extra["start"])
    deadline = float(tally.extra["deadline"]) if projected else None
    util, admitted, refused = utilization(log, rate, start, deadline)
    steady = steady_state(log, rate, start, deadline)
    finish = float(tally.extra["finish_s"])
    ok = sorted(t for t, status in log if status != 429)
    span = (ok[-1] - start) if ok else 0.0
    if projected:
        span = max(span, float(tally.extra["deadline"]) - start)
        if tally.pages:
            finish = finish * pages / tally.pages
            span = span * pages / tally.pages
        else:
            finish = span = math.inf
    vs_floor = floor / span if span > 0 else 0.0
    return Outcome(util, steady, admitted, refused, finish, projected, span, vs_floor)


def run(cfg: Config) -> BenchResult:
    require_client()
    res = BenchResult(NAME, TITLE)
    rate = cfg.pick(RateLimit(100, 3.0), RateLimit(20, 1.0))
    pages = cfg.pick(300, 20)
    ours_runs = cfg.pick(2, 1)
    peer_seconds = cfg.pick(3.0, 0.75)
    quota_floor = pages * rate.period / rate.requests
    # Ours is stopped at 1.6x the quota's floor: a slow ramp-up shows without eating the
    # whole budget.
    ours_box = 1.6 * quota_floor
    latencies = [0.05, 0.2, 0.8]
    res.params = {
        "gateway": f"sliding {rate}",
        "pages_per_run": pages,
        "latencies_ms": [int(x * 1000) for x in latencies],
        "ours_runs": ours_runs,
        "sdk_time_box_s": peer_seconds,
        "ours_time_box_s": ours_box,
        "script_time_box_s": SCRIPT_BOX * quota_floor,
        "sdk_gather_width": SDK_WIDTH,
        "script_width": SDK_WIDTH,
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
    script_label = (
        f"aiolimiter script (AsyncLimiter({rate.requests}, {rate.period:g}), "
        f"gather width {SDK_WIDTH})"
    )
    workloads: dict[str, Any] = {}
    for latency in latencies:
        ms = int(latency * 1000)
        with EmulatorProcess(
            meetings=400, seed=13, latency=latency, webinars=0, rate=str(rate)
        ) as emu:
            work = workload(emu.meetings, pages, rate, latency, listed_sizes(emu))
            queries = work.queries
            floor = true_floor(work.pages, rate, work.longest_chain, latency)
            workloads[f"{ms}ms"] = {
                "meetings": len(queries),
                "pages": work.pages,
                "longest_chain": work.longest_chain,
                "skipped": work.skipped,
                "true_floor_s": round(floor, 3),
            }
            if work.sizes_differ:
                res.notes.append(
                    f"latency {ms} ms: {work.sizes_differ} of {len(queries)} meetings' "
                    "meeting_list sizes differ from their rows (sorted by meeting_list's)."
                )
            outcomes: list[Outcome] = []
            for _ in range(ours_runs):
                tally = asyncio.run(_ours(emu, queries, rate, ours_box))
                if tally.errors:
                    raise RuntimeError(f"ours: {tally.errors} meetings failed")
                outcomes.append(_outcome(emu, tally, rate, work, floor))
            projected = any(o.projected for o in outcomes)
            res.add(
                f"lat{ms}.ours.whole_vs_floor",
                f"latency {ms} ms — ours (VCClient + RateLimit): whole run vs the true floor "
                f"({floor:.2f} s)" + (" (projected where stopped)" if projected else ""),
                Stat.of([o.vs_floor for o in outcomes], "share"),
                better="higher",
            )
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
                f"latency {ms} ms — ours: time to finish {work.pages} pages"
                + (f" (projected where stopped at {ours_box:g} s)" if projected else ""),
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
            fixed = o = _outcome(emu, tally, rate, work, floor)
            res.add(
                f"lat{ms}.ours_fixed.whole_vs_floor",
                f"latency {ms} ms — ours, fan_out(concurrency={FIXED_CONCURRENCY}): whole run "
                "vs the true floor",
                Stat.of([o.vs_floor], "share"),
                better="higher",
            )
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
            whole = min(o.vs_floor for o in outcomes)
            steady = min(o.steady for o in outcomes)
            refusals = sum(o.refused for o in outcomes)
            res.checks.append(
                Check(
                    f"lat{ms}.ours.goal",
                    f"Quota, whole run at {ms} ms: ours / true floor "
                    f"(worst of {len(outcomes)} runs)",
                    f"{whole:.3f}: {work.pages} pages in "
                    f"{max(o.span_s for o in outcomes):.2f} s"
                    + (" (projected)" if projected else "")
                    + f" vs the floor {floor:.2f} s; {refusals} 429s (the same with "
                    f"fan_out(concurrency={FIXED_CONCURRENCY}): {fixed.vs_floor:.3f}, "
                    f"{fixed.refused} 429s)",
                    f">= {GOAL} with zero 429s",
                    whole >= GOAL and refusals == 0,
                    headline=True,
                )
            )
            res.checks.append(
                Check(
                    f"lat{ms}.ours.steady",
                    f"Quota utilization at {ms} ms latency, steady state (middle half): ours "
                    f"(worst of {len(outcomes)} runs)",
                    f"{steady:.3f}",
                    "informative",
                    None,
                )
            )
            # The aiolimiter script, to completion (or its time box, then projected).
            tally = asyncio.run(_script(emu, queries, rate, SCRIPT_BOX * quota_floor))
            if tally.errors:
                raise RuntimeError(f"aiolimiter script: {tally.errors} meetings failed")
            o = _outcome(emu, tally, rate, work, floor)
            _peer_figures(
                res,
                ms,
                "aiolimiter",
                script_label,
                o,
                work,
                f"stopped at {SCRIPT_BOX * quota_floor:g} s",
            )
            res.add(
                f"lat{ms}.aiolimiter.whole_vs_floor",
                f"latency {ms} ms — {script_label}: whole run vs the true floor"
                + (" (projected)" if o.projected else ""),
                Stat.of([o.vs_floor], "share"),
                better="higher",
            )
            res.checks.append(
                Check(
                    f"lat{ms}.aiolimiter.whole",
                    f"Quota, whole run at {ms} ms: the aiolimiter script / true floor",
                    f"{o.vs_floor:.3f}: {work.pages} pages in {o.span_s:.2f} s"
                    + (" (projected)" if o.projected else "")
                    + f", {o.refused} 429s",
                    "informative",
                    None,
                    headline=True,
                )
            )
            for key, (label, runner) in peers.items():
                tally = asyncio.run(runner(emu, queries))
                o = _outcome(emu, tally, rate, work, floor)
                _peer_figures(
                    res, ms, key, label, o, work, f"projected from a {peer_seconds:g} s run"
                )
    res.params["workload"] = workloads
    res.notes.append(
        "Utilization comes from the gateway's log of admitted requests (arrival times), so "
        "client-side latency after the last request does not count against anyone. The "
        "emulator answers 429 at once (no latency)."
    )
    return res


def _peer_figures(
    res: BenchResult, ms: int, key: str, label: str, o: Outcome, work: Workload, projection: str
) -> None:
    res.add(
        f"lat{ms}.{key}.utilization",
        f"latency {ms} ms — {label}: utilization",
        Stat.of([o.utilization], "share"),
        better="higher",
    )
    res.add(
        f"lat{ms}.{key}.finish_s",
        f"latency {ms} ms — {label}: time to finish {work.pages} pages"
        + (f" ({projection})" if o.projected else ""),
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
