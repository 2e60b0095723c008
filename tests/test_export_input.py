"""The meetings file: every bad row reported at once, by line, field and rule."""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feishu_vc_async._timeparse import MAX_UNIX_SECONDS
from feishu_vc_async.export._input import MeetingsFileError, load_meetings, parse_meetings
from feishu_vc_async.export._input_cells import CellError, parse_time_cell
from feishu_vc_async.export._input_writer import write_meetings
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


def test_missing_columns_and_a_typo_are_one_header_error_each() -> None:
    problems = _problems(b"meeting_no,meeting_start,extra\n123456789,1,2\n")
    assert [line for line, _, _ in problems] == [1, 1]
    assert "meeting_start_time, meeting_end_time" in problems[0][2]
    # Taken for the missing required column, not for meeting_status (closer by ratio).
    assert problems[1][2] == "unknown column 'meeting_start' (did you mean 'meeting_start_time'?)"
    assert not any("extra" in rule for _, _, rule in problems)


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
    assert problems == [(3, None, "binary data (a NUL byte): expected CSV, JSONL or Parquet")]
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
        f'{{"meeting_no": "123456782", "meeting_strat_time": 1, "meeting_end_time": {END}}}\n'
        f'{{"meeting_no": "123456783", "meeting_start_time": {START + 7200}, '
        f'"meeting_end_time": {END}, "meeting_status": 9}}\n'
    ).encode()
    problems = _problems(data, fmt="jsonl")
    assert [line for line, _, _ in problems] == [2, 3, 4, 5, 6]
    assert "JSON" in problems[0][2]
    assert problems[2][1] == "meeting_start_time"
    assert "'meeting_strat_time' (did you mean 'meeting_start_time'?)" in problems[3][2]
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


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "m.parquet", "m.PQ"])
def test_written_meetings_round_trip(tmp_path: Path, name: str) -> None:
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
    path = tmp_path / name
    assert write_meetings(path, queries) == 2
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_meetings(path, now=NOW) == queries
    if path.suffix.lower() in (".parquet", ".pq"):
        assert path.read_bytes()[:4] == b"PAR1"
        unnamed = tmp_path / "meetings.dat"
        unnamed.write_bytes(path.read_bytes())
        assert load_meetings(unnamed, now=NOW) == queries  # known by its first and last bytes


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(MeetingsFileError) as info:
        load_meetings(tmp_path / "absent.csv")
    assert "cannot read" in info.value.report()[0]


# --- time cells: one strict rule -------------------------------------------------------

_ISO_LIKE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,7})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2}(:?[0-9]{2})?)?)?"
)
_DISPLAY_LIKE = (
    r"[0-9]{4}\.[0-9]{2}\.[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \(GMT([+-][0-9]{1,2}(:?[0-9]{2})?)?\)"
)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("¹⁷⁹⁵⁵¹¹⁴¹⁶", "ASCII digits"),  # superscripts: str.isdigit() says yes, int() raises
        ("+-1795511416", "no sign"),
        ("-1759990000", "no sign"),
        ("+1759990000", "no sign"),
        ("1e9", "ASCII digits"),
        ("179_3782549", "ASCII digits"),
        ("１７９３７８２５４９", "ASCII digits"),  # full-width, refused in meeting_no too
        ("١٧٥٩٩٩٠٠٠٠", "ASCII digits"),  # Arabic-Indic
        ("1759990000.0", "whole"),
        ("9" * 5000, "9999-12-31"),  # int() would refuse it with its own error
        ("1969-12-31T23:59:59Z", "1970"),
        ("2025-10-09T06:06:40.5+00:00", "whole"),
        ("２０２５-10-09T06:06:40+00:00", "ASCII digits"),
        ("2025.10.09 14:06:40 (GMT+08:60)", "2022.12.23 11:16:59 (GMT+08:00)"),
    ],
)
def test_a_time_cell_breaking_the_rule_is_named_not_crashed(cell: str, words: str) -> None:
    problems = _problems(
        f"meeting_no,meeting_start_time,meeting_end_time\n123456789,{cell},{END}\n".encode()
    )
    assert len(problems) == 1
    line, field, rule = problems[0]
    assert (line, field) == (2, "meeting_start_time")
    assert words in rule


