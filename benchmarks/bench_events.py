"""Event-fed sync latency: from a meeting's end to its rows committed in the database.

The real path: the emulator sends each meeting's ``all_meeting_ended_v1`` event as its
(fake) wall clock passes the meeting's end; a ``LongConnection`` (its WebSocket) hands
it to ``EventSync.put`` (the database's inbox, committed before the ack); the sync takes
it (``Following(settle=0)``), fetches the meeting's participants (participant_list) and
commits its rows (``SyncJob``'s defaults: ``commit_interval`` 0.5 s). Latency: from the
moment the emulator's router hands the event to the connection to the moment the
database store's commit holding that meeting's record returns, both on
``time.monotonic()`` (the emulator runs in a thread of this process with its own event
loop). The sync's first range cycle (the backfill of a few already-ended meetings) is
done, and its requests out of the limit's window, before the first meeting ends.

Time is scaled: the platform allows 100 participant_list and 100 meeting_list requests
per 60 s; here 100 per 1 s (scale factor 60) on both the emulator's gateway (sliding
window) and the client's ``Limits``. Two loads: a steady 100 meetings ending per scaled
minute (one every 10 ms real), and a burst of 1,000 meetings ending at once. The
meetings' sizes are the emulator's draw (most under 30 people; about 1.2 pages of 100
on average), so the steady load asks for a little more than the limit allows.

The floor: the least latency any client paced at the limit's sustained rate can reach
for the same sends (measured) and the same pages: each page no sooner than its event's
send (a later page no sooner than the one before is back), and one page per
``period / requests`` at most (no credit for a burst into an empty window), each page
taking one request's time (measured, client side, one-page meeting); meetings in send
order, fewest pages first among those sent together. Database time is not in the floor.
Reported: measured p50 / p99 beside the floor's, as a ratio floor / measured (1: at the
floor). Checks: no 429 at the emulator, no event lost (every announced meeting's rows
in the database, each exactly once, as many as the emulator holds).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import uuid
from pathlib import Path

from feishu_vc_async.ratelimit import RateLimit

from ._events_run import Load, RunResult, floor_latencies, run_load
from ._harness import BenchResult, Check, Config, Stat

NAME = "events"
TITLE = "7. Event-fed sync: meeting end to rows committed"
SCALE = 60  # one platform minute is one second here
RATE = RateLimit(100, 60 / SCALE)
POSTGRES_URL = os.environ.get(
    "FEISHU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ALREADY_ENDED = 8  # the backfill's meetings (the emulator's meetings=)


def _p(data: list[float], q: int) -> float:
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(sorted(data), n=100, method="inclusive")[q - 1]


def _postgres_up() -> bool:
    try:
        import asyncpg

        async def ping() -> None:
            conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
            await conn.close()

        asyncio.run(ping())
    except Exception:
        return False
    return True


def _fresh_schema() -> str:
    return f"bench_events_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _drop_schema(schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def run(cfg: Config) -> BenchResult:
    res = BenchResult(NAME, TITLE)
    steady_count, burst_count = cfg.pick((1000, 1000), (40, 100))
    loads = [
        Load("steady", steady_count, 60 / SCALE / 100),  # 100 per scaled minute
        Load("burst", burst_count, 0.0),
    ]
    databases = ["sqlite"]
    if not cfg.quick:
        if _postgres_up():
            databases.append("postgres")
        else:
            res.notes.append(f"PostgreSQL row left out: no server at {POSTGRES_URL}")
    res.params.update(
        {
            "scale": f"{SCALE}x (100 requests / {RATE.period:g} s on both APIs, "
            "gateway and client)",
            "steady": f"{steady_count} meetings, one every {loads[0].every * 1000:g} ms",
            "burst": f"{burst_count} meetings at once",
            "already_ended": ALREADY_ENDED,
            "settle": 0,
        }
    )
    seed = 7100
    for db in databases:
        for load in loads:
            seed += 1
            with tempfile.TemporaryDirectory() as tmp:
                schema = None
                if db == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'sync.db'}"
                else:
                    url, schema = POSTGRES_URL, _fresh_schema()
                try:
                    out = run_load(
                        load,
                        url=url,
                        schema=schema,
                        rate=RATE,
                        seed=seed,
                        already_ended=ALREADY_ENDED,
                        timeout=cfg.pick(240.0, 90.0),
                    )
                finally:
                    if schema is not None:
                        _drop_schema(schema)
            _report(res, db, load, out)
    return res


def _report(res: BenchResult, db: str, load: Load, out: RunResult) -> None:
    key = f"{db}.{load.name}"
    what = f"{db}, {load.name} ({len(out.announced)} meetings)"
    measured = out.latencies()
    sends = [(out.sent[k], out.pages[k]) for k in out.announced if k in out.sent]
    floor = floor_latencies(sends, RATE, out.request_s)
    for q in (50, 99):
        res.add(f"{key}.p{q}_s", f"{what}: latency p{q}, measured", Stat.of([_p(measured, q)], "s"))
        res.add(
            f"{key}.floor_p{q}_s", f"{what}: latency p{q}, the floor", Stat.of([_p(floor, q)], "s")
        )
        res.ratio(
            f"{key}.p{q}_vs_floor",
            f"{what}: p{q} floor / measured (1 = at the floor)",
            f"{key}.p{q}_s",
            f"{key}.floor_p{q}_s",
        )
    res.add(f"{key}.max_s", f"{what}: latency max, measured", Stat.of([max(measured)], "s"))
    span = max(out.sent.values()) - min(out.sent.values()) if out.sent else 0.0
    res.add(f"{key}.send_span_s", f"{what}: first to last event sent", Stat.of([span], "s"))
    res.add(
        f"{key}.rate_limited", f"{what}: 429s at the emulator", Stat.of([out.rate_limited], "count")
    )
    lost = [k for k in out.announced if k not in out.committed]
    wrong = [
        k
        for k in out.announced
        if out.held_rows.get(k, (0, 0)) != (out.expected_rows[k], out.expected_rows[k])
    ]
    twice = sum(1 for k in out.announced if out.first_pages.get(k, 0) > 1)
    res.add(
        f"{key}.lost", f"{what}: events lost (no rows committed)", Stat.of([len(lost)], "count")
    )
    pages = sum(out.pages[k] for k in out.announced)
    res.checks.append(
        Check(
            f"{key}.goal",
            f"Event-fed sync, {what}: 429s, events lost, meetings whose rows differ",
            f"{out.rate_limited} 429s; {len(lost)} lost; {len(wrong)} with rows missing, "
            f"extra or twice; {twice} fetched more than once",
            "0, 0, 0",
            out.rate_limited == 0 and not lost and not wrong,
            headline=True,
        )
    )
    res.checks.append(
        Check(
            f"{key}.latency",
            f"Event-fed sync, {what}: latency p50 / p99 measured vs the floor",
            f"{_p(measured, 50):.2f} / {_p(measured, 99):.2f} s vs {_p(floor, 50):.3f} / "
            f"{_p(floor, 99):.3f} s ({pages} pages, one request {out.request_s * 1000:.1f} ms)",
            "informative",
            None,
            headline=True,
        )
    )
    stages = {
        "inbox": (
            "event sent to put() returned (long connection + inbox commit)",
            out.sent,
            out.put,
        ),
        "wait": ("put() returned to the first page asked (waiting for a take)", out.put, out.asked),
        "fetch": (
            "first page asked to rows committed (fetch + export commit)",
            out.asked,
            out.committed,
        ),
    }
    for stage, (label, a, b) in stages.items():
        spans = [b[k] - a[k] for k in out.announced if k in a and k in b]
        if spans:
            res.add(
                f"{key}.stage_{stage}_p50_s", f"{what}: {label}, p50", Stat.of([_p(spans, 50)], "s")
            )
    sizes = sorted(t.due for t in out.takes)
    res.notes.append(
        f"{what}: {pages} pages; {len(out.takes)} takes (meetings due per take: median "
        f"{statistics.median(sizes) if sizes else 0:g}, max {max(sizes, default=0)}); "
        f"backfill {out.backfill_s:.2f} s; {out.requests} requests at the emulator."
    )
