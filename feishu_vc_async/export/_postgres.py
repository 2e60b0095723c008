"""The PostgreSQL :class:`~._db_output.Store`, through asyncpg (the ``postgres`` extra).

Rows go in with ``COPY`` (asyncpg's binary ``copy_records_to_table``) straight into the
participants table, inside the transaction that also deletes the rows of a meeting
written again and, at the commit, upserts the meetings (copied into a temporary table,
then one statement) and the progress: near a bare COPY's speed, exactly once by the
transaction. A batch of rows is written by a task of its own while the next batch is
made (the server stores one while the client converts the other), and one more may wait
behind it, so that the client need not stop converting while the server finishes the
batch before; every other statement waits for them first, and the first error, if any,
is raised there. One connection, holding a
session advisory lock per (tables, tenant, export) for the run: a second run is told who
holds it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._validate import non_negative_seconds
from ._db_errors import check_identifier, database_problem
from ._db_output import MeetingKey
from ._db_tables import (
    EXPORTED_COLUMNS,
    INBOX,
    MEETINGS,
    PARTICIPANTS,
    PROGRESS,
    Table,
    upsert_sql,
)
from ._errors import DatabaseOutputError, ExportError, OutputInUseError
from ._pg_instants import integer_timestamps, meeting_instants, postgres_instant
from ._pg_tables import prepare_tables

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresStore"]

# Batches handed over at once: one being written, one waiting behind it.
_IN_FLIGHT = 2
# The session's temporary table a commit's meetings are copied into, to be upserted.
_MEETINGS_IN = "feishu_vc_meetings_in"


class PostgresStore:
    """``dsn``: a ``postgresql://`` URL; ``schema``: where the tables are (created if
    missing; ``None``: the connection's search path, ``public`` by default);
    ``prefix``: put before each table name; ``connect_timeout``: seconds; ``lock_wait``:
    seconds to wait for another run's lock (a killed run's is let go of only once the
    server notices its connection gone) before ``OutputInUseError``."""

    def __init__(
        self,
        dsn: str,
        *,
        where: str,
        schema: str | None = None,
        prefix: str = "",
        connect_timeout: float = 10.0,
        lock_wait: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self.where = where
        self.instant: Callable[[str | None], Any] = postgres_instant
        self._schema = None if schema is None else check_identifier("schema", schema)
        check_identifier("table prefix", prefix + "x")
        self._prefix = prefix
        self._timeout = connect_timeout
        self._lock_wait = non_negative_seconds("lock_wait", lock_wait)
        self._conn: asyncpg.Connection | None = None
        self._tx: Any = None  # asyncpg's Transaction while one is open
        # The batches handed over and not yet waited for, oldest first (each task
        # waits for the one before it).
        self._writes: collections.deque[asyncio.Task[None]] = collections.deque()
        self._meeting_key = tuple(MEETINGS.names.index(c) for c in MEETINGS.key)
        # The meetings of a commit: copied into _MEETINGS_IN and upserted from there in
        # one statement; one by one where the role may not make temporary tables.
        self._upsert_copied: str | None = None
        key = ", ".join(f'"{c}"' for c in MEETINGS.key)
        self._claim_meetings = (
            f"INSERT INTO {self._name(MEETINGS)} AS m ({key}) SELECT * FROM "
            "unnest($1::text[], $2::text[], $3::bigint[]) AS k ORDER BY 1, 2, 3 "
            f"ON CONFLICT ({key}) DO UPDATE SET tenant_key = m.tenant_key"
        )

    # --- names -------------------------------------------------------------------------

    def _name(self, table: Table) -> str:
        name = f'"{self._prefix}{table.name}"'
        return name if self._schema is None else f'"{self._schema}".{name}'

    def _lock_key(self, tenant_key: str, name: str) -> int:
        text = f"{self._schema}\x00{self._prefix}\x00{tenant_key}\x00{name}".encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)

    @contextlib.contextmanager
    def _problems(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ExportError:
            raise
        except Exception as exc:  # every driver failure becomes one typed error
            raise database_problem(self.where, doing, exc) from exc

    @property
    def _c(self) -> asyncpg.Connection:
        if self._conn is None:
            raise DatabaseOutputError(self.where, "is not connected (lock() first)")
        return self._conn

    # --- connecting, tables, lock ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lock(self, tenant_key: str, name: str) -> AsyncIterator[None]:
        try:
            import asyncpg
        except ImportError as exc:
            raise DatabaseOutputError(
                self.where, "needs asyncpg: pip install 'feishu-vc-async[postgres]'"
            ) from exc
        me = f"feishu-vc pid {os.getpid()} on {socket.gethostname()} since " + time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
        )
        with self._problems("connecting"):
            self._conn = await asyncpg.connect(
                self._dsn, timeout=self._timeout, server_settings={"application_name": me[:63]}
            )
            await integer_timestamps(self._conn)
        try:
            with self._problems("preparing the tables"):
                await self._prepare()
                await self._prepare_meetings_in(asyncpg.InsufficientPrivilegeError)
            await self._take_lock(self._lock_key(tenant_key, name))
            yield
        finally:
            for task in self._writes:
                task.cancel()
            self._writes.clear()
            conn, self._conn, self._tx = self._conn, None, None
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await conn.close(timeout=self._timeout)  # the lock goes with the session

    async def _take_lock(self, key: int) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + self._lock_wait
        with self._problems("taking the lock"):
            while not await self._c.fetchval("SELECT pg_try_advisory_lock($1)", key):
                if loop.time() >= until:
                    holder = await self._holder(key)
                    raise OutputInUseError(self.where, f"is being written by {holder}")
                await asyncio.sleep(min(0.1, max(0.0, until - loop.time())))

    async def _holder(self, key: int) -> str:
        high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        row = await self._c.fetchrow(
            "SELECT a.application_name, a.client_addr::text AS addr, a.pid "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 "
            "AND l.objid::bigint = $2 AND l.granted",
            high,
            low,
        )
        if row is None:
            return "another run (it has just let go: try again)"
        return f"{row['application_name'] or 'another program'} (server pid {row['pid']})"

    async def _prepare(self) -> None:
        await prepare_tables(self._c, self.where, self._schema, self._prefix, self._name)

    async def _prepare_meetings_in(self, refused: type[Exception]) -> None:
        try:
            await self._c.execute(
                f'CREATE TEMP TABLE IF NOT EXISTS "{_MEETINGS_IN}" '
                f"(LIKE {self._name(MEETINGS)}) ON COMMIT DELETE ROWS"
            )
        except refused:  # no TEMP privilege on the database
            self._upsert_copied = None
            return
        self._upsert_copied = _upsert_from(f'pg_temp."{_MEETINGS_IN}"', self._name(MEETINGS))

    # --- the statements of a run -------------------------------------------------------

    async def _oldest_written(self) -> None:
        task = self._writes[0]
        await asyncio.wait([task])
        self._writes.popleft()
        task.result()

    async def _written(self) -> None:
        """Wait for the batches handed over, and raise the first error. (A caller
        cancelled meanwhile leaves them to :meth:`rollback`.)"""
        while self._writes:
            await self._oldest_written()

    async def load(self, tenant_key: str, name: str) -> tuple[bytes | None, bytes | None]:
        await self._written()
        with self._problems("reading the progress"):
            row = await self._c.fetchrow(
                f"SELECT state, failures FROM {self._name(PROGRESS)} "
                "WHERE tenant_key = $1 AND name = $2",
                tenant_key,
                name,
            )
        return (None, None) if row is None else (row["state"], row["failures"])

    async def meeting_keys(self, tenant_key: str, start_from: int) -> set[tuple[str, int]]:
        await self._written()
        with self._problems("reading the meetings"):
            rows = await self._c.fetch(
                f"SELECT meeting_no, meeting_start_time FROM {self._name(MEETINGS)} "
                "WHERE tenant_key = $1 AND meeting_start_time >= $2 "
                "AND participant_rows IS NOT NULL",
                tenant_key,
                start_from,
            )
        return {(r[0], r[1]) for r in rows}

    async def tenant_keys(self) -> set[str]:
        await self._written()
        with self._problems("reading the tenants"):
            sources = [self._name(MEETINGS)]
            inbox = self._name(INBOX)
            if await self._c.fetchval("SELECT to_regclass($1) IS NOT NULL", inbox):
                sources.append(inbox)
            rows = await self._c.fetch(
                " UNION ".join(f"SELECT DISTINCT tenant_key FROM {t}" for t in sources)
            )
        return {r[0] for r in rows}

    async def put_listed(self, meetings: Sequence[tuple[Any, ...]]) -> None:
        upsert = upsert_sql(
            self._name(MEETINGS), MEETINGS, lambda i: f"${i}", keep=EXPORTED_COLUMNS
        )
        await self._written()
        with self._problems("writing meetings"):
            async with self._c.transaction():
                await self._c.executemany(upsert, [meeting_instants(m) for m in meetings])

    async def drop(self, tenant_key: str, name: str) -> None:
        await self._written()
        with self._problems("deleting a note"):
            async with self._c.transaction():
                await self._c.execute(
                    f"DELETE FROM {self._name(PROGRESS)} WHERE tenant_key = $1 AND name = $2",
                    tenant_key,
                    name,
                )

    async def begin(self) -> None:
        if self._tx is None:
            await self._written()
            with self._problems("starting a transaction"):
                tx = self._c.transaction()
                await tx.start()
                self._tx = tx

    async def replace(self, cleared: Sequence[MeetingKey], rows: Iterable[tuple[Any, ...]]) -> None:
        # Returns once the batch is handed to a task: the caller converts the next batch
        # while the server stores this one (and the one before, if still at it).
        while len(self._writes) >= _IN_FLIGHT:
            await self._oldest_written()
        before = self._writes[-1] if self._writes else None
        task = asyncio.get_running_loop().create_task(self._replace_after(before, cleared, rows))
        task.add_done_callback(_retrieved)
        self._writes.append(task)
        await asyncio.sleep(0)  # it sends its first statement now

    async def _replace_after(
        self,
        before: asyncio.Task[None] | None,
        cleared: Sequence[MeetingKey],
        rows: Iterable[tuple[Any, ...]],
    ) -> None:
        if before is not None:
            await asyncio.wait([before])
            if before.cancelled() or before.exception() is not None:
                return  # its error is raised by whoever waits for it: the batches go
        await self._replace(cleared, rows)

    async def _replace(
        self, cleared: Sequence[MeetingKey], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        conn = self._c
        with self._problems("writing participants"):
            if cleared:
                tenants, numbers, starts = zip(*cleared, strict=True)
                keys = (list(tenants), list(numbers), list(starts))
                # Two writers of one meeting (two workers given it) would each delete
                # nothing the other has not committed, and both insert. The meeting's
                # row, claimed (inserted, or updated to itself) and so locked to the
                # commit, makes the second wait, then delete the first's rows. A row
                # lock, not an advisory lock a meeting: those fill the server's shared
                # lock table (64 per connection) in a transaction of thousands.
                await conn.execute(self._claim_meetings, *keys)
                await conn.execute(
                    f"DELETE FROM {self._name(PARTICIPANTS)} WHERE "
                    "(tenant_key, meeting_no, meeting_start_time) IN "
                    "(SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]))",
                    *keys,
                )
            if rows:
                await conn.copy_records_to_table(
                    self._prefix + PARTICIPANTS.name,
                    schema_name=self._schema,
                    columns=list(PARTICIPANTS.names),
                    records=rows,
                )

    async def commit(
        self,
        meetings: Sequence[tuple[Any, ...]],
        progress: tuple[str, str, bytes, bytes | None],
    ) -> None:
        await self._written()
        conn = self._c
        with self._problems("committing"):
            if meetings and self._upsert_copied is not None:
                # One COPY and one upsert, not an upsert per meeting; a meeting given
                # twice keeps its last record, as one upsert after the other would.
                key = self._meeting_key
                last = {tuple(m[i] for i in key): meeting_instants(m) for m in meetings}
                await conn.copy_records_to_table(
                    _MEETINGS_IN,
                    schema_name="pg_temp",
                    columns=list(MEETINGS.names),
                    records=last.values(),
                )
                await conn.execute(self._upsert_copied)
            elif meetings:
                await conn.executemany(
                    upsert_sql(self._name(MEETINGS), MEETINGS, lambda i: f"${i}"),
                    [meeting_instants(m) for m in meetings],
                )
            await conn.execute(
                f"INSERT INTO {self._name(PROGRESS)} AS p "
                "(tenant_key, name, state, failures, updated_at) VALUES ($1, $2, $3, $4, now()) "
                "ON CONFLICT (tenant_key, name) DO UPDATE SET state = EXCLUDED.state, "
                "failures = coalesce(EXCLUDED.failures, p.failures), updated_at = now()",
                *progress,
            )
            tx, self._tx = self._tx, None
            if tx is not None:
                await tx.commit()

    async def rollback(self) -> None:
        tasks = list(self._writes)
        self._writes.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # their errors are not this call's
        tx, self._tx = self._tx, None
        if tx is not None and self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await tx.rollback()


def _retrieved(task: asyncio.Task[None]) -> None:
    """A batch's error is raised by the call that waits for it; one never waited for (the
    run ended first) is not reported again as never retrieved."""
    if not task.cancelled():
        task.exception()


def _upsert_from(source: str, name: str) -> str:
    """``upsert_sql`` of the meetings (as ``name``) for every row of ``source`` at once:
    a row of the same key is replaced."""
    columns = ", ".join(f'"{c}"' for c in MEETINGS.names)
    key = ", ".join(f'"{c}"' for c in MEETINGS.key)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in MEETINGS.names if c not in MEETINGS.key)
    return (
        f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {source} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
