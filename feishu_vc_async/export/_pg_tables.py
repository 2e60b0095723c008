"""The PostgreSQL store's tables: made if missing, and checked (schema version, columns).

Made under a transaction-scoped advisory lock, so that two first runs at once do not
collide; found already made (every later run, every task of a worker) with a few
catalog reads instead of a dozen statements under that lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._db_tables import MEETINGS, PARTICIPANTS, PROGRESS, SCHEMA, SCHEMA_VERSION, Kind, Table
from ._errors import DatabaseOutputError

if TYPE_CHECKING:
    import asyncpg

__all__ = ["TYPES", "prepare_tables"]

# Each column kind as PostgreSQL names it (what format_type says of it).
TYPES: dict[Kind, str] = {
    "text": "text",
    "bigint": "bigint",
    "int": "integer",
    "bool": "boolean",
    "timestamp": "timestamp with time zone",
    "bytes": "bytea",
}
# The tables an export writes (made if missing, their shape checked).
_OURS = (MEETINGS, PARTICIPANTS, PROGRESS)
# Taken while tables are created, so that two first runs at once do not collide.
_CREATE_LOCK = 0x66656973687576  # "feishuv"


async def prepare_tables(
    conn: asyncpg.Connection,
    where: str,
    schema: str | None,
    prefix: str,
    name: Callable[[Table], str],
) -> None:
    """Make our tables (in ``schema``; ``None``: the search path's) where missing and
    check them: a schema version newer than ours, or a table of other columns, is a
    ``DatabaseOutputError``. ``name``: a table's quoted, qualified name."""
    known = await _version_known(conn, where, name, create=False)
    if known and _mismatched(await _shapes(conn, schema, prefix), where, prefix) is None:
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK)
        if schema is not None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await _version_known(conn, where, name, create=True)
        for table in _OURS:
            columns = ", ".join(f'"{c}" {TYPES[k]}' for c, k in table.columns)
            key = ", ".join(f'"{c}"' for c in table.key)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name(table)} ({columns}, PRIMARY KEY ({key}))"
            )
        mismatched = _mismatched(await _shapes(conn, schema, prefix), where, prefix)
        if mismatched is not None:
            raise mismatched


async def _version_known(
    conn: asyncpg.Connection, where: str, name: Callable[[Table], str], *, create: bool
) -> bool:
    """Whether the tables say their schema version (one newer than ours is refused);
    under ``create``, its table is made and our version written where missing."""
    table = name(SCHEMA)
    if create:
        await conn.execute(f'CREATE TABLE IF NOT EXISTS {table} ("version" integer NOT NULL)')
    elif not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
        return False
    version = await conn.fetchval(f'SELECT max("version") FROM {table}')
    if version is None:
        if not create:
            return False
        await conn.execute(f'INSERT INTO {table} ("version") VALUES ($1)', SCHEMA_VERSION)
    elif version > SCHEMA_VERSION:
        raise DatabaseOutputError(
            where,
            f"holds tables of schema version {version}, newer than this library's "
            f"({SCHEMA_VERSION}): upgrade feishu-vc-async",
        )
    return True


async def _shapes(
    conn: asyncpg.Connection, schema: str | None, prefix: str
) -> dict[str, dict[str, str]]:
    """Our tables' columns and their types as they are, by table (one catalog read)."""
    rows = await conn.fetch(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = coalesce($1, current_schema()) AND c.relname = ANY($2::text[]) "
        "AND c.relkind IN ('r', 'p')",
        schema,
        [prefix + t.name for t in _OURS],
    )
    shapes: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        shapes.setdefault(table, {})[column] = kind
    return shapes


def _mismatched(
    shapes: dict[str, dict[str, str]], where: str, prefix: str
) -> DatabaseOutputError | None:
    """The error for the first of our tables missing or of other columns, if any."""
    for table in _OURS:
        have = shapes.get(prefix + table.name, {})
        want = {c: TYPES[k] for c, k in table.columns}
        if have != want:
            missing = [c for c in want if c not in have]
            extra = [c for c in have if c not in want]
            typed = [c for c in want if c in have and have[c] != want[c]]
            return DatabaseOutputError(
                where,
                f"has a table {prefix}{table.name} of another shape "
                f"(missing {missing or 'none'}, not ours {extra or 'none'}, "
                f"other types {typed or 'none'}): give another --db-schema or table prefix",
            )
    return None
