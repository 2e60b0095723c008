"""The table-driven reading of the platform's time strings (``parse_feishu_time``,
``parse_duration``, ``Participant.acceptance``) against a straightforward reference,
over many generated strings: valid ones, out-of-range ones and near misses. The tables
are filled as strings are seen, so every string is read twice (the second time from the
tables) and sometimes after emptying them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feishu_vc_async import _timeparse
from feishu_vc_async._timeparse import (
    _EPOCH,
    _HOUR_MICROS,
    _HOUR_STARTS,
    _MINUTES_SECONDS,
    _MINUTES_SECONDS_MICROS,
    feishu_time_micros,
    feishu_time_reader,
    parse_duration,
    parse_feishu_time,
)
from feishu_vc_async.models import AcceptStatus, Participant

# The documented grammar, written out plainly: what the fast path must agree with.
_REFERENCE_TIME = re.compile(
    r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})"
    r" \(GMT(?:([+-])(\d{1,2})(?::?([0-5]\d))?)?\)",
    re.ASCII,
)
_REFERENCE_DURATION = re.compile(r"(\d+):([0-5]\d):([0-5]\d)", re.ASCII)


def reference_time(text: str | None) -> datetime | None:
    if not text:
        return None
    m = _REFERENCE_TIME.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
    try:
        tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        return None


def reference_duration(text: str | None) -> timedelta | None:
    m = _REFERENCE_DURATION.fullmatch(text or "")
    if m is None:
        return None
    return timedelta(hours=int(m[1]), minutes=int(m[2]), seconds=int(m[3]))


def _same(got: datetime | None, want: datetime | None) -> bool:
    if got is None or want is None:
        return got is want
    return got == want and got.utcoffset() == want.utcoffset() and got.tzinfo is not None


# Fields drawn past their ranges too (month 13, hour 24, offset +24:00, minute 60 ...).
_times = st.builds(
    lambda y, mo, d, h, mi, s, sign, oh, om: (
        f"{y:04d}.{mo:02d}.{d:02d} {h:02d}:{mi:02d}:{s:02d} (GMT{sign}{oh:02d}:{om:02d})"
    ),
    st.one_of(st.integers(0, 9999), st.sampled_from([0, 1, 2022, 9999])),
    st.integers(0, 13),
    st.integers(0, 32),
    st.one_of(st.integers(0, 25), st.just(99)),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from("+-"),
    st.one_of(st.integers(0, 25), st.just(99)),
    st.one_of(st.sampled_from([0, 30, 45]), st.integers(0, 99)),
)
_durations = st.builds(
    lambda h, width, mi, s: f"{h:0{width}d}:{mi:02d}:{s:02d}",
    st.integers(0, 10**6),
    st.integers(1, 3),
    st.integers(0, 61),
    st.integers(0, 61),
)
# Characters a near miss is made of: the grammar's own, other separators, whitespace,
# and digits that are not ASCII (str.isdigit and int() accept them, the grammar does not).
_NEAR = "0123456789.:+-() GMTZW,_\t\n١٢２"


@st.composite
def _near_miss(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    chars = list(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chars)))
        char = draw(st.sampled_from(_NEAR))
        edit = draw(st.sampled_from(["replace", "insert", "delete"]))
        if edit == "insert" or at == len(chars):
            chars.insert(at, char)
        elif edit == "replace":
            chars[at] = char
        else:
            del chars[at]
    return "".join(chars)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_times, _near_miss(_times)), st.booleans())
def test_feishu_time_agrees_with_the_reference(text: str, empty_tables: bool) -> None:
    if empty_tables:
        _timeparse._HOUR_STARTS.clear()
        _timeparse._MINUTES_SECONDS.clear()
    want = reference_time(text)
    assert _same(parse_feishu_time(text), want)
    assert _same(parse_feishu_time(text), want)  # now from the tables


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_times, _near_miss(_times)), st.booleans())
def test_feishu_time_in_microseconds_is_the_same_instant(text: str, empty_tables: bool) -> None:
    """What PostgreSQL's store sends for a timestamp column (its own tables)."""
    if empty_tables:
        for table in (_HOUR_MICROS, _MINUTES_SECONDS_MICROS, _HOUR_STARTS, _MINUTES_SECONDS):
            table.clear()
    want = reference_time(text)
    micros = None if want is None else (want - _EPOCH) // timedelta(microseconds=1)
    assert feishu_time_micros(text) == micros
    assert feishu_time_micros(text) == micros  # now from the tables
    since = datetime(2000, 1, 1, tzinfo=UTC)
    read = feishu_time_reader(since)
    assert read(text) == (None if want is None else ((want - since) // timedelta(microseconds=1),))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_durations, _near_miss(_durations), _near_miss(_times)), st.booleans())
def test_duration_agrees_with_the_reference(text: str, empty_tables: bool) -> None:
    if empty_tables:
        _timeparse._MINUTES_SECONDS.clear()
    want = reference_duration(text)
    assert parse_duration(text) == want
    assert parse_duration(text) == want


@pytest.mark.parametrize("digits", [11, 20, 5000])
def test_a_duration_too_long_to_hold_is_malformed(digits: int) -> None:
    # timedelta ends at 999,999,999 days and int() refuses 4,300+ digits: both once
    # raised out of the view instead of giving None.
    assert parse_duration("9" * digits + ":00:00") is None


def test_the_hour_table_stays_bounded() -> None:
    start = datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    for hours in range(3 * _timeparse._HOUR_STARTS_MAX):
        value = start + timedelta(hours=hours, minutes=hours % 60, seconds=7)
        text = _timeparse.format_feishu_time(value)
        assert parse_feishu_time(text) == value
        assert len(_timeparse._HOUR_STARTS) <= _timeparse._HOUR_STARTS_MAX


def test_malformed_minutes_and_seconds_are_never_remembered() -> None:
    _timeparse._MINUTES_SECONDS.clear()
    for tens in "6789a:":
        for unit in "0123456789x":
            assert parse_feishu_time(f"2022.12.23 11:{tens}{unit}:59 (GMT+08:00)") is None
            assert parse_feishu_time(f"2022.12.23 11:16:{tens}{unit} (GMT+08:00)") is None
            assert parse_duration(f"00:{tens}{unit}:00") is None
    assert _timeparse._MINUTES_SECONDS == {}


@pytest.mark.parametrize("value", [None, -1, 0, 1, 2, 3, 4, 5, 42, 2**40])
def test_acceptance_is_the_enum_of_the_wire_value(value: int | None) -> None:
    got = Participant(accept_status=value).acceptance
    if value is None:
        assert got is None
        return
    want = AcceptStatus(value)
    assert got == want
    assert type(got) is AcceptStatus
    assert got is not None
    assert got.name == want.name
