"""The one time rule: unix seconds (ASCII digits) or ISO 8601 with an offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feishu_vc_async._timeparse import (
    MAX_UNIX_SECONDS,
    TIME_RULE,
    local_zone,
    parse_instant,
    parse_unix_or_iso,
    zone_named,
)


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


# --- --since / --until ------------------------------------------------------------------

SHANGHAI = zone_named("Asia/Shanghai")
NOW = 1_780_000_000  # 2026-05-28T20:26:40Z


@pytest.mark.parametrize(
    ("text", "start", "end_of_day"),
    [
        ("2026-11-01", 1_793_462_400, 1_793_548_799),  # a day in Shanghai, first/last second
        ("2026-11-01T09:00", 1_793_494_800, 1_793_494_800),  # no offset: read in the zone
        ("2026-11-01T09:00+00:00", 1_793_523_600, 1_793_523_600),  # its own offset wins
        ("2026-11-01T01:00:00Z", 1_793_494_800, 1_793_494_800),
        ("7d", NOW - 7 * 86_400, NOW - 7 * 86_400),
        ("24h", NOW - 86_400, NOW - 86_400),
        ("30m", NOW - 1800, NOW - 1800),
        ("2w", NOW - 14 * 86_400, NOW - 14 * 86_400),
        ("now", NOW, NOW),
        (" NOW ", NOW, NOW),
        ("1780000000", 1_780_000_000, 1_780_000_000),
    ],
)
def test_instants_as_typed(text: str, start: int, end_of_day: int) -> None:
    assert parse_instant(text, tz=SHANGHAI, now=NOW) == start
    assert parse_instant(text, tz=SHANGHAI, now=NOW, end_of_day=True) == end_of_day


def test_a_date_means_a_day_in_the_zone_given() -> None:
    assert parse_instant("2026-11-01", tz=UTC, now=NOW) == 1_793_491_200
    assert zone_named("utc") is UTC
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone_named("Mars/Olympus")
    assert local_zone().utcoffset(datetime(2026, 1, 1)) is not None


@pytest.mark.parametrize(
    "text", ["2026-13-01", "-5", "7y", "", "yesterday", "１７８０", "2026-11-01T25:00", "1e9"]
)
def test_anything_else_names_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="must be a date"):
        parse_instant(text, tz=SHANGHAI, now=NOW)


@given(st.text())
def test_an_instant_raises_only_its_rule(text: str) -> None:
    message = ""
    try:
        seconds = parse_instant(text, tz=SHANGHAI, now=NOW)
    except ValueError as exc:  # never another exception type
        message = str(exc)
    else:
        assert 0 <= seconds <= MAX_UNIX_SECONDS
    assert message == "" or re.search(r"must|cannot|not a", message)
