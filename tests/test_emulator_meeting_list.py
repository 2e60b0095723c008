"""meeting_list on the emulator, driven by a plain aiohttp client over real sockets.

The emulator's wall clock is fixed (``WALL``), so its data and "now" are the same on
every run; participant_list is read with the library's VCClient.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import msgspec
import pytest

from feishu_vc_async import AppCredentials, Limits, VCClient
from feishu_vc_async._constants import (
    LOGID_HEADER,
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    RATELIMIT_LIMIT_HEADER,
)
from feishu_vc_async._timeparse import parse_feishu_time
from feishu_vc_async.emulator import (
    Clocks,
    DefaultApp,
    Emulator,
    Faults,
    ListedMeeting,
    MeetingData,
)
from feishu_vc_async.models import MeetingQuery, MeetingStatus
from feishu_vc_async.ratelimit import RateLimit

WALL = 1_780_000_000
EVERYTHING = (WALL - 40 * 86_400, WALL)  # every ended meeting starts in this range
YEAR = 365 * 86_400
# meeting_info's fields in the reference (reserved_rooms: upcoming meetings only).
SPEC_FIELDS = {
    "meeting_id", "meeting_topic", "meeting_type", "organizer", "department", "user_id",
    "employee_id", "email", "mobile", "meeting_start_time", "meeting_end_time",
    "meeting_duration", "number_of_participants", "number_of_devices", "audio", "video",
    "sharing", "recording", "telephone", "reserved_rooms", "has_related_document", "ai_note",
    "is_external", "meeting_subtype", "meeting_instance_id", "number_of_webinar_viewers",
}  # fmt: skip
FEISHU_TIME = re.compile(r"\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d \(GMT[+-]\d\d:\d\d\)")


class FakeClock:
    """A hand-driven clock: tests move time instead of waiting for it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _emulator(**overrides: Any) -> Emulator:
    settings: dict[str, Any] = {
        "meetings": 80,
        "seed": 3,
        "rate_limit": None,
        "meeting_list_rate_limit": None,
        "data": MeetingData(webinar_size=130),
        "clocks": Clocks(wall=FakeClock(WALL)),
    }
    settings.update(overrides)
    return Emulator(**settings)


@pytest.fixture
async def emu() -> Any:
    async with _emulator() as e:
        yield e


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def _get(
    session: aiohttp.ClientSession,
    emu: Emulator,
    params: dict[str, str],
    *,
    path: str = MEETING_LIST_PATH,
    token: str | None = None,
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token or emu.tenant_token()}"}
    async with session.get(emu.base_url + path, params=params, headers=headers) as r:
        return r.status, await r.json(), r.headers


def _range(start: int, end: int, **extra: str) -> dict[str, str]:
    return {"start_time": str(start), "end_time": str(end), **extra}


async def _pages(
    session: aiohttp.ClientSession, emu: Emulator, params: dict[str, str], token: str | None = None
) -> list[dict[str, Any]]:
    pages = []
    params = dict(params)
    while True:
        status, body, _ = await _get(session, emu, params, token=token)
        assert (status, body["code"]) == (200, 0), body
        pages.append(body["data"])
        if not body["data"]["has_more"]:
            return pages
        params["page_token"] = body["data"]["page_token"]


async def _listed(
    session: aiohttp.ClientSession, emu: Emulator, params: dict[str, str], token: str | None = None
) -> list[ListedMeeting]:
    pages = await _pages(session, emu, {"page_size": "100", **params}, token)
    return [msgspec.convert(item, ListedMeeting) for p in pages for item in p["meeting_list"]]


def _client(emu: Emulator) -> VCClient:
    return VCClient(
        AppCredentials(emu.app_id, emu.app_secret),
        base_url=emu.base_url,
        limits=Limits(participant_list=None),
    )


def _ids(items: list[ListedMeeting]) -> list[str | None]:
    return [m.meeting_instance_id for m in items]


def _unix(text: str | None) -> int | None:
    parsed = parse_feishu_time(text)
    return None if parsed is None else int(parsed.timestamp())


