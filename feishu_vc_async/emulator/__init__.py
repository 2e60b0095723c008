"""A local, faithful Feishu / Lark VC platform for tests, benchmarks and demos.

::

    async with Emulator(meetings=50, seed=0) as emu:
        emu.base_url, emu.app_id, emu.app_secret   # point any client here
        emu.meetings                                # list[MeetingQuery]: ended meetings
        emu.ongoing                                 # list[MeetingQuery]: ongoing ones
        emu.ending                                  # those of MeetingsEnding, as they end
        emu.participants(emu.meetings[0])           # ground truth for a query
        emu.listed_meetings(start, end)             # ground truth of meeting_list
        emu.requests                                # list[RequestRecord]
        emu.accounts_url                            # the authorize page's host (same server)
        emu.add_store_app(tenants=2)                # a store app; emu.tenant(key) per tenant

The options tests set most are keywords: ``meetings``, ``seed``, ``rate_limit``,
``meeting_list_rate_limit``, ``window``, ``meeting_listing``, ``faults``, ``latency``,
``token_lifetime``, ``host``, ``port``. The others come in frozen groups, each with the
platform's defaults: ``data=MeetingData(...)`` (webinars, ongoing, recurring and
external meetings, the anchor), ``ending=MeetingsEnding(...)`` (meetings that end as
time passes), ``app=DefaultApp(...)`` (the default app's credentials,
``user_id_permission``, redirect URIs, refresh switch), ``oauth=UserOAuth(...)`` (the
user OAuth lifetimes, ``auto_approve``), ``tickets=AppTickets(...)`` (store apps' ticket
push and grace) and ``clocks=Clocks(...)`` (time, below)::

    Emulator(meetings=40, data=MeetingData(webinars=2, webinar_size=150),
             oauth=UserOAuth(user_token_lifetime=10.0), clocks=Clocks(monotonic=clock))

A real ``aiohttp.web`` server on 127.0.0.1 (ephemeral port by default) with the VC
endpoints ``GET /open-apis/vc/v1/participant_list`` and ``GET /open-apis/vc/v1/meeting_list``,
the custom-app token endpoint ``POST /open-apis/auth/v3/tenant_access_token/internal``,
and the identity endpoints: user OAuth (``GET``/``POST /open-apis/authen/v1/authorize``,
``POST /open-apis/authen/v2/oauth/token``, ``GET /open-apis/authen/v1/user_info``) and
store apps (``POST
/open-apis/auth/v3/app_ticket/resend``, ``.../app_access_token``,
``.../tenant_access_token``). Any other path answers 404. The command
``feishu-vc emulator --port 8787 --meetings 200 --seed 7`` serves one until Ctrl-C,
anchored at a fixed date (``--anchor``, default 2026-01-01) rather than yesterday, with a
switch for every fault of :class:`Faults`, ``--deny-meeting`` / ``--purge-meeting``,
``--print-user-token`` and ``--write-meetings FILE`` (an export's meetings input).

Semantics where the reference leaves room (decided here, so tests can rely on them):

* **Data.** ``meetings`` ended meetings end before the anchor (``MeetingData.anchor``;
  default: the start of yesterday, UTC) within 30 days, 10 minutes to 4 hours long; by
  default one is a webinar (``meetings >= 20``), ``meetings // 20`` are external
  (another tenant's meeting the tenant's people joined) and ``meetings // 20`` reuse the
  number of another meeting at a time that does not overlap it (personal meeting
  numbers: the same organizer); ``MeetingData``'s ``webinars``, ``external`` and
  ``recurring`` set these counts. A number is therefore not an identity: ``(number,
  start)`` is. Besides them, ``MeetingData.ongoing`` meetings (default 1 when
  ``meetings >= 20``) started 5 to 90 minutes before the clock's ``now`` at construction
  and have not ended; they are frozen at that moment (their participants are those who
  had joined by then, and meeting_list shows the duration up to then). They are
  regular, internal video meetings. ``emu.meetings`` holds the ended ones' queries
  (exact times), ``emu.ongoing`` the ongoing ones' (``meeting_status`` 1, that moment as
  the end). Everything but the ongoing meetings' times is the same for the same seed
  and anchor.
* **Meetings that end while it serves** (``ending=MeetingsEnding(count=N, every=s)``,
  or ``at=(s1, s2, ...)``; none by default, and the meetings above are the same with or
  without them). N more meetings of the home tenant, from their own seeded stream:
  internal, not webinars, started 5 to 90 minutes before the clock's ``now`` at
  construction; the k-th ends at the first whole second at or after ``now + k * every``
  (or ``now + at[k]``), within 22 hours, by the **wall clock**. Their state is read from
  that clock at every answer, nothing runs in the background: before its end a meeting
  is ongoing *at the clock's current second* (meeting_list lists it with
  ``meeting_status`` 1, its duration, participants and devices so far; participant_list
  gives the rows of those who had joined by then, whoever leaves later still in), and
  from its end on it is an ended meeting in every respect (listed with its end and final
  counts in the ranges that hold it; participant_list takes its exact end and
  ``meeting_status`` 2 and gives the final rows, every one with a leave time). Rows that
  have left are the same before and after: a view is cut from the final rows. The same
  seed, option and readings of the clock give the same bytes. ``emu.meetings`` and
  ``emu.ongoing`` follow the clock; ``emu.ending`` lists their final queries by end.
* **Auth** (one check, ``TokenStore.check``, shared by the VC APIs). ``Authorization:
  Bearer <token>``. Missing, empty or a bare ``Bearer`` → 99991661; a token not
  starting ``t-``/``u-`` (or another scheme; an app access token ``a-`` too) → 99991671;
  an unknown ``u-`` token → 99991668; an unknown, revoked or expired tenant token, or a
  revoked user token → 99991663; an expired user token (a refreshed one past its grace
  included) → 99991677; a user token issued through OAuth whose granted scopes hold
  neither ``vc:room:readonly`` nor ``vc:rooms.room.detailinfo:read`` (``VC_SCOPES``) →
  99991679 (tokens of ``add_user_token`` carry no scopes and pass). All auth errors use
  HTTP 400 (the platform says "varies, often 400"). Auth failures do not reach the
  rate-limit gateway (most have no app to charge; a missing scope is refused first too).
* **Token endpoint** (custom apps). Unknown ``app_id``, a store app's or a malformed
  body → 10003, a wrong secret → 10014, both HTTP 400 with ``{"code", "msg", "error":
  {"log_id"}}``. A success is ``{"code":0,"msg":"ok","tenant_access_token":"t-…",
  "expire":<whole seconds left>}``; the same token is returned while more than
  ``token_lifetime * 1800/7200`` seconds remain, then a new one (the old one stays
  valid until its own end). A revoked token is never handed out again.
* **Authorize page** (``GET /open-apis/authen/v1/authorize``). The platform serves it
  on ``accounts.feishu.cn``; here the same server does (``emu.accounts_url`` equals
  ``base_url``). Checked in this order, each refusal an HTML error page with HTTP 400
  and ``id="error"`` (nothing is redirected to an unchecked URI): ``client_id`` unknown;
  ``redirect_uri`` missing or not registered; ``response_type`` not ``code``;
  ``code_challenge_method`` missing or not ``S256``; ``code_challenge`` not 43 base64url
  characters. **Redirect URIs**: a registered URI matches itself exactly; an ``http``
  one on 127.0.0.1, localhost or [::1] registered without a port matches that host,
  path and query on any port (RFC 8252). Apps register ``http://127.0.0.1/callback``
  and ``http://localhost/callback`` unless given ``redirect_uris``. ``scope`` is
  space-separated (absent: none); ``state`` is optional and echoed. The page names the
  app (``id="app-name"``), the signed-in user ``emu.user`` (``id="user"``, an
  :class:`OAuthUser`) and the scopes (``id="scopes"``), with buttons ``id="approve"``
  and ``id="deny"`` that POST the form back; the decision answers 302 to
  ``redirect_uri?code=…&state=…`` or ``?error=access_denied&state=…`` (a query the URI
  already has is kept). A form is decided once; again → 400 page.
  ``UserOAuth(auto_approve=True)`` (or ``emu.auto_approve``) answers the GET with the
  approving 302 at once;
  ``emu.authorize(url, approve=True)`` returns that redirect without HTTP, raising
  :class:`AuthorizeError` where the page would refuse; ``emu.authorize_url(...)`` builds
  the URL.
* **v2 token endpoint** (``POST /open-apis/authen/v2/oauth/token``, JSON; the lifetimes
  named here are fields of :class:`UserOAuth`). Answers are
  flat: ``{"code":0,"access_token":"u-…","expires_in","refresh_token":"ur-…",
  "refresh_token_expires_in","token_type":"Bearer","scope"}`` (tokens about 1 KB, as
  real ones; ``expires_in`` whole seconds of ``user_token_lifetime``), refusals
  ``{"code","error","error_description"}`` with HTTP 400 (20050 → 500, 20072 → 503),
  ``Cache-Control: no-store`` and ``X-Tt-Logid``. Checks in order: body not a JSON
  object, a field not a string, or an unknown ``grant_type`` → 20063; ``grant_type``,
  ``client_id``, ``client_secret`` or the grant's fields missing or empty → 20001;
  unknown ``client_id`` or wrong secret → 20002. *authorization_code*: code unknown or
  another app's → 20003, used → 20065, older than ``code_lifetime`` (300 s) → 20004,
  ``redirect_uri`` not the authorize request's exact string → 20071, ``code_verifier``
  malformed or not matching the S256 challenge → 20049, the user's tenant has not
  installed the app (a custom app: the home tenant only) → 20010, ``scope`` asking for
  more than was granted → 20067. Only a successful exchange uses the code up.
  *refresh_token*: the app's "refresh user_access_token" switch off
  (``refresh_user_token=False``, of ``add_app`` or ``DefaultApp``) → 20074; token
  unknown or another app's → 20026, revoked (``emu.revoke_token``) → 20064, already
  used → 20073, the grant older than ``refresh_token_lifetime`` (365 days from the
  user's approval, not from the last refresh) → 20037, a wider ``scope`` → 20067. A
  refresh token is handed out only when the answer's scopes include ``offline_access``;
  ``refresh_token_expires_in`` is what is left of the grant. **Rotation**: a refresh
  token works once; the refresh returns a new pair, and the access tokens issued before
  stay valid for ``refresh_grace`` (60 s) more, then answer 99991677. Reuse of a refresh
  token does not revoke the grant.
* **user_info** (``GET /open-apis/authen/v1/user_info``): the auth check above, except
  that no VC scope is needed; a token that is not a user token → 99991668. Answers
  ``{"code":0,"msg":"success","data":{"name","en_name","open_id","union_id",
  "tenant_key"}}`` naming the :class:`OAuthUser` who approved the token's grant
  (``add_user_token`` tokens: ``emu.user``) in the token's tenant; ids derive from the
  name and tenant unless the user was given ``open_id`` / ``union_id``. Not limited.
* **Store apps** (``emu.add_store_app(tenants=2)`` → :class:`StoreApp`). Each has one
  current app_ticket; ``POST /open-apis/auth/v3/app_ticket/resend`` ``{app_id,
  app_secret}`` issues a new one, answers ``{"code":0,"msg":"ok"}`` and then POSTs
  ``{"type":"event_callback","event":{"app_id","app_ticket","type":"app_ticket"}}`` to
  the app's ``ticket_callback_url`` (or the emulator's, ``emu.ticket_callback_url``,
  set by ``AppTickets``; 127.0.0.1 only; none: no push). A superseded ticket stays
  valid for ``AppTickets.ticket_grace`` (3600 s); ``rotate_app_ticket()`` makes the
  older ones stale at once without a push; ``push_app_ticket()`` issues and
  pushes now (the hourly push); ``app_ticket()`` is the current one.
  ``POST /open-apis/auth/v3/app_access_token`` ``{app_id, app_secret, app_ticket}`` →
  ``{"code":0,"msg":"ok","app_access_token":"a-…","expire"}``; a missing, unknown or
  stale ticket → 10012. ``POST /open-apis/auth/v3/tenant_access_token``
  ``{app_access_token, tenant_key}`` → ``{"code":0,"msg":"ok","tenant_access_token",
  "expire"}``; a field missing → 10003, the app token unknown or expired → 99991664, a
  tenant that has not installed the app → 10003. App and tenant tokens follow the
  reissue rule above (per app, and per app and tenant). Credentials as at the custom
  endpoint: a custom app here, or a store app there, → 10003; a wrong secret → 10014.
* **Tenants.** Custom apps, ``emu.meetings`` and ``add_user_token`` tokens belong to the
  home tenant ``emu.tenant_key``. Every store-app tenant has meetings of its own (seeded
  from ``(seed, tenant_key)``, same anchor day, ``meetings`` of ``add_store_app`` or the
  home count); a tenant token or a user token reads its own tenant's meetings only.
  ``emu.tenant(key)`` (a :class:`TenantView`) gives ``.meetings`` and
  ``.participants(query)``; ``emu.tenant_token(app_id, tenant_key=key)`` the token the
  store endpoint would hand out. An OAuth user's tenant is ``OAuthUser.tenant_key`` (None:
  home).
* **Armed failures** of the token endpoints: ``emu.fail_token_endpoint(endpoint, times,
  code=None)`` makes the next ``times`` requests fail before any check, queued in
  order. ``code=None``: HTTP 500 with an nginx HTML page; else the endpoint's own error
  (``user_token``: the flat body with the table's status; the v3 endpoints: the
  envelope with HTTP 500). Endpoints: ``tenant_token``, ``user_token``,
  ``app_ticket_resend``, ``app_access_token``, ``store_tenant_token``.
* **Rate limit.** One bucket per (API, app, tenant): participant_list's limit is
  ``rate_limit``, meeting_list's ``meeting_list_rate_limit`` (both 100 per 60 s by
  default; ``None`` disables that API's gateway); user tokens are charged to their app
  and tenant. ``window`` (for both) is ``"sliding"`` (a log: no ``period`` span ever
  admits more than the limit) or ``"fixed"`` (calendar windows aligned to multiples of
  ``period`` since the epoch, by wall clock). Over the limit: HTTP 429, body
  ``{"code":99991400,"msg":"request trigger frequency limit","error":{"log_id"}}``,
  headers ``x-ogw-ratelimit-limit`` (that API's limit) and ``x-ogw-ratelimit-reset``:
  whole seconds rounded up (at least 1) when ``period >= 60``, else a decimal string
  such as ``"0.350"`` so scaled tests can use it. **Refused requests are not counted**
  toward the window. ``force_rate_limit(seconds, path=None)`` answers 429 to everything
  of both APIs (or of ``path`` only) for a while regardless.
* **Order of checks**, for both APIs: auth → gateway → fault → latency → a denied app
  (``deny_app``: its creator lacks the VC admin role) → 121005, HTTP 403 → the API's
  parameter rules below, in the order given.
* **participant_list parameters:** a required parameter missing, or any integer
  parameter (times, ``meeting_status``, ``page_size``) not an integer, ``page_size``
  outside 20..100, an unknown ``user_id_type`` or a ``webinar_user_role`` other than
  "0"/"3" → 121003; ``meeting_no`` not digits or negative → 126003; not 9 digits →
  126004; start below 0 or after now → 126005; end before start or more than a day after
  it → 126006; both ``user_id`` and ``room_id`` → 126007. An empty optional value counts
  as not given.
* **participant_list lookup.** The meeting is found by number and **exact** start
  second. An ended meeting needs the exact end second too and ``meeting_status`` 2 (the
  default); an ongoing one needs ``meeting_status`` 1 and any end from its start up to
  the current time plus 60 s (a client's clock running ahead). Anything else (an unknown
  number, a second off, the other status) → 126009. A denied meeting (``deny_meeting``)
  → 121005, HTTP 403. A purged meeting (``purge_meeting``: exists, data gone) → 121004,
  HTTP 404. Both take a query (that one meeting) or a number (every meeting that held
  it). ``room_id`` on a webinar → 126015; ``webinar_user_role`` on a meeting that is
  not a webinar → 121002.
* **Participants of an ongoing meeting.** The organizer and some others are still in:
  their rows have no ``leave_time`` and no ``leave_reason``, and ``time_in_meeting``
  counts up to the frozen moment. The others left before it. (A meeting of
  ``MeetingsEnding``: up to the clock's current second, and its organizer may have left.)
* **meeting_list parameters:** ``start_time`` or ``end_time`` missing or not an
  integer, ``meeting_status`` other than 1/2 (3, upcoming, cannot be asked for),
  ``meeting_type`` other than 1/2/3, ``page_size`` not an integer in 20..100 (default
  20), an unknown ``user_id_type``, ``include_webinar`` / ``include_external_meetings``
  not ``true``/``false`` (any case: the Python SDK sends ``True``) → 121003;
  ``meeting_no`` not digits or negative → 126003, not 9 digits → 126004; start below 0
  or after now → 126005; end before start or ``end - start`` over 365 days (the
  reference's "one year") → 126006; more than one of ``meeting_no``, ``user_id``,
  ``room_id``, ``meeting_type`` given (``meeting_type=1`` counts: it was set) → 126008;
  ``meeting_no`` of a number denied with ``deny_meeting(number)`` → 121005, HTTP 403. An
  empty value counts as not given; the end may lie after now. ``room_id`` filtering is
  supported (126015 and 126016 are in the table but never answered).
* **meeting_list listing.** ``meeting_status`` 2 (default) lists ended meetings, 1
  ongoing ones. A meeting is in range, by ``meeting_listing``: ``"start"`` (default)
  when ``start_time <= its start <= end_time``; ``"overlap"`` when it starts by
  ``end_time`` and ends (ongoing: now) at or after ``start_time``. Webinars only with
  ``include_webinar=true``, external meetings only with
  ``include_external_meetings=true``. Filters: ``meeting_no`` (every meeting that held
  the number); ``user_id`` (per ``user_id_type``) and ``room_id``: meetings whose
  participant_list rows include that person or room; ``meeting_type`` 2 or 3 (1: all).
  Denied and purged meetings are still listed. Order: start time, then
  ``meeting_instance_id``. Paging as participant_list's (below), the token bound to
  every parameter but ``page_size``.
* **meeting_list items** (:class:`ListedMeeting`, the reference's field names; absent
  fields are omitted): the organizer is the meeting's host, its first participant
  (``organizer``, ``department``, ``user_id`` as participant_list gives it; ``employee_id``,
  ``email``, ``mobile`` only for an app with ``user_id_permission``); times in the
  organizer's time zone as ``2022.12.23 11:16:59 (GMT+08:00)``, to the second, equal to
  the query times participant_list matches; ``meeting_end_time`` absent for an ongoing
  meeting; ``meeting_duration`` ``00:01:52``; ``number_of_participants`` (a string)
  equals the rows an unfiltered participant_list returns; ``number_of_devices`` at least
  that; ``meeting_type`` 2 (video), a few 3 (local screen share, subtype 1 or 2);
  ``meeting_subtype`` 8 for webinars, else mostly 0, some 3 (Magic Share), 10
  (Minutes), 4 (chat room); ``number_of_webinar_viewers`` (role "3" rows) for webinars
  only; ``meeting_instance_id`` a unique 19-digit string; ``reserved_rooms`` never.
* **Paging.** Default ``page_size`` 20. ``page_token`` is opaque: the offset with an
  HMAC binding it to the API and the query (participant_list: meeting, times, filters
  and ``user_id_type``), not ``page_size``, which may change between pages. A garbage or
  foreign token (another query, the other API) → 121003. ``has_more`` is true exactly
  when more items follow, and only then a ``page_token`` is present; the last page has
  no ``page_token`` key. Tokens are derived from ``seed``, so they stay valid across
  restarts of an emulator with the same seed.
* **Ids.** ``user_id_type`` picks the id in ``user_id``: ``ou_…`` (open_id, default),
  ``on_…`` (union_id), or the tenant user id. ``employee_id``, and ``user_id`` under
  ``user_id_type=user_id``, are only present for an app registered with
  ``user_id_permission=True`` (the contact:user.employee_id:readonly scope; ``add_app``,
  ``add_store_app``, and ``DefaultApp`` for the default app); otherwise they are
  omitted. Rooms carry ``meeting_room_id`` (``omm_…``) and no user ids. Ids
  are the same for every app (the real open_id differs per app).
* **Faults** (``Faults``) hit requests of both APIs that passed auth and the gateway,
  one seeded draw per request in arrival order: ``error_rate`` (HTTP ``error_status``,
  code 121001), ``reset_rate`` (headers and part of the body, then a TCP RST),
  ``truncate_rate`` (HTTP 200, JSON cut short), ``html_rate`` (HTTP 502, an nginx
  text/html page); ``revoke_token_after=N`` revokes the token of the Nth request of
  either API; ``latency`` delays answers. ``deny_meeting``, ``purge_meeting``,
  ``deny_app`` and ``force_rate_limit`` act at once.
* **Request log.** ``emu.requests`` holds a :class:`RequestRecord` per request, in
  answer order: arrival ``time`` (monotonic) and ``wall``, method, path, query params,
  bearer token (never in the repr), HTTP status (0 for a reset), body code (``None``
  for a non-JSON body, a page or a reset), log id, ``token_request`` (any token
  endpoint), ``app_id`` and ``fault`` (``"server_error"``/``"html"`` for armed token
  failures). Token request bodies (secrets, codes, tokens) are never recorded.
  ``max_in_window(period, path=...)`` gives the most requests to ``path`` (default
  participant_list) that arrived within any span of ``period`` seconds.
* **Ground truth** (at the wall clock's now: ``emu.meetings`` gains each meeting of
  ``MeetingsEnding`` as its end passes). ``emu.participants(query)`` is what the default
  app receives for that query across all pages, in page order (filters and
  ``user_id_type`` applied);
  given a meeting number, every participant with open_id ids (``ValueError`` if the
  number recurs). ``emu.meeting_info(query)`` (or a number and start) is the
  :class:`MeetingInfo`. ``emu.listed_meetings(start, end, ...)`` is every item
  meeting_list lists for those parameters, in page order, as the default app (or
  ``app_id``) receives them (``ValueError`` naming the code for a refused query).
  Other tenants: ``emu.tenant(key).participants(query)``. ``emu.live_refresh_tokens()``
  lists an app's refresh tokens still usable (after a session's refreshes: its last
  one); ``emu.issued_tokens()`` every token, code and ticket handed out (for leak checks).
* **Events** (``events=EventDelivery(...)``): when a ``MeetingsEnding`` meeting ends
  (by the wall clock) the emulator makes its ``vc.meeting.all_meeting_ended_v1`` event
  (schema 2.0, times as strings, ``header.token`` = ``emu.events.token``, an
  ``event_id`` derived from the seed and meeting) and hands it to ``emu.event_router``:
  the webhook when there is one, else one open long connection at random, else held
  until one opens. ``emu.events.announced`` lists the events told, ``emu.events.lost``
  those dropped by ``EventDelivery.lose``. The webhook (``EventDelivery.webhook_url``,
  http on 127.0.0.1) gets each event POSTed as the platform does: with an
  ``encrypt_key``, ``{"encrypt": ...}`` (AES-256-CBC, a fresh IV) signed with
  ``X-Lark-Request-Timestamp`` (the wall clock), ``X-Lark-Request-Nonce`` and
  ``X-Lark-Signature``; without one, the plaintext envelope, unsigned. An answer other
  than 200, a connection error or none within 3 s is pushed again after each of
  ``repush_after`` in turn, then given up; ``emu.webhook_pushes`` records every attempt
  (``event_id``, ``attempt``, ``status`` or ``error``). ``await emu.verify_webhook()``
  sends the URL verification the platform sends when a request URL is saved (encrypted
  when there is a key, never signed) and says whether the challenge came back.
  The long connection (``emu.long_connections``): ``POST /callback/ws/endpoint`` checks
  ``AppID``/``AppSecret`` like the token endpoint (a wrong one: code 514), refuses an
  app's 51st open connection (1000040350) and answers a one-time
  ``ws://.../ws/v2?device_id=&service_id=&ticket=`` URL with the ``ClientConfig`` of
  ``EventDelivery`` (``ping_interval``, ``reconnect_interval``, ``reconnect_nonce``;
  ``ReconnectCount`` -1). Frames are ``pbbp2`` protobuf; each event is one ``type=event``
  data frame, or ``split_parts`` joined by ``message_id``; a ping is answered by a pong
  carrying the ClientConfig (``emu.long_connections.config``, changeable); each ack is
  recorded in ``emu.ws_acks`` (:class:`WsAck`: message_id, event_id, code, biz_rt). After
  every ``drop_every``-th event frame sent (counted across connections) the TCP
  connection is aborted, no close frame. An event whose connection closes before its
  ack goes back to the router at once (another connection, else held): nothing is lost,
  and a client may see it twice. An ack of 500 is an answer (not sent again). Only the
  default app's connections take events.
* **Not modelled:** upcoming meetings (``meeting_status`` 3 finds nothing in
  participant_list and cannot be asked of meeting_list), ``MeetingData.ongoing``
  meetings ending (only those of ``MeetingsEnding`` end),
  per-app open_ids, the monthly quota; the user id permission per user (it is the app's
  ``user_id_permission``); the v1 OIDC endpoints and ``app_access_token/internal``;
  timed app_ticket pushes (only resend and ``push_app_ticket``); a user revoking an
  app; the token endpoints' own rate limits
  (1000/min and 50/s for v2).

Time is injectable through ``clocks=Clocks(wall=..., monotonic=...)``: ``wall`` (default
``time.time``) for "start not in the future", the ongoing meetings, the meetings that
end (``MeetingsEnding``), the fixed window and record wall times; ``monotonic`` (default
``time.monotonic``) for the sliding window, every token, code, grant and ticket
lifetime, and record times.
"""

from ._faults import Fault, Faults, Latency, TokenEndpoint
from ._long_connection import WsAck
from ._meeting_list import ListedMeeting
from ._meetings import MeetingInfo
from ._oauth import AuthorizeError, OAuthUser
from ._options import (
    AppTickets,
    Clocks,
    DefaultApp,
    EventDelivery,
    MeetingData,
    MeetingsEnding,
    UserOAuth,
)
from ._server import Emulator, RequestRecord
from ._store_apps import StoreApp
from ._tenants import TenantView
from ._webhook_push import WebhookPush

__all__ = [
    "AppTickets",
    "AuthorizeError",
    "Clocks",
    "DefaultApp",
    "Emulator",
    "EventDelivery",
    "Fault",
    "Faults",
    "Latency",
    "ListedMeeting",
    "MeetingData",
    "MeetingInfo",
    "MeetingsEnding",
    "OAuthUser",
    "RequestRecord",
    "StoreApp",
    "TenantView",
    "TokenEndpoint",
    "UserOAuth",
    "WebhookPush",
    "WsAck",
]
