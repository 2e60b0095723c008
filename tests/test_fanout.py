"""Fan-out against the emulator: exactly-once results, failures, resume, backpressure,
cancellation. The emulator's gateway is off (or scaled) so 1,000 meetings take seconds."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import re
from collections.abc import AsyncIterator, Iterator

import anyio
import msgspec
import pytest

from feishu_vc_async import AppCredentials, Limits
from feishu_vc_async.client import VCClient
from feishu_vc_async.emulator import Emulator, Faults, Latency, MeetingData, RequestRecord
from feishu_vc_async.errors import (
    InvalidQueryError,
    NotFoundError,
    PermissionDeniedError,
)
from feishu_vc_async.fanout import FanOut, FanOutItem, MeetingFailure, PageItem, Resume
from feishu_vc_async.fanout._tuning import target_for
from feishu_vc_async.models import MeetingQuery, Participant
from feishu_vc_async.ratelimit import LocalRateLimiter, RateLimit
from tests._fanout import make_client
from tests._gateway import client_limit
from tests._scripted_server import until

LIST_PATH = "/open-apis/vc/v1/participant_list"


def list_requests(emu: Emulator) -> list[RequestRecord]:
    return [r for r in emu.requests if r.path == LIST_PATH]


def unknown(query: MeetingQuery, taken: set[str], n: int) -> MeetingQuery:
    """A query for a meeting number the emulator does not hold (→ 126009)."""
    for candidate in itertools.count(100_000_000 + n * 7919):
        number = f"{candidate:09d}"
        if number not in taken:
            taken.add(number)
            return msgspec.structs.replace(query, meeting_no=number)
    raise AssertionError("unreachable")


def check_pages(emu: Emulator, query: MeetingQuery, pages: list[PageItem]) -> int:
    """Pages of one meeting: in order, chained by tokens, last one last, exactly the
    emulator's participants (returns how many)."""
    assert [p.page_index for p in pages] == list(range(len(pages)))
    assert pages[0].page_token is None
    for before, after in itertools.pairwise(pages):
        assert not before.is_last
        assert before.next_page_token is not None
        assert after.page_token == before.next_page_token
    assert pages[-1].is_last
    assert pages[-1].next_page_token is None
    got = [p for page in pages for p in page.participants]
    assert got == emu.participants(query)
    return len(got)


async def drain(fan: FanOut, *, raise_on_item: BaseException | None = None) -> int:
    """Consume a whole fan-out; return the item count (or raise at the first item)."""
    count = 0
    async with fan as results:
        async for _ in results:
            if raise_on_item is not None:
                raise raise_on_item
            count += 1
    return count


async def drain_within(fan: FanOut, seconds: float) -> int:
    async with asyncio.timeout(seconds):
        return await drain(fan)


def fanout_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "fanout" in t.get_name() or "FanOut" in t.get_name()]


@pytest.fixture
async def big_emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        meetings=1000, seed=11, rate_limit=None, data=MeetingData(webinars=5, webinar_size=260)
    ) as emu:
        yield emu


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        meetings=60, seed=3, rate_limit=None, data=MeetingData(webinars=2, webinar_size=130)
    ) as e:
        yield e


async def test_thousand_meetings_exactly_once_and_failures_reported(big_emu: Emulator) -> None:
    emu = big_emu
    queries = list(emu.meetings)
    held = {q.meeting_no for q in queries}
    # 5 %: 25 unknown meeting numbers (126009) and 25 denied meetings (121005).
    missing = {i: unknown(queries[i], held, i) for i in range(0, 1000, 40)}
    for i, query in missing.items():
        queries[i] = query
    # Denied by query, not number: a personal meeting number recurs in other meetings.
    denied = {queries[i].key for i in range(20, 1000, 40)}
    for i in range(20, 1000, 40):
        emu.deny_meeting(queries[i])
    missing_keys = {q.key for q in missing.values()}

    pages: dict[str, list[PageItem]] = {}
    failures: dict[str, MeetingFailure] = {}
    expected_count = 0
    async with make_client(emu) as client:
        async with client.fan_out(queries, page_size=50) as results:
            async for item in results:
                if isinstance(item, PageItem):
                    pages.setdefault(item.query.key, []).append(item)
                    if item.is_last:
                        # Checked at once, while the emulator still has the rows cached.
                        expected_count += check_pages(emu, item.query, pages[item.query.key])
                else:
                    assert item.query.key not in failures
                    failures[item.query.key] = item
        progress = results.progress

    assert {f.query.key for f in failures.values()} == missing_keys | denied
    for failure in failures.values():
        assert failure.pages_fetched == 0
        assert failure.next_page_token is None
        if failure.query.key in denied:
            assert isinstance(failure.error, PermissionDeniedError)
            assert failure.error.code == 121005
        else:
            assert isinstance(failure.error, NotFoundError)
            assert failure.error.code == 126009
        assert failure.error.log_id
    ok = [q for q in queries if q.key not in missing_keys | denied]
    assert len(ok) == 950
    assert set(pages) == {q.key for q in ok}
    assert all(p[-1].is_last for p in pages.values())
    assert max(len(p) for p in pages.values()) >= 6  # the webinars paged
    total_pages = sum(len(p) for p in pages.values())
    assert progress.total == 1000
    assert (progress.done, progress.failed, progress.skipped, progress.running) == (950, 50, 0, 0)
    assert progress.pages == total_pages
    assert progress.participants == expected_count
    assert progress.requests == total_pages + 50 == len(list_requests(emu))
    assert progress.remaining == 0
    assert progress.eta == 0.0


