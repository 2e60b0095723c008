"""The databases of the database-output tests: PostgreSQL (a schema of its own per test,
dropped after) and SQLite (a file in the test's directory), and reading back what an
export wrote in a form to compare with the emulator's ground truth."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from feishu_vc_async.export import DatabaseOutput, ExportState, database_output
from feishu_vc_async.models import PARTICIPANT_FIELDS

__all__ = ["POSTGRES_URL", "TestDatabase", "postgres_database", "sqlite_database"]

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

_PARTICIPANT_COLUMNS = ", ".join(("meeting_no", "meeting_start_time", *PARTICIPANT_FIELDS))


@dataclass
class TestDatabase:
    """One test's database: ``url`` (and ``schema``) as an export is given them."""

    __test__ = False  # not a test class, whatever its name says

    kind: str  # "postgres" or "sqlite"
    url: str
    schema: str | None
    _pg: asyncpg.Connection | None = None

    def output(self, **options: Any) -> DatabaseOutput:
        return database_output(self.url, schema=self.schema, **options)

    @property
    def cli_args(self) -> list[str]:
        schema = ["--db-schema", self.schema] if self.schema else []
        return ["--out", self.url, *schema]

    def table(self, name: str) -> str:
        return name if self.schema is None else f'"{self.schema}".{name}'

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``$1``-style parameters for both databases)."""
        if self._pg is not None:
            try:
                return [tuple(r) for r in await self._pg.fetch(sql, *args)]
            except asyncpg.UndefinedTableError:
                return []  # not created yet
        path = self.url.removeprefix("sqlite:///")
        query = sql
        for i in range(len(args), 0, -1):
            query = query.replace(f"${i}", f"?{i}")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.OperationalError:
            return []  # not created yet
        try:
            return [tuple(r) for r in db.execute(query, args).fetchall()]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            db.close()

    async def execute(self, sql: str) -> None:
        if self._pg is not None:
            await self._pg.execute(sql)
            return
        db = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        try:
            db.executescript(sql)
        finally:
            db.close()

    async def participants(self, tenant_key: str = "") -> dict[str, list[tuple[Any, ...]]]:
        """Every participant row, by meeting ("number@start"), in row order."""
        rows = await self.fetch(
            f"SELECT {_PARTICIPANT_COLUMNS} FROM {self.table('feishu_vc_participants')} "
            "WHERE tenant_key = $1 ORDER BY meeting_no, meeting_start_time, row_no",
            tenant_key,
        )
        by_meeting: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            values = tuple(
                bool(v) if isinstance(v, int) and f in _BOOLS else v
                for f, v in zip(PARTICIPANT_FIELDS, row[2:], strict=True)
            )
            by_meeting.setdefault(f"{row[0]}@{row[1]}", []).append(values)
        return by_meeting

    async def state(self, tenant_key: str = "", name: str = "export") -> ExportState | None:
        """The export's saved progress, as the output keeps it."""
        rows = await self.fetch(
            f"SELECT state FROM {self.table('feishu_vc_progress')} "
            "WHERE tenant_key = $1 AND name = $2",
            tenant_key,
            name,
        )
        return msgspec.msgpack.decode(rows[0][0], type=ExportState) if rows else None

    async def progress_stamp(self) -> Sequence[Any]:
        """Changes with every commit of any export's progress."""
        return await self.fetch(
            f"SELECT tenant_key, name, updated_at, length(state) "
            f"FROM {self.table('feishu_vc_progress')} ORDER BY 1, 2"
        )


_BOOLS = {"use_rtc_proxy", "audio", "video", "sharing", "is_external"}


@asynccontextmanager
async def postgres_database() -> AsyncIterator[TestDatabase]:
    """A schema of its own in the test database, dropped after."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        yield TestDatabase("postgres", POSTGRES_URL, schema, conn)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@asynccontextmanager
async def sqlite_database(directory: Path) -> AsyncIterator[TestDatabase]:
    yield TestDatabase("sqlite", f"sqlite:///{directory / 'export.db'}", None)
