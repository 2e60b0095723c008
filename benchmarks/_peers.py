"""How each side fetches pages, written the way its users would write it.

Ours: ``VCClient.fan_out``.
The SDK (lark-oapi): ``client.vc.v1.participant_list.aget`` in a loop over page tokens,
many meetings under ``asyncio.gather`` with a semaphore of the same width; the SDK has
no paginator, no limiter and no fan-out of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from feishu_vc_async.models import MeetingQuery

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