async def test_endless_input_break_after_n_items(emu: Emulator) -> None:
    taken = 0

    def endless() -> Iterator[MeetingQuery]:
        nonlocal taken
        for query in itertools.cycle(emu.meetings):
            taken += 1
            yield query

    seen = 0
    async with make_client(emu) as client:
        async with client.fan_out(endless(), concurrency=4, buffer_size=4) as results:
            async for _ in results:
                seen += 1
                if seen == 100:
                    break
        assert results.progress.total is None
        assert results.progress.eta is None
        assert results.progress.running == 0
    assert seen == 100
    # Input is read as capacity frees up: a few meetings ahead, not the whole cycle.
    assert taken <= 100 + 4 + 4 + 1
    assert not fanout_tasks()


async def test_break_after_first_item_cancels_everything(caplog: pytest.LogCaptureFixture) -> None:
    closed = anyio.Event()

    async def source() -> AsyncIterator[MeetingQuery]:
        try:
            for query in itertools.cycle(emu_slow.meetings):
                yield query
        finally:
            closed.set()

    emu_slow = Emulator(
        meetings=60,
        seed=3,
        rate_limit=None,
        latency=Latency.constant(0.05),
        data=MeetingData(webinars=0),
    )
    async with emu_slow, make_client(emu_slow) as client:
        async with client.fan_out(source(), concurrency=8) as results:
            async for item in results:
                assert isinstance(item, PageItem)
                break
        sent = client.stats.requests
        assert closed.is_set()  # the async generator was aclose()d
        assert results.progress.running == 0
        assert not fanout_tasks()
        # The client is still usable. Every answer takes the same 50 ms, so the emulator
        # answers in arrival order: once this one is back, every request written before
        # it has landed.
        page = await client.participant_list(emu_slow.meetings[0])
        assert page.participants
        # Nothing was sent after the fan-out closed, and nothing more can land.
        assert client.stats.requests == sent + 1
        assert len(list_requests(emu_slow)) - 1 <= sent <= 1 + 8 + 16
    gc.collect()
    # No "Task was destroyed but it is pending!" or similar from asyncio.
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]


async def test_resume_refetches_no_finished_page(emu: Emulator) -> None:
    queries = emu.meetings[:30] + emu.webinars
    resume = Resume()
    delivered: set[tuple[str, str | None]] = set()
    first: list[PageItem] = []
    async with make_client(emu) as client:
        async with client.fan_out(queries, page_size=20, concurrency=6) as results:
            async for item in results:
                assert isinstance(item, PageItem)
                resume.record(item)
                delivered.add((item.query.meeting_no, item.page_token))
                first.append(item)
                if len(first) == 25:
                    break
        assert resume.completed
        assert resume.next_tokens
        # A checkpoint survives a JSON round trip.
        resume = msgspec.json.decode(msgspec.json.encode(resume), type=Resume)

        emu.reset_log()
        second: list[PageItem] = []
        async with client.fan_out(queries, page_size=20, resume=resume) as results:
            async for item in results:
                assert isinstance(item, PageItem)
                second.append(item)
        assert results.progress.skipped == len(resume.completed)
        assert results.progress.done == len(queries) - len(resume.completed)

    refetched = [
        r
        for r in list_requests(emu)
        if (r.params["meeting_no"], r.params.get("page_token")) in delivered
    ]
    assert refetched == []
    for query in queries:
        got = [p for item in first + second if item.query == query for p in item.participants]
        assert got == emu.participants(query)
    resumed = [i for i in second if i.query.key in resume.next_tokens]
    assert all(i.page_token is not None for i in resumed if i.page_index == 0)


