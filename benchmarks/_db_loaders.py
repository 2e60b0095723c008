"""Three ways of loading the same participant pages into PostgreSQL, for
``bench_database``: ours (the database output driven by the export's ledger), a careful
user's ``executemany`` upsert, and a bare ``COPY`` (the ceiling).

Every loader gets the same :class:`Prepared` pages (``PageItem``s, as the fan-out hands
them to an export) and turns them into records with ``participant_records``, our own
conversion, so that what differs is the loading strategy alone. Each loads into a fresh
schema of its own (:func:`fresh_schema`), whose tables our store creates (the same
participants table, with its primary key, for all three).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from feishu_vc_async._timeparse import parse_feishu_time
from feishu_vc_async.export import database_output
from feishu_vc_async.export._db_output import BATCH_ROWS
from feishu_vc_async.export._db_tables import PARTICIPANTS, participant_records, upsert_sql
from feishu_vc_async.export._ledger import Ledger
from feishu_vc_async.export._pg_instants import integer_timestamps, postgres_instant
from feishu_vc_async.fanout import PageItem
from feishu_vc_async.models import MeetingQuery, Participant

from ._harness import NotLanded

# The benchmark's PostgreSQL (the tests' own: trust auth, database ``test``).
POSTGRES_URL = os.environ.get(
    "FEISHU_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PAGE_SIZE = 100  # participant_list's largest page, the export's default
# The ledger's default: a commit at most every half second (ExportJob.commit_interval).
COMMIT_INTERVAL = 0.5


@dataclass(frozen=True)
class Prepared:
    """Participant pages of many meetings, as the fan-out hands them over."""

    items: list[PageItem]
    queries: list[MeetingQuery]
    rows: int


def prepare(meetings: int, *, seed: int, anchor: int) -> Prepared:
    """The pages of ``meetings`` meetings of the emulator's data generator (its sizes:
    mostly small meetings, some of hundreds, a webinar of 3,000), split into pages of
    :data:`PAGE_SIZE` in the order participant_list delivers them."""
    from feishu_vc_async.emulator import Emulator, MeetingData

    emu = Emulator(meetings=meetings, seed=seed, rate_limit=None, data=MeetingData(anchor=anchor))
    items: list[PageItem] = []
    queries = emu.meetings
    rows = 0
    for query in queries:
        participants = emu.participants(query)
        rows += len(participants)
        items += _pages(query, participants)
    return Prepared(items, queries, rows)


def _pages(query: MeetingQuery, participants: list[Participant]) -> list[PageItem]:
    chunks = [participants[i : i + PAGE_SIZE] for i in range(0, len(participants), PAGE_SIZE)]
    chunks = chunks or [[]]  # a meeting without participants still gives one empty page
    last = len(chunks) - 1
    return [
        PageItem(
            query=query,
            participants=chunk,
            page_token=None if i == 0 else str(i * PAGE_SIZE),
            next_page_token=None if i == last else str((i + 1) * PAGE_SIZE),
            is_last=i == last,
            page_index=i,
        )
        for i, chunk in enumerate(chunks)
    ]


def subset(data: Prepared, fraction: float) -> Prepared:
    """The first meetings of ``data``, about ``fraction`` of its rows (a warm-up's)."""
    items: list[PageItem] = []
    rows = 0
    for item in data.items:
        if rows >= data.rows * fraction and items and items[-1].is_last:
            break
        items.append(item)
        rows += len(item.participants)
    queries = [item.query for item in items if item.is_last]
    return Prepared(items, queries, rows)


def convert_all(data: Prepared, *, integer_times: bool = False) -> float:
    """Seconds of the conversion alone: every page's records, no database
    (``integer_times``: with the timestamps in our store's form)."""
    t0 = time.perf_counter()
    for _ in _records(data.items, postgres_instant if integer_times else parse_feishu_time):
        pass
    return time.perf_counter() - t0


# Seconds to let a closed connection's backend exit and be reaped, before its CPU is read
# (from the postmaster's children's) once a loader or an exporter is done.
REAPED = 0.3


def postgres_cpu() -> float:
    """CPU seconds of the local PostgreSQL server so far: its processes' own, and the
    backends it has reaped (a connection's backend ends with it). NaN if unreadable."""
    try:
        import psutil

        total = 0.0
        for proc in psutil.process_iter(["username", "cpu_times"]):
            times = proc.info["cpu_times"]
            if proc.info["username"] == "postgres" and times is not None:
                total += times.user + times.system + times.children_user + times.children_system
        return total if total > 0 else math.nan
    except Exception:  # not local, not readable: the figure is left out
        return math.nan


def _records(
    items: Sequence[PageItem], instant: Callable[[str | None], Any] = parse_feishu_time
) -> Iterator[tuple[MeetingQuery, list[tuple[Any, ...]]]]:
    """Each page's records (row numbers counted within its meeting), and its query;
    ``instant``: the timestamps' form (asyncpg's datetimes by default)."""
    row = 0
    for item in items:
        records = participant_records(
            "", item.query, item.participants, first_row=row, instant=instant
        )
        yield item.query, records
        row = 0 if item.is_last else row + len(item.participants)


# --- the schemas -------------------------------------------------------------------------


async def connect(url: str = POSTGRES_URL) -> Any:
    try:
        import asyncpg
    except ImportError as exc:
        raise NotLanded("asyncpg is not installed (the postgres extra)") from exc
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"no PostgreSQL at {url} ({exc!r}): start one, or set FEISHU_BENCH_POSTGRES_URL"
        ) from exc