async def test_answer_shape_and_fields(emu: Emulator, session: Any) -> None:
    params = _range(*EVERYTHING, page_size="100", include_webinar="true")
    params["include_external_meetings"] = "true"
    status, body, headers = await _get(session, emu, params)
    assert (status, body["code"], body["msg"]) == (200, 0, "success")
    assert headers[LOGID_HEADER]
    assert set(body) == {"code", "msg", "data"}
    assert set(body["data"]) == {"meeting_list", "has_more"}  # last page: no page_token
    items = body["data"]["meeting_list"]
    assert len(items) == len(emu.meetings) == 80
    assert [msgspec.convert(x, ListedMeeting) for x in items] == emu.listed_meetings(
        *EVERYTHING, include_webinar=True, include_external=True
    )
    for item in items:
        assert set(item) <= SPEC_FIELDS
        assert {"reserved_rooms", "employee_id", "email", "mobile"}.isdisjoint(item)
        for name in ("number_of_participants", "number_of_devices"):
            assert isinstance(item[name], str)
            assert int(item[name]) >= 2
        assert re.fullmatch(r"\d{9}", item["meeting_id"])
        assert FEISHU_TIME.fullmatch(item["meeting_start_time"])
        assert FEISHU_TIME.fullmatch(item["meeting_end_time"])
        assert re.fullmatch(r"\d\d:[0-5]\d:[0-5]\d", item["meeting_duration"])
        assert item["user_id"].startswith("ou_")
        assert item["meeting_type"] in (2, 3)
        assert ("number_of_webinar_viewers" in item) == (item["meeting_subtype"] == 8)
    assert len({x["meeting_instance_id"] for x in items}) == 80
    starts = [_unix(x["meeting_start_time"]) for x in items]
    assert starts == sorted(starts)  # stable order: start time, then instance id
    # Times are to the second: the exact times participant_list matches.
    assert {
        (x["meeting_id"], _unix(x["meeting_start_time"]), _unix(x["meeting_end_time"]))
        for x in items
    } == {(q.meeting_no, q.meeting_start_time, q.meeting_end_time) for q in emu.meetings}


def _error_cases(emu: Emulator) -> list[tuple[str, dict[str, str], int, int]]:
    ok = _range(*EVERYTHING)
    no = emu.meetings[0].meeting_no
    return [
        ("missing start_time", {"end_time": str(WALL)}, 400, 121003),
        ("missing end_time", {"start_time": str(WALL - 60)}, 400, 121003),
        ("start not int", {**ok, "start_time": "yesterday"}, 400, 121003),
        ("end not int", {**ok, "end_time": "1.5"}, 400, 121003),
        ("status upcoming", {**ok, "meeting_status": "3"}, 400, 121003),
        ("status unknown", {**ok, "meeting_status": "0"}, 400, 121003),
        ("status not int", {**ok, "meeting_status": "ended"}, 400, 121003),
        ("meeting_type unknown", {**ok, "meeting_type": "4"}, 400, 121003),
        ("page_size small", {**ok, "page_size": "19"}, 400, 121003),
        ("page_size big", {**ok, "page_size": "101"}, 400, 121003),
        ("page_size not int", {**ok, "page_size": "twenty"}, 400, 121003),
        ("user_id_type", {**ok, "user_id_type": "email"}, 400, 121003),
        ("include_webinar", {**ok, "include_webinar": "yes"}, 400, 121003),
        ("include_external", {**ok, "include_external_meetings": "1"}, 400, 121003),
        ("garbage page_token", {**ok, "page_token": "20"}, 400, 121003),
        ("negative meeting_no", {**ok, "meeting_no": "-12345678"}, 400, 126003),
        ("letters meeting_no", {**ok, "meeting_no": "12345678a"}, 400, 126003),
        ("short meeting_no", {**ok, "meeting_no": "12345678"}, 400, 126004),
        ("long meeting_no", {**ok, "meeting_no": "1234567890"}, 400, 126004),
        ("start after now", _range(WALL + 1, WALL + 60), 400, 126005),
        ("start negative", _range(-1, WALL), 400, 126005),
        ("end before start", _range(WALL - 60, WALL - 61), 400, 126006),
        ("range over a year", _range(WALL - YEAR - 1, WALL), 400, 126006),
        ("meeting_no and user_id", {**ok, "meeting_no": no, "user_id": "ou_x"}, 400, 126008),
        ("user_id and room_id", {**ok, "user_id": "ou_x", "room_id": "omm_x"}, 400, 126008),
        ("room_id and type", {**ok, "room_id": "omm_x", "meeting_type": "2"}, 400, 126008),
        ("meeting_no and type 1", {**ok, "meeting_no": no, "meeting_type": "1"}, 400, 126008),
    ]


