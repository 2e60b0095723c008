"""The exception tree.

::

    FeishuError
    ├── InvalidQueryError (also ValueError)   bad input, raised before any request  (permanent)
    ├── TransportError                        connection refused / reset; ``from`` aiohttp's cause
    │   └── RequestTimeoutError               connect or total timeout
    ├── DecodeError                           body is not the expected JSON (an HTML 502
    │   │                                     page, a cut-short answer, nested too deep)
    │   └── AnswerTooLargeError               body over ``max_answer_bytes``
    ├── PagingError                           a page token repeated, or pages without end
    ├── RateLimiterError                      the shared limiter (Redis) cannot be used
    ├── TokenStoreError                       a user session's store or lock cannot be used
    ├── LoginError                            the browser login did not complete (refused,
    │                                         a wrong state, no redirect in time)
    ├── ConfigError (also ValueError)         the CLI: bad options or environment
    ├── MeetingsFileError (also ValueError)   export: bad rows in the meetings file
    ├── ExportError                           export: the output cannot be used as asked
    │   ├── OutputExistsError (ValueError)    it is not this export's
    │   ├── OutputInUseError                  another run holds its lock
    │   └── CheckpointError (ValueError)      the saved progress does not fit this run
    │       ├── UnfinishedExportError         a fresh start would discard an unfinished one
    │       ├── CheckpointMismatchError       another export's
    │       └── OutputChangedError            the output no longer matches it
    └── APIError                              the platform answered with a non-zero ``code``
        ├── InternalServerError               121001, 20050, 20072, or HTTP 5xx (retryable)
        ├── NotSupportedError                 121002                         (permanent)
        ├── ParameterError                    121003, 126003-8, 126015-16   (permanent)
        ├── NotFoundError                     121004, 126009                 (permanent)
        ├── PermissionDeniedError             121005, 99991672, 99991679     (permanent)
        ├── RateLimitedError                  99991400, HTTP 429 or 400      (retryable)
        └── AuthError                         99991661, 99991663, 99991664, 99991668,
            │                                 99991671, 99991677, token endpoint refusals
            ├── LoginRequiredError            20003/20004/20065 (code), 20026/20037/
            │                                 20064/20073 (refresh token), no session
            ├── RefreshDisabledError          20074: the app's refresh switch is off
            └── AppTicketError                10012: a store app's app_ticket is stale

Every error carries what is known of its request and answer (``None`` where not known):
``method`` and ``path``, ``http_status``, ``code`` and ``log_id`` (the ``X-Tt-Logid``
header, or ``error.log_id`` in the body); an ``APIError`` always has the last three, and
``msg``. None of them ever holds an access token or an app secret: the path is kept
without its query string, headers are never copied, and text from the body is scrubbed
of secrets and anything shaped like a token. Which class a code is: ``_error_codes``.

``retryable`` says whether asking again may succeed; the default retry policy reads it
(and the bounded loop stops anyway after ``max_retries``). ``permanent`` says that the
answer is about the request itself and will not change later either (no such meeting,
data gone, no permission, a parameter the platform refuses): ``fanout.Resume`` records
such a meeting as given up, so a resumed run does not ask again unless told to. The
export's errors live in ``feishu_vc_async.export`` and are drawn here so the tree is whole.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AnswerTooLargeError",
    "AppTicketError",
    "AuthError",
    "ConfigError",
    "DecodeError",
    "FeishuError",
    "InternalServerError",
    "InvalidQueryError",
    "LoginError",
    "LoginRequiredError",
    "NotFoundError",
    "NotSupportedError",
    "PagingError",
    "ParameterError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RateLimiterError",
    "RefreshDisabledError",
    "RequestTimeoutError",
    "TokenStoreError",
    "TransportError",
]


class FeishuError(Exception):
    """Base of every error this library raises.

    Like httpx's errors carry their request, every error carries what is known of the
    request and its answer, ``None`` where it is not known (an error raised before any
    request has none of them): ``method`` and ``path`` (the endpoint, never the query
    string), ``http_status``, the platform's ``code`` and the ``log_id`` the platform's
    support asks for.
    """

    retryable: bool = False
    permanent: bool = False
    method: str | None = None
    path: str | None = None
    http_status: int | None = None
    code: int | None = None
    log_id: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive pickling (multiprocessing) by default.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))

    def _where(self) -> str:
        """`` (GET /open-apis/...)`` when the request is known."""
        return f" ({self.method} {self.path})" if self.method else ""


def _rebuild(cls: type[FeishuError], args: tuple[Any, ...], state: dict[str, Any]) -> FeishuError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class InvalidQueryError(FeishuError, ValueError):
    """A query breaks one of the server's rules; raised before any request is sent.

    ``code`` is the platform code the server would have answered with.
    """

    permanent = True

    def __init__(self, field: str, value: object, rule: str, code: int | None = None) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        self.code = code
        suffix = f" (platform code {code})" if code is not None else ""
        super().__init__(f"{field}={value!r}: {rule}{suffix}")


class TransportError(FeishuError):
    """The request did not get an HTTP answer: connection refused or reset, DNS, TLS.

    ``retryable`` is false when the request may have reached the server and must not be
    sent twice (a single-use refresh token or authorization code).
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        retryable: bool = True,
    ) -> None:
        self.method = method
        self.path = path
        self.retryable = retryable
        super().__init__(f"{message}{self._where()}")


