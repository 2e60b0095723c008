"""How each side fetches pages, written the way its users would write it.

Ours: ``VCClient.fan_out``.
The SDK (lark-oapi): ``client.vc.v1.participant_list.aget`` in a loop over page tokens,
many meetings under ``asyncio.gather`` with a semaphore of the same width; the SDK has
no paginator, no limiter and no fan-out of its own.
Two hand-written aiohttp peers, the same loop and gather + semaphore around one
``aiohttp.ClientSession`` and a tenant token fetched once with a POST:
:func:`aiolimiter_script` (``aiolimiter.AsyncLimiter``, ``json.loads`` into dicts, sleep
``x-ogw-ratelimit-reset`` on a 429 and retry) and :func:`raw_msgspec_loop` (no limiter,
no retries, no validation, ``msgspec`` into a minimal answer: the ceiling of doing
nothing else).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from feishu_vc_async.models import MeetingQuery, Participant

from ._harness import NotLanded

RATE_LIMITED_CODE = 99991400
RESET_HEADER = "x-ogw-ratelimit-reset"


@dataclass
class Tally:
    """What one side did in one run."""

    pages: int = 0
    participants: int = 0
    requests: int = 0
    rate_limited: int = 0
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def have_client() -> bool:
    try:
        from feishu_vc_async.client import VCClient  # noqa: F401
    except ImportError:
        return False
    return True


def require_client() -> None:
    if not have_client():
        raise NotLanded("VCClient (feishu_vc_async.client) has not landed yet")


def sdk_client(base_url: str, app_id: str, app_secret: str) -> Any:
    import lark_oapi as lark

    # The SDK logs each request at INFO through its own logger; keep it quiet like a
    # production deployment would.
    logging.getLogger("Lark").setLevel(logging.ERROR)
    return (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(app_secret)
        .domain(base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )


def sdk_request(query: MeetingQuery, page_token: str | None, page_size: int = 100) -> Any:
    from lark_oapi.api.vc.v1 import GetParticipantListRequest

    builder = (
        GetParticipantListRequest.builder()
        .meeting_start_time(str(query.meeting_start_time))
        .meeting_end_time(str(query.meeting_end_time))
        .meeting_no(query.meeting_no)
        .page_size(page_size)
    )
    if page_token:
        builder = builder.page_token(page_token)
    return builder.build()


async def sdk_meeting(
    client: Any,
    query: MeetingQuery,
    tally: Tally,
    *,
    pace: Callable[[], Awaitable[None]] | None = None,
    wait_on_429: bool = False,
    deadline: float | None = None,
) -> None:
    """Page through one meeting with the SDK, the way its users write it.

    ``pace`` runs before every request (a user's own pacing). The SDK has no 429
    handling; with ``wait_on_429`` this does what the platform advises and users add:
    sleep ``x-ogw-ratelimit-reset`` seconds, then retry. ``deadline``
    (``time.perf_counter()``) stops a time-boxed run before its next request.
    """
    token: str | None = None
    while True:
        if deadline is not None and time.perf_counter() >= deadline:
            tally.extra["stopped_at_deadline"] = True
            return
        if pace is not None:
            await pace()
        resp = await client.vc.v1.participant_list.aget(sdk_request(query, token))
        tally.requests += 1
        if resp.code == RATE_LIMITED_CODE:
            tally.rate_limited += 1
            if not wait_on_429:
                tally.errors += 1
                return
            headers = resp.raw.headers or {}
            reset = headers.get(RESET_HEADER) or headers.get(RESET_HEADER.title()) or "1"
            await asyncio.sleep(min(float(reset), 60.0))
            continue
        if not resp.success():
            tally.errors += 1
            tally.extra.setdefault("error_codes", []).append((resp.code, resp.msg))
            return
        tally.pages += 1
        data = resp.data
        tally.participants += len(data.participants or [])
        if not data.has_more or not data.page_token:
            return
        token = data.page_token


async def sdk_gather(
    client: Any,
    queries: Sequence[MeetingQuery],
    width: int,
    *,
    wait_on_429: bool = False,
    deadline: float | None = None,
) -> Tally:
    """Many meetings with the SDK: ``asyncio.gather`` under a ``Semaphore(width)``."""
    tally = Tally()
    sem = asyncio.Semaphore(width)

    async def one(query: MeetingQuery) -> None:
        async with sem:
            await sdk_meeting(client, query, tally, wait_on_429=wait_on_429, deadline=deadline)

    await asyncio.gather(*(one(q) for q in queries))
    return tally


async def ours_fetch(
    client: Any,
    queries: Sequence[MeetingQuery],
    width: int | None,
    tally: Tally | None = None,
) -> Tally:
    """Our way of fetching many meetings: ``client.fan_out``, pages counted and dropped.

    ``tally`` (filled as pages arrive) survives a cancellation, for time-boxed runs."""
    from feishu_vc_async.fanout import PageItem

    tally = Tally() if tally is None else tally
    async with client.fan_out(queries, concurrency=width) as results:
        async for item in results:
            if isinstance(item, PageItem):
                tally.pages += 1
                tally.participants += len(item.participants)
            else:
                tally.errors += 1
                tally.extra.setdefault("error_codes", []).append(repr(item.error))
    tally.extra["mode"] = "fan_out"
    stats = client.stats
    tally.requests = stats.requests
    tally.rate_limited = stats.rate_limited
    return tally


# --- hand-written peers: aiohttp scripts ---------------------------------------------
#
# What users of aiohttp write when they do not use a client library: one session, the
# tenant token fetched once with a POST, a page-token loop per meeting and
# ``asyncio.gather`` over meetings under a ``Semaphore(width)`` (the same width the
# other sides use, so every side has the same number of meetings in flight).

TENANT_TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
PARTICIPANT_LIST_PATH = "/open-apis/vc/v1/participant_list"


def script_params(query: MeetingQuery, page_token: str | None) -> dict[str, str]:
    """The query string a script builds by hand (no validation of the query)."""
    params = {
        "meeting_no": query.meeting_no,
        "meeting_start_time": str(query.meeting_start_time),
        "meeting_end_time": str(query.meeting_end_time),
        "meeting_status": "2",
        "page_size": "100",
    }
    if page_token:
        params["page_token"] = page_token
    return params


async def script_token(session: Any, base_url: str, app_id: str, app_secret: str) -> str:
    """The tenant token, fetched once with a POST (scripts do not refresh it)."""
    import json

    async with session.post(
        base_url + TENANT_TOKEN_PATH, json={"app_id": app_id, "app_secret": app_secret}
    ) as resp:
        token: str = json.loads(await resp.read())["tenant_access_token"]
    return token


async def aiolimiter_script(
    base_url: str,
    app_id: str,
    app_secret: str,
    queries: Sequence[MeetingQuery],
    width: int,
    *,
    limit: float,
    period: float,
    tally: Tally | None = None,
) -> Tally:
    """The aiolimiter script: ``aiohttp.ClientSession`` + ``aiolimiter.AsyncLimiter(limit,
    period)`` around every request, ``json.loads`` of the body into plain dicts (no
    validation), and on a 429 or code 99991400 ``await asyncio.sleep(float(
    resp.headers["x-ogw-ratelimit-reset"]))`` and the same request again.

    ``tally`` (filled as pages arrive) survives a cancellation, for time-boxed runs;
    ``tally.extra["start"]`` is set (monotonic) when the session opens, before the token.
    """
    import json

    import aiohttp
    from aiolimiter import AsyncLimiter

    tally = Tally() if tally is None else tally
    tally.extra.setdefault("start", time.monotonic())
    url = base_url + PARTICIPANT_LIST_PATH
    async with aiohttp.ClientSession() as session:
        token = await script_token(session, base_url, app_id, app_secret)
        headers = {"Authorization": f"Bearer {token}"}
        limiter = AsyncLimiter(limit, period)
        sem = asyncio.Semaphore(width)

        async def meeting(query: MeetingQuery) -> None:
            async with sem:
                page_token: str | None = None
                while True:
                    async with (
                        limiter,
                        session.get(
                            url, params=script_params(query, page_token), headers=headers
                        ) as resp,
                    ):
                        body = json.loads(await resp.read())
                        limited = resp.status == 429 or body.get("code") == RATE_LIMITED_CODE
                        if limited:
                            reset = float(resp.headers[RESET_HEADER])
                    tally.requests += 1
                    if limited:
                        tally.rate_limited += 1
                        await asyncio.sleep(reset)
                        continue
                    if body.get("code") != 0:
                        tally.errors += 1
                        tally.extra.setdefault("error_codes", []).append(body.get("code"))
                        return
                    data = body.get("data") or {}
                    tally.pages += 1
                    tally.participants += len(data.get("participants") or [])
                    page_token = data.get("page_token")
                    if not data.get("has_more") or not page_token:
                        return

        await asyncio.gather(*(meeting(q) for q in queries))
    return tally


class RawPage(msgspec.Struct):
    """What the raw loop reads of ``data``: the participants (every one decoded into a
    struct with the same 28 fields as ours: the library's ``Participant``, the cheapest
    struct there is for them) and what paging needs."""

    participants: list[Participant] = []
    page_token: str | None = None
    has_more: bool = False


class RawAnswer(msgspec.Struct):
    """The minimal answer of the raw loop: ``code`` and ``data``, nothing else."""

    code: int
    data: RawPage | None = None


RAW_DECODER = msgspec.json.Decoder(RawAnswer)


async def raw_msgspec_loop(
    base_url: str,
    app_id: str,
    app_secret: str,
    queries: Sequence[MeetingQuery],
    width: int,
) -> Tally:
    """The ceiling: raw aiohttp + msgspec, with nothing else. No limiter, no retries, no
    validation of input or answers beyond msgspec's decode; a failed answer ends its
    meeting (counted as an error)."""
    import aiohttp

    decode = RAW_DECODER.decode
    tally = Tally()
    url = base_url + PARTICIPANT_LIST_PATH
    async with aiohttp.ClientSession() as session:
        token = await script_token(session, base_url, app_id, app_secret)
        headers = {"Authorization": f"Bearer {token}"}
        sem = asyncio.Semaphore(width)

        async def meeting(query: MeetingQuery) -> None:
            async with sem:
                page_token: str | None = None
                while True:
                    async with session.get(
                        url, params=script_params(query, page_token), headers=headers
                    ) as resp:
                        answer = decode(await resp.read())
                    tally.requests += 1
                    data = answer.data
                    if answer.code != 0 or data is None:
                        tally.errors += 1
                        tally.extra.setdefault("error_codes", []).append(answer.code)
                        return
                    tally.pages += 1
                    tally.participants += len(data.participants)
                    page_token = data.page_token
                    if not data.has_more or not page_token:
                        return

        await asyncio.gather(*(meeting(q) for q in queries))
    return tally
