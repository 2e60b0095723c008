"""A local, faithful Feishu / Lark VC platform for tests, benchmarks and demos.

::

    async with Emulator(meetings=50, seed=0) as emu:
        emu.base_url, emu.app_id, emu.app_secret   # point any client here
        emu.meetings                                # list[MeetingQuery] it holds
        emu.participants(emu.meetings[0])           # ground truth for a query
        emu.requests                                # list[RequestRecord]

A real ``aiohttp.web`` server on 127.0.0.1 (ephemeral port by default) with two
endpoints: ``POST /open-apis/auth/v3/tenant_access_token/internal`` and
``GET /open-apis/vc/v1/participant_list``. Any other path answers 404. The command
``feishu-vc emulator --port 8787 --meetings 200 --seed 7`` serves one until Ctrl-C.

Semantics where the reference leaves room (decided here, so tests can rely on them):

* **Auth.** ``Authorization: Bearer <token>``. Missing, empty or a bare ``Bearer`` →
  99991661; a token not starting ``t-``/``u-`` (or another scheme) → 99991671; unknown,
  revoked or expired tenant token → 99991663; expired user token → 99991677. All auth
  errors use HTTP 400 (the platform says "varies, often 400"). Auth failures do not
  reach the rate-limit gateway (they have no app to charge).
* **Token endpoint.** Unknown ``app_id`` or a malformed body → 10003, a wrong secret →
  10014, both HTTP 400 with ``{"code", "msg", "error": {"log_id"}}``. A success is
  ``{"code":0,"msg":"ok","tenant_access_token":"t-…","expire":<whole seconds left>}``;
  the same token is returned while more than ``token_lifetime * 1800/7200`` seconds
  remain, then a new one (the old one stays valid until its own end). A revoked token
  is never handed out again.
* **Rate limit.** One bucket per (participant_list, app); user tokens are charged to
  their app. ``window="sliding"`` (a log: no ``period`` span ever admits more than the
  limit) or ``"fixed"`` (calendar windows aligned to multiples of ``period`` since the
  epoch, by wall clock). Over the limit: HTTP 429, body ``{"code":99991400,"msg":
  "request trigger frequency limit","error":{"log_id"}}``, headers
  ``x-ogw-ratelimit-limit`` and ``x-ogw-ratelimit-reset``: whole seconds rounded up (at
  least 1) when ``period >= 60``, else a decimal string such as ``"0.350"`` so scaled
  tests can use it. **Refused requests are not counted** toward the window.
  ``rate_limit=None`` disables the gateway; ``force_rate_limit(seconds)`` answers 429 to
  everything for a while regardless.
* **Parameters**, in this order: a required parameter missing, or any integer parameter
  (times, ``meeting_status``, ``page_size``) not an integer, ``page_size`` outside
  20..100, an unknown ``user_id_type`` or a ``webinar_user_role`` other than "0"/"3" →
  121003; ``meeting_no`` not digits or negative → 126003; not 9 digits → 126004; start
  below 0 or after now → 126005; end before start or more than a day after it →
  126006; both ``user_id`` and ``room_id`` → 126007. An empty optional value counts as
  not given.
* **Lookup.** A meeting number the emulator does not hold, times that do not match the
  meeting to the minute, or a ``meeting_status`` other than 2 (every generated meeting
  has ended) → 126009. A denied meeting (``deny_meeting``) → 121005, HTTP 403. A purged
  meeting (``purge_meeting``: exists, data gone) → 121004, HTTP 404. ``room_id`` on a
  webinar → 126015; ``webinar_user_role`` on a meeting that is not a webinar → 121002.
* **Paging.** Default ``page_size`` 20. ``page_token`` is opaque: the offset with an
  HMAC binding it to meeting, times, filters and ``user_id_type`` (not ``page_size``,
  which may change between pages). A garbage or foreign token → 121003. ``has_more``
  is true exactly when more rows follow, and only then a ``page_token`` is present;
  the last page has no ``page_token`` key. Tokens are derived from ``seed``, so they
  stay valid across restarts of an emulator with the same seed.
* **Ids.** ``user_id_type`` picks the id in ``user_id``: ``ou_…`` (open_id, default),
  ``on_…`` (union_id), or the tenant user id. ``employee_id``, and ``user_id`` under
  ``user_id_type=user_id``, are only present for an app registered with
  ``user_id_permission=True`` (the contact:user.employee_id:readonly scope); otherwise
  they are omitted. Rooms carry ``meeting_room_id`` (``omm_…``) and no user ids. Ids
  are the same for every app (the real open_id differs per app).
* **Faults** (``Faults``) hit participant_list requests that passed auth and the
  gateway, one seeded draw per request: ``error_rate`` (HTTP ``error_status``, code
  121001), ``reset_rate`` (headers and part of the body, then a TCP RST),
  ``truncate_rate`` (HTTP 200, JSON cut short), ``html_rate`` (HTTP 502, an nginx
  text/html page); ``revoke_token_after=N`` revokes the token of the Nth request;
  ``latency`` delays answers. ``deny_meeting``, ``purge_meeting`` and
  ``force_rate_limit`` act at once.
* **Request log.** ``emu.requests`` holds a :class:`RequestRecord` per request, in
  answer order: arrival ``time`` (monotonic) and ``wall``, method, path, query params,
  bearer token (never in the repr), HTTP status (0 for a reset), body code (``None``
  for a non-JSON body or a reset), log id, ``token_request`` (the token endpoint),
  ``app_id`` and ``fault``. ``max_in_window(period)`` gives the most participant_list
  requests that arrived within any span of ``period`` seconds.
* **Ground truth.** ``emu.participants(query)`` is what the default app receives for
  that query across all pages, in page order (filters and ``user_id_type`` applied);
  given a meeting number, every participant with open_id ids.
* **Not modelled:** ongoing or upcoming meetings (every generated meeting has ended, so
  ``meeting_status`` 1 or 3 finds nothing), per-app open_ids, the monthly quota.

Time is injectable: ``clock`` (wall, default ``time.time``) for "start not in the
future", the fixed window and record wall times; ``monotonic`` (default
``time.monotonic``) for the sliding window, token lifetimes and record times.
"""

from ._data import MeetingInfo
from ._faults import Fault, Faults, Latency, TokenEndpoint
from ._oauth import AuthorizeError, OAuthUser
from ._server import Emulator, RequestRecord
from ._store_apps import StoreApp
from ._tenants import TenantView

__all__ = [
    "AuthorizeError",
    "Emulator",
    "Fault",
    "Faults",
    "Latency",
    "MeetingInfo",
    "OAuthUser",
    "RequestRecord",
    "StoreApp",
    "TenantView",
    "TokenEndpoint",
]
