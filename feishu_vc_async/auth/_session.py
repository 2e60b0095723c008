"""User tokens that renew themselves, safely across processes and hosts.

A refresh token works once: the refresh returns a new pair, the old refresh token dies
at once and the old access token lives one more minute. Two processes that refresh the
same session at the same time therefore lose it (the second gets 20064/20073) and a
person must log in again. So :class:`UserSessionProvider`:

1. refreshes before the access token ends (``refresh_margin`` early, at most half its
   life) and when the platform refuses it (99991663 / 99991668 / 99991677);
2. lets one task of the process refresh (``SingleFlight``) while the others wait for it;
3. takes the store's lock (a file lock, a Redis lock, a database row ...), then
   **re-reads the store**: if another process refreshed meanwhile, it uses that session
   and does not refresh again;
4. saves the new session **before** using its access token: once the refresh answer is
   in, the old refresh token is dead, and the new one must not be lost with the process.

The refresh request goes through the client's request loop (a 20050 / 20072 is retried
there); a refused session raises :class:`~feishu_vc_async.errors.LoginRequiredError`,
after the store (one that is a :class:`SessionEndRecorder`) has kept when and with which
code, so that whoever looks at the store next knows the session is over.
"""

from __future__ import annotations

import logging

from .._clock import Clock, wall_time
from .._constants import LOGGER_NAME, TOKEN_REFRESH_MARGIN
from .._endpoints import USER_TOKEN
from .._error_codes import USER_TOKEN_REFRESH_CODES
from .._singleflight import SingleFlight
from .._validate import non_empty, non_negative_seconds
from ..errors import LoginRequiredError, TokenStoreError
from ._protocol import Sender
from ._session_store import SessionEnded, SessionEndRecorder, SessionLock, SessionStore
from ._user_session import UserSession

__all__ = ["SESSION_ENDED_CODES", "UserSessionProvider"]

logger = logging.getLogger(LOGGER_NAME)

# The refresh token's refusals (identity.md): unknown, expired, revoked, already used.
# Only a new login helps; the others (20074, 20050, ...) say nothing of the session.
SESSION_ENDED_CODES = frozenset({20026, 20037, 20064, 20073})


class UserSessionProvider:
    """User tokens of ``app_id`` from a stored session, refreshed when due.

    ``store`` holds the session (see :class:`~feishu_vc_async.auth.SessionStore`); its
    ``lock()`` guards a refresh unless ``lock`` replaces it (a
    :class:`~feishu_vc_async.auth.RedisLock` when processes on several hosts share the
    store). ``clock`` reads unix seconds, the time base of stored sessions.

    The budget is the app's (``identity``) in the user's tenant (``tenant``, known once
    the session is loaded).
    """

    __slots__ = (
        "_clock",
        "_flight",
        "_lock",
        "_margin",
        "_refused",
        "_secret",
        "_session",
        "_store",
        "app_id",
    )

    refresh_codes: frozenset[int] = USER_TOKEN_REFRESH_CODES

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        store: SessionStore,
        *,
        lock: SessionLock | None = None,
        refresh_margin: float = TOKEN_REFRESH_MARGIN,
        clock: Clock = wall_time,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise TypeError("store: must implement SessionStore (load, save, lock)")
        if lock is not None and not isinstance(lock, SessionLock):
            raise TypeError("lock: must implement SessionLock (lock)")
        self.app_id = non_empty("app_id", app_id)
        self._secret = non_empty("app_secret", app_secret)
        self._store = store
        self._lock: SessionLock = lock if lock is not None else store
        self._margin = non_negative_seconds("refresh_margin", refresh_margin)
        self._clock = clock
        self._session: UserSession | None = None
        self._refused: str | None = None  # an access token the platform refused
        self._flight: SingleFlight[str] = SingleFlight()

    @property
    def identity(self) -> str:
        return self.app_id

    @property
    def tenant(self) -> str:
        session = self._session
        return session.tenant_key if session is not None else ""

    @property
    def session(self) -> UserSession | None:
        """The session in use (``None`` before the first token)."""
        return self._session

    def _usable(self, session: UserSession) -> bool:
        return session.access_token != self._refused and self._clock() < session.refresh_at(
            self._margin
        )

    async def token(self, sender: Sender) -> str:
        session = self._session
        if session is not None and self._usable(session):
            return session.access_token
        return await self._flight.run(lambda: self._renew(sender))

    def invalidate(self, token: str) -> None:
        session = self._session
        if session is not None and token == session.access_token:
            self._refused = token

    async def _renew(self, sender: Sender) -> str:
        async with self._lock.lock():
            # Another process may have refreshed while this one waited for the lock.
            stored = await self._store.load()
            if stored is None:
                raise LoginRequiredError(
                    http_status=0, code=0, msg=f"no user session of app {self.app_id} is stored"
                )
            if stored.app_id != self.app_id:
                raise LoginRequiredError(
                    http_status=0,
                    code=0,
                    msg=f"the stored session is of app {stored.app_id}, not {self.app_id}",
                )
            if self._usable(stored):
                if self._session is not None and stored != self._session:
                    logger.debug(
                        "user session of %s: using the one refreshed elsewhere", stored.who
                    )
                self._session = stored
                return stored.access_token
            try:
                fresh = await self._refresh(sender, stored)
            except LoginRequiredError as exc:
                if exc.code in SESSION_ENDED_CODES:
                    await self._record_end(stored, SessionEnded(at=self._clock(), code=exc.code))
                raise
            await self._store.save(fresh)  # before its token is used: see the module doc
        self._session = fresh
        self._refused = None
        logger.info(
            "user session of %s refreshed (app %s): access token for %d s",
            fresh.who,
            self.app_id,
            fresh.expires_in,
        )
        return fresh.access_token

    async def _record_end(self, stored: UserSession, ended: SessionEnded) -> None:
        store = self._store
        if not isinstance(store, SessionEndRecorder):
            return
        try:
            await store.record_end(stored, ended)
        except TokenStoreError as exc:  # the refusal is the news: it is raised all the same
            logger.warning("the ended session of %s could not be marked: %s", stored.who, exc)

    async def _refresh(self, sender: Sender, stored: UserSession) -> UserSession:
        refresh_token = stored.refresh_token
        if refresh_token is None:
            raise LoginRequiredError(
                http_status=0,
                code=0,
                msg=f"the session of {stored.who} has no refresh token "
                "(offline_access was not granted) and its access token is due",
            )
        sender.stats.token_fetches += 1
        started = self._clock()
        answer = await sender.call(
            USER_TOKEN,
            json={
                "grant_type": "refresh_token",
                "client_id": self.app_id,
                "client_secret": self._secret,
                "refresh_token": refresh_token,
            },
            secrets=(self._secret, refresh_token, stored.access_token),
        )
        return UserSession.from_answer(
            answer, app_id=self.app_id, obtained_at=started, previous=stored
        )

    def __repr__(self) -> str:
        return f"UserSessionProvider(app_id={self.app_id!r}, store={self._store!r})"
