"""Parquet output (pyarrow, the ``parquet`` extra): a Parquet export's JSONL journal →
one typed Parquet file.

The journal is read in blocks of whole lines by pyarrow's JSON reader and every typed
column is built with pyarrow.compute, not one Python object per cell: a time string of
the platform's own shape ("2022.12.23 11:16:59 (GMT+08:00)") becomes UTC milliseconds by
integer arithmetic on its digits. A non-null cell of any other shape is read by the same
function as the typed views (:func:`~feishu_vc_async._timeparse.parse_feishu_time`,
:func:`~feishu_vc_async._timeparse.parse_duration`, :func:`~feishu_vc_async.meetings.parse_count`),
so every cell gets exactly the value (or the null, when malformed) that a view gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from .._files import replacing
from .._timeparse import parse_duration, parse_feishu_time
from ..meetings import parse_count

__all__ = ["jsonl_to_parquet", "parquet_schema", "require_pyarrow"]

_BOOL_COLUMNS = frozenset(
    {
        "use_rtc_proxy",
        "audio",
        "video",
        "sharing",
        "is_external",
        "meeting_audio",
        "meeting_video",
        "meeting_sharing",
        "meeting_is_external",
        "recording",
        "telephone",
        "has_related_document",
        "ai_note",
    }
)
_FEISHU_TIME_COLUMNS = frozenset({"join_time", "leave_time"})
_UNIX_TIME_COLUMNS = frozenset({"meeting_start_time", "meeting_end_time"})
_DURATION_COLUMNS = frozenset({"time_in_meeting", "meeting_duration"})
_INT_COLUMNS = frozenset({"accept_status", "meeting_type", "meeting_subtype", "meeting_status"})
# meeting_list sends its counts as strings; Parquet keeps them as numbers.
_COUNT_COLUMNS = frozenset(
    {"number_of_participants", "number_of_devices", "number_of_webinar_viewers"}
)

# The shapes computed column-wise (RE2: \d is ASCII only, $ is the end of the text).
# Hours of a duration and counts are capped in length so that they fit int64; a longer
# one goes cell by cell, as any other shape does.
_FEISHU_TIME_SHAPE = r"^\d{4}\.\d{2}\.\d{2} \d{2}:\d{2}:\d{2} \(GMT[+-]\d{2}:[0-5]\d\)$"
_FEISHU_TIME_STAND_IN = "1970.01.01 00:00:00 (GMT+00:00)"
_DURATION_SHAPE = r"^\d{1,9}:[0-5]\d:[0-5]\d$"
_DURATION_STAND_IN = "0:00:00"
_COUNT_SHAPE = r"^\d{1,18}$"
_COUNT_STAND_IN = "0"
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# A block of the journal handed to the JSON reader at once (whole lines): bounds memory.
BLOCK_BYTES = 8 * 1024 * 1024


def require_pyarrow() -> tuple[ModuleType, ModuleType]:
    """``(pyarrow, pyarrow.parquet)``, or an ``ImportError`` that names the extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ImportError(
            "Parquet output needs pyarrow: pip install 'feishu-vc-async[parquet]'"
        ) from exc
    return pyarrow, pyarrow.parquet


def parquet_schema(columns: Sequence[str]) -> Any:
    pa, _ = require_pyarrow()
    fields = []
    for name in columns:
        if name in _UNIX_TIME_COLUMNS or name in _FEISHU_TIME_COLUMNS:
            typ = pa.timestamp("ms", tz="UTC")  # Parquet has no second unit
        elif name in _DURATION_COLUMNS:
            typ = pa.duration("s")
        elif name in _BOOL_COLUMNS:
            typ = pa.bool_()
        elif name in _INT_COLUMNS:
            typ = pa.int32()
        elif name in _COUNT_COLUMNS:
            typ = pa.int64()
        else:
            typ = pa.string()
        fields.append(pa.field(name, typ))
    return pa.schema(fields)


