"""Where a long connection connects: ``POST {base}/callback/ws/endpoint`` and its
``ClientConfig`` (``../shared/spec/events.md`` section 3.1), and the error it raises.

The answer's ``URL`` carries the connection's tickets in its query string: it is never
logged nor put in an exception (:func:`shown_url` is what may be shown). The app secret
is only ever in the request body.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final

import aiohttp
import msgspec
from yarl import URL

from ..errors import FeishuError

__all__ = [
    "ENDPOINT_PATH",
    "ClientConfig",
    "Endpoint",
    "LongConnectionError",
    "fetch_endpoint",
    "shown_url",
]

ENDPOINT_PATH: Final = "/callback/ws/endpoint"
SYSTEM_BUSY: Final = 1
AUTH_FAILED: Final = 514
INTERNAL_ERROR: Final = 1000040343
TOO_MANY_CONNECTIONS: Final = 1000040350
# Codes that may pass on their own (the SDKs retry them); any other one will not.
_PASSING: Final = frozenset({SYSTEM_BUSY, INTERNAL_ERROR, TOO_MANY_CONNECTIONS})
_ANSWER_LIMIT: Final = 64 * 1024
_SERVICE: Final = re.compile(r"[0-9]{1,9}", re.ASCII)  # an int32
_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


class LongConnectionError(FeishuError):
    """The long connection could not be opened (or re-opened).

    ``code`` is the endpoint's code when it answered one (514: the app id or secret is
    wrong; 1000040350: the app has its 50 connections already; 1: system busy),
    ``http_status`` its HTTP status when known. ``permanent`` when retrying cannot help
    (an auth failure, an unknown code). Never carries the app secret nor the
    connection URL's tickets."""

    def __init__(
        self, message: str, *, code: int | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.method, self.path = "POST", ENDPOINT_PATH
        self.permanent = code is not None and code not in _PASSING
        self.retryable = not self.permanent


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The server's schedule for a connection, in seconds: ping every ``ping_interval``;
    after a drop wait a random 0..``reconnect_nonce``, then try every
    ``reconnect_interval``, at most ``reconnect_count`` times (-1: forever)."""

    ping_interval: float = 120.0
    reconnect_count: int = -1
    reconnect_interval: float = 120.0
    reconnect_nonce: float = 30.0

    def updated(self, raw: object) -> ClientConfig:
        """This config with the fields a server's ``ClientConfig`` JSON object sets
        (names as the platform spells them); a missing or out-of-range one is kept."""
        if not isinstance(raw, dict):
            return self
        changes: dict[str, float | int] = {}
        for key, name, least in (
            ("PingInterval", "ping_interval", 0.001),
            ("ReconnectInterval", "reconnect_interval", 0.0),
            ("ReconnectNonce", "reconnect_nonce", 0.0),
        ):
            value = raw.get(key)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and least <= value <= 86_400:  # type: ignore[operator]
                changes[name] = float(value)  # type: ignore[arg-type]
        count = raw.get("ReconnectCount")
        if isinstance(count, int) and not isinstance(count, bool) and count >= -1:
            changes["reconnect_count"] = count
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    service_id: int
    device_id: str
    config: ClientConfig

    def __repr__(self) -> str:
        return f"Endpoint(url={shown_url(self.url)!r}, service_id={self.service_id})"


class _Data(msgspec.Struct):
    URL: str = ""
    ClientConfig: dict[str, object] | None = None


class _Answer(msgspec.Struct):
    code: int
    msg: str = ""
    data: _Data | None = None


_DECODER: Final = msgspec.json.Decoder(_Answer)


def shown_url(url: str) -> str:
    """``url`` without its query string (the tickets): what a log may show."""
    try:
        return str(URL(url).with_query(None).with_fragment(None))
    except ValueError:
        return "<not a URL>"


async def fetch_endpoint(
    session: aiohttp.ClientSession, base_url: str, app_id: str, app_secret: str, *,
    config: ClientConfig,
) -> Endpoint:  # fmt: skip
    """Ask the endpoint where to connect; :class:`LongConnectionError` for a refusal, an
    answer that is not the platform's, or a transport failure."""
    body = {"AppID": app_id, "AppSecret": app_secret}
    try:
        async with session.post(
            base_url + ENDPOINT_PATH, json=body, headers={"locale": "zh"}, timeout=_TIMEOUT
        ) as response:
            status = response.status
            raw = await response.content.read(_ANSWER_LIMIT + 1)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise LongConnectionError(
            f"the endpoint could not be reached ({type(exc).__name__})"
        ) from None
    try:
        answer = _DECODER.decode(raw) if len(raw) <= _ANSWER_LIMIT else None
    except msgspec.DecodeError:
        answer = None
    if answer is None:
        raise LongConnectionError(
            f"the endpoint answered HTTP {status} without the platform's JSON", http_status=status
        )
    if answer.code != 0:
        msg = answer.msg[:200] or "no message"
        raise LongConnectionError(
            f"the endpoint refused: code={answer.code} msg={msg!r}",
            code=answer.code,
            http_status=status,
        )
    return _endpoint(answer.data or _Data(), status, config)


def _endpoint(data: _Data, status: int, config: ClientConfig) -> Endpoint:
    try:
        url = URL(data.URL)
    except ValueError:
        url = URL()
    service = url.query.get("service_id", "")
    service = service if _SERVICE.fullmatch(service) else ""
    device = url.query.get("device_id", "")
    if url.scheme not in ("ws", "wss") or not url.host or not service or not device:
        raise LongConnectionError(
            "the endpoint's URL is not a ws(s):// URL with device_id and service_id",
            http_status=status,
        )
    return Endpoint(data.URL, int(service), device, config.updated(data.ClientConfig))
