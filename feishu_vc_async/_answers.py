"""A raw HTTP answer → the endpoint's decoded value, or the typed error it means.

Pure functions (no I/O), so the whole error table is tested without a server. The rules:

* the body decodes as the endpoint's answer with ``code == 0`` and an HTTP status below
  400: the value;
* a non-zero ``code`` (or a 4xx/5xx status): the error class of that code; an HTTP 429
  is the gateway throttling, whatever code its body carries (the one place that rule
  lives), and reads the ``x-ogw-ratelimit-*`` headers;
* a body that is not the endpoint's JSON: the common error envelope if it is one, else a
  :class:`~.errors.DecodeError` naming the HTTP status, with a scrubbed snippet.

Every text taken from the body is scrubbed of the request's secrets and of anything
shaped like a token (``_scrub``), and the log id is the ``X-Tt-Logid`` header, else the
body's ``error.log_id``.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import msgspec
from multidict import CIMultiDictProxy

from ._constants import (
    BODY_SNIPPET_CHARS,
    LOGID_HEADER,
    RATELIMIT_LIMIT_HEADER,
    RATELIMIT_RESET_HEADER,
)
from ._endpoints import Answer, Endpoint
from ._error_codes import RATE_LIMITED_CODE, error_for_code
from ._scrub import scrub
from .errors import (
    APIError,
    DecodeError,
    FeishuError,
    RateLimitedError,
)
from .models import ERROR_ENVELOPE_DECODER

__all__ = ["RawResponse", "parse_reset_header", "read_answer"]

T = TypeVar("T")


class RawResponse(NamedTuple):
    """One HTTP answer, read fully inside the response context."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def log_id(self) -> str | None:
        return self.headers.get(LOGID_HEADER)


def parse_reset_header(value: str | None) -> float | None:
    """``x-ogw-ratelimit-reset`` → seconds (fractional in a scaled emulator); junk → None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not 0 <= seconds < float("inf"):  # NaN, negative, infinite
        return None
    return seconds


def read_answer(endpoint: Endpoint[T], raw: RawResponse, secrets: tuple[str | None, ...] = ()) -> T:
    """The value of a successful answer; raises the typed error of any other."""
    try:
        answer = endpoint.decode(raw.body)
    except msgspec.DecodeError as exc:
        raise _failed_body(endpoint, raw, exc, secrets) from None
    except RecursionError:
        raise _too_deep(endpoint, raw, secrets) from None
    if answer.code == 0 and raw.status < 400:
        value = answer.value()
        if value is None:
            raise _decode_error(
                endpoint, raw, "code 0 but the answer lacks its value", secrets, garbled=False
            )
        return value
    raise api_error(endpoint, raw, answer, secrets)


def api_error(
    endpoint: Endpoint[object],
    raw: RawResponse,
    answer: Answer[object],
    secrets: tuple[str | None, ...],
) -> APIError:
    """The typed error of an answer with a non-zero ``code`` or an error status."""
    code = answer.code
    log_id = raw.log_id or answer.body_log_id
    text = scrub(answer.msg, secrets)
    if code == RATE_LIMITED_CODE or raw.status == 429:
        limit = raw.headers.get(RATELIMIT_LIMIT_HEADER, "")
        return RateLimitedError(
            http_status=raw.status,
            code=code,
            msg=text,
            log_id=log_id,
            method=endpoint.method,
            path=endpoint.path,
            reset_seconds=parse_reset_header(raw.headers.get(RATELIMIT_RESET_HEADER)),
            limit=int(limit) if limit.isascii() and limit.isdigit() else None,
        )
    return error_for_code(
        http_status=raw.status,
        code=code,
        msg=text,
        log_id=log_id,
        method=endpoint.method,
        path=endpoint.path,
        default=endpoint.refusal,
    )


def _failed_body(
    endpoint: Endpoint[object],
    raw: RawResponse,
    cause: msgspec.DecodeError,
    secrets: tuple[str | None, ...],
) -> FeishuError:
    """The body is not the endpoint's answer: the common error envelope, or junk."""
    try:
        envelope = ERROR_ENVELOPE_DECODER.decode(raw.body)
    except RecursionError:
        return _too_deep(endpoint, raw, secrets)
    except msgspec.DecodeError:
        if raw.body.lstrip()[:1] not in (b"{", b"["):
            return _decode_error(endpoint, raw, "body is not JSON", secrets, garbled=True)
        if "truncated" in str(cause):
            return _decode_error(endpoint, raw, "body was cut short", secrets, garbled=True)
        return _decode_error(endpoint, raw, "unexpected JSON", secrets, garbled=False)
    if envelope.code == 0:
        return _decode_error(
            endpoint,
            raw,
            f"code 0 but the body does not match the schema ({cause})",
            secrets,
            garbled=False,
        )
    return api_error(endpoint, raw, envelope, secrets)


def _too_deep(
    endpoint: Endpoint[object], raw: RawResponse, secrets: tuple[str | None, ...]
) -> DecodeError:
    # msgspec reads nesting by recursion: a body nested deeper than the stack allows is
    # no answer of the platform's (theirs nest a few levels), and asking again repeats it.
    return _decode_error(
        endpoint, raw, "body is nested too deep to be read", secrets, garbled=False
    )


def _decode_error(
    endpoint: Endpoint[object],
    raw: RawResponse,
    message: str,
    secrets: tuple[str | None, ...],
    *,
    garbled: bool,
) -> DecodeError:
    """``garbled``: the body did not arrive as a whole JSON document (cut short, or some
    proxy's page), unlike a whole document of the wrong shape, which asking again would
    only repeat."""
    # Transient: a gateway's error page in front of the platform, or (for a request that
    # may be repeated) a success that did not arrive whole. A 4xx page that is not the
    # platform's JSON is a definitive answer of something else (a wrong base path): no.
    transient = (
        raw.status >= 500
        or raw.status == 429
        or (garbled and bool(endpoint.idempotent) and raw.status < 400)
    )
    return DecodeError(
        message,
        http_status=raw.status,
        snippet=_snippet(raw.body, secrets),
        log_id=raw.log_id,
        method=endpoint.method,
        path=endpoint.path,
        retryable=transient,
    )


def _snippet(body: bytes, secrets: tuple[str | None, ...]) -> str:
    # Scrubbed before it is cut, so a secret straddling the cut cannot leave a prefix.
    text = " ".join(body[: BODY_SNIPPET_CHARS * 4].decode("utf-8", "replace").split())
    return scrub(text, secrets)[:BODY_SNIPPET_CHARS]