def _journal_schema(columns: Sequence[str]) -> Any:
    """How each column is written in the journal's JSON."""
    pa, _ = require_pyarrow()
    fields = []
    for name in columns:
        if name in _UNIX_TIME_COLUMNS or name in _INT_COLUMNS:
            typ = pa.int64()
        elif name in _BOOL_COLUMNS:
            typ = pa.bool_()
        else:
            typ = pa.string()
        fields.append(pa.field(name, typ))
    return pa.schema(fields)


def _by_shape(
    values: Any,
    shape: str,
    stand_in: str,
    compute: Callable[[Any], Any],
    one: Callable[[Any], Any],
    typ: Any,
) -> Any:
    """``compute`` (to int64) over the cells of ``shape``, the others given ``stand_in``
    and then replaced by ``one`` of each non-null one, cell by cell; as ``typ``. In
    int64 because pyarrow cannot replace by mask in a duration column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shaped = pc.match_substring_regex(values, shape)
    other = pc.fill_null(pc.invert(shaped), False)
    result = compute(pc.if_else(other, stand_in, values))
    if pc.any(other).as_py():
        cells = pc.filter(values, other).to_pylist()
        read = pa.array([one(c) for c in cells], typ).cast(pa.int64())
        result = pc.replace_with_mask(result, other, read)
    return result.cast(typ)


def _digits(values: Any, start: int, stop: int | None) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pc.utf8_slice_codeunits(values, start, stop), pa.int64())


def _feishu_times(values: Any) -> Any:
    """ "YYYY.MM.DD hh:mm:ss (GMT±hh:mm)" strings → ``timestamp[ms, UTC]``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = pa.timestamp("ms", tz="UTC")

    def compute(text: Any) -> Any:
        year, month, day = _digits(text, 0, 4), _digits(text, 5, 7), _digits(text, 8, 10)
        hour, minute, second = _digits(text, 11, 13), _digits(text, 14, 16), _digits(text, 17, 19)
        off_h, off_m = _digits(text, 25, 27), _digits(text, 28, 30)
        west = pc.equal(pc.utf8_slice_codeunits(text, 24, 25), "-")
        leap = pc.or_(
            pc.and_(pc.equal(pc.modulo(year, 4), 0), pc.not_equal(pc.modulo(year, 100), 0)),
            pc.equal(pc.modulo(year, 400), 0),
        )
        month_ok = pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12))
        index = pc.if_else(month_ok, pc.subtract(month, 1), 0)
        month_days = pc.take(pa.array(_DAYS_IN_MONTH, pa.int64()), index)
        month_days = pc.if_else(pc.and_(leap, pc.equal(month, 2)), 29, month_days)
        valid = pc.and_(
            pc.and_(month_ok, pc.greater_equal(year, 1)),
            pc.and_(
                pc.and_(pc.greater_equal(day, 1), pc.less_equal(day, month_days)),
                pc.and_(
                    pc.and_(pc.less(hour, 24), pc.less(off_h, 24)),
                    pc.and_(pc.less(minute, 60), pc.less(second, 60)),
                ),
            ),
        )
        # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
        # days_from_civil; years from 1, so every quotient is of non-negatives).
        y = pc.subtract(year, pc.cast(pc.less_equal(month, 2), pa.int64()))
        era = pc.divide(y, 400)
        yoe = pc.subtract(y, pc.multiply(era, 400))
        shifted = pc.if_else(pc.greater(month, 2), pc.subtract(month, 3), pc.add(month, 9))
        doy = pc.add(pc.divide(pc.add(pc.multiply(shifted, 153), 2), 5), pc.subtract(day, 1))
        doe = pc.add(
            pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)),
            pc.subtract(doy, pc.divide(yoe, 100)),
        )
        days = pc.subtract(pc.add(pc.multiply(era, 146097), doe), 719468)
        clock = pc.add(pc.add(pc.multiply(hour, 3600), pc.multiply(minute, 60)), second)
        offset = pc.add(pc.multiply(off_h, 3600), pc.multiply(off_m, 60))
        offset = pc.if_else(west, pc.negate(offset), offset)
        seconds = pc.subtract(pc.add(pc.multiply(days, 86400), clock), offset)
        return pc.if_else(valid, pc.multiply(seconds, 1000), pa.scalar(None, pa.int64()))

    return _by_shape(
        values, _FEISHU_TIME_SHAPE, _FEISHU_TIME_STAND_IN, compute, parse_feishu_time, typ
    )


