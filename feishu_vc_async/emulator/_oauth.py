"""User OAuth 2.0 ("v2"): the authorize request, codes, grants, token rules.

No I/O here: the endpoints (``_identity_endpoints``) pass requests in with the time and
turn the results, and :class:`AuthorizeError` / :class:`OAuthError`, into HTTP answers
(the pages in ``_oauth_pages``). The package docstring states the rules; the order of
checks is the order of the code below.

A *grant* is one user's approval of one app: the refresh tokens that extend it all end
``refresh_token_lifetime`` after the approval (the platform's 365 days), whatever
refreshing happened in between.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .._constants import OFFLINE_ACCESS_SCOPE
from .._validate import non_negative_seconds, positive_seconds
from ..errors import FeishuError
from ._options import UserOAuth
from ._tokens import AppInfo, TokenStore, whole_seconds

__all__ = [
    "OAUTH_ERRORS",
    "AuthorizeError",
    "AuthorizeRequest",
    "OAuthError",
    "OAuthServer",
    "OAuthUser",
    "pkce_challenge",
    "redirect_allowed",
]

# code -> (HTTP status, RFC 6749 error), as in identity.md's table.
OAUTH_ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "invalid_request"),  # a required field is missing or empty
    20063: (400, "invalid_request"),  # the body is malformed (not a JSON object, wrong types)
    20067: (400, "invalid_scope"),  # ``scope`` asks for more than was granted
    20002: (400, "invalid_client"),  # unknown client_id or wrong client_secret
    20003: (400, "invalid_grant"),  # code not found (or issued to another app)
    20004: (400, "invalid_grant"),  # code expired
    20065: (400, "invalid_grant"),  # code already used
    20049: (400, "invalid_grant"),  # PKCE verification failed
    20071: (400, "invalid_grant"),  # redirect_uri differs from the authorize request's
    20010: (400, "invalid_grant"),  # the user may not use the app (not in its tenants)
    20026: (400, "invalid_grant"),  # refresh token not found (or another app's)
    20037: (400, "invalid_grant"),  # refresh token expired (the grant's lifetime is over)
    20064: (400, "invalid_grant"),  # refresh token revoked
    20073: (400, "invalid_grant"),  # refresh token already used (rotated away)
    20074: (400, "unauthorized_client"),  # the app's refresh switch is off
    20050: (500, "server_error"),
    20072: (503, "temporarily_unavailable"),
}

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Real tokens are 1-2 KB: long enough to trip a client that stores them carelessly.
_TOKEN_BYTES = 512
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 section 4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, no padding


class AuthorizeError(FeishuError, ValueError):
    """The authorize request cannot be served: an error page (HTTP 400), no redirect."""


class OAuthError(Exception):
    """A refusal of the token endpoint: ``code`` from :data:`OAUTH_ERRORS`."""

    def __init__(self, code: int, description: str, error: str | None = None) -> None:
        self.code = code
        self.status, default_error = OAUTH_ERRORS[code]
        self.error = error or default_error
        self.description = description
        super().__init__(f"{code} {self.error}: {description}")

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "error": self.error, "error_description": self.description}


@dataclass(frozen=True, slots=True)
class OAuthUser:
    """The user signed in at the emulated accounts host, who approves or denies.

    ``open_id`` (``ou_…``) and ``union_id`` (``on_…``) default to ids derived from the
    name and the tenant, the same in every run; ``user_info`` answers with them."""

    name: str = "Emulated VC Admin"
    tenant_key: str | None = None  # None: the emulator's home tenant
    open_id: str = ""
    union_id: str = ""

    def ids(self, tenant_key: str) -> tuple[str, str]:
        """(open_id, union_id) of this user in ``tenant_key`` (their tenant)."""
        digest = hashlib.sha256(f"oauth-user:{tenant_key}:{self.name}".encode()).hexdigest()
        return self.open_id or f"ou_{digest[:32]}", self.union_id or f"on_{digest[32:]}"


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A validated authorize request, waiting for the user's decision."""

    app: AppInfo
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str


@dataclass(slots=True)
class _Code:
    app_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    user: OAuthUser  # who approved (their tenant is checked at the exchange: 20010)
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class _Grant:
    app_id: str
    tenant_key: str
    scopes: tuple[str, ...]
    expires_at: float  # when its refresh tokens stop working (20037)
    user: OAuthUser
    access_tokens: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _RefreshToken:
    grant: _Grant
    used: bool = False
    revoked: bool = False


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of a PKCE ``code_verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def redirect_allowed(uri: str, registered: Iterable[str]) -> bool:
    """Whether ``uri`` matches one of an app's registered redirect URIs.

    An entry matches itself exactly. An ``http`` entry on a loopback host registered
    without a port (``http://127.0.0.1/callback``) also matches that host, path and query
    on any port, as RFC 8252 asks for native apps that listen on an ephemeral port.
    """
    try:
        got = urlsplit(uri)
        port = got.port
    except ValueError:
        return False
    if not got.scheme or not got.netloc or got.fragment:
        return False
    for entry in registered:
        if uri == entry:
            return True
        want = urlsplit(entry)
        if (
            want.scheme == "http"
            and want.hostname in LOOPBACK_HOSTS
            and want.port is None
            and got.scheme == "http"
            and got.hostname == want.hostname
            and port is not None
            and (got.path or "/") == (want.path or "/")
            and got.query == want.query
        ):
            return True
    return False


