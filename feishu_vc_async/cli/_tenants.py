"""``--tenants``: which tenants of a store app the workers are given (``--broker``).

* ``--tenants KEY,KEY,...``: these;
* ``--tenants all --tenants-file FILE``: every key of the file, one a line (blank lines
  and ``#`` comments skipped): the tenants the app has installed, as its app-enabled
  events told them to you;
* ``--tenants all``: every tenant the database's tables know: a meeting exported or
  listed for it, or an event of it waiting in the inbox (the tenants seen in events).

Each tenant is queued on its own (its discovery, its chunks, its budget); every worker
acts for the tenant a task names, with the app's ticket and shared token. A list and a
file are checked before anything is queued; the database is read just before.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..export import database_output

__all__ = ["ALL_TENANTS", "add_tenants_arguments", "tenants_from_args", "tenants_in_database"]

ALL_TENANTS = None  # "every tenant the tables know", read when queueing


def add_tenants_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--tenants",
        metavar="all|KEY,...",
        help="--broker --app-type store: queue these tenants (instead of --tenant-key); "
        "all: every tenant of --tenants-file, or else every tenant the tables know",
    )
    group.add_argument(
        "--tenants-file",
        metavar="FILE",
        help="--tenants all: the app's tenants, one key a line (# comments)",
    )


def tenants_from_args(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The tenants to queue: ``("",)`` for a custom app, the keys given, or
    :data:`ALL_TENANTS` (read from the tables when queueing). ``ConfigError`` naming
    the option."""
    listed: str | None = getattr(args, "tenants", None)
    path: str | None = getattr(args, "tenants_file", None)
    key: str | None = getattr(args, "tenant_key", None)
    if path is not None and listed != "all":
        raise ConfigError("--tenants-file: goes with --tenants all")
    if getattr(args, "app_type", "custom") != "store":
        if listed is not None or key:
            raise ConfigError("--tenants and --tenant-key: for --app-type store only")
        return ("",)
    if listed is None:
        if not key:
            raise ConfigError("--app-type store needs --tenant-key KEY or --tenants: the tenants")
        return (key,)
    if key:
        raise ConfigError("--tenant-key and --tenants: give one of the two")
    if listed == "all":
        return ALL_TENANTS if path is None else _file(Path(path).expanduser())
    return _keys(listed.split(","), "--tenants")


def _keys(items: list[str], where: str) -> tuple[str, ...]:
    keys = [k.strip() for k in items]
    if not keys or any(not k or any(c.isspace() or c == "," for c in k) for k in keys):
        raise ConfigError(f"{where}: expected tenant keys (no blanks or spaces)")
    doubled = sorted({k for k in keys if keys.count(k) > 1})
    if doubled:
        raise ConfigError(f"{where}: tenant {doubled[0]} given twice")
    return tuple(keys)


def _file(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--tenants-file {path}: cannot be read ({exc.__class__.__name__})"
        ) from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    keys = [line for line in lines if line]
    if not keys:
        raise ConfigError(f"--tenants-file {path}: holds no tenant key")
    return _keys(keys, f"--tenants-file {path}")


async def tenants_in_database(db_url: str, db_schema: str | None) -> tuple[str, ...]:
    """``--tenants all`` without a file: the tenants the tables know, sorted;
    ``ConfigError`` when they know none."""
    output = database_output(db_url, schema=db_schema, name="enqueue:tenants")
    async with output.lock():
        seen = sorted(await output.tenants_seen() - {""})
    if not seen:
        raise ConfigError(
            f"--tenants all: the tables of {output.where} know no tenant yet; give "
            "--tenants-file FILE (the app's tenants) or --tenants KEY,..."
        )
    return tuple(seen)