async def test_each_error_of_the_table(emu: Emulator, session: Any) -> None:
    for name, params, want_status, want_code in _error_cases(emu):
        status, body, headers = await _get(session, emu, params)
        assert (name, status, body["code"]) == (name, want_status, want_code)
        assert body["msg"], name
        assert body["error"]["log_id"] == headers[LOGID_HEADER], name
    assert emu.requests[-1].path == MEETING_LIST_PATH
    # The limits themselves are accepted: a year exactly, a range ending after now, an
    # empty filter value (counts as not given).
    for params in (
        _range(WALL - YEAR, WALL),
        _range(WALL - 60, WALL + 3600),
        _range(WALL - YEAR, WALL, meeting_no="", user_id="", meeting_type=""),
    ):
        status, body, _ = await _get(session, emu, params)
        assert (status, body["code"]) == (200, 0), params
    # The Python SDK sends str(True): booleans are read in any case.
    status, body, _ = await _get(session, emu, _range(*EVERYTHING, include_webinar="True"))
    assert (status, body["code"]) == (200, 0)
    with pytest.raises(ValueError, match="126006"):
        emu.listed_meetings(WALL - 60, WALL - 61)


async def test_denied_meeting_number_app_and_server_error(emu: Emulator, session: Any) -> None:
    denied = emu.meetings[1].meeting_no
    emu.deny_meeting(denied)
    status, body, _ = await _get(session, emu, _range(*EVERYTHING, meeting_no=denied))
    assert (status, body["code"], body["msg"]) == (403, 121005, "no permission")
    # Unfiltered, the denied meeting is still listed: participant_list refuses it.
    assert denied in {m.meeting_id for m in await _listed(session, emu, _range(*EVERYTHING))}
    app_id, _ = emu.add_app()
    emu.deny_app(app_id)
    token = emu.tenant_token(app_id)
    status, body, _ = await _get(session, emu, _range(*EVERYTHING), token=token)
    assert (status, body["code"]) == (403, 121005)
    status, body, _ = await _get(
        session, emu, emu.meetings[0].to_params(), path=PARTICIPANT_LIST_PATH, token=token
    )
    assert (status, body["code"]) == (403, 121005)
    async with _emulator(faults=Faults(error_rate=1.0)) as failing:
        status, body, _ = await _get(session, failing, _range(*EVERYTHING))
    assert (status, body["code"], body["msg"]) == (500, 121001, "internal error")


async def test_other_faults_hit_meeting_list_too(session: Any) -> None:
    for faults, want in (
        (Faults(html_rate=1.0), 502),
        (Faults(truncate_rate=1.0), 200),
    ):
        async with _emulator(faults=faults) as emu:
            headers = {"Authorization": f"Bearer {emu.tenant_token()}"}
            async with session.get(
                emu.base_url + MEETING_LIST_PATH, params=_range(*EVERYTHING), headers=headers
            ) as r:
                raw = await r.read()
                assert r.status == want
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(raw)
            assert emu.requests[-1].fault is not None
    async with _emulator(faults=Faults(reset_rate=1.0)) as emu:
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
            await _get(session, emu, _range(*EVERYTHING))


