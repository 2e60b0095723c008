"""The official SDK (lark-oapi) as an outside client of the emulator.

lark-oapi fetches tenant tokens synchronously with ``requests`` inside ``aget``; the
first call therefore runs the SDK's sync ``get`` in a worker thread, so the emulator's
event loop keeps serving while the SDK blocks. Later ``aget`` calls use its cached token.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from feishu_vc_async._constants import TENANT_TOKEN_PATH
from feishu_vc_async.emulator import Emulator, MeetingData

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

lark = pytest.importorskip("lark_oapi")
vc_model = pytest.importorskip("lark_oapi.api.vc.v1")


def _sdk_client(emu: Emulator) -> Any:
    # A fresh app id: the SDK caches tokens process-wide by app id.
    app_id, app_secret = emu.add_app()
    return (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(app_secret)
        .domain(emu.base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )


def _request(query: Any, *, page_size: int | None = None, page_token: str | None = None) -> Any:
    builder = (
        vc_model.GetParticipantListRequest.builder()
        .meeting_no(query.meeting_no)
        .meeting_start_time(str(query.meeting_start_time))
        .meeting_end_time(str(query.meeting_end_time))
    )
    if page_size is not None:
        builder = builder.page_size(page_size)
    if page_token is not None:
        builder = builder.page_token(page_token)
    return builder.build()


async def test_lark_oapi_reads_pages_and_errors() -> None:
    async with Emulator(
        meetings=25, seed=6, rate_limit=None, data=MeetingData(webinar_size=250)
    ) as emu:
        client = _sdk_client(emu)
        webinar = emu.webinars[0]
        api = client.vc.v1.participant_list
        first = await anyio.to_thread.run_sync(api.get, _request(webinar, page_size=100))
        assert first.success(), (first.code, first.msg)
        assert first.get_log_id()
        assert [r.path for r in emu.requests][:1] == [TENANT_TOKEN_PATH]
        names = [p.participant_name for p in first.data.participants]
        ids = [p.user_id for p in first.data.participants]
        assert first.data.has_more is True
        token = first.data.page_token
        while token:
            page = await api.aget(_request(webinar, page_size=100, page_token=token))
            assert page.success(), (page.code, page.msg)
            names += [p.participant_name for p in page.data.participants]
            ids += [p.user_id for p in page.data.participants]
            token = page.data.page_token if page.data.has_more else None
        truth = emu.participants(webinar)
        assert ids == [p.user_id for p in truth]
        assert names == [p.participant_name for p in truth]
        assert len(set(ids)) == 250
        sample = page.data.participants[-1]
        assert sample.join_time == truth[-1].join_time
        assert sample.accept_status == truth[-1].accept_status
        assert sample.webinar_user_role == truth[-1].webinar_user_role
        # An error answer decodes too: code, msg and the log id.
        emu.deny_meeting(emu.meetings[0].meeting_no)
        denied = await api.aget(_request(emu.meetings[0]))
        assert not denied.success()
        assert (denied.code, denied.msg) == (121005, "no permission")
        assert denied.raw.status_code == 403
        # The SDK's async path lowercases header names (so its get_log_id() misses it).
        headers = {k.lower(): v for k, v in denied.raw.headers.items()}
        assert headers["x-tt-logid"] == emu.requests[-1].log_id
        bad = await api.aget(_request(emu.meetings[1], page_size=500))
        assert (bad.code, bad.raw.status_code) == (121003, 400)
        token_requests = [r for r in emu.requests if r.token_request]
        assert len(token_requests) == 1  # the SDK's cache held across calls


async def test_lark_oapi_reads_meeting_list_pages() -> None:
    async with Emulator(
        meetings=45, seed=8, rate_limit=None, data=MeetingData(webinar_size=60)
    ) as emu:
        client = _sdk_client(emu)
        start = min(q.meeting_start_time for q in emu.meetings)
        end = max(q.meeting_start_time for q in emu.meetings)

        def request(page_token: str | None = None) -> Any:
            builder = (
                vc_model.GetMeetingListRequest.builder()
                .start_time(str(start))
                .end_time(str(end))
                .page_size(20)
                .include_webinar(True)  # the SDK sends str(True): "True"
                .include_external_meetings(True)
            )
            if page_token is not None:
                builder = builder.page_token(page_token)
            return builder.build()

        api = client.vc.v1.meeting_list
        page = await anyio.to_thread.run_sync(api.get, request())
        items = []
        while True:
            assert page.success(), (page.code, page.msg)
            items += page.data.meeting_list
            if not page.data.has_more:
                break
            page = await api.aget(request(page.data.page_token))
        truth = emu.listed_meetings(start, end, include_webinar=True, include_external=True)
        assert len(items) == len(truth) == 45
        # Every field of the SDK's MeetingInfo decodes to what the emulator says.
        for got, want in zip(items, truth, strict=True):
            for name in vc_model.MeetingInfo._types:
                assert getattr(got, name) == getattr(want, name, None), name
        assert page.data.page_token is None
