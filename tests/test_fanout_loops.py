"""Fan-out's loop protection against a server that misbehaves on paging (scripted server)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from feishu_vc_async import Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.errors import PagingError
from feishu_vc_async.fanout import MeetingFailure, PageItem
from feishu_vc_async.models import MeetingQuery
from tests._scripted_server import LIST, Reply, ScriptedServer, page

NOW = int(time.time()) - 86_400


def _query(no: str) -> MeetingQuery:
    return MeetingQuery(meeting_no=no, meeting_start_time=NOW - 3600, meeting_end_time=NOW)


def _people(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"participant_name": f"{prefix}{i}"} for i in range(n)]


def _answer(request: web.Request) -> Reply:
    no = request.query["meeting_no"]
    token = request.query.get("page_token")
    if no == "111111111":  # repeats its token forever
        return Reply(json=page(_people(f"{no}-{token}-", 2), page_token="again", has_more=True))
    if no == "222222222":  # has_more with an empty token
        return Reply(json=page(_people(no, 2), page_token="", has_more=True))
    if no == "333333333":  # has_more without a token at all
        return Reply(json=page(_people(no, 2), has_more=True))
    if no == "444444444":  # a well-behaved two-page meeting
        if token is None:
            return Reply(json=page(_people("a", 2), page_token="p2", has_more=True))
        return Reply(json=page(_people("b", 1), has_more=False))
    return Reply(json=page([], has_more=False))  # 555555555: nobody


async def test_a_repeated_token_fails_its_meeting_and_empty_or_missing_ones_end_it() -> None:
    async with ScriptedServer() as server:
        server.always(LIST, _answer)
        queries = [_query(n * 9) for n in "12345"]
        client = VCClient("t-fixed", base_url=server.base_url, limits=Limits(participant_list=None))
        async with client, client.fan_out(queries) as results:
            items = [item async for item in results]
        assert not server.unexpected
    pages: dict[str, list[PageItem]] = {}
    failures = [item for item in items if isinstance(item, MeetingFailure)]
    for item in items:
        if isinstance(item, PageItem):
            pages.setdefault(item.query.meeting_no, []).append(item)
    # First page hands out "again"; the page fetched with it repeats "again": a loop, so
    # the meeting fails (after its first page), and is not passed off as complete.
    assert [(p.page_token, p.next_page_token, p.is_last) for p in pages["111111111"]] == [
        (None, "again", False)
    ]
    (failure,) = failures
    assert failure.query.meeting_no == "111111111"
    assert isinstance(failure.error, PagingError)
    assert failure.error.permanent
    assert (failure.pages_fetched, failure.next_page_token) == (1, "again")
    for no in ("222222222", "333333333"):
        assert [(p.page_token, p.next_page_token, p.is_last) for p in pages[no]] == [
            (None, None, True)
        ]
    assert [len(p.participants) for p in pages["444444444"]] == [2, 1]
    assert pages["444444444"][1].page_token == "p2"
    empty = pages["555555555"]
    assert len(empty) == 1
    assert empty[0].participants == []
    assert empty[0].is_last
    assert len(server.list_requests()) == 2 + 1 + 1 + 2 + 1
