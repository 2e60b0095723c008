"""How the PostgreSQL store sends timestamps: as integers, through a codec of its own.

asyncpg's binary encoding of an aware datetime (astimezone, a subtraction, reading its
attributes) costs as much client CPU as the rest of a participant row. The store's
connection takes instead asyncpg's "tuple" form of a timestamp, ``(microseconds since
2000-01-01 UTC,)``, made straight from the platform's time strings by the same tables
that read them (``_timeparse``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._timeparse import feishu_time_reader
from ._db_tables import MEETINGS

if TYPE_CHECKING:
    import asyncpg

__all__ = ["integer_timestamps", "meeting_instants", "postgres_instant"]

# ``tuple`` as the encoder passes our 1-tuples through and refuses anything else, so a
# datetime sent by mistake fails loudly (meeting_instants converts the meetings' first).
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_INFINITY = (1 << 63) - 1
_MICROSECOND = timedelta(microseconds=1)


# A platform time string → a timestamp value of this store (``None`` if malformed).
postgres_instant = feishu_time_reader(_PG_EPOCH)


async def integer_timestamps(conn: asyncpg.Connection) -> None:
    """Make ``conn`` take timestamps as :func:`postgres_instant` gives them (and read
    them back as aware datetimes)."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=tuple, decoder=_from_pg, format="tuple"
    )


def _from_pg(value: tuple[int]) -> datetime:
    """A timestamp read back (none of ours is infinite; asyncpg's own bounds for those)."""
    (micros,) = value
    if micros >= _INFINITY:
        return datetime.max.replace(tzinfo=UTC)
    if micros <= -_INFINITY:
        return datetime.min.replace(tzinfo=UTC)
    return _PG_EPOCH + timedelta(microseconds=micros)


def meeting_instants(record: tuple[Any, ...]) -> tuple[Any, ...]:
    """A meetings table record (``meeting_record``'s, its times datetimes) with its
    times in this store's form."""
    values = list(record)
    for i in MEETINGS.times_at:
        if values[i] is not None:
            values[i] = ((values[i] - _PG_EPOCH) // _MICROSECOND,)
    return tuple(values)