async def test_transient_faults_still_exactly_once() -> None:
    faults = Faults(seed=4, error_rate=0.08, reset_rate=0.04, html_rate=0.02)
    async with (
        Emulator(
            meetings=150,
            seed=8,
            rate_limit=None,
            faults=faults,
            data=MeetingData(webinars=2, webinar_size=150),
        ) as emu,
        make_client(emu) as client,
    ):
        got: dict[str, list[Participant]] = {}
        async with client.fan_out(emu.meetings, page_size=20) as results:
            async for item in results:
                assert isinstance(item, PageItem), item
                got.setdefault(item.query.key, []).extend(item.participants)
        assert results.progress.retries > 0
        assert any(r.fault for r in emu.requests)
    assert set(got) == {q.key for q in emu.meetings}
    for query in emu.meetings:
        assert got[query.key] == emu.participants(query)


async def test_slow_consumer_bounds_fetching(emu: Emulator) -> None:
    async with make_client(emu) as client:
        async with client.fan_out(
            emu.meetings, page_size=20, concurrency=3, buffer_size=5
        ) as results:
            item = await results.__anext__()
            assert isinstance(item, PageItem)
            # The consumer stops taking: the workers fill the buffer, then each holds one
            # page it cannot hand over. That is all they fetch: 1 + 5 + 3 pages.
            await until(lambda: results.progress.pages == 1 + 5 + 3)
            assert results.progress.buffered == 5
            # Had a worker been free, it would have fetched on while this round trip
            # (through the same client and emulator) went out and came back.
            await client.participant_list(emu.meetings[-1], page_size=20)
            assert len(list_requests(emu)) == 1 + 5 + 3 + 1
            assert results.progress.pages == 1 + 5 + 3
            rest = [i async for i in results]
        assert len(rest) + 1 == results.progress.pages


async def test_fail_fast_raises_and_cancels(emu: Emulator) -> None:
    emu.deny_meeting(emu.meetings[5].meeting_no)
    async with make_client(emu) as client:
        results = client.fan_out(emu.meetings, fail_fast=True, concurrency=4)
        with pytest.raises(PermissionDeniedError) as caught:
            await drain(results)
        assert caught.value.code == 121005
        assert results.progress.done < len(emu.meetings) - 1
        assert not fanout_tasks()
        page = await client.participant_list(emu.meetings[0])
        assert page.participants


async def test_invalid_queries_become_failures(emu: Emulator) -> None:
    good = emu.meetings[0]
    short = msgspec.structs.replace(good, meeting_no="12345678")
    backwards = msgspec.structs.replace(good, meeting_end_time=good.meeting_start_time - 60)
    items: list[object] = ["not a query", short, good, backwards]
    async with make_client(emu) as client, client.fan_out(items) as results:  # type: ignore[arg-type]
        out = [i async for i in results]
    failures = [i for i in out if isinstance(i, MeetingFailure)]
    assert len(failures) == 3
    assert all(isinstance(f.error, InvalidQueryError) for f in failures)
    codes = {f.error.code for f in failures if isinstance(f.error, InvalidQueryError)}
    assert {126004, 126006} <= codes
    assert [f.key for f in failures if f.query == "not a query"] == [None]  # type: ignore[comparison-overlap]
    pages = [i for i in out if isinstance(i, PageItem)]
    assert {p.query for p in pages} == {good}
    # No request was sent for an invalid query.
    assert {r.params["meeting_no"] for r in list_requests(emu)} == {good.meeting_no}
    assert results.progress.failed == 3


async def test_invalid_query_fail_fast_raises(emu: Emulator) -> None:
    bad = msgspec.structs.replace(emu.meetings[0], meeting_no="1")
    async with make_client(emu) as client:
        with pytest.raises(InvalidQueryError):
            await drain(client.fan_out([bad, *emu.meetings], fail_fast=True))


