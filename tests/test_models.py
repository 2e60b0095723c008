"""Wire models, Feishu time strings and MeetingQuery validation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feishu_vc_async._timeparse import (
    format_duration,
    format_feishu_time,
    parse_duration,
    parse_feishu_time,
)
from feishu_vc_async.errors import InvalidQueryError
from feishu_vc_async.models import (
    JSON_ENCODER,
    PARTICIPANT_FIELDS,
    PARTICIPANT_LIST_DECODER,
    AcceptStatus,
    MeetingQuery,
    MeetingStatus,
    Participant,
    UserIdType,
    WebinarRole,
    validate_page_size,
)

# The 28 fields of the reference page's response table, in its order.
SPEC_FIELDS = [
    "participant_name",
    "department",
    "user_id",
    "meeting_room_id",
    "employee_id",
    "phone",
    "email",
    "device",
    "app_version",
    "public_ip",
    "internal_ip",
    "use_rtc_proxy",
    "location",
    "network_type",
    "protocol",
    "microphone",
    "speaker",
    "camera",
    "audio",
    "video",
    "sharing",
    "join_time",
    "leave_time",
    "time_in_meeting",
    "leave_reason",
    "accept_status",
    "is_external",
    "webinar_user_role",
]

# The reference page's own example participant.
SPEC_EXAMPLE: dict[str, Any] = {
    "participant_name": "kehan",
    "department": "development",
    "user_id": "8efq90",
    "meeting_room_id": "omm_8efq90",
    "employee_id": "202205789",
    "phone": "021-883889",
    "email": "xxxx@163.com",
    "device": "windows",
    "app_version": "5.26.0-alpha.38",
    "public_ip": "27.xx.xx.183",
    "internal_ip": "192.xx.xx.13",
    "use_rtc_proxy": False,
    "location": "东莞",
    "network_type": "wifi",
    "protocol": "udp",
    "microphone": "麦克风阵列 (Realtek(R) Audio)",
    "speaker": "扬声器 (Realtek(R) Audio)",
    "camera": "HD Camera",
    "audio": True,
    "video": True,
    "sharing": False,
    "join_time": "2022.12.23 11:16:59 (GMT+08:00)",
    "leave_time": "2022.12.23 11:18:51 (GMT+08:00)",
    "time_in_meeting": "00:01:52",
    "leave_reason": "主持人结束会议",
    "accept_status": 1,
    "is_external": False,
    "webinar_user_role": "0",
}

NOW = 1_763_700_000  # a fixed "now" for validation tests


def _envelope(participant: dict[str, Any]) -> bytes:
    return msgspec.json.encode(
        {"code": 0, "msg": "success", "data": {"participants": [participant], "has_more": False}}
    )


# --- the 28 fields ---------------------------------------------------------------------


def test_participant_has_exactly_the_28_wire_fields() -> None:
    assert len(PARTICIPANT_FIELDS) == 28
    assert list(PARTICIPANT_FIELDS) == SPEC_FIELDS
    assert set(SPEC_EXAMPLE) == set(SPEC_FIELDS)


def test_spec_example_round_trips_all_28_fields() -> None:
    page = PARTICIPANT_LIST_DECODER.decode(_envelope(SPEC_EXAMPLE)).data
    assert page is not None
    (person,) = page.participants
    for name in SPEC_FIELDS:
        assert getattr(person, name) == SPEC_EXAMPLE[name], name
    # encode → decode gives the same struct and the same wire dict back
    assert msgspec.json.decode(JSON_ENCODER.encode(person), type=Participant) == person
    assert msgspec.json.decode(JSON_ENCODER.encode(person)) == SPEC_EXAMPLE


_text = st.text(max_size=30)
_FIELD_STRATEGY: dict[str, st.SearchStrategy[Any]] = {
    name: (
        st.booleans()
        if isinstance(SPEC_EXAMPLE[name], bool)
        else st.integers(-(2**31), 2**31)
        if isinstance(SPEC_EXAMPLE[name], int)
        else _text
    )
    for name in SPEC_FIELDS
}


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional=_FIELD_STRATEGY))
def test_any_subset_of_fields_round_trips(wire: dict[str, Any]) -> None:
    person = PARTICIPANT_LIST_DECODER.decode(_envelope(wire)).data.participants[0]  # type: ignore[union-attr]
    for name in SPEC_FIELDS:
        # missing fields decode to None, present ones to their value
        assert getattr(person, name) == wire.get(name), name
    again = msgspec.json.decode(JSON_ENCODER.encode(person), type=Participant)
    assert again == person
    assert msgspec.json.decode(JSON_ENCODER.encode(person)) == wire


def test_unknown_fields_are_ignored() -> None:
    wire = {**SPEC_EXAMPLE, "future_field": {"nested": [1, 2]}, "another": 3}
    body = msgspec.json.encode(
        {
            "code": 0,
            "msg": "success",
            "new_top_level": True,
            "data": {"participants": [wire], "has_more": False, "total": 9},
        }
    )
    page = PARTICIPANT_LIST_DECODER.decode(body).data
    assert page is not None
    assert page.participants[0].participant_name == "kehan"
    assert not hasattr(page.participants[0], "future_field")


def test_missing_fields_are_none() -> None:
    page = PARTICIPANT_LIST_DECODER.decode(_envelope({})).data
    assert page is not None
    person = page.participants[0]
    assert all(getattr(person, name) is None for name in SPEC_FIELDS)
    assert person.joined_at is None
    assert person.left_at is None
    assert person.duration is None
    assert person.acceptance is None
    assert person.webinar_role is None


def test_page_defaults_when_data_fields_are_missing() -> None:
    envelope = PARTICIPANT_LIST_DECODER.decode(b'{"code":0,"data":{}}')
    assert envelope.data is not None
    assert envelope.data.participants == []
    assert envelope.data.page_token is None
    assert envelope.data.has_more is False


def test_typed_views_of_the_spec_example() -> None:
    person = msgspec.convert(SPEC_EXAMPLE, Participant)
    tz8 = timezone(timedelta(hours=8))
    assert person.joined_at == datetime(2022, 12, 23, 11, 16, 59, tzinfo=tz8)
    assert person.left_at == datetime(2022, 12, 23, 11, 18, 51, tzinfo=tz8)
    assert person.duration == timedelta(minutes=1, seconds=52)
    assert person.acceptance is AcceptStatus.ACCEPTED
    assert person.webinar_role is WebinarRole.GUEST


@pytest.mark.parametrize("value", [5, 42, 0, -1, 2**40])
def test_accept_status_unknown_future_value_decodes(value: int) -> None:
    page = PARTICIPANT_LIST_DECODER.decode(_envelope({"accept_status": value})).data
    assert page is not None
    status = page.participants[0].acceptance
    assert status is not None
    assert int(status) == value
    assert status.name == f"UNKNOWN_{value}"
    assert isinstance(status, AcceptStatus)


@pytest.mark.parametrize(
    ("wire", "role"),
    [("0", WebinarRole.GUEST), ("3", WebinarRole.AUDIENCE), ("7", None), ("", None), (None, None)],
)
def test_webinar_role_view(wire: str | None, role: WebinarRole | None) -> None:
    assert Participant(webinar_user_role=wire).webinar_role is role


# --- time strings ----------------------------------------------------------------------

# Every offset the world uses and then some: -23:45 .. +23:45 in 15-minute steps
# (negative ones, half hours like +05:30, 45 minutes like +05:45 and +12:45).
_offsets = st.integers(min_value=-95, max_value=95).map(lambda q: timedelta(minutes=15 * q))
_datetimes = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)).map(
    lambda d: d.replace(microsecond=0)
)


@settings(max_examples=400, deadline=None)
@given(_datetimes, _offsets)
def test_feishu_time_round_trips_for_every_offset(naive: datetime, offset: timedelta) -> None:
    value = naive.replace(tzinfo=timezone(offset))
    text = format_feishu_time(value)
    parsed = parse_feishu_time(text)
    assert parsed == value
    assert parsed is not None
    assert parsed.utcoffset() == offset
    assert (parsed.hour, parsed.minute, parsed.second) == (naive.hour, naive.minute, naive.second)
    assert format_feishu_time(parsed) == text


@settings(max_examples=200, deadline=None)
@given(_datetimes, st.integers(min_value=-23, max_value=23), st.sampled_from([0, 30, 45]))
def test_feishu_time_accepts_unpadded_and_colonless_offsets(
    naive: datetime, hours: int, minutes: int
) -> None:
    sign = "-" if hours < 0 else "+"
    offset = timedelta(hours=abs(hours), minutes=minutes)
    expected = naive.replace(tzinfo=timezone(-offset if sign == "-" else offset))
    stamp = f"{naive:%Y.%m.%d %H:%M:%S}"
    for suffix in (f"{abs(hours)}:{minutes:02d}", f"{abs(hours):02d}{minutes:02d}"):
        assert parse_feishu_time(f"{stamp} (GMT{sign}{suffix})") == expected


def test_feishu_time_without_offset_is_utc() -> None:
    assert parse_feishu_time("2022.12.23 11:16:59 (GMT)") == datetime(
        2022, 12, 23, 11, 16, 59, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        " ",
        "garbage",
        "2022.12.23 11:16:59",
        "2022.12.23 11:16:59 (GMT+24:00)",
        "2022.12.23 11:16:59 (GMT+08:60)",
        "2022.12.23 11:16:59 (GMT+99:99)",
        "2022.13.23 11:16:59 (GMT+08:00)",
        "2022.02.30 11:16:59 (GMT+08:00)",
        "2022.12.23 25:16:59 (GMT+08:00)",
        "2022.12.23 11:16:60 (GMT+08:00)",
        "2022-12-23 11:16:59 (GMT+08:00)",
        "2022.12.23T11:16:59 (GMT+08:00)",
        "2022.12.23 11:16:59 (UTC+08:00)",
        "２０２２.12.23 11:16:59 (GMT+08:00)",
        "2022.12.23 11:16:59 (GMT+08:00) trailing",
        "2022.12.23 1116:59. (GMT+08:00)",
        "0000.12.23 11:16:59 (GMT+08:00)",
    ],
)
def test_malformed_feishu_times_are_none(text: str | None) -> None:
    assert parse_feishu_time(text) is None


_TEMPLATE = "2022.12.23 11:16:59 (GMT+08:00)"


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="0123456789.:+-() GMT", max_size=40),
        # one character of a valid string replaced: close to valid, still must not raise
        st.tuples(st.integers(0, len(_TEMPLATE) - 1), st.characters(codec="utf-8")).map(
            lambda p: _TEMPLATE[: p[0]] + p[1] + _TEMPLATE[p[0] + 1 :]
        ),
    )
)
def test_garbage_times_never_raise(text: str) -> None:
    parsed = parse_feishu_time(text)
    assert parsed is None or (isinstance(parsed, datetime) and parsed.tzinfo is not None)
    duration = parse_duration(text)
    assert duration is None or duration >= timedelta(0)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10_000 * 3600))
def test_durations_round_trip_including_hours_past_24(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:01:52", timedelta(minutes=1, seconds=52)),
        ("25:00:00", timedelta(hours=25)),
        ("123:59:59", timedelta(hours=123, minutes=59, seconds=59)),
        ("0:00:05", timedelta(seconds=5)),
        ("00:60:00", None),
        ("00:00:60", None),
        ("-1:00:00", None),
        ("1:2:3", None),
        ("", None),
        (None, None),
        ("abc", None),
        ("١٢:٠٠:٠٠", None),
    ],
)
def test_parse_duration_cases(text: str | None, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


# --- MeetingQuery validation -----------------------------------------------------------


def _query(**overrides: Any) -> MeetingQuery:
    fields: dict[str, Any] = {
        "meeting_no": "123456789",
        "meeting_start_time": NOW - 3600,
        "meeting_end_time": NOW - 60,
    }
    fields.update(overrides)
    return MeetingQuery(**fields)


def test_a_valid_query_validates_and_has_params() -> None:
    query = _query(user_id="ou_1", webinar_user_role="3", user_id_type="union_id")
    assert query.validate(now=NOW) is query
    assert query.meeting_status is MeetingStatus.ENDED
    assert query.user_id_type is UserIdType.UNION_ID
    assert query.to_params() == {
        "meeting_no": "123456789",
        "meeting_start_time": str(NOW - 3600),
        "meeting_end_time": str(NOW - 60),
        "meeting_status": "2",
        "user_id_type": "union_id",
        "user_id": "ou_1",
        "webinar_user_role": "3",
    }


def test_aware_datetimes_and_int_meeting_numbers_are_accepted() -> None:
    start = datetime.fromtimestamp(NOW - 600, tz=UTC)
    query = _query(meeting_no=123456789, meeting_start_time=start, meeting_end_time=NOW)
    assert query.meeting_no == "123456789"
    assert query.meeting_start_time == NOW - 600
    query.validate(now=NOW)


INVALID: list[tuple[str, dict[str, Any], str, object, int, str]] = [
    # (id, overrides, field, value, code, words of the rule)
    ("letters", {"meeting_no": "12345678a"}, "meeting_no", "12345678a", 126003, "digits"),
    ("negative", {"meeting_no": "-12345678"}, "meeting_no", "-12345678", 126003, "negative"),
    ("short", {"meeting_no": "12345678"}, "meeting_no", "12345678", 126004, "9"),
    ("long", {"meeting_no": "1234567890"}, "meeting_no", "1234567890", 126004, "9"),
    ("empty", {"meeting_no": ""}, "meeting_no", "", 126003, "digits"),
    (
        "start<0",
        {"meeting_start_time": -5, "meeting_end_time": 10},
        "meeting_start_time",
        -5,
        126005,
        "negative",
    ),
    (
        "start>now",
        {"meeting_start_time": NOW + 60, "meeting_end_time": NOW + 120},
        "meeting_start_time",
        NOW + 60,
        126005,
        "later than now",
    ),
    (
        "start not int",
        {"meeting_start_time": "1655276858"},
        "meeting_start_time",
        "1655276858",
        126005,
        "unix seconds",
    ),
    (
        "naive datetime",
        {"meeting_start_time": datetime(2025, 1, 1)},
        "meeting_start_time",
        datetime(2025, 1, 1),
        126005,
        "timezone-aware",
    ),
    (
        "end<start",
        {"meeting_end_time": NOW - 7200},
        "meeting_end_time",
        NOW - 7200,
        126006,
        "earlier",
    ),
    (
        "span>1day",
        {"meeting_start_time": NOW - 90_000, "meeting_end_time": NOW - 3000},
        "meeting_end_time",
        NOW - 3000,
        126006,
        "one day",
    ),
    (
        "end not int",
        {"meeting_end_time": 1.5},
        "meeting_end_time",
        1.5,
        126006,
        "unix seconds",
    ),
    (
        "user and room",
        {"user_id": "ou_1", "room_id": "omm_1"},
        "user_id/room_id",
        ("ou_1", "omm_1"),
        126007,
        "at most one",
    ),
    ("status", {"meeting_status": 9}, "meeting_status", 9, 121003, "one of"),
    ("role", {"webinar_user_role": "5"}, "webinar_user_role", "5", 121003, "one of"),
    ("id type", {"user_id_type": "email"}, "user_id_type", "email", 121003, "one of"),
    ("empty user", {"user_id": ""}, "user_id", "", 121003, "non-empty"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "value", "code", "rule"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_every_validation_rule_names_field_value_and_rule(
    overrides: dict[str, Any], field: str, value: object, code: int, rule: str
) -> None:
    query = _query(**overrides)  # construction never raises
    with pytest.raises(InvalidQueryError) as caught:
        query.validate(now=NOW)
    err = caught.value
    assert isinstance(err, ValueError)
    assert err.field == field
    assert err.value == value
    assert err.code == code
    assert rule in err.rule
    assert field in str(err)
    assert repr(value) in str(err)
    assert str(code) in str(err)


def test_a_span_of_exactly_one_day_is_allowed() -> None:
    _query(meeting_start_time=NOW - 86_400, meeting_end_time=NOW).validate(now=NOW)


def test_validate_uses_the_clock_by_default() -> None:
    future = int(time.time()) + 3600
    with pytest.raises(InvalidQueryError, match="later than now"):
        _query(meeting_start_time=future, meeting_end_time=future + 60).validate()


@pytest.mark.parametrize("size", [20, 50, 100])
def test_page_size_in_range(size: int) -> None:
    assert validate_page_size(size) == size


@pytest.mark.parametrize("size", [19, 0, -1, 101, 1000, "50", 50.0, True, None])
def test_page_size_out_of_range_names_field_value_and_rule(size: object) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        validate_page_size(size)
    err = caught.value
    assert (err.field, err.value, err.code) == ("page_size", size, 121003)
    assert "20" in err.rule
    assert "100" in err.rule
    assert "page_size" in str(err)