@asynccontextmanager
async def fresh_schema(admin: Any) -> AsyncIterator[str]:
    """A new schema with our tables, dropped after. A checkpoint first,
    so that no loader pays for the WAL the one before it wrote."""
    schema = f"bench_db_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await admin.execute("CHECKPOINT")
    try:
        async with database_output(POSTGRES_URL, schema=schema).lock():
            pass  # connecting creates the schema and the tables
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def count_rows(admin: Any, schema: str) -> int:
    return int(await admin.fetchval(f'SELECT count(*) FROM "{schema}".{PARTICIPANTS.name}'))


# --- the loaders: each returns the seconds its loading took ------------------------------


async def load_ours(data: Prepared, schema: str) -> float:
    """Ours: the database output under the export's own ledger, exactly as an export
    drives it (open, every page, a commit of rows, meetings and progress in one
    transaction at most every half second, finish)."""
    output = database_output(POSTGRES_URL, schema=schema)
    ledger = Ledger(
        output,
        identity=[q.key for q in data.queries],
        page_size=PAGE_SIZE,
        meetings=data.queries,
        commit_interval=COMMIT_INTERVAL,
    )
    async with output.lock():  # connected, tables checked: not part of the loading
        t0 = time.perf_counter()
        await ledger.open("new")
        for item in data.items:
            await ledger.page(item)
        await ledger.finish()
        return time.perf_counter() - t0


async def load_executemany(data: Prepared, schema: str) -> float:
    """A careful user's loader: ``executemany`` of ``INSERT ... ON CONFLICT (key) DO
    UPDATE`` (a rerun replaces rather than fails) in batches of the same size as ours,
    in a transaction per batch of meetings closed at the same cadence as ours."""
    conn = await connect()
    try:
        sql = upsert_sql(f'"{schema}".{PARTICIPANTS.name}', PARTICIPANTS, lambda i: f"${i}")
        t0 = time.perf_counter()
        last_commit = t0
        batch: list[tuple[Any, ...]] = []
        tx = conn.transaction()
        await tx.start()
        for item, (_, records) in zip(data.items, _records(data.items), strict=True):
            batch += records
            if len(batch) >= BATCH_ROWS:
                await conn.executemany(sql, batch)
                batch = []
            if item.is_last and time.perf_counter() - last_commit >= COMMIT_INTERVAL:
                if batch:
                    await conn.executemany(sql, batch)
                    batch = []
                await tx.commit()
                last_commit = time.perf_counter()
                tx = conn.transaction()
                await tx.start()
        if batch:
            await conn.executemany(sql, batch)
        await tx.commit()
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def load_copy(data: Prepared, schema: str, *, integer_times: bool = False) -> float:
    """The ceiling: one bare ``copy_records_to_table`` of every record, converted as the
    COPY streams them (conversion and the server's work overlap); no transaction of our
    own, no deletes, no meetings table, no progress. ``integer_times``: the timestamps
    sent as our store sends them (integers through its codec), not as datetimes."""
    conn = await connect()
    instant: Callable[[str | None], Any] = parse_feishu_time
    if integer_times:
        await integer_timestamps(conn)
        instant = postgres_instant
    try:
        t0 = time.perf_counter()
        await conn.copy_records_to_table(
            PARTICIPANTS.name,
            schema_name=schema,
            columns=list(PARTICIPANTS.names),
            records=(r for _, records in _records(data.items, instant) for r in records),
        )
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def load_copy_integer_times(data: Prepared, schema: str) -> float:
    """:func:`load_copy` with the timestamps in our store's form: the ceiling of
    loading alone, where the bare COPY's ceiling includes asyncpg's datetime encoding."""
    return await load_copy(data, schema, integer_times=True)


LOADERS = {
    "ours": load_ours,
    "executemany": load_executemany,
    "copy": load_copy,
    "copy_integer_times": load_copy_integer_times,
}
