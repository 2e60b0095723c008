"""Tenant tokens (and a store app's ``app_access_token``) shared through Redis, so that
N processes fetch one token per tenant per expiry, not N.

Keys (``prefix`` as given, ``feishu_vc`` by default):

* ``{prefix}:token:{app_id}:{tenant_key}``: a tenant token (``_`` stands for the one
  tenant of a custom app; a store app's tenant keys never are ``_``);
* ``{prefix}:app-token:{app_id}``: a store app's ``app_access_token``;
* ``{prefix}:lock:{key}``: the :class:`~.RedisLock` of the token key ``key``.

A token key holds the token, and its Redis TTL ends where the process that fetched it
would have refreshed it (:func:`~._tenant.cache_deadline`): a key that exists holds a
token fresh enough to use. A reader takes the TTL with the value and ends its own cache
then (measured from before it asked), so no two hosts' clocks are ever compared.

When a process's own cache is stale (its provider's single flight lets one task per
process through), :meth:`SharedTokens.token`:

1. reads the key: a token there (other than one this process saw refused) is used;
2. else takes the key's lock (waiting at most ``lock_timeout``), reads again (another
   process may have stored one meanwhile), and only if still needed drops a refused
   token, fetches, stores it with its TTL, and releases the lock.

A token the platform refuses (the provider's ``invalidate``) is remembered; the next
:meth:`~SharedTokens.token` skips it in Redis and, under the lock, deletes it there only
while Redis still holds that very token (compare-and-delete in Lua), so a process with a
stale view never deletes a newer token another process stored.

**Fallback rule.** Sharing saves requests; it is never a reason to fail. If Redis cannot
be used before the fetch (unreachable, an error, or the lock held longer than
``lock_timeout`` by a holder that hangs), this process fetches the token itself, as it
would without sharing, and caches it for its own life: it asks Redis again only at its
next refresh. A warning says so once (logger ``feishu_vc_async``, naming Redis by
host:port/db and the error's type, never a URL, password or token); once Redis answers
again an info line says sharing is back. A token fetched but not stored (Redis failed
after the fetch) is used all the same. Errors of the fetch itself are raised as ever.

**Security.** The keys hold live bearer tokens: whoever can read them acts as the app
in its tenants, and whoever can write them can make the processes use a token of their
choosing. Use a Redis only trusted processes reach (ACLs limiting the key prefix,
TLS with ``rediss://`` across hosts). Nothing here logs a token, and no ``repr`` shows
one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .._cancel import cancellable
from .._clock import Clock
from .._constants import LOGGER_NAME
from .._validate import positive_seconds
from ..errors import TokenStoreError
from ..ratelimit._redis import _describe
from ._redis import RedisLock, _redis_errors, redis_client

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Fetched", "SharedTokens"]

logger = logging.getLogger(LOGGER_NAME)

CUSTOM_TENANT: Final = "_"

# The value and its time left, in one round trip (-2: no key, -1: no TTL).
_READ_LUA: Final = """
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""
# Delete the token only while it is the one refused (a newer one must survive).
_DROP_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Fetched(NamedTuple):
    """A token and when its holder fetches a new one (on the provider's clock)."""

    token: str
    refresh_at: float

    def __repr__(self) -> str:
        return f"Fetched(token=<hidden>, refresh_at={self.refresh_at!r})"


Fetch = Callable[[], Awaitable[Fetched]]


