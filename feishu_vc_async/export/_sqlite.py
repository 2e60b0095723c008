"""The SQLite :class:`~._db_output.Store`: the embedded database, no server.

The standard library's ``sqlite3``, on one thread of its own so that the event loop
never waits on the disk; ``executemany`` in the transaction that the output keeps open
between commits. The database file (and SQLite's journal beside it) is owner-only; a
lock file beside it (the file outputs' lock, ``_lock``) keeps one run at a time and
names its holder. The typed time columns hold UTC text (``YYYY-MM-DD HH:MM:SS``), which
SQLite's date functions read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio

from .._timeparse import parse_feishu_time
from ._db_errors import check_identifier, database_problem
from ._db_output import MeetingKey
from ._db_tables import (
    EXPORTED_COLUMNS,
    INBOX,
    MEETINGS,
    PARTICIPANTS,
    PROGRESS,
    SCHEMA,
    SCHEMA_VERSION,
    Kind,
    Table,
    upsert_sql,
)
from ._errors import DatabaseOutputError
from ._lock import output_lock

__all__ = ["SqliteStore"]

T = TypeVar("T")

_TYPES: dict[Kind, str] = {
    "text": "TEXT",
    "bigint": "INTEGER",
    "int": "INTEGER",
    "bool": "INTEGER",
    "timestamp": "TEXT",
    "bytes": "BLOB",
}


def _utc_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _with_text_times(
    records: Iterable[tuple[Any, ...]], at: tuple[int, ...]
) -> list[tuple[Any, ...]]:
    """Records with their datetimes as UTC text (sqlite3's own datetime adapter is
    deprecated, and would keep each row's offset)."""
    out: list[tuple[Any, ...]] = []
    for record in records:
        row = list(record)
        for i in at:
            row[i] = _utc_text(row[i])
        out.append(tuple(row))
    return out


class SqliteStore:
    """The tables in the SQLite file ``path`` (created owner-only if missing);
    ``prefix``: put before each table name."""

    def __init__(self, path: Path, *, where: str, prefix: str = "") -> None:
        self.path = path
        self.where = where
        self.instant: Callable[[str | None], Any] = parse_feishu_time
        check_identifier("table prefix", prefix + "x")
        self._prefix = prefix
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._in_tx = False
        self._insert = (
            f"INSERT INTO {self._name(PARTICIPANTS)} VALUES "
            f"({', '.join('?' * len(PARTICIPANTS.names))})"
        )
        self._upsert_meeting = upsert_sql(self._name(MEETINGS), MEETINGS, lambda _: "?")

    def _name(self, table: Table) -> str:
        return f'"{self._prefix}{table.name}"'

    async def _run(self, doing: str, call: Callable[[sqlite3.Connection], T]) -> T:
        db, thread = self._db, self._thread
        if db is None or thread is None:
            raise DatabaseOutputError(self.where, "is not open (lock() first)")
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, call, db)
        except sqlite3.Error as exc:
            raise database_problem(self.where, doing, exc) from exc

    # --- opening, tables, lock ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lock(self, tenant_key: str, name: str) -> AsyncIterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created owner-only before SQLite opens it: its journal files take its mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise database_problem(self.where, "opening the file", exc) from exc
        with output_lock(lock_path, out=self.path):
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="feishu-vc-sqlite")
            try:
                self._db = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._connect
                )
                await self._run("preparing the tables", self._prepare)
                yield
            finally:
                db, self._db, self._in_tx = self._db, None, False
                with anyio.CancelScope(shield=True):  # closed before the lock is let go
                    if db is not None:
                        await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
                    self._thread.shutdown()
                self._thread = None

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise database_problem(self.where, "opening", exc) from exc
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        with _transaction(db):
            name = self._name(SCHEMA)
            db.execute(f'CREATE TABLE IF NOT EXISTS {name} ("version" INTEGER NOT NULL)')
            (version,) = db.execute(f'SELECT max("version") FROM {name}').fetchone()
            if version is None:
                db.execute(f'INSERT INTO {name} ("version") VALUES (?)', (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise DatabaseOutputError(
                    self.where,
                    f"holds tables of schema version {version}, newer than this library's "
                    f"({SCHEMA_VERSION}): upgrade feishu-vc-async",
                )
            for table in (MEETINGS, PARTICIPANTS, PROGRESS):
                columns = ", ".join(f'"{c}" {_TYPES[k]}' for c, k in table.columns)
                key = ", ".join(f'"{c}"' for c in table.key)
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._name(table)} "
                    f"({columns}, PRIMARY KEY ({key})) WITHOUT ROWID"
                )
                self._check_columns(db, table)

    def _check_columns(self, db: sqlite3.Connection, table: Table) -> None:
        rows = db.execute(f"PRAGMA table_info({self._name(table)})").fetchall()
        have = {r[1]: r[2].upper() for r in rows}
        want = {c: _TYPES[k] for c, k in table.columns}
        if have != want:
            missing = [c for c in want if c not in have]
            extra = [c for c in have if c not in want]
            raise DatabaseOutputError(
                self.where,
                f"has a table {self._prefix}{table.name} of another shape "
                f"(missing {missing or 'none'}, not ours {extra or 'none'}): "
                "give another database file or table prefix",
            )

    # --- the statements of a run -------------------------------------------------------

    async def load(self, tenant_key: str, name: str) -> tuple[bytes | None, bytes | None]:
        query = f"SELECT state, failures FROM {self._name(PROGRESS)} WHERE tenant_key=? AND name=?"

        def read(db: sqlite3.Connection) -> tuple[bytes | None, bytes | None]:
            row = db.execute(query, (tenant_key, name)).fetchone()
            return (None, None) if row is None else (row[0], row[1])

        return await self._run("reading the progress", read)

    async def meeting_keys(self, tenant_key: str, start_from: int) -> set[tuple[str, int]]:
        query = (
            f"SELECT meeting_no, meeting_start_time FROM {self._name(MEETINGS)} "
            "WHERE tenant_key = ? AND meeting_start_time >= ? AND participant_rows IS NOT NULL"
        )

        def read(db: sqlite3.Connection) -> set[tuple[str, int]]:
            return {(r[0], r[1]) for r in db.execute(query, (tenant_key, start_from))}

        return await self._run("reading the meetings", read)

    async def tenant_keys(self) -> set[str]:
        inbox = self._prefix + INBOX.name

        def read(db: sqlite3.Connection) -> set[str]:
            sources = [self._name(MEETINGS)]
            found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            if db.execute(found, (inbox,)).fetchone() is not None:
                sources.append(self._name(INBOX))
            union = " UNION ".join(f"SELECT DISTINCT tenant_key FROM {t}" for t in sources)
            return {r[0] for r in db.execute(union)}

        return await self._run("reading the tenants", read)

    async def put_listed(self, meetings: Sequence[tuple[Any, ...]]) -> None:
        records = _with_text_times(meetings, MEETINGS.times_at)
        upsert = upsert_sql(self._name(MEETINGS), MEETINGS, lambda _: "?", keep=EXPORTED_COLUMNS)

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany(upsert, records)

        await self._run("writing meetings", write)

    async def drop(self, tenant_key: str, name: str) -> None:
        delete = f"DELETE FROM {self._name(PROGRESS)} WHERE tenant_key=? AND name=?"

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(delete, (tenant_key, name))

        await self._run("deleting a note", write)

    async def begin(self) -> None:
        if not self._in_tx:
            await self._run("starting a transaction", lambda db: db.execute("BEGIN IMMEDIATE"))
            self._in_tx = True

    async def replace(self, cleared: Sequence[MeetingKey], rows: Iterable[tuple[Any, ...]]) -> None:
        delete = (
            f"DELETE FROM {self._name(PARTICIPANTS)} "
            "WHERE tenant_key=? AND meeting_no=? AND meeting_start_time=?"
        )
        records = _with_text_times(rows, PARTICIPANTS.times_at)

        def write(db: sqlite3.Connection) -> None:
            db.executemany(delete, cleared)
            db.executemany(self._insert, records)

        await self._run("writing participants", write)

    async def commit(
        self,
        meetings: Sequence[tuple[Any, ...]],
        progress: tuple[str, str, bytes, bytes | None],
    ) -> None:
        records = _with_text_times(meetings, MEETINGS.times_at)
        now = _utc_text(datetime.now(UTC))
        save = (
            f"INSERT INTO {self._name(PROGRESS)} AS p "
            "(tenant_key, name, state, failures, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant_key, name) DO UPDATE SET state = excluded.state, "
            "failures = coalesce(excluded.failures, p.failures), updated_at = excluded.updated_at"
        )

        def write(db: sqlite3.Connection) -> None:
            db.executemany(self._upsert_meeting, records)
            db.execute(save, (*progress, now))
            db.execute("COMMIT")

        await self._run("committing", write)
        self._in_tx = False

    async def rollback(self) -> None:
        if self._in_tx and self._db is not None:
            self._in_tx = False
            with contextlib.suppress(DatabaseOutputError):
                await self._run("rolling back", lambda db: db.execute("ROLLBACK"))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
