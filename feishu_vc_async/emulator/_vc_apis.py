"""participant_list and meeting_list over HTTP: what stands in front of their rules.

Order of checks for ``GET participant_list`` and ``GET meeting_list`` alike (as the
platform's gateway, then backend): authorization header and token → the API's own
rate-limit gateway (forced windows first) → injected fault → latency → a denied app →
the endpoint's own rules (``_api``, ``_meeting_list``). Every answer, errors and faults
included, carries ``X-Tt-Logid``; error bodies also carry ``error.log_id``. A token
reads its own tenant's meetings and is charged to the gateway bucket of its API, app
and tenant.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from .._constants import (
    API_MEETING_LIST,
    API_PARTICIPANT_LIST,
    LOGID_HEADER,
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
)
from .._error_codes import RATE_LIMITED_CODE
from ..models import UserIdType
from ._answering import JSON_TYPE, Answering, Arrival, error_response, json_response
from ._api import ERRORS, ApiError, PageTokens, QueryRules, answer_page
from ._data import Dataset
from ._faults import Fault, Faults, Latency
from ._gateway import Gateways
from ._meeting_list import MEETING_LIST_ERRORS, ListingRule, answer_meeting_list
from ._meetings import MeetingInfo
from ._tenants import Tenants
from ._tokens import TokenInfo, TokenStore

__all__ = ["VCApis"]

RATE_LIMITED_MSG = "request trigger frequency limit"
# Meetings at least this large (and the first meeting, which builds the directory of
# people) are generated in a worker thread; smaller ones take about a millisecond, less
# than the hand-off to a thread costs.
_THREAD_BUILD_MIN = 150
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class _Api:
    """What differs between the VC data APIs served by the same machinery."""

    path: str
    bucket: str  # the gateway's bucket name, per app
    errors: Mapping[int, tuple[int, str]]
    partial: bytes  # how a success body starts: what truncated and reset answers send


_PARTICIPANT_LIST = _Api(
    PARTICIPANT_LIST_PATH,
    API_PARTICIPANT_LIST,
    ERRORS,
    b'{"code":0,"msg":"success","data":{"participants":[{"participant_name":"',
)
_MEETING_LIST = _Api(
    MEETING_LIST_PATH,
    API_MEETING_LIST,
    MEETING_LIST_ERRORS,
    b'{"code":0,"msg":"success","data":{"meeting_list":[{"meeting_id":"',
)


class VCApis:
    """The two VC data endpoints. ``faults`` and ``listing`` may be changed while they
    serve; the fault draws keep the sequence of the seed they started with."""

    def __init__(
        self,
        answering: Answering,
        tokens: TokenStore,
        tenants: Tenants,
        rules: QueryRules,
        gateways: Gateways,
        *,
        seed: int,
        faults: Faults,
        latency: float | Latency,
        listing: ListingRule,
        clock: Callable[[], float],
    ) -> None:
        self._answering, self._tokens, self._tenants = answering, tokens, tenants
        self._rules, self._gateways, self._clock = rules, gateways, clock
        self.faults = faults
        self.listing: ListingRule = listing
        self._fault_rng = random.Random(faults.seed)
        self._latency = latency if isinstance(latency, Latency) or latency else faults.latency
        self._page_tokens = PageTokens(hashlib.sha256(f"page-token:{seed}".encode()).digest())
        self._answers: dict[str, Callable[[Mapping[str, str], TokenInfo], Awaitable[bytes]]] = {
            PARTICIPANT_LIST_PATH: self._answer_participant_list,
            MEETING_LIST_PATH: self._answer_meeting_list,
        }
        self._api_count = 0
        self._builds: dict[tuple[int, int], asyncio.Task[None]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PARTICIPANT_LIST_PATH, self._participant_list)
        app.router.add_get(MEETING_LIST_PATH, self._meeting_list)

    async def close(self) -> None:
        builds = list(self._builds.values())
        for task in builds:
            task.cancel()
        await asyncio.gather(*builds, return_exceptions=True)

    async def _participant_list(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _PARTICIPANT_LIST)

    async def _meeting_list(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _MEETING_LIST)

    async def _serve(self, request: web.Request, api: _Api) -> web.StreamResponse:
        at = self._answering.arrive()
        info, code, token = self._tokens.check(request.headers.get("Authorization"), at.mono)
        if info is None:
            return self._answering.refuse_token(request, at, token, code)
        app_id = info.app_id
        tenant = info.tenant_key or self._tenants.home_key
        bucket = (api.bucket, app_id, tenant)
        refused = self._gateways.refusal(api.path, bucket, at.mono, at.wall)
        record = functools.partial(
            self._answering.record, token=token, app_id=app_id, tenant_key=tenant
        )
        if refused is not None:
            record(request, at, 429, RATE_LIMITED_CODE)
            return error_response(429, RATE_LIMITED_CODE, RATE_LIMITED_MSG, at.log_id, refused)
        self._api_count += 1
        if self._api_count == self.faults.revoke_token_after:
            self._tokens.revoke(token)  # this request still succeeds; the next one does not
        fault = self.faults.pick(self._fault_rng)
        delay = self._delay()
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not Fault.NONE:
            return await self._fault(request, at, api, fault, record)
        try:
            if app_id in self._rules.denied_apps:
                raise ApiError(121005, "the app's creator is not a VC admin")
            body = await self._answers[api.path](request.query, info)
        except ApiError as exc:
            status, msg = api.errors[exc.code]
            record(request, at, status, exc.code)
            return error_response(status, exc.code, msg, at.log_id)
        record(request, at, 200, 0)
        return json_response(body, at.log_id)

    async def _answer_participant_list(self, params: Mapping[str, str], info: TokenInfo) -> bytes:
        permitted = self._tokens.apps[info.app_id].user_id_permission
        data = self._tenants.dataset(info.tenant_key)
        raw_start = params.get("meeting_start_time", "")
        if raw_start.isascii() and raw_start.isdigit():
            meeting = data.find(params.get("meeting_no", ""), int(raw_start))
            if meeting is not None and data.costly(meeting, _THREAD_BUILD_MIN):
                await self._build(data, meeting, permitted)
        return answer_page(
            params,
            data,
            self._rules,
            self._page_tokens,
            permitted=permitted,
            now=self._clock,
        )

    async def _answer_meeting_list(self, params: Mapping[str, str], info: TokenInfo) -> bytes:
        return answer_meeting_list(
            params,
            self._tenants.dataset(info.tenant_key),
            self._rules,
            self._page_tokens,
            permitted=self._tokens.apps[info.app_id].user_id_permission,
            rule=self.listing,
            now=self._clock,
        )

    async def _build(self, data: Dataset, meeting: MeetingInfo, permitted: bool) -> None:
        """Generate a meeting's rows in a worker thread, once however many ask.

        Generating a 3,000-participant webinar takes tens of milliseconds; done on the
        event loop it would hold back every other request and then let them reach the
        gateway in a bunch, which a sliding window would refuse as a burst the client
        never sent.
        """
        key = (id(data), meeting.index)  # each tenant's dataset numbers its meetings from 0
        task = self._builds.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._build_rows(data, meeting, permitted)
            )
            self._builds[key] = task
            task.add_done_callback(lambda _: self._builds.pop(key, None))
        await asyncio.shield(task)

    async def _build_rows(self, data: Dataset, meeting: MeetingInfo, permitted: bool) -> None:
        built = await asyncio.to_thread(data.build, meeting, UserIdType.OPEN_ID, permitted)
        if not data.has_rows(meeting):
            data.store(meeting, built, UserIdType.OPEN_ID, permitted)

    def _delay(self) -> float:
        latency = self._latency
        if isinstance(latency, Latency):
            return latency.sample(self._fault_rng)
        return float(latency)

    async def _fault(
        self,
        request: web.Request,
        at: Arrival,
        api: _Api,
        fault: Fault,
        recorder: Callable[..., None],
    ) -> web.StreamResponse:
        def record(status: int, code: int | None) -> None:
            recorder(request, at, status, code, fault=fault.value)

        if fault is Fault.SERVER_ERROR:
            status = self.faults.error_status
            record(status, 121001)
            return error_response(status, 121001, api.errors[121001][1], at.log_id)
        if fault is Fault.HTML:
            record(502, None)
            return web.Response(
                body=_HTML_502,
                status=502,
                headers={"Content-Type": "text/html", LOGID_HEADER: at.log_id},
            )
        body = api.partial
        if fault is Fault.TRUNCATED:
            record(200, None)
            return json_response(body, at.log_id)
        # RESET: promise a long body, send part of it, then drop the connection with an RST.
        record(0, None)
        response = web.StreamResponse(headers={"Content-Type": JSON_TYPE, LOGID_HEADER: at.log_id})
        response.content_length = len(body) * 4
        await response.prepare(request)
        await response.write(body)
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return response