class RequestTimeoutError(TransportError):
    """The connect or total timeout expired."""


class DecodeError(FeishuError):
    """The body is not the JSON the endpoint documents (a proxy's HTML error page, say).

    ``retryable`` when asking again may help: an error status of a proxy (5xx, 429), or
    an answer to a repeatable request that did not arrive whole.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        snippet: str = "",
        log_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.problem = message
        self.http_status = http_status
        if retryable is None:  # unless the caller knows better: a proxy's error is transient
            retryable = http_status >= 500 or http_status == 429
        self.retryable = retryable
        self.snippet = snippet
        self.log_id = log_id
        self.method = method
        self.path = path
        super().__init__(self.describe())

    def describe(self, *, snippet: bool = True) -> str:
        """The message; ``snippet=False`` leaves out the start of the body, for a caller
        that must not show text it cannot vouch for (personal data in a cut-short page)."""
        parts = [f"HTTP {self.http_status}: {self.problem}"]
        if self.method:
            parts.append(f"request={self.method} {self.path}")
        if self.log_id:
            parts.append(f"log_id={self.log_id}")
        if snippet and self.snippet:
            parts.append(f"body starts {self.snippet!r}")
        return "; ".join(parts)


class AnswerTooLargeError(DecodeError):
    """The answer's body is larger than the client's ``max_answer_bytes`` (announced by
    its Content-Length, or counted while reading: a server or proxy that never ends a
    body). Refused before it exhausts memory; asking again may help (a proxy's fault),
    so it is retried like a garbled answer, then final."""

    def __init__(
        self,
        *,
        limit: int,
        announced: int | None,
        http_status: int,
        log_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        retryable: bool = True,
    ) -> None:
        self.limit = limit
        self.announced = announced
        read = f"Content-Length {announced}" if announced is not None else "still going"
        super().__init__(
            f"the answer's body is larger than the limit of {limit} bytes ({read}); "
            "raise max_answer_bytes if a real answer is this large",
            http_status=http_status,
            log_id=log_id,
            method=method,
            path=path,
            retryable=retryable,
        )


class PagingError(FeishuError):
    """The server's paging cannot be trusted: it repeated a page token (a loop), or
    handed out new ones past any plausible end. What was read is not the whole listing.
    ``permanent``: asking the same server again would do the same; a resumed export
    asks again (from the first page) only when told to retry what failed for good."""

    permanent = True


class RateLimiterError(FeishuError):
    """The configured rate limiter cannot be used (Redis unreachable, say).

    ``problem`` says what is wrong; ``hint``, when there is one, how a library caller can
    go on (a program with its own switches, such as the CLI, shows its own advice).
    """

    def __init__(self, problem: str, *, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem}; {hint}" if hint else problem)


class ConfigError(FeishuError, ValueError):
    """Bad options or environment, raised before any request (the CLI's exit code 2);
    the message is safe to print (no secret in it). Also ``feishu_vc_async.export``'s."""


class LoginError(FeishuError):
    """The browser login did not complete: the user refused (``access_denied``), the
    redirect's ``state`` was not this login's, or no redirect came in time. The message
    says which, and never holds a code or a token."""


class TokenStoreError(FeishuError):
    """A user session's store or its lock cannot be used: an unreadable token file, a
    lock another process holds for too long, an unreachable Redis. The message names
    the file or the server, never a token."""


class APIError(FeishuError):
    """The platform answered with a non-zero ``code``."""

    http_status: int
    code: int

    def __init__(
        self,
        *,
        http_status: int,
        code: int,
        msg: str,
        log_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.log_id = log_id
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"code={self.code} msg={self.msg!r}", f"http_status={self.http_status}"]
        if self.method:
            parts.append(f"request={self.method} {self.path}")
        parts.append(f"log_id={self.log_id or '-'}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()})"


class InternalServerError(APIError):
    """121001 or an HTTP 5xx: the platform failed; retrying may help."""

    retryable = True


class NotSupportedError(APIError):
    """121002: the feature is not supported."""

    permanent = True


class ParameterError(APIError):
    """121003, 126003-126007, 126015: the server rejected a parameter."""

    permanent = True


class NotFoundError(APIError):
    """121004 or 126009: no such data or no meeting matching the parameters."""

    permanent = True


class PermissionDeniedError(APIError):
    """121005, 99991672, 99991679: the token lacks a permission or scope."""

    permanent = True


class RateLimitedError(APIError):
    """99991400: over the gateway's limit. ``reset_seconds`` is the server's hint, if any."""

    retryable = True

    def __init__(
        self,
        *,
        http_status: int,
        code: int,
        msg: str,
        log_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        reset_seconds: float | None = None,
        limit: int | None = None,
    ) -> None:
        self.reset_seconds = reset_seconds
        self.limit = limit
        super().__init__(
            http_status=http_status, code=code, msg=msg, log_id=log_id, method=method, path=path
        )

    def _describe(self) -> str:
        extra = f"; reset_seconds={self.reset_seconds}" if self.reset_seconds is not None else ""
        return super()._describe() + extra


class AuthError(APIError):
    """The token is missing, malformed, invalid or expired, or app credentials were refused."""


class _Advised(AuthError):
    """An auth error whose message starts with what to do about it (``ADVICE``); the
    platform's code, text and log id follow. ``code`` 0: decided here, without an answer."""

    ADVICE = ""

    def _describe(self) -> str:
        if self.code == 0 and self.http_status == 0:
            return f"{self.msg}: {self.ADVICE}"
        return f"{self.ADVICE} ({super()._describe()})"


class LoginRequiredError(_Advised):
    """The user session is over: its refresh token expired (20037), was used or revoked
    (20064, 20073) or is unknown (20026), an authorization code is unusable (20003,
    20004, 20065), or no session is stored. The user must authorize the app again."""

    ADVICE = "the user must sign in again: run `feishu-vc auth login`"


class RefreshDisabledError(_Advised):
    """20074: the app may not refresh user tokens."""

    ADVICE = (
        'switch on "refresh user_access_token" in the app\'s Security Settings '
        "(developer console), then try again"
    )


class AppTicketError(_Advised):
    """10012: the store app's app_ticket is invalid or stale (a resend is due), or no new
    ticket arrived after a resend request."""

    ADVICE = (
        "the store app needs a fresh app_ticket: the platform pushes it to the app's event "
        "callback after a resend request; feed it to the ticket source"
    )
