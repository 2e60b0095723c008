"""The platform's codes: which error class each one is, and the codes the token
providers and the retry loop act on."""

from __future__ import annotations

from .errors import (
    APIError,
    AppTicketError,
    AuthError,
    InternalServerError,
    LoginRequiredError,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    PermissionDeniedError,
    RateLimitedError,
    RefreshDisabledError,
)

__all__ = [
    "APP_TOKEN_INVALID_CODE",
    "RATE_LIMITED_CODE",
    "TENANT_TOKEN_RETRY_CODES",
    "USER_TOKEN_REFRESH_CODES",
    "error_for_code",
]

_CODE_TO_CLASS: dict[int, type[APIError]] = {
    121001: InternalServerError,
    121002: NotSupportedError,
    121003: ParameterError,
    126003: ParameterError,
    126004: ParameterError,
    126005: ParameterError,
    126006: ParameterError,
    126007: ParameterError,
    126015: ParameterError,
    # meeting_list's own: two of meeting_no/user_id/room_id/meeting_type; an upcoming
    # range over a month
    126008: ParameterError,
    126016: ParameterError,
    121004: NotFoundError,
    126009: NotFoundError,
    121005: PermissionDeniedError,
    99991672: PermissionDeniedError,
    99991679: PermissionDeniedError,
    99991400: RateLimitedError,
    99991661: AuthError,
    99991663: AuthError,
    99991664: AuthError,
    99991668: AuthError,
    99991671: AuthError,
    99991677: AuthError,
    # The v2 user-token endpoint (identity.md's table); other refusals stay AuthError.
    20003: LoginRequiredError,
    20004: LoginRequiredError,
    20065: LoginRequiredError,
    20026: LoginRequiredError,
    20037: LoginRequiredError,
    20064: LoginRequiredError,
    20073: LoginRequiredError,
    20074: RefreshDisabledError,
    20050: InternalServerError,
    20072: InternalServerError,
    # Store apps: app_access_token with a stale ticket.
    10012: AppTicketError,
}

# Codes after which a fresh token may succeed, split by who can provide one.
TENANT_TOKEN_RETRY_CODES = frozenset({99991663, 99991664, 99991671})
# The store endpoint's refusal of an app access token: fetch a new one and ask again.
APP_TOKEN_INVALID_CODE = 99991664
# A revoked user token answers the generic 99991663, so it asks for a refresh too.
USER_TOKEN_REFRESH_CODES = frozenset({99991663, 99991668, 99991677})
RATE_LIMITED_CODE = 99991400


def error_for_code(
    *,
    http_status: int,
    code: int,
    msg: str,
    log_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    default: type[APIError] = APIError,
) -> APIError:
    """The typed error of a platform code; a code the table does not know is ``default``
    (an :class:`InternalServerError` on an HTTP 5xx). Throttling is decided where the
    answer's headers are read (``_answers``), so a 99991400 here carries no reset hint."""
    cls = _CODE_TO_CLASS.get(code)
    if cls is None:
        cls = InternalServerError if http_status >= 500 else default
    return cls(http_status=http_status, code=code, msg=msg, log_id=log_id, method=method, path=path)