async def test_paging_with_opaque_tokens(emu: Emulator, session: Any) -> None:
    params = _range(*EVERYTHING, include_webinar="true", include_external_meetings="true")
    pages = await _pages(session, emu, params)
    assert [len(p["meeting_list"]) for p in pages] == [20, 20, 20, 20]  # default page_size
    assert all(p["has_more"] and p["page_token"] for p in pages[:-1])
    assert "page_token" not in pages[-1]
    got = [msgspec.convert(x, ListedMeeting) for p in pages for x in p["meeting_list"]]
    truth = emu.listed_meetings(*EVERYTHING, include_webinar=True, include_external=True)
    assert got == truth
    tokens = [p["page_token"] for p in pages[:-1]]
    assert len(set(tokens)) == 3
    assert not any(t.isdigit() for t in tokens)
    token = tokens[0]
    # Bound to the query: another flag, another range, another id type → 121003.
    for changed in (
        {**params, "include_webinar": "false"},
        {**params, "end_time": str(WALL - 1)},
        {**params, "user_id_type": "union_id"},
    ):
        status, body, _ = await _get(session, emu, {**changed, "page_token": token})
        assert (status, body["code"]) == (400, 121003), changed
    # Not bound to page_size.
    status, body, _ = await _get(session, emu, {**params, "page_token": token, "page_size": "50"})
    assert (status, body["code"], len(body["data"]["meeting_list"])) == (200, 0, 50)
    assert _ids([msgspec.convert(x, ListedMeeting) for x in body["data"]["meeting_list"]]) == _ids(
        truth[20:70]
    )
    # Tokens of one API mean nothing to the other.
    webinar = emu.webinars[0]
    _, body, _ = await _get(session, emu, webinar.to_params(), path=PARTICIPANT_LIST_PATH)
    foreign = body["data"]["page_token"]
    status, body, _ = await _get(session, emu, {**params, "page_token": foreign})
    assert (status, body["code"]) == (400, 121003)
    status, body, _ = await _get(
        session, emu, {**webinar.to_params(), "page_token": token}, path=PARTICIPANT_LIST_PATH
    )
    assert (status, body["code"]) == (400, 121003)
    # An empty range: an empty list, no token.
    status, body, _ = await _get(session, emu, _range(WALL - 60, WALL - 60))
    assert body["data"] == {"meeting_list": [], "has_more": False}


async def test_webinars_and_external_meetings_only_when_asked(emu: Emulator, session: Any) -> None:
    plain = await _listed(session, emu, _range(*EVERYTHING))
    webinar = await _listed(session, emu, _range(*EVERYTHING, include_webinar="true"))
    external = await _listed(session, emu, _range(*EVERYTHING, include_external_meetings="true"))
    assert not any(m.meeting_subtype == 8 or m.is_external for m in plain)
    added = [m for m in webinar if m not in plain]
    assert [m.meeting_id for m in added] == [w.meeting_no for w in emu.webinars]
    assert added[0].meeting_subtype == 8
    assert added[0].number_of_webinar_viewers == str(
        sum(p.webinar_user_role == "3" for p in emu.participants(emu.webinars[0]))
    )
    outside = [m for m in external if m not in plain]
    assert len(outside) == 80 // 20
    assert all(m.is_external and m.department == "外部联系人" for m in outside)
    assert len(plain) == 80 - 1 - len(outside)


async def test_filters(emu: Emulator, session: Any) -> None:
    everything = {"include_webinar": "true", "include_external_meetings": "true"}
    # meeting_no: a personal meeting number lists each meeting that held it, in order.
    numbers = [q.meeting_no for q in emu.meetings]
    recurring = next(n for n in numbers if numbers.count(n) > 1)
    got = await _listed(session, emu, _range(*EVERYTHING, meeting_no=recurring, **everything))
    held = sorted(
        (q for q in emu.meetings if q.meeting_no == recurring), key=lambda q: q.meeting_start_time
    )
    assert [(m.meeting_id, _unix(m.meeting_start_time)) for m in got] == [
        (q.meeting_no, q.meeting_start_time) for q in held
    ]
    assert len({m.organizer for m in got}) == 1  # a personal number has one owner
    with pytest.raises(ValueError, match="held by"):
        emu.participants(recurring)
    # meeting_type: 1 is all, 2 video meetings, 3 local screen share.
    by_type = {
        t: await _listed(session, emu, _range(*EVERYTHING, meeting_type=t, **everything))
        for t in ("1", "2", "3")
    }
    assert len(by_type["1"]) == 80
    assert by_type["3"]
    assert all(m.meeting_type == 3 for m in by_type["3"])
    assert all(m.meeting_type == 2 for m in by_type["2"])
    assert sorted(_ids(by_type["2"] + by_type["3"])) == sorted(_ids(by_type["1"]))
    # user_id and room_id: exactly the meetings whose participants include them.
    truth = {_key(q): emu.participants(q) for q in emu.meetings}
    person = truth[_key(emu.meetings[5])][3]
    room = next(p for rows in truth.values() for p in rows if p.meeting_room_id)
    for params, attending in (
        ({"user_id": person.user_id or ""}, lambda p: p.user_id == person.user_id),
        (
            {"room_id": room.meeting_room_id or ""},
            lambda p: p.meeting_room_id == room.meeting_room_id,
        ),
    ):
        got = await _listed(session, emu, _range(*EVERYTHING, **params, **everything))
        want = {k for k, rows in truth.items() if any(map(attending, rows))}
        assert {m.meeting_id + str(_unix(m.meeting_start_time)) for m in got} == want
        assert got
    assert await _listed(session, emu, _range(*EVERYTHING, user_id="ou_nobody")) == []


