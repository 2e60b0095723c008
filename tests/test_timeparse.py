"""The one time rule: unix seconds (ASCII digits) or ISO 8601 with an offset."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feishu_vc_async._timeparse import MAX_UNIX_SECONDS, TIME_RULE, parse_unix_or_iso


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("1714525200", 1_714_525_200),
        (" 1714525200\t", 1_714_525_200),
        ("2024-05-01T09:00:00+08:00", 1_714_525_200),
        ("2024-05-01T01:00:00Z", 1_714_525_200),
        ("2024-05-01 09:00+08", 1_714_525_200),
        ("253402300799", MAX_UNIX_SECONDS),
    ],
)
def test_accepted(text: str, seconds: int) -> None:
    assert parse_unix_or_iso(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", TIME_RULE),
        ("1e9", TIME_RULE),
        ("1_000", TIME_RULE),
        ("¹⁷", TIME_RULE),
        ("１７", TIME_RULE),
        ("-1", "no sign"),
        ("+-1", "no sign"),
        ("1.5", "whole"),
        ("253402300800", "9999-12-31"),
        ("2024-05-01T09:00:00", "needs an offset"),
        ("2024-05-01T09:00:00.250+08:00", "whole seconds"),
        ("1969-12-31T23:59:59Z", "1970"),
    ],
)
def test_refused_with_the_rule_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_unix_or_iso(text)


@given(st.text())
def test_only_value_error_ever(text: str) -> None:
    try:
        seconds = parse_unix_or_iso(text)
    except ValueError:
        return
    assert 0 <= seconds <= MAX_UNIX_SECONDS