def _durations(values: Any) -> Any:
    """ "hh:mm:ss" strings (hours may pass 24) → ``duration[s]``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = pa.duration("s")

    def compute(text: Any) -> Any:
        hours = pc.cast(pc.utf8_slice_codeunits(text, 0, -6), pa.int64())
        minutes, seconds = _digits(text, -5, -3), _digits(text, -2, None)
        return pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds)

    return _by_shape(values, _DURATION_SHAPE, _DURATION_STAND_IN, compute, parse_duration, typ)


def _counts(values: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = pa.int64()
    return _by_shape(
        values, _COUNT_SHAPE, _COUNT_STAND_IN, lambda t: pc.cast(t, typ), parse_count, typ
    )


def _typed_column(name: str, values: Any, typ: Any) -> Any:
    """A journal column (as :func:`_journal_schema` reads it) → its Parquet type."""
    import pyarrow.compute as pc

    if name in _UNIX_TIME_COLUMNS:
        return pc.cast(pc.multiply(values, 1000), typ)
    if name in _FEISHU_TIME_COLUMNS:
        return _feishu_times(values)
    if name in _DURATION_COLUMNS:
        return _durations(values)
    if name in _COUNT_COLUMNS:
        return _counts(values)
    return pc.cast(values, typ)


def _blocks(src: BinaryIO, length: int, block_bytes: int) -> Iterator[memoryview]:
    """The first ``length`` bytes of ``src`` in blocks of whole lines. A line that runs
    past ``length`` is not part of the export; an unterminated last line of the file is."""
    remaining = length
    carry = b""
    while remaining > 0:
        block = src.read(min(block_bytes, remaining))
        if not block:
            break
        remaining -= len(block)
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            yield memoryview(data)[:cut]  # not a copy: the block is tens of megabytes
    if carry and not src.read(1):
        yield memoryview(carry)


def jsonl_to_parquet(
    journal: Path,
    out: Path,
    columns: Sequence[str],
    *,
    length: int,
    base: Path | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> int:
    """Convert the first ``length`` bytes of a JSONL journal into a typed Parquet file,
    after the rows of the Parquet file ``base`` when given (an earlier finished export
    that a ``--retry-failed`` run adds to).

    Timestamps become ``timestamp[ms, UTC]`` (the platform's local offset is not kept:
    Parquet has one zone per column), ``time_in_meeting`` a ``duration[s]``, flags
    booleans. A malformed time string becomes null. Returns the number of rows. Memory
    is bounded by ``block_bytes`` of journal (and what pyarrow makes of it) at a time.
    """
    pa, pq = require_pyarrow()
    import pyarrow.json as pj

    schema = parquet_schema(columns)
    parse_options = pj.ParseOptions(
        explicit_schema=_journal_schema(columns), unexpected_field_behavior="ignore"
    )
    rows = 0
    with (
        replacing(out) as tmp,
        open(journal, "rb") as src,
        pq.ParquetWriter(tmp, schema) as writer,
    ):
        if base is not None:
            for earlier in pq.ParquetFile(base).iter_batches():
                writer.write_batch(earlier)
                rows += earlier.num_rows
        for block in _blocks(src, length, block_bytes):
            table = pj.read_json(pa.BufferReader(block), parse_options=parse_options)
            arrays = [
                _typed_column(c, table.column(c).combine_chunks(), schema.field(c).type)
                for c in columns
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            rows += table.num_rows
        if rows == 0:  # an empty export is still a file with its columns
            writer.write_table(schema.empty_table())
    return rows
