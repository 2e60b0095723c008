"""Where a user session is kept, and the lock a refresh holds.

A refresh token can be used once, so a session shared by several processes (or hosts)
must be refreshed by one of them at a time, and the others must pick up what it wrote.
:class:`UserSessionProvider` therefore refreshes inside ``lock()`` and re-reads the
store once it holds it. Any object with ``load`` / ``save`` / ``lock`` is a store: a
web backend keeps sessions in its own database with a row lock, say.

* :class:`FileSessionStore`: the CLI's token file, one entry per (API host, app, user),
  owner-only, replaced atomically; its lock is ``flock`` on a file beside it, which
  every process on the host honours.
* :class:`MemorySessionStore`: one process (a test, a backend that persists elsewhere).
* :class:`~feishu_vc_async.auth.RedisLock` replaces a store's lock when processes on
  several hosts share the store.

A store may also keep that the platform refused a session's refresh token
(:class:`SessionEndRecorder`): both of these do, so ``feishu-vc auth status`` can say the
session has ended, when and why, instead of showing its tokens' expiries as if it were
alive. Storing a session (a login, a refresh) clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import msgspec

from .._constants import LOGGER_NAME, SESSION_LOCK_TIMEOUT
from .._files import atomic_write
from .._singleflight import LoopLock
from .._validate import positive_seconds
from ..errors import TokenStoreError
from ._user_session import UserSession

__all__ = [
    "ENV_TOKEN_FILE",
    "FileLock",
    "FileSessionStore",
    "MemorySessionStore",
    "SessionEndRecorder",
    "SessionEnded",
    "SessionLock",
    "SessionStore",
    "StoredSession",
    "default_token_file",
    "entry_key",
    "read_token_file",
    "token_file_lock",
    "write_token_file",
]

logger = logging.getLogger(LOGGER_NAME)

ENV_TOKEN_FILE: Final = "FEISHU_VC_TOKEN_FILE"
_FORMAT_VERSION: Final = 1
_POLL_FIRST = 0.005
_POLL_MAX = 0.1


@runtime_checkable
class SessionLock(Protocol):
    """Mutual exclusion around one refresh, across every process that shares a session."""

    def lock(self) -> AbstractAsyncContextManager[None]:
        """Held while the session is re-read, refreshed and saved; raises
        :class:`~feishu_vc_async.errors.TokenStoreError` if it cannot be taken in time."""
        ...


@runtime_checkable
class SessionStore(SessionLock, Protocol):
    """Where one user session lives between refreshes (and processes)."""

    async def load(self) -> UserSession | None:
        """The stored session, or ``None`` when there is none."""
        ...

    async def save(self, session: UserSession) -> None:
        """Keep ``session`` durably (called with the lock held, before its token is used)."""
        ...


class SessionEnded(msgspec.Struct, frozen=True, kw_only=True):
    """The platform refused the session's refresh token: at ``at`` (unix seconds), with
    ``code`` (20026 unknown, 20037 expired, 20064 revoked, 20073 already used). No token."""

    at: float
    code: int

    def __str__(self) -> str:
        stamp = datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"refused by the platform at {stamp} (code {self.code})"


@runtime_checkable
class SessionEndRecorder(Protocol):
    """A store that keeps that the platform refused ``session``'s refresh token."""

    async def record_end(self, session: UserSession, ended: SessionEnded) -> None:
        """Called with the lock held, right after the refusal; a store whose session is
        no longer ``session`` (another process stored a new one) keeps what it has."""
        ...


class MemorySessionStore:
    """A session kept in this process only; its lock is an ``asyncio.Lock``."""

    __slots__ = ("_lock", "_session", "ended")

    def __init__(self, session: UserSession | None = None) -> None:
        self._session = session
        self._lock = LoopLock()
        self.ended: SessionEnded | None = None

    @property
    def session(self) -> UserSession | None:
        return self._session

    async def load(self) -> UserSession | None:
        return self._session

    async def save(self, session: UserSession) -> None:
        self._session = session
        self.ended = None

    async def record_end(self, session: UserSession, ended: SessionEnded) -> None:
        if session == self._session:
            self.ended = ended

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        async with self._lock.get():
            yield

    def __repr__(self) -> str:
        return f"MemorySessionStore({self._session!r})"


class FileLock:
    """An exclusive ``flock`` on ``path`` (created owner-only, never deleted: removing a
    lock file lets two processes lock two different files). Polled without blocking, so
    waiting neither holds a thread nor survives a cancellation; given up after
    ``timeout`` seconds with a :class:`TokenStoreError`."""

    __slots__ = ("path", "timeout")

    def __init__(self, path: Path | str, *, timeout: float = SESSION_LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = positive_seconds("timeout", timeout)

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        import fcntl  # POSIX; imported here so the package still imports elsewhere

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TokenStoreError(f"cannot open the lock file {self.path}: {exc}") from None
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            delay = _POLL_FIRST
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise TokenStoreError(
                            f"{self.path} stayed locked by another process for "
                            f"{self.timeout:g} s (a refresh that hangs?)"
                        ) from None
                    await asyncio.sleep(min(delay, left))
                    delay = min(delay * 2, _POLL_MAX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r})"