class SharedTokens:
    """Tokens shared by every process that uses the same Redis and ``prefix`` (see the
    module doc: keys, the fallback rule, and why that Redis must be trusted).

    ``redis``: a URL (a client is made for each refresh and closed: refreshes are rare)
    or a caller's ``redis.asyncio.Redis`` (used as is, never closed here). Pass it as
    ``shared=`` to :class:`~.TenantTokenProvider`, :class:`~.StoreAppTokenProvider` or
    :class:`~.AppCredentials`; one instance may serve many providers and apps.
    ``lock_ttl``: how long a crashed holder's lock blocks the others (renewed every
    third of it while held: short, since a fetch takes well under a second and every
    request of the tenant, in every process, waits for it while a worker killed
    mid-fetch still holds it); ``lock_timeout``: how long a process waits for the lock
    before it fetches for itself.
    """

    __slots__ = ("_down", "_redis", "_refused", "lock_timeout", "lock_ttl", "prefix")

    def __init__(
        self,
        redis: str | Redis,
        *,
        prefix: str = "feishu_vc",
        lock_ttl: float = 3.0,
        lock_timeout: float = 30.0,
    ) -> None:
        if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"prefix={prefix!r}: must be non-empty, without braces or spaces")
        if isinstance(redis, str) and importlib.util.find_spec("redis") is None:
            # A missing extra is named now, not at the first refresh.
            raise ImportError("SharedTokens needs redis-py: pip install 'feishu-vc-async[redis]'")
        self._redis = redis
        self.prefix = prefix
        self.lock_ttl = positive_seconds("lock_ttl", lock_ttl)
        self.lock_timeout = positive_seconds("lock_timeout", lock_timeout)
        self._refused: dict[str, str] = {}  # key → the token last refused there
        self._down = False  # a fallback was logged, and Redis has not answered since

    # --- key names ----------------------------------------------------------------------

    def tenant_key(self, app_id: str, tenant_key: str = "") -> str:
        """The key of ``app_id``'s token for ``tenant_key`` (``""``: a custom app's)."""
        return f"{self.prefix}:token:{app_id}:{tenant_key or CUSTOM_TENANT}"

    def app_key(self, app_id: str) -> str:
        """The key of a store app's ``app_access_token``."""
        return f"{self.prefix}:app-token:{app_id}"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:lock:{key}"

    # --- use ----------------------------------------------------------------------------

    def refused(self, key: str, token: str) -> None:
        """The platform refused ``token`` of ``key``: never take it from Redis again, and
        delete it there (if still there) before the next fetch."""
        self._refused[key] = token

    async def token(self, key: str, fetch: Fetch, clock: Clock) -> Fetched:
        """The token of ``key`` from Redis, or ``fetch``ed once for every process and
        stored; ``refresh_at`` is on ``clock``, the caller's."""
        refused = self._refused.get(key)
        unusable: tuple[type[BaseException], ...] = (TokenStoreError, *_redis_errors())
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(redis_client(self._redis))
            try:
                found = await self._read(client, key, clock, refused)
                if found is None:
                    lock = RedisLock(
                        client, self._lock_key(key), ttl=self.lock_ttl, timeout=self.lock_timeout
                    )
                    await stack.enter_async_context(lock.lock())
                    found = await self._read(client, key, clock, refused)
            except unusable as exc:
                self._unshared(client, exc)
                return await fetch()
            self._shared_again(client)
            if found is not None:
                self._refused.pop(key, None)
                return found
            if refused is not None:
                await self._quietly(client, "drop a refused token", _DROP_LUA, key, refused)
            fetched = await fetch()
            self._refused.pop(key, None)
            await self._store(client, key, fetched, clock)
            return fetched
        raise AssertionError("unreachable")  # pragma: no cover

    async def discard(self, key: str, token: str) -> bool:
        """Delete ``key`` if it still holds ``token`` (compare-and-delete); True if it
        did. Raises :class:`~feishu_vc_async.errors.TokenStoreError` if Redis cannot be
        used."""
        async with redis_client(self._redis) as client:
            try:
                return bool(await cancellable(client.eval(_DROP_LUA, 1, key, token)))
            except _redis_errors() as exc:
                raise TokenStoreError(
                    f"the token key {key} in Redis at {_describe(client)} cannot be used: "
                    f"{type(exc).__name__}"
                ) from exc

    # --- Redis --------------------------------------------------------------------------

    @staticmethod
    async def _read(client: Redis, key: str, clock: Clock, refused: str | None) -> Fetched | None:
        before = clock()  # the TTL counts from no earlier than this
        value, left_ms = await cancellable(client.eval(_READ_LUA, 1, key))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or not value or value == refused:
            return None
        if not isinstance(left_ms, int) or left_ms <= 0:
            return None  # no TTL: not stored by this code; fetched and replaced
        return Fetched(value, before + left_ms / 1000)

    async def _store(self, client: Redis, key: str, fetched: Fetched, clock: Clock) -> None:
        left_ms = math.ceil((fetched.refresh_at - clock()) * 1000)
        if left_ms > 0:
            await self._quietly(client, "store the token", None, key, fetched.token, left_ms)

    async def _quietly(
        self, client: Redis, what: str, script: str | None, key: str, *args: Any
    ) -> None:
        """A write the token does not depend on: a failure is logged, not raised."""
        try:
            if script is None:
                await cancellable(client.set(key, args[0], px=args[1]))
            else:
                await cancellable(client.eval(script, 1, key, *args))
        except _redis_errors() as exc:
            logger.warning(
                "could not %s in Redis at %s (%s): %s",
                what,
                _describe(client),
                type(exc).__name__,
                key,
            )

    def _unshared(self, client: Redis, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        reason = str(exc) if isinstance(exc, TokenStoreError) else type(exc).__name__
        logger.warning(
            "tokens are not shared: Redis at %s cannot be used (%s); this process fetches "
            "its own tokens, and tries Redis again at its next refresh",
            _describe(client),
            reason,
        )

    def _shared_again(self, client: Redis) -> None:
        if self._down:
            self._down = False
            logger.info("Redis at %s answers again: tokens are shared", _describe(client))

    def __repr__(self) -> str:
        where = "client" if not isinstance(self._redis, str) else "url"
        return f"SharedTokens(prefix={self.prefix!r}, via {where})"
