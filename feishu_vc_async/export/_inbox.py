"""The inbox of ended meetings told by events, kept in the sync's own database.

An event is acknowledged (a webhook's 200, a long connection's ack) only once its meeting
is in the inbox, committed: a crash after the acknowledgement loses nothing, and the
sync takes the meeting from there. The inbox has a connection of its own, apart from the
output's (whose transaction stays open while meetings are written): putting an event in
never waits for an export's commit, and never joins a transaction that may roll back.

One table, ``feishu_vc_inbox`` (with the output's prefix and schema), keyed by
(tenant_key, event_id): an event pushed again is one row. A meeting told by two events
(two ids) is two rows, but fetched once: the sync skips meetings already in its tables
and removes the rows of every meeting it has written.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from .._scrub import redact_url
from ..events import MeetingEnded
from ._db_errors import check_identifier, database_problem
from ._db_tables import INBOX, Kind, Table
from ._errors import DatabaseOutputError

if TYPE_CHECKING:
    import asyncpg

__all__ = ["Inbox", "InboxEntry", "open_inbox"]

T = TypeVar("T")
InboxEntry = tuple[str, str, str, int, int, int]  # INBOX's columns, in order
_POSTGRES = ("postgresql://", "postgres://")
_SQLITE = "sqlite:///"


class Inbox(Protocol):
    where: str

    async def put(self, events: Sequence[MeetingEnded], received_at: int) -> int:
        """Keep ``events`` (committed when this returns); how many were new."""
        ...

    async def due(self, tenant_key: str, up_to: int, limit: int) -> list[InboxEntry]:
        """Up to ``limit`` of the tenant's entries received at ``up_to`` or before,
        oldest first."""
        ...

    async def remove(self, tenant_key: str, meetings: Sequence[tuple[str, int]]) -> None:
        """Drop the tenant's entries of ``meetings`` ((meeting_no, start) pairs)."""
        ...


def _records(events: Sequence[MeetingEnded], received_at: int) -> list[InboxEntry]:
    return [
        (e.tenant_key, e.event_id, e.meeting_no, e.start_time, e.end_time, received_at)
        for e in events
    ]


def _create(name: str, types: Mapping[Kind, str], table: Table = INBOX) -> str:
    columns = ", ".join(f'"{c}" {types[k]} NOT NULL' for c, k in table.columns)
    key = ", ".join(f'"{c}"' for c in table.key)
    return f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY ({key}))"