class StoredSession(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of a token file: the API host a session belongs to, the session, and
    whether the platform has ended it (``ended``: refused its refresh token)."""

    base_url: str
    session: UserSession
    ended: SessionEnded | None = None

    @property
    def key(self) -> str:
        return entry_key(self.base_url, self.session.app_id, self.session.open_id)


class _TokenFile(msgspec.Struct, kw_only=True):
    version: int
    sessions: dict[str, StoredSession] = {}


_DECODER: Final = msgspec.json.Decoder(_TokenFile)
_ENCODER: Final = msgspec.json.Encoder()


def entry_key(base_url: str, app_id: str, open_id: str) -> str:
    return f"{base_url}|{app_id}|{open_id}"


def default_token_file(env: Mapping[str, str]) -> Path:
    """``$FEISHU_VC_TOKEN_FILE``, else ``$XDG_CONFIG_HOME/feishu-vc/tokens.json``, else
    ``~/.config/feishu-vc/tokens.json`` (the XDG base directory rule)."""
    explicit = env.get(ENV_TOKEN_FILE)
    if explicit:
        return Path(explicit).expanduser()
    config = env.get("XDG_CONFIG_HOME")
    base = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
    return base / "feishu-vc" / "tokens.json"


def token_file_lock(path: Path, timeout: float = SESSION_LOCK_TIMEOUT) -> FileLock:
    """The lock every writer of the token file ``path`` holds: ``flock`` on ``PATH.lock``."""
    return FileLock(path.with_name(path.name + ".lock"), timeout=timeout)


def read_token_file(path: Path) -> list[StoredSession]:
    """Every entry of the token file at ``path`` (none if it does not exist).
    :class:`TokenStoreError` for a file that cannot be read or is not a token file; the
    message never quotes its content."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenStoreError(f"cannot read the token file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "%s is readable by other users; it is made owner-only on the next write", path
        )
    try:
        parsed = _DECODER.decode(data)
    except msgspec.DecodeError:
        raise TokenStoreError(
            f"{path} is not a feishu-vc token file (or is damaged): remove it and log in again"
        ) from None
    if parsed.version != _FORMAT_VERSION:
        raise TokenStoreError(
            f"{path} has format version {parsed.version}; this feishu-vc reads "
            f"version {_FORMAT_VERSION}"
        )
    return list(parsed.sessions.values())


def write_token_file(path: Path, entries: list[StoredSession]) -> None:
    """Replace the token file with ``entries``: owner-only, atomically, durably."""
    body = _TokenFile(version=_FORMAT_VERSION, sessions={e.key: e for e in entries})
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, _ENCODER.encode(body) + b"\n")
    except OSError as exc:
        raise TokenStoreError(f"cannot write the token file {path}: {exc.strerror}") from None


class FileSessionStore:
    """The session of ``app_id`` at ``base_url`` in the token file ``path``.

    The file holds one entry per (API host, app, user), so several logins share it.
    ``open_id`` picks the user; without it the store uses the app's only entry and
    refuses to guess between several. Its lock is :class:`FileLock` on ``PATH.lock``.
    Reading and writing are small synchronous file operations.
    """

    __slots__ = ("_lock", "app_id", "base_url", "open_id", "path")

    def __init__(
        self,
        path: Path | str,
        *,
        base_url: str,
        app_id: str,
        open_id: str | None = None,
        lock_timeout: float = SESSION_LOCK_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self.base_url = base_url
        self.app_id = app_id
        self.open_id = open_id or None
        self._lock = token_file_lock(self.path, lock_timeout)

    def entries(self) -> list[StoredSession]:
        """This host's and app's entries (every user's), as the file holds them now."""
        return [
            e
            for e in read_token_file(self.path)
            if e.base_url == self.base_url and e.session.app_id == self.app_id
        ]

    def read(self) -> UserSession | None:
        """The session this store points at, read now (synchronously). The user found
        is kept: another user logging in to the app later does not make it ambiguous."""
        entry = self.entry()
        return None if entry is None else entry.session

    def entry(self) -> StoredSession | None:
        """The entry this store points at, read now, with whether it has ended."""
        found = self.entries()
        if self.open_id is not None:
            found = [e for e in found if e.session.open_id == self.open_id]
        if len(found) > 1:
            users = ", ".join(e.session.who for e in found)
            raise TokenStoreError(
                f"{self.path} holds {len(found)} users of app {self.app_id} at "
                f"{self.base_url} ({users}): choose one by open_id (--user)"
            )
        if not found:
            return None
        self.open_id = found[0].session.open_id or None
        return found[0]

    async def load(self) -> UserSession | None:
        return self.read()

    async def save(self, session: UserSession) -> None:
        self.write(session)

    def write(self, session: UserSession) -> None:
        """Put ``session`` in the file, keeping every other entry (hold :meth:`lock`)."""
        if session.app_id != self.app_id:
            raise ValueError(
                f"a session of app {session.app_id} cannot go in the store of app {self.app_id}"
            )
        stored = StoredSession(base_url=self.base_url, session=session)
        others = [e for e in read_token_file(self.path) if e.key != stored.key]
        write_token_file(self.path, [*others, stored])
        self.open_id = session.open_id or None

    async def record_end(self, session: UserSession, ended: SessionEnded) -> None:
        key = entry_key(self.base_url, self.app_id, session.open_id)
        entries = read_token_file(self.path)
        if any(e.key == key and e.session == session for e in entries):
            marked = StoredSession(base_url=self.base_url, session=session, ended=ended)
            write_token_file(self.path, [marked if e.key == key else e for e in entries])

    def forget(self) -> UserSession | None:
        """Remove this store's entry from the file (hold :meth:`lock`); what was removed."""
        session = self.read()
        if session is None:
            return None
        gone = entry_key(self.base_url, self.app_id, session.open_id)
        write_token_file(self.path, [e for e in read_token_file(self.path) if e.key != gone])
        return session

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self._lock.lock()

    def __repr__(self) -> str:
        user = f", open_id={self.open_id!r}" if self.open_id else ""
        return (
            f"FileSessionStore({str(self.path)!r}, base_url={self.base_url!r}, "
            f"app_id={self.app_id!r}{user})"
        )
