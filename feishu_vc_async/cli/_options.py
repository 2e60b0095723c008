"""The client every command that calls the platform builds, from its options, once.

::

    add_client_arguments(parser, participant_list=True)    # credentials, host, pacing
    settings = client_settings(args, env)                   # ConfigError, before any I/O
    async with settings.open() as client: ...               # the one VCClient

Settings flow one way: options and environment → :class:`ClientSettings` (checked
here) → the client, which the command hands down to the library.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from .._constants import API_MEETING_LIST, API_PARTICIPANT_LIST, MAX_ANSWER_BYTES, MAX_RETRIES
from .._retry import Retries
from .._scrub import redact_url
from .._validate import int_between, positive_int
from ..auth import Auth
from ..client import VCClient
from ..errors import ConfigError
from ..ratelimit import Budget, Limits, RateLimit, RateLimiter
from ._credentials import add_credential_arguments, resolve_credentials

__all__ = [
    "ENV_REDIS_URL",
    "ClientSettings",
    "add_client_arguments",
    "client_settings",
]

ENV_REDIS_URL: Final = "FEISHU_VC_REDIS_URL"
DEFAULT_RATE_LIMIT: Final = "100/60s"
# Beyond this a failure is not transient: each retry waits up to 30 s.
MAX_RETRIES_ALLOWED: Final = 100
# Each API's budget option, by its bucket.
_RATE_OPTIONS: Final = {
    API_PARTICIPANT_LIST: "--rate-limit",
    API_MEETING_LIST: "--meeting-list-rate-limit",
}


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything the command's client is built from (secrets stay out of the ``repr``)."""

    auth: Auth = field(repr=False)
    base_url: str
    rates: dict[str, RateLimit]  # by bucket: the APIs this command calls
    max_retries: int = MAX_RETRIES
    max_answer_bytes: int = MAX_ANSWER_BYTES
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "feishu_vc"
    redis_fallback: bool = False

    @property
    def rate_limit(self) -> RateLimit:
        """participant_list's budget (the default one when the command does not page it)."""
        return self.rates.get(API_PARTICIPANT_LIST, RateLimit())

    def _limiters(self) -> dict[str, RateLimiter]:
        """A Redis limiter per budget when the command shares them (no I/O yet)."""
        if self.redis_url is None:
            return {}
        from ..ratelimit import RedisRateLimiter

        url, prefix, fallback = self.redis_url, self.redis_prefix, self.redis_fallback
        try:
            return {
                bucket: RedisRateLimiter(url, rate, prefix=prefix, fallback_local=fallback)
                for bucket, rate in self.rates.items()
            }
        except (TypeError, ValueError):
            # redis-py's message may quote the URL, password included: not repeated here.
            raise ConfigError(
                f"--redis-url {redact_url(self.redis_url)!r}: not a usable Redis URL"
            ) from None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[VCClient]:
        """The command's client, open; its Redis limiters closed after it."""
        limiters = self._limiters()
        budgets: dict[str, Budget] = {**self.rates, **limiters}
        limits = Limits(
            participant_list=budgets.get(API_PARTICIPANT_LIST, RateLimit()),
            meeting_list=budgets.get(API_MEETING_LIST, RateLimit()),
        )
        try:
            async with VCClient(
                self.auth,
                base_url=self.base_url,
                limits=limits,
                retries=Retries(max_retries=self.max_retries),
                max_answer_bytes=self.max_answer_bytes,
            ) as client:
                # A command run again right after it was killed must not spend the
                # budget its predecessor's last requests still hold.
                client.assume_recent_requests()
                yield client
        finally:
            for limiter in limiters.values():
                await limiter.aclose()


def _rate(option: str, text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _redis_url(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """``--redis-url`` or ``$FEISHU_VC_REDIS_URL``, checked to be a Redis URL."""
    redis_url: str | None = args.redis_url or env.get(ENV_REDIS_URL) or None
    if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--redis-url {redact_url(redis_url)!r}: expected redis://host:port/db")
    if args.redis_fallback and redis_url is None:
        raise ConfigError(f"--redis-fallback needs --redis-url (or {ENV_REDIS_URL})")
    return redis_url


def client_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ClientSettings:
    """The options of :func:`add_client_arguments` (and the environment), checked:
    ``ConfigError`` naming the option and the rule, before anything is opened."""
    rates = {
        bucket: _rate(option, getattr(args, option[2:].replace("-", "_")))
        for bucket, option in _RATE_OPTIONS.items()
        if hasattr(args, option[2:].replace("-", "_"))
    }
    try:
        retries = MAX_RETRIES if args.max_retries is None else args.max_retries
        max_retries = int_between("--max-retries", retries, 0, MAX_RETRIES_ALLOWED)
        max_answer_bytes = positive_int("--max-answer-bytes", args.max_answer_bytes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    redis_url = _redis_url(args, env)
    prefix, fallback = args.redis_prefix, args.redis_fallback
    # Who the client acts as, last: a user session's lock needs the Redis settings.
    base_url, auth = resolve_credentials(args, env, redis_url=redis_url, redis_prefix=prefix)
    return ClientSettings(
        auth=auth,
        base_url=base_url,
        rates=rates,
        max_retries=max_retries,
        max_answer_bytes=max_answer_bytes,
        redis_url=redis_url,
        redis_prefix=prefix,
        redis_fallback=fallback,
    )


def add_client_arguments(
    parser: argparse.ArgumentParser, *, participant_list: bool
) -> argparse._ArgumentGroup:
    """Credentials, host and pacing; ``participant_list``: the command pages through it
    (``--rate-limit``), besides listing meetings (``--meeting-list-rate-limit``).
    Returns the credentials group, for a command's own additions."""
    credentials = add_credential_arguments(parser)
    pacing = parser.add_argument_group("pacing")
    if participant_list:
        pacing.add_argument(
            "--rate-limit",
            default=DEFAULT_RATE_LIMIT,
            metavar="N/PERIOD",
            help=f"participant_list's requests per period, such as 100/60s or 20/1s (default "
            f"{DEFAULT_RATE_LIMIT}, the platform's limit)",
        )
    pacing.add_argument(
        "--meeting-list-rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/PERIOD",
        help=f"meeting_list's own budget, paced apart from participant_list's (default "
        f"{DEFAULT_RATE_LIMIT}, the platform's limit)",
    )
    pacing.add_argument(
        "--redis-url",
        metavar="URL",
        help="share the rate limits and tenant tokens with other processes through Redis "
        f"(env {ENV_REDIS_URL})",
    )
    pacing.add_argument(
        "--redis-fallback",
        action="store_true",
        help="if Redis cannot be reached, pace this process at its share of the limit (the "
        "limit over the processes last seen sharing it) for a while, with a warning, "
        "instead of stopping",
    )
    pacing.add_argument(
        "--redis-prefix",
        default="feishu_vc",
        help="key prefix in Redis; processes sharing limits and tokens use the same (default "
        "feishu_vc)",
    )
    pacing.add_argument(
        "--max-retries", type=int, help="attempts after the first for a transient failure"
    )
    pacing.add_argument(
        "--max-answer-bytes",
        type=int,
        default=MAX_ANSWER_BYTES,
        metavar="BYTES",
        help=f"refuse an answer whose body is larger (default {MAX_ANSWER_BYTES}, far above "
        "any real page): a proxy that never ends a body must not exhaust memory",
    )
    return credentials