@pytest.mark.parametrize(
    "cell",
    [
        f"{START}",
        f" {START} ",
        f"0{START}",
        "2025-10-09T06:06:40Z",
        "2025-10-09T14:06:40+08:00",
        "2025.10.09 14:06:40 (GMT+08:00)",  # meeting_list's display format
        "2025.10.09 06:06:40 (GMT)",
    ],
)
def test_accepted_time_cells(cell: str) -> None:
    expected = int(datetime(2025, 10, 9, 6, 6, 40, tzinfo=UTC).timestamp())
    assert expected == START
    data = f"meeting_no,meeting_start_time,meeting_end_time\n123456789,{cell},{END}\n"
    [query] = parse_meetings(data.encode(), now=NOW)
    assert query.meeting_start_time == START


def test_json_numbers_must_be_whole() -> None:
    data = (
        f'{{"meeting_no": "123456789", "meeting_start_time": {START}.0, '
        f'"meeting_end_time": {END}}}\n'
        f'{{"meeting_no": "123456781", "meeting_start_time": 1.5, "meeting_end_time": {END}}}\n'
        f'{{"meeting_no": "123456782", "meeting_start_time": -1, "meeting_end_time": {END}}}\n'
    ).encode()
    problems = _problems(data, fmt="jsonl")
    assert problems[0] == (2, "meeting_start_time", "must be whole unix seconds")
    assert problems[1][:2] == (3, "meeting_start_time")
    assert "1970" in problems[1][2]
    assert len(problems) == 2


def _assert_int_or_cell_error(value: object) -> None:
    result: int | CellError
    try:
        result = parse_time_cell("meeting_start_time", value)
    except CellError as exc:
        result = exc
    if isinstance(result, CellError):
        assert (result.field, result.value) == ("meeting_start_time", value)
        assert result.rule
    else:
        assert isinstance(result, int)
        assert 0 <= result <= MAX_UNIX_SECONDS


@given(st.text())
def test_parse_time_fuzz_any_text(text: str) -> None:
    _assert_int_or_cell_error(text)


