"""participant_list on the emulator, driven by a plain aiohttp client over real sockets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import msgspec
import pytest

from feishu_vc_async._constants import LOGID_HEADER, PARTICIPANT_LIST_PATH
from feishu_vc_async.emulator import Emulator, Faults, MeetingData
from feishu_vc_async.models import PARTICIPANT_LIST_DECODER, MeetingQuery, Participant
from tests._scripted_server import until


async def _get(
    session: aiohttp.ClientSession, emu: Emulator, params: dict[str, str], token: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token or emu.tenant_token()}"}
    async with session.get(
        emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
    ) as r:
        body = await r.json()
        return r.status, body, r.headers


def _params(query: MeetingQuery, **extra: str) -> dict[str, str]:
    params = query.to_params()
    params.update(extra)
    return params


def _normal(emu: Emulator) -> MeetingQuery:
    """A regular (non-webinar) meeting with at least 25 participants and a room."""
    for q in emu.meetings:
        info = emu.meeting_info(q)
        rows = emu.participants(q)
        if not info.webinar and len(rows) >= 25 and any(p.meeting_room_id for p in rows):
            return q
    raise AssertionError("no suitable meeting in the data")


@pytest.fixture
async def emu() -> Any:
    async with Emulator(
        meetings=120, seed=3, rate_limit=None, data=MeetingData(webinar_size=3000)
    ) as e:
        yield e


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_success_body_matches_the_reference_shape(emu: Emulator, session: Any) -> None:
    q = emu.meetings[0]
    status, body, headers = await _get(session, emu, _params(q, page_size="100"))
    assert status == 200
    assert body["code"] == 0
    assert body["msg"] == "success"
    assert headers[LOGID_HEADER]
    assert body["data"]["has_more"] is False
    assert "page_token" not in body["data"]
    decoded = PARTICIPANT_LIST_DECODER.decode(msgspec.json.encode(body))
    assert decoded.data is not None
    assert decoded.data.participants == emu.participants(q)


def _error_cases(emu: Emulator) -> list[tuple[str, dict[str, str], int, int]]:
    q = _normal(emu)
    webinar = emu.webinars[0]
    p = q.to_params()
    now = int(time.time())
    no_no = {k: v for k, v in p.items() if k != "meeting_no"}
    no_start = {k: v for k, v in p.items() if k != "meeting_start_time"}
    no_end = {k: v for k, v in p.items() if k != "meeting_end_time"}
    unknown = (
        "999999999" if "999999999" not in {m.meeting_no for m in emu.meetings} else "100000001"
    )
    return [
        ("missing meeting_no", no_no, 400, 121003),
        ("missing start", no_start, 400, 121003),
        ("missing end", no_end, 400, 121003),
        ("start not int", {**p, "meeting_start_time": "yesterday"}, 400, 121003),
        ("status not int", {**p, "meeting_status": "ended"}, 400, 121003),
        ("status unknown", {**p, "meeting_status": "7"}, 400, 121003),
        ("page_size small", {**p, "page_size": "19"}, 400, 121003),
        ("page_size big", {**p, "page_size": "101"}, 400, 121003),
        ("page_size not int", {**p, "page_size": "50.5"}, 400, 121003),
        ("user_id_type", {**p, "user_id_type": "email"}, 400, 121003),
        ("webinar role", {**p, "webinar_user_role": "1"}, 400, 121003),
        ("garbage page_token", {**p, "page_token": "20"}, 400, 121003),
        ("negative meeting_no", {**p, "meeting_no": "-12345678"}, 400, 126003),
        ("letters meeting_no", {**p, "meeting_no": "12345678a"}, 400, 126003),
        ("short meeting_no", {**p, "meeting_no": "12345678"}, 400, 126004),
        ("long meeting_no", {**p, "meeting_no": "1234567890"}, 400, 126004),
        (
            "start in future",
            {**p, "meeting_start_time": str(now + 3600), "meeting_end_time": str(now + 7200)},
            400,
            126005,
        ),
        ("start negative", {**p, "meeting_start_time": "-5"}, 400, 126005),
        ("end before start", {**p, "meeting_end_time": str(q.meeting_start_time - 1)}, 400, 126006),
        (
            "end after a day",
            {**p, "meeting_end_time": str(q.meeting_start_time + 86_401)},
            400,
            126006,
        ),
        ("user and room", {**p, "user_id": "ou_x", "room_id": "omm_x"}, 400, 126007),
        ("unknown meeting", {**p, "meeting_no": unknown}, 400, 126009),
        # Times match to the second: one second off either way is another meeting.
        (
            "start a second early",
            {**p, "meeting_start_time": str(q.meeting_start_time - 1)},
            400,
            126009,
        ),
        (
            "start a second late",
            {**p, "meeting_start_time": str(q.meeting_start_time + 1)},
            400,
            126009,
        ),
        ("end a second early", {**p, "meeting_end_time": str(q.meeting_end_time - 1)}, 400, 126009),
        ("end a second late", {**p, "meeting_end_time": str(q.meeting_end_time + 1)}, 400, 126009),
        ("ongoing status", {**p, "meeting_status": "1"}, 400, 126009),
        ("room on webinar", {**webinar.to_params(), "room_id": "omm_x"}, 400, 126015),
        ("webinar role on meeting", {**p, "webinar_user_role": "0"}, 400, 121002),
    ]


async def test_each_error_of_the_table(emu: Emulator, session: Any) -> None:
    for name, params, want_status, want_code in _error_cases(emu):
        status, body, headers = await _get(session, emu, params)
        assert (name, status, body["code"]) == (name, want_status, want_code)
        assert body["msg"], name
        assert body["error"]["log_id"] == headers[LOGID_HEADER], name
    codes = {r.code for r in emu.requests}
    assert codes >= {121003, 126003, 126004, 126005, 126006, 126007, 126009, 126015, 121002}


async def test_purged_and_denied_meetings(emu: Emulator, session: Any) -> None:
    purged, denied, other = emu.meetings[1], emu.meetings[2], emu.meetings[3]
    emu.purge_meeting(purged.meeting_no)
    emu.deny_meeting(denied.meeting_no)
    status, body, _ = await _get(session, emu, purged.to_params())
    assert (status, body["code"], body["msg"]) == (404, 121004, "data not exist")
    status, body, _ = await _get(session, emu, denied.to_params())
    assert (status, body["code"], body["msg"]) == (403, 121005, "no permission")
    status, body, _ = await _get(session, emu, other.to_params())
    assert (status, body["code"]) == (200, 0)


async def test_internal_error_fault_is_121001_with_http_500() -> None:
    async with (
        Emulator(meetings=5, seed=1, faults=Faults(error_rate=1.0)) as emu,
        aiohttp.ClientSession() as session,
    ):
        status, body, headers = await _get(session, emu, emu.meetings[0].to_params())
    assert (status, body["code"], body["msg"]) == (500, 121001, "internal error")
    assert body["error"]["log_id"] == headers[LOGID_HEADER]


async def _all_pages(
    session: aiohttp.ClientSession, emu: Emulator, params: dict[str, str]
) -> list[dict[str, Any]]:
    pages = []
    params = dict(params)
    while True:
        status, body, _ = await _get(session, emu, params)
        assert status == 200, body
        pages.append(body["data"])
        if not body["data"]["has_more"]:
            return pages
        params["page_token"] = body["data"]["page_token"]


async def test_paging_a_3000_participant_webinar_yields_each_once(
    emu: Emulator, session: Any
) -> None:
    webinar = emu.webinars[0]
    truth = emu.participants(webinar)
    assert len(truth) == 3000
    pages = await _all_pages(session, emu, _params(webinar, page_size="100"))
    assert len(pages) == 30
    assert all(p["has_more"] and p["page_token"] for p in pages[:-1])
    assert "page_token" not in pages[-1]
    assert not pages[-1]["has_more"]
    got = [msgspec.convert(x, Participant) for p in pages for x in p["participants"]]
    assert got == truth
    ids = [p.user_id for p in got]
    assert len(set(ids)) == 3000
    assert all(i is not None and i.startswith("ou_") for i in ids)
    tokens = [p["page_token"] for p in pages[:-1]]
    assert len(set(tokens)) == len(tokens)
    assert not any(t.isdigit() for t in tokens)  # opaque, not an offset


async def test_default_page_size_is_20(emu: Emulator, session: Any) -> None:
    q = _normal(emu)
    total = len(emu.participants(q))
    pages = await _all_pages(session, emu, q.to_params())
    assert [len(p["participants"]) for p in pages[:-1]] == [20] * (len(pages) - 1)
    assert sum(len(p["participants"]) for p in pages) == total


async def test_page_token_of_another_meeting_is_refused(emu: Emulator, session: Any) -> None:
    webinar = emu.webinars[0]
    _, body, _ = await _get(session, emu, webinar.to_params())
    token = body["data"]["page_token"]
    other = _normal(emu)
    status, body, _ = await _get(session, emu, _params(other, page_token=token))
    assert (status, body["code"]) == (400, 121003)
    # Same meeting, other filter: the token is bound to the filters as well.
    status, body, _ = await _get(
        session, emu, _params(webinar, page_token=token, webinar_user_role="3")
    )
    assert (status, body["code"]) == (400, 121003)
    # Same query with a different page size: accepted.
    status, body, _ = await _get(session, emu, _params(webinar, page_token=token, page_size="50"))
    assert (status, body["code"], len(body["data"]["participants"])) == (200, 0, 50)


async def test_user_room_and_role_filters(emu: Emulator, session: Any) -> None:
    q = _normal(emu)
    rows = emu.participants(q)
    person = next(p for p in rows if p.user_id)
    room = next(p for p in rows if p.meeting_room_id)
    _, body, _ = await _get(session, emu, _params(q, user_id=person.user_id or ""))
    assert [x["user_id"] for x in body["data"]["participants"]] == [person.user_id]
    _, body, _ = await _get(session, emu, _params(q, room_id=room.meeting_room_id or ""))
    got = body["data"]["participants"]
    assert [x["meeting_room_id"] for x in got] == [room.meeting_room_id]
    assert "user_id" not in got[0]
    webinar = emu.webinars[0]
    pages = await _all_pages(session, emu, _params(webinar, webinar_user_role="0", page_size="100"))
    guests = [x for p in pages for x in p["participants"]]
    assert guests
    assert all(x["webinar_user_role"] == "0" for x in guests)
    assert len(guests) == sum(1 for p in emu.participants(webinar) if p.webinar_user_role == "0")


async def test_user_id_type_and_permission(emu: Emulator, session: Any) -> None:
    q = _normal(emu)
    _, body, _ = await _get(session, emu, _params(q, user_id_type="union_id", page_size="100"))
    people = [x for x in body["data"]["participants"] if "meeting_room_id" not in x]
    assert people
    assert all(x["user_id"].startswith("on_") for x in people)
    assert all("employee_id" not in x for x in people)
    # Without the scope, user_id_type=user_id gives no user_id at all.
    _, body, _ = await _get(session, emu, _params(q, user_id_type="user_id", page_size="100"))
    assert all("user_id" not in x for x in body["data"]["participants"])
    # An app with the scope sees tenant user ids and employee ids.
    app_id, _ = emu.add_app(user_id_permission=True)
    token = emu.tenant_token(app_id)
    _, body, _ = await _get(
        session, emu, _params(q, user_id_type="user_id", page_size="100"), token=token
    )
    people = [x for x in body["data"]["participants"] if "meeting_room_id" not in x]
    assert all(x["user_id"] and not x["user_id"].startswith(("ou_", "on_")) for x in people)
    assert any("employee_id" in x for x in people)


async def test_request_log_records_each_request(emu: Emulator, session: Any) -> None:
    q = emu.meetings[0]
    await _get(session, emu, q.to_params())
    await _get(session, emu, {**q.to_params(), "page_size": "5"})
    api = [r for r in emu.requests if r.path == PARTICIPANT_LIST_PATH]
    assert [(r.status, r.code) for r in api] == [(200, 0), (400, 121003)]
    assert api[0].params["meeting_no"] == q.meeting_no
    assert api[0].token is not None
    assert api[0].token not in repr(api[0])
    assert api[0].app_id == emu.app_id
    assert api[0].log_id != api[1].log_id
    assert api[0].time <= api[1].time
    assert abs(api[0].wall - time.time()) < 60
    emu.reset_log()
    assert emu.requests == []


async def test_unknown_path_is_404_with_log_id(emu: Emulator, session: Any) -> None:
    async with session.get(emu.base_url + "/open-apis/vc/v1/nothing") as r:
        assert r.status == 404
        assert r.headers[LOGID_HEADER]
    assert emu.requests[-1].status == 404


async def test_start_close_without_context_manager() -> None:
    emu = Emulator(meetings=3, seed=2)
    assert emu.app_secret not in repr(emu)
    await emu.start()
    try:
        assert emu.base_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            status, body, _ = await _get(session, emu, emu.meetings[0].to_params())
            assert (status, body["code"]) == (200, 0)
    finally:
        await emu.close()
    await emu.close()  # a second close is harmless
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(emu.base_url + PARTICIPANT_LIST_PATH)


async def test_max_in_window_counts_any_span(emu: Emulator, session: Any) -> None:
    for _ in range(5):
        await _get(session, emu, emu.meetings[0].to_params())
    assert emu.max_in_window(60.0) == 5
    assert emu.max_in_window(1e-9) == 1
    assert emu.max_in_window(60.0, path="/other") == 0


async def test_generating_a_big_meeting_does_not_stall_other_requests() -> None:
    async with (
        Emulator(
            meetings=20, seed=9, rate_limit=None, data=MeetingData(webinar_size=20_000)
        ) as emu,
        aiohttp.ClientSession() as session,
    ):
        small = next(q for q in emu.meetings if q not in emu.webinars)
        status, _, _ = await _get(session, emu, small.to_params())  # builds the directory
        assert status == 200
        big = asyncio.ensure_future(_get(session, emu, emu.webinars[0].to_params()))
        await until(lambda: bool(emu._vc._builds))  # its rows are being made in a worker thread
        status, _, _ = await _get(session, emu, small.to_params())
        assert status == 200
        # The small meeting was answered while the webinar's rows were still being made.
        assert emu._vc._builds
        assert not big.done()
        status, body, _ = await big
        assert (status, len(body["data"]["participants"])) == (200, 20)
