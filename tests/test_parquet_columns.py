"""The Parquet conversion builds its typed columns with pyarrow.compute; every cell must
hold what the typed views give for it (``parse_feishu_time``, ``parse_duration``,
``parse_count``, unix seconds as UTC), a null where they give ``None``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from feishu_vc_async._timeparse import parse_duration, parse_feishu_time
from feishu_vc_async.export._parquet import jsonl_to_parquet
from feishu_vc_async.meetings import parse_count

COLUMNS = (
    "meeting_no",
    "meeting_start_time",
    "join_time",
    "leave_time",
    "time_in_meeting",
    "meeting_duration",
    "number_of_participants",
    "accept_status",
    "audio",
)

_TIMES = [
    "2022.12.23 11:16:59 (GMT+08:00)",
    "2022.12.23 11:16:59 (GMT-03:30)",
    "0001.01.01 00:00:00 (GMT+08:00)",
    "9999.12.31 23:59:59 (GMT-08:00)",
    "2024.02.29 23:59:59 (GMT+00:00)",
    "2023.02.29 11:16:59 (GMT+08:00)",  # no such day
    "1900.02.29 11:16:59 (GMT+08:00)",  # a century, not a leap year
    "2000.02.29 11:16:59 (GMT+08:00)",  # every 400 years, a leap year
    "2022.04.31 11:16:59 (GMT+08:00)",
    "2022.00.10 11:16:59 (GMT+08:00)",
    "0000.12.23 11:16:59 (GMT+08:00)",
    "2022.12.23 24:00:00 (GMT+08:00)",
    "2022.12.23 11:60:00 (GMT+08:00)",
    "2022.12.23 11:16:59 (GMT+24:00)",
    "2022.12.23 11:16:59 (GMT+08:60)",
    "2022.12.23 11:16:59 (GMT+8)",  # other shapes the general reading takes
    "2022.12.23 11:16:59 (GMT+0530)",
    "2022.12.23 11:16:59 (GMT)",
    " 2022.12.23 11:16:59 (GMT+08:00) ",
    "2022.12.23 11:16:59 (GMT+08:00)\n",
    "２０２２.12.23 11:16:59 (GMT+08:00)",
    "garbage",
    "",
    None,
]
_DURATIONS = [
    "00:01:52",
    "0:00:05",
    "123:59:59",
    "999999999:59:59",
    "9999999999:00:00",  # past the column-wise shape, read cell by cell
    "99999999999:00:00",  # past timedelta: None
    "00:60:00",
    "1:2:3",
    "-1:00:00",
    "١٢:٠٠:٠٠",
    "",
    None,
]
_COUNTS = ["0", "12", "999999999999999999", "1e3", "-1", " 5", "٣", "", None]

# The journal's shape: one JSON object per line (the sink writes every column).
_jsonl = msgspec.json.Encoder().encode_lines


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    at = rng.randrange(len(chars))
    chars[at] = rng.choice("0123456789.:+-() GMT9x")
    return "".join(chars)


def _rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = []
    for i in range(n):
        join = rng.choice(_TIMES)
        if join and rng.random() < 0.5:
            join = _mutate(rng, join)
        rows.append(
            {
                "meeting_no": str(100000000 + i),
                "meeting_start_time": rng.choice([1_700_000_000 + i, 0, None]),
                "join_time": join,
                "leave_time": rng.choice(_TIMES),
                "time_in_meeting": rng.choice(_DURATIONS),
                "meeting_duration": rng.choice(_DURATIONS),
                "number_of_participants": rng.choice(_COUNTS),
                "accept_status": rng.choice([1, 4, 42, None]),
                "audio": rng.choice([True, False, None]),
            }
        )
    return rows


def _expected(row: dict[str, Any]) -> dict[str, Any]:
    start = row["meeting_start_time"]
    return {
        **row,
        "meeting_start_time": None if start is None else datetime.fromtimestamp(start, UTC),
        "join_time": parse_feishu_time(row["join_time"]),
        "leave_time": parse_feishu_time(row["leave_time"]),
        "time_in_meeting": parse_duration(row["time_in_meeting"]),
        "meeting_duration": parse_duration(row["meeting_duration"]),
        "number_of_participants": parse_count(row["number_of_participants"]),
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_COLUMNS = ("meeting_start_time", "join_time", "leave_time")


def _millis(value: object) -> object:
    # Compared as UTC milliseconds: year 1 and 9999 in an offset fall outside Python's
    # datetime in UTC, and Parquet holds them all the same.
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return value


@pytest.mark.parametrize("block_bytes", [4000, 1 << 20])
def test_every_cell_is_what_the_views_give(tmp_path: Path, block_bytes: int) -> None:
    rows = _rows(2000)
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(_jsonl(rows))
    out = tmp_path / "out.parquet"
    count = jsonl_to_parquet(
        journal, out, COLUMNS, length=journal.stat().st_size, block_bytes=block_bytes
    )
    assert count == len(rows)
    table = pq.read_table(out)
    for name in _TIME_COLUMNS:
        at = table.column_names.index(name)
        table = table.set_column(at, name, table.column(name).cast("int64"))
    for row, cells in zip(rows, table.to_pylist(), strict=True):
        want = {k: _millis(v) for k, v in _expected(row).items()}
        assert cells == want, row


def test_year_one_and_year_9999_keep_their_utc_instant(tmp_path: Path) -> None:
    # Their UTC instants fall in year 0 and year 10000, which Python cannot hold.
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(
        _jsonl(
            [
                {"join_time": "0001.01.01 00:00:00 (GMT+08:00)"},
                {"join_time": "9999.12.31 16:00:00 (GMT-08:00)"},
            ]
        )
    )
    out = tmp_path / "out.parquet"
    jsonl_to_parquet(journal, out, ["join_time"], length=journal.stat().st_size)
    millis = pq.read_table(out).column("join_time").cast("int64").to_pylist()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ms = timedelta(milliseconds=1)
    assert millis[0] == (datetime(1, 1, 1, tzinfo=UTC) - epoch - timedelta(hours=8)) // ms
    assert millis[1] == (datetime(9999, 12, 31, tzinfo=UTC) - epoch + timedelta(days=1)) // ms


def test_the_journal_is_read_up_to_its_length(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    lines = [msgspec.json.encode({"meeting_no": str(i)}) + b"\n" for i in range(50)]
    data = b"".join(lines)
    journal.write_bytes(data + b'{"meeting_no": "partial')  # a crash's unfinished tail
    out = tmp_path / "out.parquet"
    for block_bytes in (7, 64, 1 << 20):
        # A length inside a line leaves that line out, as a checkpoint's length never is.
        length = len(b"".join(lines[:30])) + 5
        got = jsonl_to_parquet(journal, out, ["meeting_no"], length=length, block_bytes=block_bytes)
        assert got == 30
        assert pq.read_table(out).column("meeting_no").to_pylist() == [str(i) for i in range(30)]
        assert (
            jsonl_to_parquet(
                journal, out, ["meeting_no"], length=len(data), block_bytes=block_bytes
            )
            == 50
        )


def test_an_unterminated_last_line_of_the_file_is_read(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(b'{"meeting_no": "1"}\n{"meeting_no": "2"}')
    out = tmp_path / "out.parquet"
    for block_bytes in (5, 1 << 20):
        assert (
            jsonl_to_parquet(journal, out, ["meeting_no"], length=10**6, block_bytes=block_bytes)
            == 2
        )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert jsonl_to_parquet(empty, out, ["meeting_no", "join_time"], length=0) == 0
    assert pq.read_table(out).column_names == ["meeting_no", "join_time"]
