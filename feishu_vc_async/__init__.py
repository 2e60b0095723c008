"""feishu_vc_async: asyncio client for Feishu / Lark VC participant data."""

from __future__ import annotations

from typing import Any

from ._constants import FEISHU_BASE_URL, LARK_BASE_URL
from ._deprecated import module_getattr
from ._retry import DefaultRetryPolicy, RetryDecision, RetryPolicy
from ._stats import ClientStats
from .auth import (
    Sender,
    StaticTokenProvider,
    StoreAppTokenProvider,
    TenantTokenProvider,
    TokenProvider,
    UserSession,
    UserSessionProvider,
    UserTokenProvider,
)
from .client import VCClient
from .errors import (
    APIError,
    AppTicketError,
    AuthError,
    DecodeError,
    FeishuError,
    InternalServerError,
    InvalidQueryError,
    LoginError,
    LoginRequiredError,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    PermissionDeniedError,
    RateLimitedError,
    RateLimiterError,
    RefreshDisabledError,
    RequestTimeoutError,
    TokenStoreError,
    TransportError,
)
from .fanout import FanOut, FanOutItem, FanOutProgress, MeetingFailure, PageItem, Resume
from .meetings import Meeting, MeetingListPage, MeetingListQuery, MeetingSubtype, MeetingType
from .models import (
    AcceptStatus,
    MeetingQuery,
    MeetingStatus,
    Participant,
    ParticipantPage,
    UserIdType,
    WebinarRole,
)
from .ratelimit import LimitKey, LocalRateLimiter, RateLimit, RateLimiter, RedisRateLimiter

__all__ = [
    "FEISHU_BASE_URL",
    "LARK_BASE_URL",
    "APIError",
    "AcceptStatus",
    "AppTicketError",
    "AuthError",
    "ClientStats",
    "DecodeError",
    "DefaultRetryPolicy",
    "FanOut",
    "FanOutItem",
    "FanOutProgress",
    "FeishuError",
    "InternalServerError",
    "InvalidQueryError",
    "LimitKey",
    "LocalRateLimiter",
    "LoginError",
    "LoginRequiredError",
    "Meeting",
    "MeetingFailure",
    "MeetingListPage",
    "MeetingListQuery",
    "MeetingQuery",
    "MeetingStatus",
    "MeetingSubtype",
    "MeetingType",
    "NotFoundError",
    "NotSupportedError",
    "PageItem",
    "ParameterError",
    "Participant",
    "ParticipantPage",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterError",
    "RedisRateLimiter",
    "RefreshDisabledError",
    "RequestTimeoutError",
    "Resume",
    "RetryDecision",
    "RetryPolicy",
    "Sender",
    "StaticTokenProvider",
    "StoreAppTokenProvider",
    "TenantTokenProvider",
    "TokenProvider",
    "TokenStoreError",
    "TransportError",
    "UserIdType",
    "UserSession",
    "UserSessionProvider",
    "UserTokenProvider",
    "VCClient",
    "WebinarRole",
]

# Old names that keep working, with a DeprecationWarning, for one release.
_DEPRECATED: dict[str, tuple[str, Any]] = {
    "Progress": ("FanOutProgress", FanOutProgress),
    "SessionContext": ("Sender", Sender),
}


__getattr__ = module_getattr(__name__, _DEPRECATED)