def _with_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` appended to its query (kept if it has one)."""
    parts = urlsplit(uri)
    added = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


class OAuthServer:
    """Authorize requests, codes, grants and refresh tokens of every app; and who is
    signed in at the accounts host (``user``), and whether its page asks them at all."""

    def __init__(self, tokens: TokenStore, options: UserOAuth, *, home_tenant: str) -> None:
        for name in ("code_lifetime", "user_token_lifetime", "refresh_token_lifetime"):
            positive_seconds(name, getattr(options, name))
        non_negative_seconds("refresh_grace", options.refresh_grace)
        self._tokens = tokens
        self.home_tenant = home_tenant
        self.code_lifetime = options.code_lifetime
        self.user_token_lifetime = options.user_token_lifetime
        self.refresh_token_lifetime = options.refresh_token_lifetime
        self.refresh_grace = options.refresh_grace
        self.user = OAuthUser()
        self.auto_approve = options.auto_approve
        self._pending: dict[str, AuthorizeRequest] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._users: dict[str, OAuthUser] = {}  # access token -> who approved its grant

    # --- the authorize page ---------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str]) -> AuthorizeRequest:
        """Validate an authorize request's query, or :class:`AuthorizeError`.

        Nothing is redirected before ``client_id`` and ``redirect_uri`` are known good,
        so every refusal here is an error page.
        """
        client_id = params.get("client_id", "")
        app = self._tokens.apps.get(client_id) if client_id else None
        if app is None:
            raise AuthorizeError("client_id is missing or not a known app")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise AuthorizeError("redirect_uri is missing")
        if not redirect_allowed(redirect_uri, app.redirect_uris):
            raise AuthorizeError("redirect_uri is not registered in the app's security settings")
        if params.get("response_type") != "code":
            raise AuthorizeError('response_type must be "code"')
        method = params.get("code_challenge_method", "")
        if method != "S256":
            raise AuthorizeError(
                "code_challenge_method must be S256"
                if method
                else "PKCE is required: code_challenge_method=S256 is missing"
            )
        challenge = params.get("code_challenge", "")
        if not _CHALLENGE.fullmatch(challenge):
            raise AuthorizeError("code_challenge is missing or not an S256 challenge")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        return AuthorizeRequest(app, redirect_uri, scopes, params.get("state"), challenge)

    def hold(self, request: AuthorizeRequest) -> str:
        """Keep ``request`` until the user decides; the id goes into the consent form."""
        pending_id = secrets.token_urlsafe(24)
        self._pending[pending_id] = request
        return pending_id

    def take(self, pending_id: str) -> AuthorizeRequest | None:
        """The request a consent form is deciding, once (a second submit finds nothing)."""
        return self._pending.pop(pending_id, None)

    def decide(
        self, request: AuthorizeRequest, *, approve: bool, user: OAuthUser, now: float
    ) -> str:
        """Where the browser goes next: a code on approval, ``access_denied`` otherwise."""
        params: dict[str, str] = {}
        if approve:
            code = secrets.token_urlsafe(32)
            self._codes[code] = _Code(
                request.app.app_id,
                request.redirect_uri,
                request.code_challenge,
                request.scopes,
                user,
                now + self.code_lifetime,
            )
            params["code"] = code
        else:
            params["error"] = "access_denied"
        if request.state is not None:
            params["state"] = request.state
        return _with_query(request.redirect_uri, params)

    # --- the token endpoint ---------------------------------------------------------

    def token(self, body: object, now: float) -> dict[str, Any]:
        """The flat answer of ``POST /open-apis/authen/v2/oauth/token``, or OAuthError."""
        if not isinstance(body, dict):
            raise OAuthError(20063, "the body must be a JSON object")
        for name, value in body.items():
            if value is not None and not isinstance(value, str):
                raise OAuthError(20063, f"{name} must be a string")
        grant_type = body.get("grant_type")
        if not grant_type:
            raise OAuthError(20001, "grant_type is required")
        if grant_type == "authorization_code":
            required: tuple[str, ...] = ("code", "redirect_uri", "code_verifier")
        elif grant_type == "refresh_token":
            required = ("refresh_token",)
        else:
            raise OAuthError(
                20063, f"grant_type {grant_type!r} is not supported", "unsupported_grant_type"
            )
        missing = [f for f in ("client_id", "client_secret", *required) if not body.get(f)]
        if missing:
            raise OAuthError(20001, f"missing: {', '.join(missing)}")
        app = self._tokens.apps.get(body["client_id"])
        if app is None or not hmac.compare_digest(
            body["client_secret"].encode(), app.app_secret.encode()
        ):
            raise OAuthError(20002, "client_id or client_secret is invalid")
        if grant_type == "authorization_code":
            return self._exchange(app, body, now)
        return self._refresh_grant(app, body, now)

    def _exchange(self, app: AppInfo, body: dict[str, str], now: float) -> dict[str, Any]:
        code = self._codes.get(body["code"])
        if code is None or code.app_id != app.app_id:
            raise OAuthError(20003, "the authorization code is not valid")
        if code.used:
            raise OAuthError(20065, "the authorization code has been used")
        if now >= code.expires_at:
            raise OAuthError(20004, "the authorization code has expired")
        if body["redirect_uri"] != code.redirect_uri:
            raise OAuthError(20071, "redirect_uri does not match the authorize request")
        verifier = body["code_verifier"]
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            pkce_challenge(verifier), code.challenge
        ):
            raise OAuthError(20049, "code_verifier does not match the code_challenge")
        tenant = code.user.tenant_key or self.home_tenant
        allowed = app.tenant_keys if app.store else (self.home_tenant,)
        if tenant not in allowed:
            raise OAuthError(20010, "the user's tenant has not installed the app")
        scopes = self._narrowed(code.scopes, body.get("scope"))
        code.used = True  # only a successful exchange uses the code up
        grant = _Grant(
            app.app_id, tenant, code.scopes, now + self.refresh_token_lifetime, code.user
        )
        return self._issue(grant, scopes, now)

    def _refresh_grant(self, app: AppInfo, body: dict[str, str], now: float) -> dict[str, Any]:
        if not app.refresh_user_token:
            raise OAuthError(20074, 'the app\'s "refresh user_access_token" switch is off')
        refresh = self._refresh.get(body["refresh_token"])
        if refresh is None or refresh.grant.app_id != app.app_id:
            raise OAuthError(20026, "the refresh token is not valid")
        if refresh.revoked:
            raise OAuthError(20064, "the refresh token has been revoked")
        if refresh.used:
            raise OAuthError(20073, "the refresh token has already been used")
        grant = refresh.grant
        if now >= grant.expires_at:
            raise OAuthError(20037, "the refresh token has expired")
        scopes = self._narrowed(grant.scopes, body.get("scope"))
        refresh.used = True
        # The tokens of the previous refresh keep working for a short grace only.
        for token in grant.access_tokens:
            self._tokens.cap(token, now + self.refresh_grace)
        grant.access_tokens.clear()
        return self._issue(grant, scopes, now)

    @staticmethod
    def _narrowed(granted: tuple[str, ...], asked: str | None) -> tuple[str, ...]:
        if not asked:
            return granted
        wanted = tuple(dict.fromkeys(asked.split()))
        extra = [s for s in wanted if s not in granted]
        if extra:
            raise OAuthError(20067, f"scope not granted: {' '.join(extra)}")
        return wanted

    def _issue(self, grant: _Grant, scopes: tuple[str, ...], now: float) -> dict[str, Any]:
        access = self._tokens.user_token(
            grant.app_id,
            self.user_token_lifetime,
            now,
            tenant_key=grant.tenant_key,
            scopes=frozenset(scopes),
            nbytes=_TOKEN_BYTES,
        )
        grant.access_tokens.append(access)
        self._users[access] = grant.user
        answer: dict[str, Any] = {
            "code": 0,
            "access_token": access,
            "expires_in": whole_seconds(self.user_token_lifetime),
        }
        if OFFLINE_ACCESS_SCOPE in scopes:
            refresh = "ur-" + secrets.token_hex(_TOKEN_BYTES)
            self._refresh[refresh] = _RefreshToken(grant)
            answer["refresh_token"] = refresh
            answer["refresh_token_expires_in"] = whole_seconds(grant.expires_at - now)
        answer["token_type"] = "Bearer"
        answer["scope"] = " ".join(scopes)
        return answer

    def user_of(self, access_token: str) -> OAuthUser | None:
        """Who approved the grant an access token came from (None: not an OAuth token)."""
        return self._users.get(access_token)

    def live_refresh_tokens(self, app_id: str) -> list[str]:
        """The app's refresh tokens not yet used or revoked, in order of issue."""
        return [
            token
            for token, refresh in self._refresh.items()
            if refresh.grant.app_id == app_id and not refresh.used and not refresh.revoked
        ]

    def issued(self) -> list[str]:
        """Every authorization code and refresh token handed out, in order of issue."""
        return [*self._codes, *self._refresh]

    def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token (20064 from now on); False if it is not one."""
        found = self._refresh.get(refresh_token)
        if found is None:
            return False
        found.revoked = True
        return True
