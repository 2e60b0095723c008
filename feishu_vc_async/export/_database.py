"""A database output from its URL: ``postgresql://user@host:port/db`` (asyncpg, the
``postgres`` extra) or ``sqlite:///path/to.db`` (the standard library's sqlite3)."""

from __future__ import annotations

from pathlib import Path

from .._scrub import redact_url
from ._db_output import DatabaseOutput
from ._postgres import PostgresStore
from ._sqlite import SqliteStore

__all__ = ["database_output", "is_database_url"]

_POSTGRES = ("postgresql://", "postgres://")
_SQLITE = "sqlite:///"


def is_database_url(text: str) -> bool:
    """Whether ``text`` names a database (else it is a file path)."""
    return text.startswith((*_POSTGRES, _SQLITE))


def database_output(
    url: str,
    *,
    schema: str | None = None,
    table_prefix: str = "",
    tenant_key: str = "",
    name: str = "export",
    redact_pii: bool = False,
    lock_wait: float = 10.0,
) -> DatabaseOutput:
    """An output into the tables of the database at ``url`` (see ``_db_tables``).

    ``schema``: PostgreSQL's schema for the tables (created if missing; default: the
    connection's search path). ``sqlite:///sync.db`` is the file ``sync.db`` here,
    ``sqlite:////var/db/sync.db`` an absolute path. ``tenant_key``: whose meetings these
    are (a store app's tenant). ``name``: which export's progress this is. ``lock_wait``:
    seconds to wait for another run's lock before refusing (PostgreSQL lets go of a
    killed run's lock only once it notices the connection gone). Nothing is
    connected before the export takes the output's lock. ``ValueError`` for a URL or a
    name that cannot be used."""
    if url.startswith(_POSTGRES):
        store: PostgresStore | SqliteStore = PostgresStore(
            url, where=_where(url, schema), schema=schema, prefix=table_prefix, lock_wait=lock_wait
        )
    elif url.startswith(_SQLITE):
        if schema is not None:
            raise ValueError("schema: SQLite has no schemas (give another file instead)")
        path = url[len(_SQLITE) :].split("?", 1)[0]
        if not path:
            raise ValueError(f"{url!r}: expected sqlite:///path/to.db")
        store = SqliteStore(Path(path), where=url, prefix=table_prefix)
    else:
        raise ValueError(f"{redact_url(url)!r}: expected postgresql://... or sqlite:///path")
    return DatabaseOutput(store, tenant_key=tenant_key, name=name, redact_pii=redact_pii)


def _where(url: str, schema: str | None) -> str:
    shown = redact_url(url)
    return shown if schema is None else f"{shown} (schema {schema})"