@given(
    st.one_of(
        st.from_regex(r"\s*[+-]{0,2}[0-9]{1,14}\s*", fullmatch=True),
        st.from_regex(r"\d{1,12}", fullmatch=True),  # any script's digits
        st.from_regex(r"[0-9_]{1,12}(\.[0-9]*)?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
        st.from_regex(_ISO_LIKE, fullmatch=True),
        st.from_regex(_DISPLAY_LIKE, fullmatch=True),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_parse_time_fuzz_near_misses(value: object) -> None:
    _assert_int_or_cell_error(value)


_COLUMN_NAMES = [
    "meeting_no",
    "meeting_start_time",
    "meeting_end_time",
    "meeting_status",
    "user_id",
    "room_id",
    "webinar_user_role",
    "user_id_type",
    "meeting_id",
    "meeting_topic",
    "meeting_strat_time",
    "x",
]
_CELLS = st.one_of(
    st.sampled_from(
        [
            "123456789",
            str(START),
            str(END),
            "2025.10.09 14:06:40 (GMT+08:00)",
            "2025-10-09T06:06:40Z",
            "²",
            "٣",
            "１",
            "-1",
            "9e9",
            "9" * 5000,
            "ended",
            "3",
            "open_id",
            "",
        ]
    ),
    st.text(max_size=6),
)
_JSON_VALUES = st.one_of(
    _CELLS,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def _csv_files(draw: st.DrawFn) -> bytes:
    """A header naming the required columns and some others, rows that fit it."""
    extra = draw(st.lists(st.sampled_from(_COLUMN_NAMES), unique=True, max_size=4))
    names = dict.fromkeys(["meeting_no", "meeting_start_time", "meeting_end_time", *extra])
    header = draw(st.permutations(list(names)))
    width = st.lists(_CELLS, min_size=len(header), max_size=len(header))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(draw(st.lists(width, min_size=1, max_size=4)))
    return buf.getvalue().encode()


_TIME_COLUMNS = ("meeting_start_time", "meeting_end_time")
_JSONL_OBJECTS = st.fixed_dictionaries(
    dict.fromkeys(_TIME_COLUMNS, _JSON_VALUES),
    optional=dict.fromkeys(set(_COLUMN_NAMES) - set(_TIME_COLUMNS), _JSON_VALUES),
)


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        _csv_files(),
        st.lists(_JSONL_OBJECTS, min_size=1, max_size=4).map(
            lambda objs: b"\n".join(msgspec.json.encode(o) for o in objs)
        ),
    )
)
def test_any_file_is_parsed_or_refused_with_a_report(data: bytes) -> None:
    error: MeetingsFileError | None = None
    try:
        parse_meetings(data, now=NOW)
    except MeetingsFileError as exc:
        error = exc
    if error is not None:
        assert error.problems
        assert all(line.startswith("meetings") for line in error.report())


# --- JSONL lines, the report's length, columns ------------------------------------------


def test_jsonl_splits_on_newline_only() -> None:
    data = (
        f'{{"meeting_no": "123456789", "meeting_start_time": {START}, '
        f'"meeting_end_time": {END}, "meeting_topic": "plan\u2028review\u0085\u2029"}}\r\n'
        "not json\r\n"
    ).encode()
    problems = _problems(data, fmt="jsonl")
    assert [(line, field) for line, field, _ in problems] == [(2, None)]
    assert "JSON" in problems[0][2]


def test_report_shows_a_limited_number_then_a_count() -> None:
    rows = "".join(f"12345,{START},{END}\n" for _ in range(100_000))
    with pytest.raises(MeetingsFileError) as info:
        parse_meetings(f"meeting_no,meeting_start_time,meeting_end_time\n{rows}".encode(), now=NOW)
    error = info.value
    assert len(error.problems) == 100_000
    assert len(error.report()) == 100_000
    lines = error.report(limit=20)
    assert len(lines) == 21
    assert lines[0].startswith("meetings:2: meeting_no='12345'")
    assert lines[19].startswith("meetings:21: ")
    assert lines[20] == "... and 99980 more problem(s)"
    assert error.report(limit=100_000) == error.report()


def test_unknown_columns_are_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        "topic,meeting_no,meeting_start_time,meeting_end_time,organizer,meeting_name,topic\n"
        f"Plan,123456789,{START},{END},Ann,Weekly,Plan\n"
        f"Plan,234567891,{START},{END},Bob,Daily,Plan\n"
    ).encode()
    with caplog.at_level(logging.WARNING, logger="feishu_vc_async.export"):
        queries = parse_meetings(data, now=NOW, source="m.csv")
    assert [q.meeting_no for q in queries] == ["123456789", "234567891"]
    [record] = caplog.records
    assert record.name == "feishu_vc_async.export"
    assert record.getMessage() == (
        # organizer is a column a list of meetings has (meeting_list's): read past silently
        "m.csv: ignoring column(s) the export does not use: 'topic', 'meeting_name'"
    )


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        (
            "meeting_no,meeting_strat_time,meeting_end_time",
            "'meeting_strat_time' (did you mean 'meeting_start_time'?)",
        ),
        (
            "meeting_no,meeting_start_time,meeting_end_time,room_di",
            "'room_di' (did you mean 'room_id'?)",
        ),
        (
            "meeting_no,meeting_start_time,meeting_end_time,ROOM-ID",
            "'ROOM-ID' (did you mean 'room_id'?)",
        ),
        (
            "meeting_no,meeting_start_time,meeting_end_time,meeting_stauts",
            "'meeting_stauts' (did you mean 'meeting_status'?)",
        ),
    ],
)
def test_a_likely_typo_of_a_known_column_is_refused(header: str, rule: str) -> None:
    cells = ",".join(["123456789", str(START), str(END), "x"][: header.count(",") + 1])
    problems = _problems(f"{header}\n{cells}\n".encode())
    assert any(line == 1 and rule in text for line, _, text in problems), problems


