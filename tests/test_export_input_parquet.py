"""A Parquet meetings file: read as its CSV is, every bad row reported at once by row,
field, value and rule, a clear word when pyarrow is missing (written and read back:
test_export_input)."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feishu_vc_async.export._input import MeetingsFileError, parse_meetings
from feishu_vc_async.models import WebinarRole

NOW = 1_760_000_000.0
START = 1_759_990_000
END = START + 3600
_UTC_MS = pa.timestamp("ms", tz="UTC")


def _parquet(columns: dict[str, Any], schema: dict[str, Any] | None = None) -> bytes:
    """A Parquet file of ``columns`` (each a list of cells), typed by ``schema`` where
    given, else as pyarrow infers."""
    types = schema or {}
    table = pa.table(
        {name: pa.array(cells, type=types.get(name)) for name, cells in columns.items()}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _report(data: bytes, source: str = "m.parquet") -> list[str]:
    with pytest.raises(MeetingsFileError) as info:
        parse_meetings(data, now=NOW, source=source)
    return info.value.report()


def test_typed_columns_read_as_their_csv_cells_and_meeting_columns_read_past(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = _parquet(
        {
            "meeting_no": ["123456789", "234567891"],
            "meeting_start_time": [START * 1_000_000, START * 1_000_000],
            "meeting_end_time": [END, END],  # plain unix seconds, as a number
            "meeting_status": [2, None],
            "webinar_user_role": [None, 3],
            "meeting_topic": ["Weekly", "Review"],  # what `feishu-vc meetings` writes too
            "number_of_participants": [3, 250],
        },
        {
            "meeting_start_time": pa.timestamp("us", tz="Asia/Shanghai"),
            "meeting_status": pa.int32(),
        },
    )
    with caplog.at_level(logging.WARNING, logger="feishu_vc_async"):
        queries = parse_meetings(data, now=NOW)
    assert [(q.meeting_no, q.meeting_start_time, q.meeting_end_time) for q in queries] == [
        ("123456789", START, END),
        ("234567891", START, END),
    ]
    assert queries[1].webinar_user_role is WebinarRole.AUDIENCE
    assert queries.sizes == {queries[0].key: 3, queries[1].key: 250}
    assert caplog.records == []  # nothing ignored that meeting_list does not describe


def test_every_bad_row_is_reported_by_row_field_value_and_rule() -> None:
    ms = 1000
    data = _parquet(
        {
            "meeting_no": ["123456789", "12345", "234567891", None, "123456789"],
            "meeting_start_time": [
                START * ms,
                START * ms,
                START * ms + 500,
                START * ms,
                START * ms,
            ],
            "meeting_end_time": [END * ms, END * ms, END * ms, END * ms, END * ms],
        },
        {"meeting_start_time": _UTC_MS, "meeting_end_time": _UTC_MS},
    )
    assert _report(data) == [
        "m.parquet: row 2: meeting_no='12345': must be exactly 9 digits",
        "m.parquet: row 3: meeting_start_time='2025-10-09T06:06:40.5Z': must be whole seconds "
        "(the platform's times have no fraction)",
        "m.parquet: row 4: meeting_no=None: is required",
        "m.parquet: row 5: meeting_no='123456789': duplicate of row 1",
    ]


@pytest.mark.parametrize(
    ("columns", "schema", "problem"),
    [
        (
            {"meeting_no": ["123456789"], "begins": [START], "meeting_end_time": [END]},
            None,
            "m.parquet: missing required column(s) meeting_start_time (the header must name "
            "meeting_no, meeting_start_time, meeting_end_time)",
        ),
        (
            {"meeting_no": ["123456789"], "meeting_start_time": [START], "meeting_end_time": [END]},
            {"meeting_start_time": pa.timestamp("s")},
            "m.parquet: column meeting_start_time is a timestamp without a time zone "
            "(timestamp[ms]), which names no instant: write it with one (UTC)",
        ),
        (
            {
                "meeting_no": [b"123456789"],
                "meeting_start_time": [START],
                "meeting_end_time": [END],
            },
            None,
            "m.parquet: column meeting_no holds Parquet binary: expected text, a number or a "
            "timestamp with a time zone",
        ),
        (
            {"meeting_no": [], "meeting_start_time": [], "meeting_end_time": []},
            {"meeting_no": pa.string(), "meeting_start_time": _UTC_MS, "meeting_end_time": _UTC_MS},
            "m.parquet: no meetings in the file (it has no rows)",
        ),
    ],
)
def test_a_broken_column_is_one_problem_of_the_whole_file(
    columns: dict[str, Any], schema: dict[str, Any] | None, problem: str
) -> None:
    assert _report(_parquet(columns, schema)) == [problem]


def test_a_file_that_is_not_parquet_says_so() -> None:
    for data in (b"meeting_no,meeting_start_time,meeting_end_time\n", b"PAR1 not really PAR1"):
        with pytest.raises(MeetingsFileError) as info:
            parse_meetings(data, fmt="parquet", now=NOW, source="m.pq")
        (line,) = info.value.report()
        assert line.startswith("m.pq: not a readable Parquet file: "), line


def test_without_pyarrow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _parquet(
        {"meeting_no": ["123456789"], "meeting_start_time": [START], "meeting_end_time": [END]}
    )
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)  # what an install without it gives
    assert _report(data) == [
        "m.parquet: a Parquet meetings file needs pyarrow: pip install 'feishu-vc-async[parquet]'"
    ]
