"""feishu_vc_async: asyncio client for Feishu / Lark VC participant data."""

from ._constants import FEISHU_BASE_URL, LARK_BASE_URL
from ._retry import DefaultRetryPolicy, RetryDecision, RetryPolicy
from ._stats import ClientStats
from .auth import (
    SessionContext,
    StaticTokenProvider,
    TenantTokenProvider,
    TokenProvider,
    UserTokenProvider,
)
from .client import VCClient
from .errors import (
    APIError,
    AuthError,
    DecodeError,
    FeishuError,
    InternalServerError,
    InvalidQueryError,
    NotFoundError,
    NotSupportedError,
    ParameterError,
    PermissionDeniedError,
    RateLimitedError,
    RateLimiterError,
    RequestTimeoutError,
    TransportError,
)
from .fanout import FanOut, FanOutItem, MeetingFailure, PageItem, Progress, Resume
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
    "AuthError",
    "ClientStats",
    "DecodeError",
    "DefaultRetryPolicy",
    "FanOut",
    "FanOutItem",
    "FeishuError",
    "InternalServerError",
    "InvalidQueryError",
    "LimitKey",
    "LocalRateLimiter",
    "MeetingFailure",
    "MeetingQuery",
    "MeetingStatus",
    "NotFoundError",
    "NotSupportedError",
    "PageItem",
    "ParameterError",
    "Participant",
    "ParticipantPage",
    "PermissionDeniedError",
    "Progress",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterError",
    "RedisRateLimiter",
    "RequestTimeoutError",
    "Resume",
    "RetryDecision",
    "RetryPolicy",
    "SessionContext",
    "StaticTokenProvider",
    "TenantTokenProvider",
    "TokenProvider",
    "TransportError",
    "UserIdType",
    "UserTokenProvider",
    "VCClient",
    "WebinarRole",
]