async def test_timeout_cancels_and_client_stays_usable() -> None:
    async with (
        Emulator(
            meetings=40,
            seed=2,
            rate_limit=None,
            latency=Latency.constant(0.05),
            data=MeetingData(webinars=0),
        ) as emu,
        make_client(emu) as client,
    ):
        received = 0
        results = client.fan_out(emu.meetings, concurrency=4)
        with pytest.raises(TimeoutError):
            await drain_within(results, 0.12)
        assert not fanout_tasks()
        assert results.progress.running == 0
        with anyio.move_on_after(0.12) as scope:
            async with client.fan_out(emu.meetings, concurrency=4) as results:
                async for _ in results:
                    received += 1
        assert scope.cancelled_caught
        assert not fanout_tasks()
        # Another call on the same client works.
        page = await client.participant_list(emu.meetings[1])
        assert page.participants == emu.participants(emu.meetings[1])[: len(page.participants)]
        async with client.fan_out(emu.meetings[:3]) as results:
            assert len([i async for i in results]) >= 3


async def test_body_exception_propagates_unwrapped(emu: Emulator) -> None:
    async with make_client(emu) as client:
        with pytest.raises(KeyError, match="mine"):
            await drain(client.fan_out(emu.meetings), raise_on_item=KeyError("mine"))
        assert not fanout_tasks()


async def test_participants_convenience_and_empty_meeting(emu: Emulator) -> None:
    nobody = msgspec.structs.replace(emu.meetings[1], user_id="ou_nobody_at_all")
    emu.deny_meeting(emu.meetings[2].meeting_no)
    queries = [emu.meetings[0], nobody, emu.meetings[2], emu.meetings[3]]
    async with make_client(emu) as client:
        async with client.fan_out(queries) as results:
            items: list[FanOutItem] = [i async for i in results]
        async with client.fan_out(queries, page_size=20) as results:
            pairs = [pair async for pair in results.meeting_participants()]
    empty = [i for i in items if isinstance(i, PageItem) and i.query == nobody]
    assert len(empty) == 1
    assert empty[0].participants == []
    assert empty[0].is_last
    expected = {
        (q.key, msgspec.json.encode(p))
        for q in (emu.meetings[0], emu.meetings[3])
        for p in emu.participants(q)
    }
    got = [(q.key, msgspec.json.encode(p)) for q, p in pairs]
    assert len(got) == len(expected)
    assert set(got) == expected
    assert results.progress.failed == 1


async def test_progress_rate_and_eta_are_live(emu: Emulator) -> None:
    async with make_client(emu) as client:
        async with client.fan_out(emu.meetings, concurrency=2) as results:
            assert results.progress.total == len(emu.meetings)
            count = 0
            async for _ in results:
                count += 1
                if count == 20:
                    progress = results.progress
                    assert progress.rate > 0
                    eta = progress.eta
                    assert eta is not None
                    assert eta > 0
                    assert progress.pending is not None
                    assert progress.pending + progress.running + progress.done <= len(emu.meetings)
                    snap = progress.snapshot()
                    assert snap["requests"] >= 20
                    assert "eta=" in repr(progress)
        assert results.progress.eta == 0.0


async def test_adaptive_concurrency_under_a_scaled_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = RateLimit(40, 1.0)
    async with (
        Emulator(
            meetings=120,
            seed=9,
            rate_limit=limit,
            latency=Latency.constant(0.1),
            data=MeetingData(webinars=0),
        ) as emu,
        make_client(emu, rate_limit=client_limit(limit)) as client,
    ):
        results = client.fan_out(emu.meetings[:80])
        assert results.progress.concurrency == 4  # starts small
        peak = 0
        with caplog.at_level(logging.DEBUG, logger="feishu_vc_async.fanout"):
            async with results:
                async for _ in results:
                    peak = max(peak, results.progress.concurrency)
        progress = results.progress
    # The pool grew to what the latency it measured asks for: ceil(rate × p90) + margin,
    # 6 at the server's 100 ms, more when a busy machine stretches the answers. Each step
    # it announced is that rule applied to the latency it saw (before the first answer:
    # a worker per request sent), and the pool was never wider than it announced.
    steps = re.findall(r"concurrency \d+ -> (\d+) \((.*)\)", caplog.text)
    targets = re.findall(r"target (\d+): p90 latency ([0-9.]+)s at ([0-9.]+)/s", caplog.text)
    assert targets
    for target, p90, rate in targets:
        # (the log rounds the rate and the latency: one worker either way at a ceiling)
        assert abs(int(target) - target_for(float(rate), float(p90))) <= 1
        assert float(p90) >= 0.1  # the server's own latency is in it
    assert 4 < peak <= max(int(width) for width, _ in steps)
    assert progress.rate_limited == 0  # paced under the gateway (tests/_gateway.py)
    assert progress.done == 80


