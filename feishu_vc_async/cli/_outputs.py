"""The output of ``export`` (and ``sync``) from the command line: a file in a format with
its columns, or a database URL with its schema and table prefix."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..export import (
    ALL_COLUMNS,
    JOINABLE_COLUMNS,
    DatabaseOutput,
    Output,
    database_output,
    file_output,
    is_database_url,
)
from ..export._rows import MEETING_INFO_COLUMNS

__all__ = ["database_from_args", "output_from_args", "parse_fields", "same_file"]


def same_file(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would overwrite ``b``: by identity (device and inode) when
    both exist (a hard link), by resolved path when one does not exist yet."""
    try:
        return os.path.samestat(a.stat(), b.stat())
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop: opening it fails later, and says so
        return False


def parse_fields(text: str | None, known: Sequence[str] = ALL_COLUMNS) -> tuple[str, ...]:
    """``"meeting_no,participant_name,join_time"`` → columns, in the order given.

    ``None`` or ``""`` means every column of :data:`ALL_COLUMNS`. Names not in ``known``
    (a meetings-file export cannot join meeting columns: pass :data:`JOINABLE_COLUMNS`
    for a range export) or repeated names raise ``ConfigError``.
    """
    if not text:
        return ALL_COLUMNS
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        return ALL_COLUMNS
    unknown = [n for n in names if n not in known]
    if unknown:
        joinable = [n for n in unknown if n in MEETING_INFO_COLUMNS]
        hint = (
            f" ({', '.join(joinable)}: meeting columns need a range export, --since/--until)"
            if joinable
            else ""
        )
        raise ConfigError(
            f"--fields: unknown column(s) {', '.join(unknown)}{hint}; known: {', '.join(known)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--fields: column(s) named twice: {', '.join(repeated)}")
    return tuple(names)


def database_from_args(
    args: argparse.Namespace, url: str, *, name: str, option: str = "--out"
) -> DatabaseOutput:
    """The database at ``url`` (``--db-schema``, ``--table-prefix``, ``--redact-pii``),
    for the tenant acted for; ``name``: whose progress (export, sync, meetings)."""
    try:
        return database_output(
            url,
            schema=args.db_schema,
            table_prefix=args.table_prefix,
            tenant_key=getattr(args, "tenant_key", None) or "",
            name=name,
            redact_pii=args.redact_pii,
        )
    except ValueError as exc:
        text = str(exc).replace("schema ", "--db-schema ").replace("table prefix", "--table-prefix")
        raise ConfigError(f"{option}: {text}" if text.startswith("'") else text) from None


def _database_output(args: argparse.Namespace) -> Output:
    """``--out URL``: the database's tables."""
    for given, flag in ((args.fields, "--fields"), (args.format, "--format")):
        if given:
            raise ConfigError(f"{flag}: a database output has fixed tables (see the README)")
    if args.csv_raw:
        raise ConfigError("--csv-raw: a database output has no CSV cells")
    return database_from_args(args, args.out, name="export")


def output_from_args(args: argparse.Namespace, by_range: bool) -> Output:
    if is_database_url(args.out):
        return _database_output(args)
    for given, flag in ((args.db_schema, "--db-schema"), (args.table_prefix, "--table-prefix")):
        if given:
            raise ConfigError(f"{flag}: only for a database --out (postgresql://, sqlite:///)")
    out = Path(args.out)
    columns = parse_fields(args.fields, JOINABLE_COLUMNS if by_range else ALL_COLUMNS)
    try:
        return file_output(
            out, args.format, columns=columns, redact_pii=args.redact_pii, csv_raw=args.csv_raw
        )
    except ValueError as exc:
        raise ConfigError(str(exc).replace("name the format", "--format")) from None
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