class _PostgresInbox:
    def __init__(self, conn: asyncpg.Connection, name: str, where: str) -> None:
        self._conn, self._name, self.where = conn, name, where
        self._insert = (
            f"INSERT INTO {name} SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::bigint[], $5::bigint[], $6::bigint[]) "
            "ON CONFLICT (tenant_key, event_id) DO NOTHING"
        )
        self._lock = asyncio.Lock()  # one statement at a time on the connection

    async def _call(self, doing: str, call: Callable[[], Any]) -> Any:
        async with self._lock:
            try:
                return await call()
            except Exception as exc:
                raise database_problem(self.where, doing, exc) from exc

    async def put(self, events: Sequence[MeetingEnded], received_at: int) -> int:
        columns = [list(c) for c in zip(*_records(events, received_at), strict=True)]
        if not columns:
            return 0
        status = await self._call(
            "keeping events", lambda: self._conn.execute(self._insert, *columns)
        )
        return int(str(status).rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"

    async def due(self, tenant_key: str, up_to: int, limit: int) -> list[InboxEntry]:
        rows = await self._call(
            "reading events",
            lambda: self._conn.fetch(
                f"SELECT * FROM {self._name} WHERE tenant_key = $1 AND received_at <= $2 "
                "ORDER BY received_at, meeting_start_time LIMIT $3",
                tenant_key,
                up_to,
                limit,
            ),
        )
        return [tuple(r) for r in rows]

    async def remove(self, tenant_key: str, meetings: Sequence[tuple[str, int]]) -> None:
        if not meetings:
            return
        numbers, starts = zip(*meetings, strict=True)
        await self._call(
            "removing events",
            lambda: self._conn.execute(
                f"DELETE FROM {self._name} WHERE tenant_key = $1 AND "
                "(meeting_no, meeting_start_time) IN "
                "(SELECT * FROM unnest($2::text[], $3::bigint[]))",
                tenant_key,
                list(numbers),
                list(starts),
            ),
        )


class _SqliteInbox:
    def __init__(self, db: sqlite3.Connection, thread: ThreadPoolExecutor, name: str, where: str):
        self._db, self._thread, self._name, self.where = db, thread, name, where

    async def _run(self, doing: str, call: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call, self._db)
        except sqlite3.Error as exc:
            raise database_problem(self.where, doing, exc) from exc

    async def put(self, events: Sequence[MeetingEnded], received_at: int) -> int:
        records = _records(events, received_at)

        def insert(db: sqlite3.Connection) -> int:
            with db:  # one transaction, committed on leaving
                before = db.total_changes
                db.executemany(
                    f"INSERT OR IGNORE INTO {self._name} VALUES (?, ?, ?, ?, ?, ?)", records
                )
                return db.total_changes - before

        return await self._run("keeping events", insert)

    async def due(self, tenant_key: str, up_to: int, limit: int) -> list[InboxEntry]:
        def read(db: sqlite3.Connection) -> list[InboxEntry]:
            return db.execute(
                f"SELECT * FROM {self._name} WHERE tenant_key = ? AND received_at <= ? "
                "ORDER BY received_at, meeting_start_time LIMIT ?",
                (tenant_key, up_to, limit),
            ).fetchall()

        return await self._run("reading events", read)

    async def remove(self, tenant_key: str, meetings: Sequence[tuple[str, int]]) -> None:
        def delete(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    f"DELETE FROM {self._name} WHERE tenant_key = ? AND meeting_no = ? "
                    "AND meeting_start_time = ?",
                    [(tenant_key, n, s) for n, s in meetings],
                )

        await self._run("removing events", delete)


@contextlib.asynccontextmanager
async def open_inbox(
    url: str, *, schema: str | None = None, table_prefix: str = "", connect_timeout: float = 10.0
) -> AsyncIterator[Inbox]:
    """The inbox in the database at ``url`` (a database output's URL, schema and table
    prefix), its table created if missing; its connection closed on leaving."""
    check_identifier("table prefix", table_prefix + "x")
    table = f'"{table_prefix}{INBOX.name}"'
    if url.startswith(_POSTGRES):
        async with _postgres_inbox(url, schema, table, connect_timeout) as inbox:
            yield inbox
    elif url.startswith(_SQLITE):
        async with _sqlite_inbox(url, table) as sqlite_inbox:
            yield sqlite_inbox
    else:
        raise ValueError(f"{redact_url(url)!r}: expected postgresql://... or sqlite:///path")


@contextlib.asynccontextmanager
async def _postgres_inbox(
    url: str, schema: str | None, table: str, connect_timeout: float
) -> AsyncIterator[Inbox]:
    from ._pg_tables import TYPES

    where = redact_url(url) if schema is None else f"{redact_url(url)} (schema {schema})"
    try:
        import asyncpg
    except ImportError as exc:
        raise DatabaseOutputError(
            where, "needs asyncpg: pip install 'feishu-vc-async[postgres]'"
        ) from exc
    if schema is not None:
        table = f'"{check_identifier("schema", schema)}".{table}'
    try:
        conn = await asyncpg.connect(url, timeout=connect_timeout)
    except Exception as exc:
        raise database_problem(where, "connecting the inbox", exc) from exc
    try:
        try:
            if schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(_create(table, TYPES))
        except Exception as exc:
            raise database_problem(where, "preparing the inbox", exc) from exc
        yield _PostgresInbox(conn, table, where)
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await conn.close(timeout=connect_timeout)


@contextlib.asynccontextmanager
async def _sqlite_inbox(url: str, table: str) -> AsyncIterator[Inbox]:
    from ._sqlite import _TYPES

    path = Path(url[len(_SQLITE) :].split("?", 1)[0])
    thread = ThreadPoolExecutor(1, thread_name_prefix="feishu-vc-inbox")
    loop = asyncio.get_running_loop()

    def connect() -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        path.chmod(0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute(_create(table, _TYPES))
        return db

    try:
        db = await loop.run_in_executor(thread, connect)
    except (OSError, sqlite3.Error) as exc:
        thread.shutdown()
        raise database_problem(url, "opening the inbox", exc) from exc
    try:
        yield _SqliteInbox(db, thread, table, url)
    finally:
        with anyio.CancelScope(shield=True):
            await loop.run_in_executor(thread, db.close)
            thread.shutdown()