async def test_entering_twice_and_iterating_outside_fail(emu: Emulator) -> None:
    async with make_client(emu) as client:
        results = client.fan_out(emu.meetings[:2])
        with pytest.raises(RuntimeError):
            await results.__anext__()
        async with results:
            pass
        with pytest.raises(RuntimeError):
            async with results:
                pass
        with pytest.raises(ValueError, match="concurrency"):
            client.fan_out([], concurrency=0)
        with pytest.raises(InvalidQueryError):
            client.fan_out([], page_size=500)
        async with client.fan_out([]) as results:
            assert [i async for i in results] == []


async def test_errors_of_the_input_itself_propagate_unwrapped(emu: Emulator) -> None:
    def broken() -> Iterator[MeetingQuery]:
        yield emu.meetings[0]
        raise LookupError("the caller's input failed")

    async with make_client(emu) as client:
        with pytest.raises(LookupError, match="input failed"):
            await drain(client.fan_out(broken()))
        assert not fanout_tasks()
    # A client that is not open is a usage error, raised as such.
    with pytest.raises(RuntimeError, match="not open"):
        await drain(client.fan_out(emu.meetings[:3]))


async def test_skipping_many_resumed_meetings_is_lazy_and_yields(emu: Emulator) -> None:
    base = emu.meetings[0]

    def generated(n: int) -> Iterator[MeetingQuery]:
        for i in range(n):
            yield msgspec.structs.replace(base, meeting_no=f"{100_000_000 + i:09d}")

    done = {q.key for q in generated(20_000)}
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async with make_client(emu) as client, anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with client.fan_out(generated(20_000), resume=Resume(completed=done)) as results:
            assert [i async for i in results] == []
        tg.cancel_scope.cancel()
    assert results.progress.skipped == 20_000
    assert results.progress.requests == 0
    assert list_requests(emu) == []
    # The loop kept turning while skipping: a turn for every few hundred items at most.
    assert ticks >= 20_000 // 500


async def test_the_pool_is_sized_from_the_limiter_in_use(emu: Emulator) -> None:
    """A given limiter of 1000 per 60 s, not the default 100/60 ``rate_limit``, sizes the
    pool: the fan-out sees 16.7 req/s and its tuner aims at rate × service latency."""
    limiter = LocalRateLimiter(RateLimit(1000, 60.0))
    try:
        client = VCClient(
            AppCredentials(emu.app_id, emu.app_secret),
            base_url=emu.base_url,
            limits=Limits(participant_list=limiter),
        )
        assert client.rate_limit == RateLimit(1000, 60.0)
        async with client, client.fan_out(emu.meetings[:30]) as results:
            async for _ in results:
                pass
            latency = client.stats.latency_quantile(0.9)
            tuner = results._tuner
        assert results.progress.limit == pytest.approx(1000 / 60)
        assert tuner is not None
        assert latency is not None
        assert tuner.target == target_for(1000 / 60, latency)
    finally:
        await limiter.aclose()


async def test_meetings_given_up_for_good_are_skipped_unless_retry_failed(emu: Emulator) -> None:
    queries = emu.meetings[:6]
    purged, denied = queries[1], queries[4]
    emu.purge_meeting(purged)
    emu.deny_meeting(denied)
    resume = Resume()
    async with make_client(emu) as client:
        async with client.fan_out(queries, page_size=100) as results:
            async for item in results:
                resume.record(item)
        assert resume.failed == {purged.key: 121004, denied.key: 121005}
        assert resume.completed == {q.key for q in queries} - set(resume.failed)

        emu.reset_log()
        async with client.fan_out(queries, resume=resume) as results:
            assert [item async for item in results] == []
        assert (results.progress.skipped, results.progress.skipped_failed) == (4, 2)
        assert results.progress.remaining == 0
        assert list_requests(emu) == []  # nothing asked again

        async with client.fan_out(queries, resume=resume, retry_failed=True) as results:
            again = [item async for item in results]
    assert {item.key for item in again} == set(resume.failed)
    assert all(isinstance(item, MeetingFailure) for item in again)
    assert len(list_requests(emu)) == 2
