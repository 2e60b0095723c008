"""The meeting_list models without a network: decoding, typed views, the query's rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from feishu_vc_async import (
    InvalidQueryError,
    Meeting,
    MeetingListQuery,
    MeetingStatus,
    MeetingSubtype,
    MeetingType,
)
from feishu_vc_async.meetings import MEETING_LIST_DECODER

NOW = 1_780_000_000
DAY = 86_400
YEAR = 365 * DAY

ITEM = {
    "meeting_id": "123456789",
    "meeting_topic": "周会",
    "meeting_type": 2,
    "organizer": "张三",
    "department": "研发",
    "user_id": "ou_1",
    "meeting_start_time": "2022.12.23 11:16:59 (GMT+08:00)",
    "meeting_end_time": "2022.12.23 12:16:59 (GMT+08:00)",
    "meeting_duration": "01:00:00",
    "number_of_participants": "42",
    "number_of_devices": "45",
    "audio": True,
    "reserved_rooms": [{"room_id": "omm_1", "room_name": "A"}],
    "meeting_subtype": 8,
    "meeting_instance_id": "7123456789012345678",
    "number_of_webinar_viewers": "40",
    "a_field_of_tomorrow": {"nested": [1, 2]},
}


def _decode(items: list[dict[str, object]]) -> list[Meeting]:
    body = {"code": 0, "msg": "success", "data": {"meeting_list": items, "has_more": False}}
    return MEETING_LIST_DECODER.decode(msgspec.json.encode(body)).value().meeting_list


def test_every_field_under_its_wire_name_and_the_typed_views() -> None:
    (meeting,) = _decode([ITEM])
    shown_in = timezone(timedelta(hours=8))
    assert meeting.started_at == datetime(2022, 12, 23, 11, 16, 59, tzinfo=shown_in)
    assert meeting.ended_at == datetime(2022, 12, 23, 12, 16, 59, tzinfo=shown_in)
    assert meeting.start_seconds == 1671765419
    assert meeting.duration == timedelta(hours=1)
    assert (meeting.participant_count, meeting.device_count) == (42, 45)
    assert meeting.webinar_viewer_count == 40
    assert meeting.kind is MeetingType.VIDEO_MEETING
    assert meeting.subkind is MeetingSubtype.WEBINAR
    assert meeting.reserved_rooms is not None
    assert meeting.reserved_rooms[0].room_name == "A"
    assert meeting.key == "123456789@1671765419"
    assert not meeting.ongoing
    # Every field of the reference is a field of the struct, under the same name.
    assert set(ITEM) - {"a_field_of_tomorrow"} <= set(Meeting.__struct_fields__)


def test_unknown_and_missing_values_load() -> None:
    odd_values = {"meeting_type": 9, "meeting_subtype": 42, "number_of_participants": "many"}
    (sparse, odd) = _decode([{}, odd_values])
    assert sparse == Meeting()
    assert sparse.started_at is None
    assert sparse.participant_count is None
    assert odd.kind is not None
    assert odd.kind.value == 9
    assert odd.kind.name == "UNKNOWN_9"
    assert odd.subkind is not None
    assert odd.subkind.name == "UNKNOWN_42"
    assert odd.participant_count is None
    with pytest.raises(ValueError, match="cannot be identified"):
        _ = sparse.key


def test_query_reads_the_exact_seconds_and_an_ongoing_meeting_ends_now() -> None:
    (ended, ongoing) = _decode([ITEM, {**ITEM, "meeting_end_time": None}])
    query = ended.query()
    assert (query.meeting_no, query.meeting_start_time, query.meeting_end_time) == (
        "123456789",
        1671765419,
        1671769019,
    )
    assert query.meeting_status is MeetingStatus.ENDED
    query.validate()
    assert ongoing.ongoing
    live = ongoing.query(now=1671766000)
    assert (live.meeting_end_time, live.meeting_status) == (1671766000, MeetingStatus.ONGOING)


def _query(**changes: object) -> MeetingListQuery:
    base: dict[str, object] = {"start_time": NOW - 30 * DAY, "end_time": NOW - DAY}
    base.update(changes)
    return MeetingListQuery(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"start_time": -1}, "start_time", 126005),
        ({"start_time": NOW + 60, "end_time": NOW + 120}, "start_time", 126005),
        ({"end_time": NOW - 31 * DAY}, "end_time", 126006),
        ({"start_time": NOW - YEAR - DAY, "end_time": NOW}, "end_time", 126006),
        ({"start_time": "yesterday"}, "start_time", 126005),
        ({"meeting_no": "12345"}, "meeting_no", 126004),
        ({"meeting_no": "-12345678"}, "meeting_no", 126003),
        ({"meeting_no": "123456789", "user_id": "ou_1"}, "meeting_no/user_id", 126008),
        ({"room_id": "omm_1", "meeting_type": MeetingType.ALL}, "room_id/meeting_type", 126008),
        ({"meeting_status": 3}, "meeting_status", 121003),
        ({"meeting_status": 7}, "meeting_status", 121003),
        ({"meeting_type": 4}, "meeting_type", 121003),
        ({"user_id": ""}, "user_id", 121003),
        ({"include_webinar": "yes"}, "include_webinar", 121003),
    ],
)
def test_the_servers_rules_are_checked_before_any_request(
    changes: dict[str, object], field: str, code: int
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        _query(**changes).validate(now=NOW)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert field.split("/")[0] in str(caught.value)


def test_a_longer_range_is_for_the_iterator_which_cuts_it_into_windows() -> None:
    long = _query(start_time=NOW - 3 * YEAR, end_time=NOW)
    long.validate(now=NOW, whole_range=True)
    windows = long.windows()
    assert len(windows) == 3
    assert windows[0].start_time == long.start_time
    assert windows[-1].end_time == long.end_time
    for before, after in itertools.pairwise(windows):
        assert before.end_time == after.start_time  # shared boundary: nothing falls between
        assert before.end_time - before.start_time == YEAR
    for window in windows:
        window.validate(now=NOW)
    assert _query(start_time=NOW - 10, end_time=NOW - 10).windows(5) == [
        _query(start_time=NOW - 10, end_time=NOW - 10)
    ]


def test_aware_datetimes_become_unix_seconds_and_params_are_the_wire_names() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    query = MeetingListQuery(
        start_time=start,  # type: ignore[arg-type]
        end_time=start + timedelta(days=7),  # type: ignore[arg-type]
        meeting_status=1,  # type: ignore[arg-type]
        meeting_type=3,  # type: ignore[arg-type]
        include_webinar=True,
    )
    assert query.meeting_status is MeetingStatus.ONGOING
    assert query.meeting_type is MeetingType.LOCAL_SCREEN_SHARE
    assert query.to_params() == {
        "start_time": "1777593600",
        "end_time": "1778198400",
        "meeting_status": "1",
        "user_id_type": "open_id",
        "meeting_type": "3",
        "include_webinar": "true",
    }
