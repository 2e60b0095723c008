"""The Emulator's less common options, grouped by what they shape.

``Emulator(...)`` takes the options most tests set (meetings, seed, the rate limits,
faults, latency, the tenant token's lifetime, where to listen) as keywords of its own;
the others come in these frozen groups, each with the defaults of the real platform::

    Emulator(meetings=40, data=MeetingData(webinars=2, webinar_size=150),
             oauth=UserOAuth(user_token_lifetime=10.0), clocks=Clocks(monotonic=clock))

The checks of each value stay with the part that uses it (``Dataset``, ``_ending``,
``OAuthServer``, ``TicketBook``), so a bad value is refused when the Emulator is made,
naming the field.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._constants import TOKEN_MAX_LIFETIME

__all__ = [
    "DEFAULT_REDIRECT_URIS",
    "AppTickets",
    "Clocks",
    "DefaultApp",
    "EventDelivery",
    "MeetingData",
    "MeetingsEnding",
    "UserOAuth",
]

# Loopback patterns (any port): what a CLI's local listener uses.
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1/callback", "http://localhost/callback")
# Refresh tokens end this long after the user's approval (the platform's 365 days).
_ONE_YEAR = 365 * 86_400.0


@dataclass(frozen=True, slots=True)
class MeetingData:
    """The shape of the generated meetings (besides their count and seed).

    ``webinars`` (default: 1 when ``meetings >= 20``) of ``webinar_size`` participants;
    ``ongoing`` meetings besides the ended ones (default: 1 when ``meetings >= 20``);
    ``recurring`` meetings that reuse another's number and ``external`` ones of another
    tenant that the tenant's people joined (both default ``meetings // 20``); ``anchor``:
    the unix time the newest ended meeting ends before (default: the start of yesterday,
    UTC; fix it for data identical across days); ``cache_meetings``: how many meetings'
    generated rows and encoded pages are kept.
    """

    webinars: int | None = None
    webinar_size: int = 3000
    ongoing: int | None = None
    recurring: int | None = None
    external: int | None = None
    anchor: int | None = None
    cache_meetings: int = 1024


@dataclass(frozen=True, slots=True)
class MeetingsEnding:
    """Meetings that end while the emulator serves, so a poller sees new ones appear.

    ``count`` meetings, ongoing when the Emulator is made, end one every ``every``
    seconds of its wall clock (``Clocks.wall``): the first ``every`` seconds after the
    construction's ``now``. Or ``at``: each one's end in seconds after that ``now`` (then
    leave ``count`` at 0). An end is the first whole second at or after that instant,
    within 22 hours (a meeting lasts at most a day). Drawn from the seed like the others,
    they are internal meetings of the home tenant, not webinars; the others are the same
    with or without them.
    """

    count: int = 0
    every: float = 60.0
    at: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class DefaultApp:
    """The custom app every Emulator has (``emu.app_id``, ``emu.app_secret``).

    Its credentials are derived from ``seed`` unless given; ``user_id_permission``: it
    may see user ids and employee ids; ``redirect_uris``: where its authorize requests
    may send the user back (loopback patterns by default); ``refresh_user_token``: its
    "refresh user_access_token" switch.
    """

    app_id: str | None = None
    app_secret: str | None = None
    user_id_permission: bool = False
    redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS
    refresh_user_token: bool = True


@dataclass(frozen=True, slots=True)
class UserOAuth:
    """User OAuth: lifetimes in seconds (scale them down in tests) and the consent page.

    ``refresh_token_lifetime`` counts from the user's approval, not from the last
    refresh; ``refresh_grace`` is how long the access tokens a refresh replaces still
    work; ``auto_approve``: the authorize page approves at once (302) instead of asking.
    """

    user_token_lifetime: float = float(TOKEN_MAX_LIFETIME)
    refresh_token_lifetime: float = _ONE_YEAR
    code_lifetime: float = 300.0
    refresh_grace: float = 60.0
    auto_approve: bool = False


@dataclass(frozen=True, slots=True)
class AppTickets:
    """Store apps' app_tickets: where they are pushed (an http URL on 127.0.0.1; None:
    not pushed unless the app has its own) and how long a superseded one stays valid."""

    ticket_callback_url: str | None = None
    ticket_grace: float = 3600.0


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """How the ``all_meeting_ended_v1`` events of the meetings that end while it serves
    (``MeetingsEnding``) reach the app, and the faults of their delivery.

    ``verification_token`` (derived from the seed when ``None``) goes in every event's
    header; ``encrypt_key``: webhook bodies are encrypted and signed with it (``None``:
    plaintext, unsigned). ``webhook_url``: where events are POSTed (an http URL on
    127.0.0.1); without one they go to the open long connections (one, at random, per
    event), held until one is open. A webhook answer other than 200 is pushed again after
    each of ``repush_after`` (seconds; the platform's 5 s, 5 min, 1 h, 6 h: scale them
    down in tests). Faults: ``lose`` (a share of events never sent), ``repeat`` (a share
    sent twice, the same ``event_id``), ``split_parts`` (the long connection sends each
    event in this many frames), ``drop_every`` (it drops the connection after every n-th
    event frame; 0: never). The long connection's ClientConfig: ``ping_interval``,
    ``reconnect_interval``, ``reconnect_nonce`` (seconds), as the endpoint hands them out.
    """

    verification_token: str | None = None
    encrypt_key: str | None = None
    webhook_url: str | None = None
    repush_after: Sequence[float] = (5.0, 300.0, 3600.0, 21600.0)
    lose: float = 0.0
    repeat: float = 0.0
    split_parts: int = 1
    drop_every: int = 0
    ping_interval: float = 120.0
    reconnect_interval: float = 120.0
    reconnect_nonce: float = 30.0


@dataclass(frozen=True, slots=True)
class Clocks:
    """Time sources, injectable for tests.

    ``wall`` for "start not in the future", the ongoing meetings, when the meetings of
    ``MeetingsEnding`` end, the fixed window and the records' wall times; ``monotonic``
    for the sliding window, every token, code, grant and ticket lifetime, and the
    records' times.
    """

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
