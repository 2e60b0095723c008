"""The answers of the token and identity endpoints, decoded straight from bytes.

Each has the ``value()`` / ``body_log_id`` the request path reads: the tenant and store
app tokens, the user token of the v2 OAuth endpoint (which answers without the common
envelope), the ``app_ticket/resend`` acknowledgement and ``user_info``.
"""

from __future__ import annotations

import msgspec

from .models import Envelope

__all__ = [
    "ACKNOWLEDGEMENT_DECODER",
    "APP_ACCESS_TOKEN_DECODER",
    "TENANT_TOKEN_DECODER",
    "USER_INFO_DECODER",
    "USER_TOKEN_DECODER",
    "Acknowledgement",
    "AppAccessTokenResponse",
    "TenantTokenResponse",
    "UserInfo",
    "UserInfoResponse",
    "UserTokenResponse",
]


class TenantTokenResponse(Envelope, kw_only=True):
    """The token endpoint's flat answer; ``expire`` is the seconds the token has left."""

    tenant_access_token: str | None = None
    expire: int | None = None

    def value(self) -> TenantTokenResponse | None:
        return self if self.tenant_access_token else None


class UserTokenResponse(msgspec.Struct, kw_only=True):
    """The v2 OAuth token endpoint's flat answer (no ``data`` envelope).

    A success carries the tokens and their lifetimes in seconds; a refusal carries
    ``error`` and ``error_description`` (RFC 6749) instead of ``msg``, read into
    :attr:`msg`. A body without ``code`` is judged by its HTTP status.
    """

    code: int = 0
    access_token: str | None = None
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None
    token_type: str | None = None
    scope: str | None = None
    error: str | None = None
    error_description: str | None = None

    @property
    def msg(self) -> str:
        parts = [p for p in (self.error, self.error_description) if p]
        return ": ".join(parts)

    @property
    def body_log_id(self) -> str | None:
        return None  # the v2 answers carry it in the X-Tt-Logid header only

    def value(self) -> UserTokenResponse | None:
        return self if self.access_token else None

    def __repr__(self) -> str:  # the tokens never
        return (
            f"UserTokenResponse(code={self.code}, expires_in={self.expires_in}, "
            f"refresh_token_expires_in={self.refresh_token_expires_in}, scope={self.scope!r})"
        )


class AppAccessTokenResponse(Envelope, kw_only=True):
    """A store app's ``app_access_token`` answer; ``expire`` is the seconds left."""

    app_access_token: str | None = None
    expire: int | None = None

    def value(self) -> AppAccessTokenResponse | None:
        return self if self.app_access_token else None

    def __repr__(self) -> str:
        return f"AppAccessTokenResponse(code={self.code}, expire={self.expire})"


class Acknowledgement(Envelope, kw_only=True):
    """An answer whose success carries nothing but ``code`` 0 (``app_ticket/resend``)."""

    def value(self) -> Acknowledgement:
        return self


class UserInfo(msgspec.Struct, kw_only=True):
    """Who a user token belongs to (``authen/v1/user_info``'s ``data``); the fields
    that need extra scopes (email, mobile, user_id) are not read."""

    name: str = ""
    en_name: str = ""
    open_id: str = ""
    union_id: str = ""
    tenant_key: str = ""


class UserInfoResponse(Envelope, kw_only=True):
    data: UserInfo | None = None

    def value(self) -> UserInfo | None:
        return self.data


# Built once: a Decoder compiles its type's plan at construction.
TENANT_TOKEN_DECODER = msgspec.json.Decoder(TenantTokenResponse)
USER_TOKEN_DECODER = msgspec.json.Decoder(UserTokenResponse)
APP_ACCESS_TOKEN_DECODER = msgspec.json.Decoder(AppAccessTokenResponse)
ACKNOWLEDGEMENT_DECODER = msgspec.json.Decoder(Acknowledgement)
USER_INFO_DECODER = msgspec.json.Decoder(UserInfoResponse)
