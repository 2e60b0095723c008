"""The meetings file: every bad row reported at once, by line, field and rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from feishu_vc_async.export._input import (
    MeetingsFileError,
    load_meetings,
    parse_meetings,
    write_meetings_csv,
)
from feishu_vc_async.models import MeetingQuery, MeetingStatus, UserIdType, WebinarRole

NOW = 1_760_000_000.0
START = 1_759_990_000
END = START + 3600


def _problems(data: bytes, **kw: object) -> list[tuple[int, str | None, str]]:
    with pytest.raises(MeetingsFileError) as info:
        parse_meetings(data, now=NOW, **kw)  # type: ignore[arg-type]
    return [(p.line, p.field, p.rule) for p in info.value.problems]


def test_csv_with_unix_and_iso_times_and_optional_columns() -> None:
    data = (
        "meeting_no,meeting_start_time,meeting_end_time,meeting_status,user_id,room_id,"
        "webinar_user_role\n"
        f"123456789,{START},{END},,,,\n"
        "234567891,2025-10-09T06:06:40+00:00,2025-10-09T15:06:40+08:00,2,ou_x,,\n"
        f"345678912,{START},{END},ended,,omm_1,\n"
        f"456789123,{START},{END},,,,3\n"
    ).encode()
    queries = parse_meetings(data, now=NOW)
    assert [q.meeting_no for q in queries] == ["123456789", "234567891", "345678912", "456789123"]
    iso_start = int(datetime(2025, 10, 9, 6, 6, 40, tzinfo=UTC).timestamp())
    assert queries[1].meeting_start_time == iso_start
    assert queries[1].meeting_end_time == iso_start + 3600  # 15:06:40+08:00 is 07:06:40Z
    assert queries[1].user_id == "ou_x"
    assert queries[2].room_id == "omm_1"
    assert queries[2].meeting_status is MeetingStatus.ENDED
    assert queries[3].webinar_user_role is WebinarRole.AUDIENCE


def test_jsonl_rows_and_sniffing_without_extension() -> None:
    data = (
        f'{{"meeting_no": "123456789", "meeting_start_time": {START}, '
        f'"meeting_end_time": {END}}}\n'
        "\n"
        f'{{"meeting_no": 234567891, "meeting_start_time": "{START}", '
        f'"meeting_end_time": {END}, "webinar_user_role": 0, "meeting_status": 2}}\n'
    ).encode()
    queries = parse_meetings(data, now=NOW)
    assert [q.meeting_no for q in queries] == ["123456789", "234567891"]
    assert queries[1].webinar_user_role is WebinarRole.GUEST


def test_every_bad_csv_row_is_named_with_its_rule() -> None:
    data = (
        "meeting_no,meeting_start_time,meeting_end_time,user_id,room_id\n"
        f"123456789,{START},{END},,\n"  # 2 ok
        f"12345,{START},{END},,\n"  # 3 not 9 digits
        f"123456780,abc,{END},,\n"  # 4 bad number
        f"123456781,{END},{START},,\n"  # 5 end before start
        f"123456782,{START},{START + 90_000},,\n"  # 6 longer than a day
        f"123456783,{START},{END},ou_1,omm_1\n"  # 7 both filters
        f"123456784,{START},{END}\n"  # 8 wrong cell count
        f"123456785,2025-10-09T06:06:40,{END},,\n"  # 9 ISO without offset
        f"123456789,{START},{END},,\n"  # 10 duplicate of line 2
        f"123456786,{START}.5,{END},,\n"  # 11 fraction
        f"123456787,,{END},,\n"  # 12 missing value
    ).encode()
    problems = _problems(data)
    by_line = {line: (field, rule) for line, field, rule in problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert by_line[3][0] == "meeting_no"
    assert "9 digits" in by_line[3][1]
    assert by_line[4][0] == "meeting_start_time"
    assert by_line[5][0] == "meeting_end_time"
    assert "earlier" in by_line[5][1]
    assert by_line[6][0] == "meeting_end_time"
    assert "one day" in by_line[6][1]
    assert by_line[7][0] == "user_id/room_id"
    assert "cells" in by_line[8][1]
    assert "offset" in by_line[9][1]
    assert "duplicate of line 2" in by_line[10][1]
    assert "whole" in by_line[11][1]
    assert by_line[12] == ("meeting_start_time", "is required")


def test_missing_and_unknown_columns_are_one_header_error_each() -> None:
    problems = _problems(b"meeting_no,meeting_start,extra\n123456789,1,2\n")
    assert [line for line, _, _ in problems] == [1, 1]
    assert "meeting_start_time, meeting_end_time" in problems[0][2]
    assert "'meeting_start'" in problems[1][2]
    assert "'extra'" in problems[1][2]


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n  \n", b"meeting_no,meeting_start_time,meeting_end_time\n"],
    ids=["empty", "blank", "header-only"],
)
def test_a_file_without_meetings_is_an_error(data: bytes) -> None:
    problems = _problems(data)
    assert len(problems) == 1
    assert "no meetings" in problems[0][2]


def test_binary_garbage_names_the_line() -> None:
    problems = _problems(b"meeting_no\nabc\n\x00\x01\x02\xff")
    assert problems == [(3, None, "binary data (a NUL byte): expected CSV or JSONL")]
    problems = _problems(b'{"meeting_no": 1}\n\xff\xfe garbage')
    assert problems[0][0] == 2
    assert "UTF-8" in problems[0][2]


def test_bad_jsonl_lines_each_reported() -> None:
    data = (
        f'{{"meeting_no": "123456789", "meeting_start_time": {START}, '
        f'"meeting_end_time": {END}}}\n'
        "not json\n"
        "[1, 2]\n"
        f'{{"meeting_no": "123456781", "meeting_start_time": true, "meeting_end_time": {END}}}\n'
        f'{{"meeting_no": "123456782", "start": 1, "meeting_end_time": {END}}}\n'
        f'{{"meeting_no": "123456783", "meeting_start_time": {START + 7200}, '
        f'"meeting_end_time": {END}, "meeting_status": 9}}\n'
    ).encode()
    problems = _problems(data, fmt="jsonl")
    assert [line for line, _, _ in problems] == [2, 3, 4, 5, 6]
    assert "JSON" in problems[0][2]
    assert problems[2][1] == "meeting_start_time"
    assert "'start'" in problems[3][2]
    # The first broken rule of a row is reported: here the end before the start.
    assert problems[4][1] == "meeting_end_time"


def test_start_in_the_future_is_rejected() -> None:
    problems = _problems(
        f"meeting_no,meeting_start_time,meeting_end_time\n"
        f"123456789,{int(NOW) + 100},{int(NOW) + 200}\n".encode()
    )
    assert problems == [(2, "meeting_start_time", "cannot be later than now")]


def test_user_id_type_default_and_column(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "meeting_no,meeting_start_time,meeting_end_time,user_id_type\n"
        f"123456789,{START},{END},\n"
        f"234567891,{START},{END},user_id\n"
    )
    queries = load_meetings(path, user_id_type=UserIdType.UNION_ID, now=NOW)
    assert [q.user_id_type for q in queries] == [UserIdType.UNION_ID, UserIdType.USER_ID]


def test_write_meetings_csv_round_trips(tmp_path: Path) -> None:
    queries = [
        MeetingQuery(meeting_no="123456789", meeting_start_time=START, meeting_end_time=END),
        MeetingQuery(
            meeting_no="234567891",
            meeting_start_time=START,
            meeting_end_time=END,
            room_id="omm_1",
            webinar_user_role=WebinarRole.GUEST,
        ),
    ]
    path = tmp_path / "m.csv"
    assert write_meetings_csv(path, queries) == 2
    assert load_meetings(path, now=NOW) == queries


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(MeetingsFileError) as info:
        load_meetings(tmp_path / "absent.csv")
    assert "cannot read" in info.value.report()[0]
