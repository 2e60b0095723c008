"""The Emulator: an aiohttp.web server on 127.0.0.1 speaking the platform's protocol.

It is made of parts it holds, each putting its own routes on the server: the VC data
APIs (``_vc_apis``: participant_list, meeting_list, their gateways and faults), the
identity side (``_identity``: the token endpoints, user OAuth, store apps) and the events
(``_event_parts``: webhook pushes, the long connection). They answer
through one :class:`~._answering.Answering` (the request log, log ids) and read the
same tokens and tenants. The Emulator itself builds them from its options, serves, and
hands on their controls and ground truth.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from aiohttp import web

from .._constants import (
    LOGGER_NAME,
    LOGID_HEADER,
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    TOKEN_MAX_LIFETIME,
)
from ..models import MeetingQuery, MeetingStatus, Participant, UserIdType
from ..ratelimit._protocol import RateLimit
from ._answering import Answering, RequestRecord, most_in_window
from ._api import ApiError, QueryRules
from ._data import Dataset
from ._event_parts import EventParts
from ._faults import Faults, Latency
from ._gateway import Gateways, WindowMode
from ._identity import Identity
from ._meeting_list import (
    ListedMeeting,
    ListingRule,
    list_meetings,
    listed_meeting,
    listing_params,
)
from ._meetings import MeetingInfo
from ._oauth import OAuthUser
from ._options import (
    AppTickets,
    Clocks,
    DefaultApp,
    EventDelivery,
    MeetingData,
    MeetingsEnding,
    UserOAuth,
)
from ._tenants import Tenants, find_meeting, ground_truth
from ._tokens import TokenStore
from ._vc_apis import VCApis
from ._webhook_push import WebhookPush

__all__ = ["Emulator", "RequestRecord"]

log = logging.getLogger(LOGGER_NAME + ".emulator")

_DEFAULT_RATE = RateLimit()
# The option groups' defaults, shared: they are frozen.
_DATA, _APP, _OAUTH = MeetingData(), DefaultApp(), UserOAuth()
_TICKETS, _CLOCKS, _ENDING = AppTickets(), Clocks(), MeetingsEnding()
_EVENTS = EventDelivery()

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _identity_method(
    method: Callable[Concatenate[Identity, _P], _R],
) -> Callable[Concatenate[Emulator, _P], _R]:
    """``emu.name(...)`` is ``emu``'s :class:`Identity` part's ``name(...)``: its own
    signature and docstring, written once."""

    @functools.wraps(method)
    def call(emu: Emulator, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return method(emu._identity, *args, **kwargs)

    return call


class Emulator:
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
        ending: a :class:`MeetingsEnding`, meetings that end as the wall clock passes
            their ends (none by default).
        app: a :class:`DefaultApp`, the default app's credentials and switches.
        oauth: a :class:`UserOAuth`, the user OAuth lifetimes and ``auto_approve``.
        tickets: an :class:`AppTickets`, where store apps' app_tickets are pushed.
        clocks: :class:`Clocks`, the wall and monotonic time sources.
        events: an :class:`EventDelivery`, how the meetings of ``ending`` are told as
            they end (webhook or long connection) and the faults of that.
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
        ending: MeetingsEnding = _ENDING,
        app: DefaultApp = _APP,
        oauth: UserOAuth = _OAUTH,
        tickets: AppTickets = _TICKETS,
        clocks: Clocks = _CLOCKS,
        events: EventDelivery = _EVENTS,
    ) -> None:
        if meeting_listing not in ("start", "overlap"):
            raise ValueError(f"meeting_listing={meeting_listing!r}: must be 'start' or 'overlap'")
        self._clock, self._monotonic = clocks.wall, clocks.monotonic
        self._data = Dataset(meetings, seed=seed, clock=self._clock, shape=data, ending=ending)
        # Made once: most emulators have no meetings that end, and tests index these.
        self._ended = [m.query for m in self._data.ended]
        self._ongoing = [m.query for m in self._data.ongoing]
        self.rate_limit = rate_limit
        self.meeting_list_rate_limit = meeting_list_rate_limit
        rates = {PARTICIPANT_LIST_PATH: rate_limit, MEETING_LIST_PATH: meeting_list_rate_limit}
        self._gateways = Gateways(rates, window)
        self._answering = Answering(clocks)
        self._tokens = TokenStore(token_lifetime)
        tenants = Tenants(seed, self._data, data, self._clock)
        self._identity = Identity(
            self._answering,
            self._tokens,
            tenants,
            seed=seed,
            app=app,
            oauth=oauth,
            tickets=tickets,
            monotonic=self._monotonic,
            served_at=lambda: self.base_url,
        )
        self.app_id, self.app_secret = self._identity.app_id, self._identity.app_secret
        self._rules = QueryRules()
        self._vc = VCApis(
            self._answering,
            self._tokens,
            tenants,
            self._rules,
            self._gateways,
            seed=seed,
            faults=faults or Faults(),
            latency=latency,
            listing=meeting_listing,
            clock=self._clock,
        )
        self.event_options = events
        self._events = EventParts(
            self._data.ending, events, self._answering, self._tokens, self.app_id,
            tenant_key=tenants.home_key, seed=seed, clock=self._clock,
        )  # fmt: skip
        self.events, self.event_router = self._events.feed, self._events.router
        self.long_connections = self._events.long_connections
        self.ws_acks = self.long_connections.acks  # every ack of a long connection
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

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
        self._vc.add_routes(app)
        self._identity.add_routes(app)
        self._events.add_routes(app)
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
        self._answering.start()
        self._events.start()
        log.info("emulator serving at %s", self.base_url)
        return self

    async def close(self) -> None:
        await self._events.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._vc.close()
        await self._identity.close()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _not_found(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        self._answering.record(request, at, 404, None)
        return web.Response(
            text="404 page not found", status=404, headers={LOGID_HEADER: at.log_id}
        )

    # --- settings that may change while serving -------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered, in answer order (``reset_log`` empties it)."""
        return self._answering.requests

    @property
    def faults(self) -> Faults:
        """The faults of the VC APIs; a new value applies from the next request (its draws
        continue the sequence of the first one's seed)."""
        return self._vc.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._vc.faults = faults

    @property
    def meeting_listing(self) -> ListingRule:
        """When meeting_list lists a meeting: ``"start"`` or ``"overlap"``."""
        return self._vc.listing

    @meeting_listing.setter
    def meeting_listing(self, rule: ListingRule) -> None:
        self._vc.listing = rule

    @property
    def user(self) -> OAuthUser:
        """Who is signed in at the accounts host: the user who approves on the authorize
        page, and whom user_info names for ``add_user_token`` tokens."""
        return self._identity.oauth.user

    @user.setter
    def user(self, user: OAuthUser) -> None:
        self._identity.oauth.user = user

    @property
    def auto_approve(self) -> bool:
        """The authorize page approves at once (302) instead of asking."""
        return self._identity.oauth.auto_approve

    @auto_approve.setter
    def auto_approve(self, approve: bool) -> None:
        self._identity.oauth.auto_approve = approve

    @property
    def ticket_callback_url(self) -> str | None:
        """Where the app_tickets of store apps without a URL of their own are pushed."""
        return self._identity.tickets.callback_url

    @ticket_callback_url.setter
    def ticket_callback_url(self, url: str | None) -> None:
        self._identity.tickets.callback_url = url

    @property
    def webhook_pushes(self) -> list[WebhookPush]:
        """Every push of an event to ``EventDelivery.webhook_url``, re-pushes included."""
        return self._events.webhook_pushes

    def verify_webhook(self, url: str | None = None) -> Awaitable[bool]:
        """Check ``url`` (default: the webhook) as the platform does a saved request URL."""
        return self._events.verify_webhook(url)

    # --- ground truth of the home tenant's data -------------------------------------

    @property
    def accounts_url(self) -> str:
        """Base URL of the emulated accounts host (accounts.feishu.cn): the same server."""
        return self.base_url

    @property
    def tenant_key(self) -> str:
        """The home tenant: custom apps and ``emu.meetings`` belong to it."""
        return self._identity.tenant_key

    @property
    def meetings(self) -> list[MeetingQuery]:
        """The ended meetings' queries (exact times): the drawn ones, then those of
        :class:`MeetingsEnding` the wall clock has reached the end of, by end."""
        ended = self._data.ending.ended()
        return [*self._ended, *(m.query for m in ended)] if ended else self._ended

    @property
    def ongoing(self) -> list[MeetingQuery]:
        """The ongoing meetings' queries (``meeting_status`` 1, the moment their rows
        describe as the end): the drawn ones, then those of :class:`MeetingsEnding` not
        ended yet, as they are now."""
        still = self._data.ending.ongoing()
        return [*self._ongoing, *(m.query for m in still)] if still else self._ongoing

    @property
    def ending(self) -> list[MeetingQuery]:
        """The meetings of :class:`MeetingsEnding`, ended or not, as they end (their final
        queries, whose ``meeting_end_time`` is when), by end."""
        return [m.query for m in self._data.ending.finals]

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
        tenant_key: str | None = None,
    ) -> list[ListedMeeting]:
        """What meeting_list lists for this query across all its pages, in page order, as
        the default app (or ``app_id``) receives it in the home tenant (or ``tenant_key``'s).
        ``ValueError`` naming the code for a query the endpoint would refuse."""
        params = listing_params(start, end, status, user_id_type, include_webinar, include_external)
        filters = {"meeting_no": meeting_no, "user_id": user_id, "room_id": room_id}
        for name, value in {**filters, "meeting_type": meeting_type}.items():
            if value is not None:
                params[name] = str(value)
        permitted = self._tokens.apps[app_id or self.app_id].user_id_permission
        try:
            data = self._data if tenant_key is None else self._identity.tenants.dataset(tenant_key)
            query, _, found = list_meetings(
                params, data, self._rules, rule=self.meeting_listing, now=self._clock
            )
        except ApiError as exc:
            raise ValueError(f"meeting_list would answer {exc.code} {exc.detail}") from None
        return [listed_meeting(m, data, query.id_type, permitted) for m in found]

    # --- controls of the VC APIs ----------------------------------------------------

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
        self._gateways.force(seconds, path, self._monotonic())

    def reset_log(self) -> None:
        self.requests.clear()

    def on_record(self, callback: Callable[[RequestRecord], None] | None) -> None:
        """Call ``callback(record)`` as each request is logged, before its answer is sent
        (whoever asked has not seen it yet): a test can act at that exact point (stop a
        client, signal a process). ``None`` stops it."""
        self._answering.on_record = callback

    def max_in_window(
        self, period: float, path: str = PARTICIPANT_LIST_PATH, *, admitted_only: bool = False
    ) -> int:
        """The most requests to ``path`` that arrived within any ``period`` seconds (a
        half-open span). ``admitted_only`` counts only those the gateway let through
        (leaving out 429s and auth failures)."""
        return most_in_window(self.requests, period, path, admitted_only=admitted_only)

    # --- the identity side: apps, tokens, user OAuth, store apps, tenants ------------

    tenant = _identity_method(Identity.tenant)
    add_app = _identity_method(Identity.add_app)
    tenant_token = _identity_method(Identity.tenant_token)
    add_user_token = _identity_method(Identity.add_user_token)
    revoke_token = _identity_method(Identity.revoke_token)
    live_refresh_tokens = _identity_method(Identity.live_refresh_tokens)
    issued_tokens = _identity_method(Identity.issued_tokens)
    fail_token_endpoint = _identity_method(Identity.fail_token_endpoint)
    authorize_url = _identity_method(Identity.authorize_url)
    authorize = _identity_method(Identity.authorize)
    add_store_app = _identity_method(Identity.add_store_app)
    app_ticket = _identity_method(Identity.app_ticket)
    rotate_app_ticket = _identity_method(Identity.rotate_app_ticket)
    push_app_ticket = _identity_method(Identity.push_app_ticket)