def _key(q: MeetingQuery) -> str:
    return q.meeting_no + str(q.meeting_start_time)


async def test_number_of_participants_is_what_participant_list_returns(
    emu: Emulator, session: Any
) -> None:
    everything = _range(*EVERYTHING, include_webinar="true", include_external_meetings="true")
    listed = {
        (m.meeting_id, _unix(m.meeting_start_time)): m
        for m in await _listed(session, emu, everything)
    }
    webinar = emu.webinars[0]
    queries = [webinar, *emu.meetings[:12]]
    async with _client(emu) as client:
        for q in queries:
            item = listed[(q.meeting_no, q.meeting_start_time)]
            rows = [p async for p in client.participants(q)]
            assert item.number_of_participants == str(len(rows)), q
            assert int(item.number_of_devices or 0) >= len(rows)
            # The organizer is the host: the first to join.
            assert (item.organizer, item.user_id) == (rows[0].participant_name, rows[0].user_id)
            assert item.meeting_start_time == rows[0].join_time
    item = listed[(webinar.meeting_no, webinar.meeting_start_time)]
    assert item.number_of_participants == "130"
    assert item.number_of_webinar_viewers == str(130 - 130 // 40)


async def test_participant_list_matches_times_to_the_second(emu: Emulator, session: Any) -> None:
    q = emu.meetings[0]
    status, body, _ = await _get(session, emu, q.to_params(), path=PARTICIPANT_LIST_PATH)
    assert (status, body["code"]) == (200, 0)
    for start, end in (
        (q.meeting_start_time - 1, q.meeting_end_time),
        (q.meeting_start_time + 1, q.meeting_end_time),
        (q.meeting_start_time, q.meeting_end_time - 1),
        (q.meeting_start_time, q.meeting_end_time + 1),
    ):
        off = msgspec.structs.replace(q, meeting_start_time=start, meeting_end_time=end)
        status, body, _ = await _get(session, emu, off.to_params(), path=PARTICIPANT_LIST_PATH)
        assert (status, body["code"]) == (400, 126009), (start, end)


async def test_ongoing_meeting_listed_with_status_1_and_readable(
    emu: Emulator, session: Any
) -> None:
    [ongoing] = emu.ongoing
    assert ongoing.meeting_status == MeetingStatus.ONGOING
    assert ongoing.meeting_start_time < WALL
    ended = await _listed(session, emu, _range(WALL - 86_400, WALL))
    assert ongoing.meeting_no not in {m.meeting_id for m in ended}
    status_1 = await _listed(session, emu, _range(WALL - 86_400, WALL, meeting_status="1"))
    assert [m.meeting_id for m in status_1] == [ongoing.meeting_no]
    [item] = status_1
    assert item.meeting_end_time is None
    assert _unix(item.meeting_start_time) == ongoing.meeting_start_time
    assert status_1 == emu.listed_meetings(WALL - 86_400, WALL, status=1)
    # participant_list: status 1, the exact start, "now" as the end.
    now = msgspec.structs.replace(ongoing, meeting_end_time=WALL)
    async with _client(emu) as client:
        rows = [p async for p in client.participants(now)]
    assert item.number_of_participants == str(len(rows))
    assert rows == emu.participants(ongoing)
    assert any(p.leave_time is None and p.leave_reason is None for p in rows)  # still in
    assert rows[0].leave_time is None  # the organizer is still there
    for p in rows:
        joined = p.joined_at
        assert joined is not None
        assert ongoing.meeting_start_time <= joined.timestamp() <= WALL
    # An end from the start up to a minute past now is accepted; beyond, or status 2: 126009.
    for end, status, want in (
        (ongoing.meeting_start_time, 1, (200, 0)),
        (WALL + 60, 1, (200, 0)),
        (WALL + 61, 1, (400, 126009)),
        (WALL, 2, (400, 126009)),
    ):
        q = msgspec.structs.replace(ongoing, meeting_end_time=end, meeting_status=status)
        got, body, _ = await _get(session, emu, q.to_params(), path=PARTICIPANT_LIST_PATH)
        assert (got, body["code"]) == want, (end, status)
    # And an ended meeting asked for as ongoing is not found.
    q = msgspec.structs.replace(emu.meetings[0], meeting_status=MeetingStatus.ONGOING)
    status, body, _ = await _get(session, emu, q.to_params(), path=PARTICIPANT_LIST_PATH)
    assert (status, body["code"]) == (400, 126009)


async def test_listing_rules_at_a_boundary(session: Any) -> None:
    async with (
        _emulator(meeting_listing="start") as by_start,
        _emulator(meeting_listing="overlap") as by_overlap,
    ):
        assert by_start.meetings == by_overlap.meetings
        middle = by_start.listed_meetings(*EVERYTHING)[40]
        m = by_start.meeting_info(middle.meeting_id or "", _unix(middle.meeting_start_time))
        start, end, instance = m.start, m.end, m.instance_id
        for rng, in_start, in_overlap in (
            ((start - 3600, start), True, True),  # the bounds are inclusive
            ((start + 1, end + 3600), False, True),  # straddles the range's start
            ((end, end + 3600), False, True),
            ((start - 3600, start - 1), False, False),
            ((end + 1, end + 3600), False, False),
        ):
            for emu, want in ((by_start, in_start), (by_overlap, in_overlap)):
                got = await _listed(session, emu, _range(*rng))
                assert got == emu.listed_meetings(*rng)
                assert (instance in _ids(got)) == want, (emu.meeting_listing, rng)
        # Splitting a range into windows: "start" lists each meeting once; "overlap" lists
        # the straddling one in both, so an export deduplicates on the meeting's identity.
        whole = (start - 86_400, end + 86_400)
        windows = [(whole[0], start + 1), (start + 2, whole[1])]
        for emu, copies in ((by_start, 1), (by_overlap, 2)):
            parts = [x for w in windows for x in await _listed(session, emu, _range(*w))]
            assert _ids(parts).count(instance) == copies
            assert {x.meeting_instance_id for x in parts} == set(_ids(emu.listed_meetings(*whole)))
    with pytest.raises(ValueError, match="meeting_listing"):
        Emulator(meeting_listing="middle")  # type: ignore[arg-type]


async def test_organizer_ids_follow_user_id_type_and_permission(session: Any) -> None:
    async with _emulator(app=DefaultApp(user_id_permission=True)) as emu:
        rng = _range(*EVERYTHING, page_size="100")
        full = await _listed(session, emu, {**rng, "user_id_type": "user_id"})
        internal = [m for m in full if not m.is_external]
        assert all(m.employee_id and m.email and m.mobile for m in internal)
        assert all(m.user_id and not m.user_id.startswith(("ou_", "on_")) for m in full)
        union = await _listed(session, emu, {**rng, "user_id_type": "union_id"})
        assert all(m.user_id and m.user_id.startswith("on_") for m in union)
        # An app without the scope: no employee_id, email, mobile, nor tenant user ids.
        app_id, _ = emu.add_app()
        token = emu.tenant_token(app_id)
        bare = await _listed(session, emu, {**rng, "user_id_type": "user_id"}, token)
        assert all(m.user_id is None and m.employee_id is None and m.mobile is None for m in bare)
        assert bare == emu.listed_meetings(*EVERYTHING, user_id_type="user_id", app_id=app_id)
        assert [m.organizer for m in bare] == [m.organizer for m in full]


async def test_meeting_list_has_its_own_gateway_bucket(session: Any) -> None:
    mono = FakeClock(0.0)
    async with _emulator(
        rate_limit=RateLimit(3, 60.0),
        meeting_list_rate_limit=RateLimit(2, 60.0),
        clocks=Clocks(wall=FakeClock(WALL), monotonic=mono),
    ) as emu:
        q = emu.meetings[0].to_params()
        rng = _range(*EVERYTHING)
        statuses = [(await _get(session, emu, q, path=PARTICIPANT_LIST_PATH))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # participant_list's bucket is exhausted; meeting_list's is untouched, then its own.
        assert [(await _get(session, emu, rng))[0] for _ in range(2)] == [200, 200]
        status, body, headers = await _get(session, emu, rng)
        assert (status, body["code"], headers[RATELIMIT_LIMIT_HEADER]) == (429, 99991400, "2")
        mono.now = 60.0
        assert (await _get(session, emu, q, path=PARTICIPANT_LIST_PATH))[0] == 200
        assert (await _get(session, emu, rng))[0] == 200
        assert emu.max_in_window(60.0, path=MEETING_LIST_PATH) == 3
        assert emu.max_in_window(60.0, path=MEETING_LIST_PATH, admitted_only=True) == 2
        assert emu.max_in_window(60.0) == 4  # participant_list's, as before
        # A forced window can hit one API alone, or both.
        emu.force_rate_limit(5.0, path=MEETING_LIST_PATH)
        assert (await _get(session, emu, rng))[0] == 429
        assert (await _get(session, emu, q, path=PARTICIPANT_LIST_PATH))[0] == 200
        mono.now = 120.0
        emu.force_rate_limit(5.0)
        assert (await _get(session, emu, rng))[0] == 429
        assert (await _get(session, emu, q, path=PARTICIPANT_LIST_PATH))[0] == 429
        with pytest.raises(ValueError, match="not a VC data API"):
            emu.force_rate_limit(1.0, path="/open-apis/other")
    async with _emulator(rate_limit=RateLimit(1, 60.0), meeting_list_rate_limit=None) as emu:
        assert [(await _get(session, emu, _range(*EVERYTHING)))[0] for _ in range(5)] == [200] * 5


async def test_recurring_numbers_in_the_ground_truth(emu: Emulator, session: Any) -> None:
    numbers = [q.meeting_no for q in emu.meetings]
    recurring = [q for q in emu.meetings if numbers.count(q.meeting_no) > 1]
    assert recurring
    for q in recurring:
        info = emu.meeting_info(q)
        assert (info.meeting_no, info.start, info.end) == (
            q.meeting_no,
            q.meeting_start_time,
            q.meeting_end_time,
        )
        assert emu.meeting_info(q.meeting_no, q.meeting_start_time) == info
        assert len(emu.participants(q)) == info.participant_count
    with pytest.raises(ValueError, match="held by"):
        emu.meeting_info(recurring[0].meeting_no)
    with pytest.raises(KeyError):
        emu.meeting_info(recurring[0].meeting_no, recurring[0].meeting_start_time + 1)
    single = next(q for q in emu.meetings if numbers.count(q.meeting_no) == 1)
    assert emu.participants(single.meeting_no) == emu.participants(single)
    # Denying one meeting by its query leaves the others with its number alone.
    first, second = [q for q in recurring if q.meeting_no == recurring[0].meeting_no][:2]
    emu.deny_meeting(first)

    async def codes() -> list[int]:
        return [
            (await _get(session, emu, q.to_params(), path=PARTICIPANT_LIST_PATH))[1]["code"]
            for q in (first, second)
        ]

    assert await codes() == [121005, 0]
    emu.purge_meeting(second)
    assert await codes() == [121005, 121004]
