"""The Emulator: an aiohttp.web server on 127.0.0.1 speaking the platform's protocol.

Order of checks for ``GET participant_list`` and ``GET meeting_list`` alike (as the
platform's gateway, then backend): authorization header and token → the API's own
rate-limit gateway (forced windows first) → injected fault → latency → a denied app →
the endpoint's own rules (``_api``, ``_meeting_list``). Every answer, errors and faults
included, carries ``X-Tt-Logid``; error bodies also carry ``error.log_id``.

The identity endpoints (user OAuth, store apps) and their controls come from the
``IdentityEndpoints`` mixin (``_identity``). A VC API finds the data a token may read
with ``self._dataset_for(info)`` (its tenant's meetings) and charges the gateway bucket
``self._bucket(api, info)`` (per API, app and tenant).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .._constants import (
    API_MEETING_LIST,
    API_PARTICIPANT_LIST,
    LOGGER_NAME,
    LOGID_HEADER,
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    RATELIMIT_LIMIT_HEADER,
    RATELIMIT_RESET_HEADER,
    TENANT_TOKEN_PATH,
    TOKEN_MAX_LIFETIME,
)
from ..errors import RATE_LIMITED_CODE
from ..models import JSON_ENCODER, MeetingQuery, MeetingStatus, Participant, UserIdType
from ..ratelimit._protocol import RateLimit
from ._answering import _JSON, RequestRecord
from ._api import ERRORS, ApiError, PageTokens, QueryRules, answer_page
from ._data import Dataset
from ._faults import Fault, Faults, Latency
from ._gateway import Gateway, WindowMode, format_reset
from ._identity import IdentityEndpoints
from ._meeting_list import (
    MEETING_LIST_ERRORS,
    ListedMeeting,
    ListingRule,
    answer_meeting_list,
    list_meetings,
    listed_meeting,
)
from ._meetings import MeetingInfo
from ._options import (
    DEFAULT_REDIRECT_URIS,
    AppTickets,
    Clocks,
    DefaultApp,
    MeetingData,
    UserOAuth,
)
from ._tenants import find_meeting, ground_truth
from ._tokens import CredentialError, TokenInfo, TokenStore

__all__ = ["Emulator", "RequestRecord"]

_DEFAULT_RATE = RateLimit()
# The option groups' defaults, shared: they are frozen.
_DATA, _APP, _OAUTH = MeetingData(), DefaultApp(), UserOAuth()
_TICKETS, _CLOCKS = AppTickets(), Clocks()
# Meetings at least this large (and the first meeting, which builds the directory of
# people) are generated in a worker thread; smaller ones take about a millisecond, less
# than the hand-off to a thread costs.
_THREAD_BUILD_MIN = 150

log = logging.getLogger(LOGGER_NAME + ".emulator")

RATE_LIMITED_MSG = "request trigger frequency limit"
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
_APIS = (_PARTICIPANT_LIST, _MEETING_LIST)


class Emulator(IdentityEndpoints):
    """A local Feishu VC platform. Use as ``async with Emulator(...) as emu:``.

    See the package docstring for the semantics of every rule and choice.

    Parameters (all keyword-only):
        meetings, seed: how many ended meetings to generate, from which seed
            (deterministic).
        rate_limit, window: participant_list's gateway limit per app (``None``: no
            gateway) and the window of both gateways, ``"sliding"`` or ``"fixed"``.
        meeting_list_rate_limit: meeting_list's own limit per app (``None``: none).
        meeting_listing: when meeting_list lists a meeting: ``"start"`` (its start lies
            in the range) or ``"overlap"`` (it overlaps the range at all).
        faults: a :class:`Faults` (off by default). latency: seconds or a
            :class:`Latency` added to each answer of either API (overrides
            ``faults.latency`` when non-zero).
        token_lifetime: seconds a tenant token lives (7200; scale it down in tests).
        port, host: where to listen (ephemeral port on 127.0.0.1 by default).
        data: a :class:`MeetingData`, the shape of the generated meetings (webinars,
            ongoing, recurring and external meetings, the anchor).
        app: a :class:`DefaultApp`, the default app's credentials and switches.
        oauth: a :class:`UserOAuth`, the user OAuth lifetimes and ``auto_approve``.
        tickets: an :class:`AppTickets`, where store apps' app_tickets are pushed.
        clocks: :class:`Clocks`, the wall and monotonic time sources.
    """

    def __init__(
        self,
        *,
        meetings: int = 50,
        seed: int = 0,
        rate_limit: RateLimit | None = _DEFAULT_RATE,
        meeting_list_rate_limit: RateLimit | None = _DEFAULT_RATE,
        window: WindowMode = "sliding",
        meeting_listing: ListingRule = "start",
        faults: Faults | None = None,
        latency: float | Latency = 0.0,
        token_lifetime: float = float(TOKEN_MAX_LIFETIME),
        host: str = "127.0.0.1",
        port: int = 0,
        data: MeetingData = _DATA,
        app: DefaultApp = _APP,
        oauth: UserOAuth = _OAUTH,
        tickets: AppTickets = _TICKETS,
        clocks: Clocks = _CLOCKS,
    ) -> None:
        if meeting_listing not in ("start", "overlap"):
            raise ValueError(f"meeting_listing={meeting_listing!r}: must be 'start' or 'overlap'")
        clock = self._clock = clocks.wall
        self._monotonic = clocks.monotonic
        self._data = Dataset(
            meetings,
            seed=seed,
            now=clock(),
            webinars=data.webinars,
            webinar_size=data.webinar_size,
            anchor=data.anchor,
            cache_size=data.cache_meetings,
            ongoing=data.ongoing,
            recurring=data.recurring,
            external=data.external,
        )
        self.meetings: list[MeetingQuery] = [m.query for m in self._data.ended]
        self.ongoing: list[MeetingQuery] = [m.query for m in self._data.ongoing]
        self.meeting_listing: ListingRule = meeting_listing
        self.requests: list[RequestRecord] = []
        self.rate_limit = rate_limit
        self.meeting_list_rate_limit = meeting_list_rate_limit
        self._rates = {
            PARTICIPANT_LIST_PATH: rate_limit,
            MEETING_LIST_PATH: meeting_list_rate_limit,
        }
        self._gateways = {
            path: Gateway(rate, window) if rate is not None else None
            for path, rate in self._rates.items()
        }
        self._window: WindowMode = window
        self.faults = faults or Faults()
        self._fault_rng = random.Random(self.faults.seed)
        self._latency = latency if isinstance(latency, Latency) or latency else self.faults.latency
        self._tokens = TokenStore(token_lifetime)
        creds = random.Random(f"app:{seed}")
        self.app_id = app.app_id or f"cli_{creds.getrandbits(64):016x}"
        self.app_secret = app.app_secret or f"{creds.getrandbits(128):032x}"
        self._tokens.add_app(
            self.app_id,
            self.app_secret,
            user_id_permission=app.user_id_permission,
            redirect_uris=app.redirect_uris,
            refresh_user_token=app.refresh_user_token,
        )
        self._rules = QueryRules()
        self._page_tokens = PageTokens(hashlib.sha256(f"page-token:{seed}".encode()).digest())
        # Per path: (monotonic end of the forced window, its length).
        self._forced: dict[str, tuple[float, float]] = {}
        self._answers: dict[str, Callable[[Mapping[str, str], TokenInfo], Awaitable[bytes]]] = {
            PARTICIPANT_LIST_PATH: self._answer_participant_list,
            MEETING_LIST_PATH: self._answer_meeting_list,
        }
        self._api_count = 0
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._builds: dict[tuple[int, int], asyncio.Task[None]] = {}
        self.base_url = ""
        self._logid_prefix = ""
        self._logid_n = 0

        def make_dataset(count: int, tenant_seed: int) -> Dataset:
            # Another tenant's meetings: same shape and anchor day, its own seed.
            return Dataset(
                count,
                seed=tenant_seed,
                now=clock(),
                webinars=data.webinars,
                webinar_size=data.webinar_size,
                anchor=self._data.anchor,
                cache_size=data.cache_meetings,
            )

        self._init_identity(
            seed=seed,
            make_dataset=make_dataset,
            user_token_lifetime=oauth.user_token_lifetime,
            refresh_token_lifetime=oauth.refresh_token_lifetime,
            code_lifetime=oauth.code_lifetime,
            refresh_grace=oauth.refresh_grace,
            auto_approve=oauth.auto_approve,
            ticket_callback_url=tickets.ticket_callback_url,
            ticket_grace=tickets.ticket_grace,
        )

    def __repr__(self) -> str:
        return (
            f"Emulator(base_url={self.base_url!r}, app_id={self.app_id!r}, "
            f"meetings={len(self.meetings)})"
        )

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> Emulator:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        app = web.Application()
        app.router.add_get(PARTICIPANT_LIST_PATH, self._participant_list)
        app.router.add_get(MEETING_LIST_PATH, self._meeting_list)
        app.router.add_post(TENANT_TOKEN_PATH, self._tenant_token)
        self._add_identity_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._logid_prefix = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)
        log.info("emulator serving at %s", self.base_url)
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        builds = list(self._builds.values())
        for task in builds:
            task.cancel()
        await asyncio.gather(*builds, return_exceptions=True)
        await self._close_identity()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- control and ground truth ---------------------------------------------------

    @property
    def webinars(self) -> list[MeetingQuery]:
        return [m.query for m in self._data.ended if m.webinar]

    def meeting_info(self, meeting: MeetingQuery | str, start: int | None = None) -> MeetingInfo:
        """The meeting a query names (by number and exact start), or the one meeting that
        held a number. ``KeyError`` if there is none; ``ValueError`` if a number alone is
        ambiguous (it recurs: pass the query or ``start``)."""
        return find_meeting(self._data, meeting, start)

    def participants(self, query: MeetingQuery | str) -> list[Participant]:
        """What the default app receives for ``query`` (a meeting number, if it does not
        recur: every participant, open_id ids), in the order pages deliver them. Other
        tenants: ``tenant(key)``."""
        permitted = self._tokens.apps[self.app_id].user_id_permission
        return ground_truth(self._data, query, permitted)

    def listed_meetings(
        self,
        start: int,
        end: int,
        *,
        status: MeetingStatus | int = MeetingStatus.ENDED,
        meeting_no: str | None = None,
        user_id: str | None = None,
        room_id: str | None = None,
        meeting_type: int | None = None,
        include_webinar: bool = False,
        include_external: bool = False,
        user_id_type: UserIdType | str = UserIdType.OPEN_ID,
        app_id: str | None = None,
    ) -> list[ListedMeeting]:
        """What meeting_list lists for this query across all its pages, in page order, as
        the default app (or ``app_id``) receives it. ``ValueError`` naming the code for a
        query the endpoint would refuse."""
        params = {
            "start_time": str(start),
            "end_time": str(end),
            "meeting_status": str(int(status)),
            "user_id_type": str(user_id_type),
            "include_webinar": str(include_webinar).lower(),
            "include_external_meetings": str(include_external).lower(),
        }
        for name, value in (
            ("meeting_no", meeting_no),
            ("user_id", user_id),
            ("room_id", room_id),
            ("meeting_type", meeting_type),
        ):
            if value is not None:
                params[name] = str(value)
        permitted = self._tokens.apps[app_id or self.app_id].user_id_permission
        try:
            query, _, found = list_meetings(
                params, self._data, self._rules, rule=self.meeting_listing, now=self._clock
            )
        except ApiError as exc:
            raise ValueError(f"meeting_list would answer {exc.code} {exc.detail}") from None
        return [listed_meeting(m, self._data, query.id_type, permitted) for m in found]

    def add_app(
        self,
        app_id: str | None = None,
        app_secret: str | None = None,
        *,
        user_id_permission: bool = False,
        name: str = "",
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        refresh_user_token: bool = True,
    ) -> tuple[str, str]:
        """Register another custom app (of the home tenant); returns its credentials."""
        app_id = app_id or "cli_" + secrets.token_hex(8)
        app_secret = app_secret or secrets.token_hex(16)
        self._tokens.add_app(
            app_id,
            app_secret,
            user_id_permission=user_id_permission,
            name=name,
            redirect_uris=redirect_uris,
            refresh_user_token=refresh_user_token,
        )
        return app_id, app_secret

    def tenant_token(self, app_id: str | None = None, *, tenant_key: str | None = None) -> str:
        """The tenant token the token endpoint would hand ``app_id`` now (no request); a
        store app's needs the ``tenant_key`` of one of its tenants."""
        app = self._tokens.apps.get(app_id or self.app_id)
        if app is None:
            raise KeyError(f"unknown app {app_id!r}")
        if app.store and tenant_key not in app.tenant_keys:
            raise KeyError(f"tenant {tenant_key!r} has not installed {app.app_id!r}")
        if not app.store and tenant_key not in (None, self.tenant_key):
            raise KeyError(f"a custom app belongs to the home tenant, not {tenant_key!r}")
        # A custom app's tokens are the home tenant's: recorded as None, as the endpoint does.
        key = tenant_key if app.store else None
        return self._tokens.tenant_token(app.app_id, self._monotonic(), key)[0]

    def add_user_token(self, expires_in: float = 7200.0, *, app_id: str | None = None) -> str:
        """Register a static ``u-`` token of ``app_id`` (default app) living ``expires_in`` s."""
        app = app_id or self.app_id
        if app not in self._tokens.apps:
            raise KeyError(f"unknown app {app!r}")
        return self._tokens.user_token(app, expires_in, self._monotonic())

    def revoke_token(self, token: str) -> None:
        """Revoke an access token (99991663 from now on) or a refresh token (20064)."""
        if not self._tokens.revoke(token) and not self._oauth.revoke(token):
            raise KeyError("unknown token")

    @staticmethod
    def _name(meeting: MeetingQuery | str) -> str | tuple[str, int]:
        if isinstance(meeting, MeetingQuery):
            return meeting.meeting_no, meeting.meeting_start_time
        return meeting

    def deny_meeting(self, meeting: MeetingQuery | str) -> None:
        """participant_list answers 121005 (HTTP 403) for this meeting (a query: that one
        meeting; a number: every meeting that held it, and meeting_list filtered by it)."""
        self._rules.denied.add(self._name(meeting))

    def purge_meeting(self, meeting: MeetingQuery | str) -> None:
        """The meeting still exists (meeting_list lists it) but its data is gone:
        participant_list answers 121004 from now on. A query or a number, as above."""
        self._rules.purged.add(self._name(meeting))

    def deny_app(self, app_id: str | None = None) -> None:
        """The app's creator lacks the VC admin role: every participant_list and
        meeting_list request of ``app_id`` (default app) answers 121005 (HTTP 403)."""
        self._rules.denied_apps.add(app_id or self.app_id)

    def force_rate_limit(self, seconds: float, path: str | None = None) -> None:
        """Every request to ``path`` (default: both VC data APIs) answers 429 for the next
        ``seconds``, whatever its gateway says."""
        known = [api.path for api in _APIS]
        if path is not None and path not in known:
            raise ValueError(f"path={path!r}: not a VC data API of the emulator")
        for p in known if path is None else [path]:
            until, _ = self._forced.get(p, (0.0, 0.0))
            self._forced[p] = (max(until, self._monotonic() + seconds), seconds)

    def reset_log(self) -> None:
        self.requests.clear()

    def max_in_window(
        self, period: float, path: str = PARTICIPANT_LIST_PATH, *, admitted_only: bool = False
    ) -> int:
        """The most requests to ``path`` that arrived within any ``period`` seconds (a
        half-open span). ``admitted_only`` counts only those the gateway let through
        (leaving out 429s and auth failures)."""
        times = sorted(
            r.time
            for r in self.requests
            if r.path == path and not (admitted_only and (r.status == 429 or r.app_id is None))
        )
        best = lo = 0
        for hi, t in enumerate(times):
            while t - times[lo] >= period:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # --- handlers -------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        log_id = self._log_id()
        self._record(request, self._monotonic(), self._clock(), None, 404, None, log_id)
        return web.Response(
            text="404 page not found",
            status=404,
            headers={LOGID_HEADER: log_id},
        )

    async def _tenant_token(self, request: web.Request) -> web.Response:
        mono, wall = self._monotonic(), self._clock()
        log_id = self._log_id()
        failed = self._injected(request, "tenant_token", mono, wall, log_id)
        if failed is not None:
            return failed
        app_id: str | None = None
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw_id = body.get("app_id")
            app_id = raw_id if isinstance(raw_id, str) else None
        try:
            app = self._tokens.authenticate(body, store=False)
        except CredentialError as err:
            code, msg = err.code, err.msg
        else:
            token, left = self._tokens.tenant_token(app.app_id, mono)
            self._record(
                request, mono, wall, None, 200, 0, log_id, token_request=True, app_id=app_id
            )
            answer = {
                "code": 0,
                "msg": "ok",
                "tenant_access_token": token,
                "expire": max(1, int(left)),
            }
            return web.Response(
                body=JSON_ENCODER.encode(answer),
                headers={"Content-Type": _JSON, LOGID_HEADER: log_id},
            )
        self._record(
            request, mono, wall, None, 400, code, log_id, token_request=True, app_id=app_id
        )
        return self._json(400, code, msg, log_id)

    async def _participant_list(self, request: web.Request) -> web.StreamResponse:
        return await self._vc_api(request, _PARTICIPANT_LIST)

    async def _meeting_list(self, request: web.Request) -> web.StreamResponse:
        return await self._vc_api(request, _MEETING_LIST)

    def _throttle(
        self, api: _Api, info: TokenInfo, mono: float, wall: float
    ) -> dict[str, str] | None:
        """``None`` if the API's gateway admits the request, else the 429's headers."""
        until, span = self._forced.get(api.path, (0.0, 0.0))
        reset = until - mono if until > mono else None
        gateway = self._gateways[api.path]
        if reset is None and gateway is not None:
            now = wall if self._window == "fixed" else mono
            reset = gateway.admit(self._bucket(api.bucket, info), now)
        if reset is None:
            return None
        # A forced window without a gateway is formatted at the forced span's scale.
        rate = self._rates[api.path] or RateLimit(period=span)
        return {
            RATELIMIT_LIMIT_HEADER: str(rate.requests),
            RATELIMIT_RESET_HEADER: format_reset(reset, rate.period),
        }

    async def _vc_api(self, request: web.Request, api: _Api) -> web.StreamResponse:
        mono, wall = self._monotonic(), self._clock()
        log_id = self._log_id()
        info, code, token = self._tokens.check(request.headers.get("Authorization"), mono)
        if info is None:
            return self._auth_refusal(request, mono, wall, token, code, log_id)
        app_id = info.app_id
        refused = self._throttle(api, info, mono, wall)
        if refused is not None:
            self._record(request, mono, wall, token, 429, RATE_LIMITED_CODE, log_id, app_id=app_id)
            return self._json(429, RATE_LIMITED_CODE, RATE_LIMITED_MSG, log_id, refused)
        self._api_count += 1
        if self._api_count == self.faults.revoke_token_after:
            self._tokens.revoke(token)  # this request still succeeds; the next one does not
        fault = self.faults.pick(self._fault_rng)
        delay = self._delay()
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not Fault.NONE:
            return await self._fault(request, api, fault, mono, wall, token, app_id, log_id)
        try:
            if app_id in self._rules.denied_apps:
                raise ApiError(121005, "the app's creator is not a VC admin")
            body = await self._answers[api.path](request.query, info)
        except ApiError as exc:
            status, msg = api.errors[exc.code]
            self._record(request, mono, wall, token, status, exc.code, log_id, app_id=app_id)
            return self._json(status, exc.code, msg, log_id)
        self._record(request, mono, wall, token, 200, 0, log_id, app_id=app_id)
        return web.Response(body=body, headers={"Content-Type": _JSON, LOGID_HEADER: log_id})

    async def _answer_participant_list(self, params: Mapping[str, str], info: TokenInfo) -> bytes:
        permitted = self._tokens.apps[info.app_id].user_id_permission
        data = self._dataset_for(info)
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
            self._dataset_for(info),
            self._rules,
            self._page_tokens,
            permitted=self._tokens.apps[info.app_id].user_id_permission,
            rule=self.meeting_listing,
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
        api: _Api,
        fault: Fault,
        mono: float,
        wall: float,
        token: str,
        app_id: str,
        log_id: str,
    ) -> web.StreamResponse:
        name = fault.value
        if fault is Fault.SERVER_ERROR:
            status = self.faults.error_status
            self._record(
                request, mono, wall, token, status, 121001, log_id, app_id=app_id, fault=name
            )
            return self._json(status, 121001, api.errors[121001][1], log_id)
        if fault is Fault.HTML:
            self._record(request, mono, wall, token, 502, None, log_id, app_id=app_id, fault=name)
            return web.Response(
                body=_HTML_502,
                status=502,
                headers={"Content-Type": "text/html", LOGID_HEADER: log_id},
            )
        body = api.partial
        if fault is Fault.TRUNCATED:
            self._record(request, mono, wall, token, 200, None, log_id, app_id=app_id, fault=name)
            return web.Response(body=body, headers={"Content-Type": _JSON, LOGID_HEADER: log_id})
        # RESET: promise a long body, send part of it, then drop the connection with an RST.
        self._record(request, mono, wall, token, 0, None, log_id, app_id=app_id, fault=name)
        response = web.StreamResponse(headers={"Content-Type": _JSON, LOGID_HEADER: log_id})
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
