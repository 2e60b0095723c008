"""A local, faithful Feishu / Lark VC platform for tests, benchmarks and demos.

::

    async with Emulator(meetings=50, seed=0) as emu:
        emu.base_url, emu.app_id, emu.app_secret   # point any client here
        emu.meetings                                # list[MeetingQuery]: ended meetings
        emu.ongoing                                 # list[MeetingQuery]: ongoing ones
        emu.participants(emu.meetings[0])           # ground truth for a query
        emu.listed_meetings(start, end)             # ground truth of meeting_list
        emu.requests                                # list[RequestRecord]

A real ``aiohttp.web`` server on 127.0.0.1 (ephemeral port by default) with three
endpoints: ``POST /open-apis/auth/v3/tenant_access_token/internal``,
``GET /open-apis/vc/v1/participant_list`` and ``GET /open-apis/vc/v1/meeting_list``.
Any other path answers 404. The command ``feishu-vc emulator --port 8787 --meetings 200
--seed 7`` serves one until Ctrl-C.

Semantics where the reference leaves room (decided here, so tests can rely on them):

* **Data.** ``meetings`` ended meetings end before ``anchor`` (default: the start of
  yesterday, UTC) within 30 days, 10 minutes to 4 hours long; by default one is a
  webinar (``meetings >= 20``), ``meetings // 20`` are external (another tenant's
  meeting the tenant's people joined) and ``meetings // 20`` reuse the number of
  another meeting at a time that does not overlap it (personal meeting numbers: the
  same organizer). A number is therefore not an identity: ``(number, start)`` is.
  Besides them, ``ongoing`` meetings (default 1 when ``meetings >= 20``) started 5 to 90
  minutes before the clock's ``now`` at construction and have not ended; they are frozen
  at that moment (their participants are those who had joined by then, and meeting_list
  shows the duration up to then). They are regular, internal video meetings.
  ``emu.meetings`` holds the ended ones' queries (exact times), ``emu.ongoing`` the
  ongoing ones' (``meeting_status`` 1, that moment as the end). Everything but the
  ongoing meetings' times is the same for the same seed and anchor.
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
* **Rate limit.** One bucket per (API, app): participant_list's limit is ``rate_limit``,
  meeting_list's ``meeting_list_rate_limit`` (both 100 per 60 s by default; ``None``
  disables that API's gateway); user tokens are charged to their app. ``window`` (for
  both) is ``"sliding"`` (a log: no ``period`` span ever admits more than the limit) or
  ``"fixed"`` (calendar windows aligned to multiples of ``period`` since the epoch, by
  wall clock). Over the limit: HTTP 429, body ``{"code":99991400,"msg":"request trigger
  frequency limit","error":{"log_id"}}``, headers ``x-ogw-ratelimit-limit`` (that API's
  limit) and ``x-ogw-ratelimit-reset``: whole seconds rounded up (at least 1) when
  ``period >= 60``, else a decimal string such as ``"0.350"`` so scaled tests can use
  it. **Refused requests are not counted** toward the window.
  ``force_rate_limit(seconds, path=None)`` answers 429 to everything of both APIs (or of
  ``path`` only) for a while regardless.
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
  counts up to the frozen moment. The others left before it.
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
  ``user_id_permission=True`` (the contact:user.employee_id:readonly scope); otherwise
  they are omitted. Rooms carry ``meeting_room_id`` (``omm_…``) and no user ids. Ids
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
  for a non-JSON body or a reset), log id, ``token_request`` (the token endpoint),
  ``app_id`` and ``fault``. ``max_in_window(period, path=...)`` gives the most requests
  to ``path`` (default participant_list) that arrived within any span of ``period``
  seconds.
* **Ground truth.** ``emu.participants(query)`` is what the default app receives for
  that query across all pages, in page order (filters and ``user_id_type`` applied);
  given a meeting number, every participant with open_id ids (``ValueError`` if the
  number recurs). ``emu.meeting_info(query)`` (or a number and start) is the
  :class:`MeetingInfo`. ``emu.listed_meetings(start, end, ...)`` is every item
  meeting_list lists for those parameters, in page order, as the default app (or
  ``app_id``) receives them (``ValueError`` naming the code for a refused query).
* **Not modelled:** upcoming meetings (``meeting_status`` 3 finds nothing in
  participant_list and cannot be asked of meeting_list), ongoing meetings ending,
  per-app open_ids, the monthly quota.

Time is injectable: ``clock`` (wall, default ``time.time``) for "start not in the
future", the ongoing meetings, the fixed window and record wall times; ``monotonic``
(default ``time.monotonic``) for the sliding window, token lifetimes and record times.
"""

from ._faults import Fault, Faults, Latency
from ._meeting_list import ListedMeeting
from ._meetings import MeetingInfo
from ._server import Emulator, RequestRecord

__all__ = [
    "Emulator",
    "Fault",
    "Faults",
    "Latency",
    "ListedMeeting",
    "MeetingInfo",
    "RequestRecord",
]
