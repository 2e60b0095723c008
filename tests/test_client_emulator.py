"""VCClient against the embedded emulator: ground truth, rate limits, faults."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from feishu_vc_async import (
    AppCredentials,
    DefaultRetryPolicy,
    InvalidQueryError,
    Limits,
    NotFoundError,
    ParameterError,
    PermissionDeniedError,
    RateLimit,
    Retries,
    VCClient,
)
from feishu_vc_async.emulator import Emulator, Faults, MeetingData
from feishu_vc_async.ratelimit import LimitKey
from tests._gateway import client_limit

pytestmark = pytest.mark.anyio


async def test_participants_match_the_ground_truth_at_every_page_size() -> None:
    async with Emulator(
        meetings=6, seed=11, rate_limit=None, data=MeetingData(webinars=1, webinar_size=450)
    ) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            for query in emu.meetings:
                truth = emu.participants(query)
                for size in (20, 37, 100):
                    got = [p async for p in client.participants(query, page_size=size)]
                    assert got == truth
                pages = [p async for p in client.pages(query, page_size=20)]
                assert len(pages) == max(1, -(-len(truth) // 20))
                assert pages[-1].has_more is False
                assert pages[-1].page_token is None
        assert any(len(emu.participants(q)) > 100 for q in emu.meetings)


async def test_user_token_reads_the_same_data() -> None:
    async with Emulator(meetings=2, seed=12, rate_limit=None) as emu:
        token = emu.add_user_token(expires_in=60)
        async with VCClient(
            token,
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as c:
            query = emu.meetings[0]
            assert [p async for p in c.participants(query)] == emu.participants(query)


async def test_emulator_errors_arrive_typed() -> None:
    async with (
        Emulator(meetings=3, seed=13, rate_limit=None) as emu,
        VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client,
    ):
        denied, purged, other = emu.meetings
        emu.deny_meeting(denied.meeting_no)
        emu.purge_meeting(purged.meeting_no)
        with pytest.raises(PermissionDeniedError) as caught:
            await client.participant_list(denied)
        assert (caught.value.http_status, caught.value.code) == (403, 121005)
        assert caught.value.log_id
        with pytest.raises(NotFoundError) as nf:
            await client.participant_list(purged)
        assert (nf.value.http_status, nf.value.code) == (404, 121004)
        with pytest.raises(ParameterError) as bad_token:
            await client.participant_list(other, page_token="forged")
        assert bad_token.value.code == 121003


# The client runs a little under the gateway's 20/s: on a loaded 2-core box, arrivals can
# bunch after leaving the limiter evenly (tests/_gateway.py; the limiter's own tight
# bounds are the rate-limit tests' job).
GATEWAY = RateLimit(20, 1.0)
CLIENT_RATE = client_limit(GATEWAY)


async def test_the_client_limiter_keeps_under_the_gateway_limit() -> None:
    rate = CLIENT_RATE
    async with Emulator(meetings=2, seed=14, rate_limit=GATEWAY) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=rate),
        ) as client:
            query = emu.meetings[0]
            await asyncio.gather(*(client.participant_list(query) for _ in range(40)))
        assert client.stats.rate_limited == 0
        assert emu.max_in_window(1.0) <= 20
        assert not [r for r in emu.requests if r.status == 429]


async def test_two_clients_of_one_app_share_a_budget() -> None:
    rate = CLIENT_RATE
    async with Emulator(meetings=2, seed=15, rate_limit=GATEWAY) as emu:
        app = AppCredentials(emu.app_id, emu.app_secret)
        limits = Limits(participant_list=rate)
        async with (
            VCClient(app, base_url=emu.base_url, limits=limits) as a,
            VCClient(app, base_url=emu.base_url, limits=limits) as b,
        ):
            query = emu.meetings[0]
            await asyncio.gather(
                *(a.participant_list(query) for _ in range(18)),
                *(b.participant_list(query) for _ in range(18)),
            )
        assert a.stats.rate_limited == b.stats.rate_limited == 0
        assert emu.max_in_window(1.0) <= 20


async def test_without_a_limiter_429s_are_retried_after_the_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Emulator(meetings=2, seed=16, rate_limit=RateLimit(10, 0.5)) as emu:
        # A sliding window frees one slot at a time, so an unpaced herd of retries needs
        # several rounds: the budget here is generous, what is checked is the honoured reset.
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
            retries=Retries(max_retries=25),
        ) as client:
            query = emu.meetings[0]
            with caplog.at_level(logging.WARNING, logger="feishu_vc_async"):
                pages = await asyncio.gather(*(client.participant_list(query) for _ in range(25)))
        assert len(pages) == 25
        refused = [r for r in emu.requests if r.status == 429]
        assert refused
        assert client.stats.rate_limited == len(refused)
        assert "rate limited (99991400), reset" in caplog.text
        assert client.stats.errors == 0


async def test_faults_are_retried_to_the_ground_truth() -> None:
    faults = Faults(seed=3, error_rate=0.15, reset_rate=0.1, html_rate=0.1)
    async with Emulator(meetings=4, seed=17, rate_limit=None, faults=faults) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
            retries=Retries(
                max_retries=8, policy=DefaultRetryPolicy(initial=0.005, max_backoff=0.05)
            ),
        ) as client:
            for query in emu.meetings:
                got = [p async for p in client.participants(query, page_size=20)]
                assert got == emu.participants(query)
        assert client.stats.retries > 0
        assert [r for r in emu.requests if r.fault]


async def test_a_revoked_token_mid_export_is_replaced() -> None:
    faults = Faults(seed=1, revoke_token_after=3)
    async with Emulator(meetings=2, seed=18, rate_limit=None, faults=faults) as emu:
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client:
            for query in emu.meetings:
                got = [p async for p in client.participants(query, page_size=20)]
                assert got == emu.participants(query)
        assert client.stats.token_fetches == 2
        assert len([r for r in emu.requests if r.token_request]) == 2


class _RecordingLimiter:
    """A limiter that records what it is asked."""

    rate = RateLimit(10_000, 1.0)

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def acquire(self, key: LimitKey, *, continuing: bool = False) -> None:
        self.asked.append((key.api, continuing))

    async def report_rate_limited(self, key: LimitKey, reset_seconds: float | None) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def test_pages_after_the_first_ask_the_limiter_as_continuing_reads() -> None:
    async with Emulator(
        meetings=1, seed=11, rate_limit=None, data=MeetingData(webinars=1, webinar_size=250)
    ) as emu:
        webinar = max(emu.meetings, key=lambda q: len(emu.participants(q)))
        limiter = _RecordingLimiter()
        async with VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=limiter),
        ) as client:
            got = [p async for p in client.participants(webinar, page_size=100)]
        assert got == emu.participants(webinar)
        asked = [c for api, c in limiter.asked if api == "vc/v1/participant_list"]
        assert asked == [False, True, True]


async def test_a_query_checked_once_keeps_its_page_tokens_apart() -> None:
    """The client keeps a validated query's query string for the next page; a page
    token goes into that request alone, and an invalid query is still refused."""
    async with (
        Emulator(meetings=30, seed=14, rate_limit=None) as emu,
        VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=None),
        ) as client,
    ):
        query = max(emu.meetings, key=lambda q: len(emu.participants(q)))
        first = await client.participant_list(query, page_size=20)
        assert first.page_token
        await client.participant_list(query, page_size=20, page_token=first.page_token)
        again = await client.participant_list(query, page_size=20)
        assert again == first
        sent = [r.params for r in emu.requests if not r.token_request]
        assert [p.get("page_token") for p in sent] == [None, first.page_token, None]
        assert {p["page_size"] for p in sent} == {"20"}
        before = len(emu.requests)
        bad = msgspec.structs.replace(query, meeting_no="12345")
        with pytest.raises(InvalidQueryError):
            await client.participant_list(bad)
        with pytest.raises(InvalidQueryError):
            await client.participant_list(bad)
        # Equal to the query checked above, yet invalid: a float time, a float page
        # size. The kept query string must not stand in for their checks.
        floats = msgspec.structs.replace(query)
        msgspec.structs.force_setattr(floats, "meeting_start_time", float(query.meeting_start_time))
        assert floats == query
        with pytest.raises(InvalidQueryError, match="meeting_start_time"):
            await client.participant_list(floats, page_size=20)
        with pytest.raises(InvalidQueryError, match="page_size"):
            await client.participant_list(query, page_size=20.0)  # type: ignore[arg-type]
        assert len(emu.requests) == before  # refused before any request