def test_only_columns_read_must_be_unique() -> None:
    problems = _problems(
        f"meeting_no,meeting_start_time,meeting_end_time,meeting_no\n1,{START},{END},1\n".encode()
    )
    assert problems == [(1, None, "column(s) named twice: meeting_no")]


def test_a_meeting_list_file_is_read_by_meeting_id(caplog: pytest.LogCaptureFixture) -> None:
    start_shown = "2025.10.09 14:06:40 (GMT+08:00)"
    end_shown = "2025.10.09 15:06:40 (GMT+08:00)"
    csv_data = (
        "meeting_id,meeting_topic,organizer,user_id,meeting_start_time,meeting_end_time,"
        "meeting_duration,number_of_participants,audio\n"
        f"123456789,Weekly,Ann,ou_ann,{start_shown},{end_shown},01:00:00,12,true\n"
    ).encode()
    jsonl_data = (
        '{"meeting_id": "123456789", "meeting_topic": "Weekly", "user_id": "ou_ann", '
        f'"meeting_start_time": "{start_shown}", "meeting_end_time": "{end_shown}", '
        '"reserved_rooms": [{"room_id": "omm_1", "room_name": "A"}], "audio": true, '
        '"number_of_participants": "12"}\n'
    ).encode()
    expected = [
        MeetingQuery(meeting_no="123456789", meeting_start_time=START, meeting_end_time=END)
    ]
    with caplog.at_level(logging.WARNING, logger="feishu_vc_async.export"):
        assert parse_meetings(csv_data, now=NOW) == expected
        assert parse_meetings(jsonl_data, now=NOW) == expected
    assert len(caplog.records) == 2
    # meeting_list's user_id is the organizer: filtering participants by it would lose rows.
    assert all("user_id is meeting_list's organizer" in r.getMessage() for r in caplog.records)


def test_meeting_no_wins_over_meeting_id() -> None:
    data = (
        "meeting_no,meeting_id,meeting_start_time,meeting_end_time,user_id\n"
        f"123456789,999999999,{START},{END},ou_1\n"
    ).encode()
    [query] = parse_meetings(data, now=NOW)
    assert (query.meeting_no, query.user_id) == ("123456789", "ou_1")


def test_status_digits_are_ascii_only() -> None:
    data = (
        "meeting_no,meeting_start_time,meeting_end_time,meeting_status\n"
        f"123456789,{START},{END},²\n"
        f"123456781,{START},{END},{'9' * 5000}\n"
    ).encode()
    problems = _problems(data)
    assert [(line, field) for line, field, _ in problems] == [
        (2, "meeting_status"),
        (3, "meeting_status"),
    ]


def test_a_list_of_meetings_says_their_sizes_and_keeps_its_order() -> None:
    # What `feishu-vc meetings` writes: the export starts the big meetings first by these
    # sizes (pages are sequential, so one started last would end the run alone), but the
    # list stays in the file's order: a checkpoint names the list by it.
    csv_data = (
        "meeting_id,meeting_start_time,meeting_end_time,number_of_participants\n"
        f"111111111,{START},{END},3\n"
        f"222222222,{START},{END},\n"
        f"333333333,{START},{END},812\n"
        f"444444444,{START},{END},many\n"
        f"555555555,{START},{END}, 40\n"
    ).encode()
    queries = parse_meetings(csv_data, now=NOW)
    assert [q.meeting_no for q in queries] == [f"{d * 9}" for d in "12345"]
    by_no = {q.meeting_no: queries.sizes.get(q.key) for q in queries}
    # Read as meeting_list's counts are (Meeting.participant_count): digits only.
    assert by_no == {
        "111111111": 3,
        "222222222": None,
        "333333333": 812,
        "444444444": None,
        "555555555": None,
    }
    jsonl = (
        f'{{"meeting_no": "111111111", "meeting_start_time": {START}, "meeting_end_time": {END},'
        ' "number_of_participants": 2}\n'
        f'{{"meeting_no": "222222222", "meeting_start_time": {START}, "meeting_end_time": {END},'
        ' "number_of_participants": "130"}\n'
    ).encode()
    queries = parse_meetings(jsonl, now=NOW)
    assert sorted(queries.sizes.values()) == [2, 130]
