"""Registered apps and the access tokens the emulator has issued.

Tenant tokens follow the platform: a token lives ``lifetime`` seconds; asking again
while more than ``lifetime * 1800 / 7200`` remain returns the same token with the
smaller ``expire``; after that a new token is issued and the old one stays valid until
its own end. A revoked token is never handed out again. A store app's app access token
(``a-``) follows the same rule per app, and its tenant tokens per (app, tenant). Times
are monotonic seconds passed in by the caller, so lifetimes can be scaled to seconds in
tests.

User tokens (``u-``) come from the OAuth token endpoint (``_oauth``), which records
their tenant and granted scopes, or are registered directly (``add_user_token``: the
home tenant, scopes not checked).

:meth:`TokenStore.check` is the one auth check every VC API shares: missing → 99991661,
bad format → 99991671, an unknown ``u-`` token → 99991668, any other unknown or a
revoked token → 99991663, an expired user token → 99991677 (tenant: 99991663), and a
user token whose recorded scopes hold none of ``VC_SCOPES`` → 99991679.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from .._constants import TOKEN_MAX_LIFETIME, TOKEN_REISSUE_WINDOW, VC_SCOPES
from .._validate import positive_seconds

__all__ = ["AppInfo", "CredentialError", "TokenInfo", "TokenStore", "whole_seconds"]

AUTH_MISSING = 99991661
AUTH_INVALID = 99991663
AUTH_USER_INVALID = 99991668
AUTH_BAD_FORMAT = 99991671
AUTH_USER_EXPIRED = 99991677
AUTH_SCOPE_MISSING = 99991679
# Refusals of the v3 token endpoints (HTTP 400, the usual envelope).
TOKEN_BAD_PARAM = 10003
TOKEN_BAD_TICKET = 10012
TOKEN_BAD_SECRET = 10014
TOKEN_BAD_APP_TOKEN = 99991664

_VC_SCOPES = frozenset(VC_SCOPES)


@dataclass(slots=True)
class AppInfo:
    app_id: str
    app_secret: str = field(repr=False)
    user_id_permission: bool = False
    name: str = ""
    # Where the authorize page may send the user back (see ``_oauth.redirect_allowed``).
    redirect_uris: tuple[str, ...] = ()
    # The app's "refresh user_access_token" security switch: off → 20074 on refresh.
    refresh_user_token: bool = True
    store: bool = False  # a store app: tokens through app_ticket, one tenant per tenant_key
    tenant_keys: tuple[str, ...] = ()  # a store app's tenants (a custom app: the home one)

    @property
    def display_name(self) -> str:
        return self.name or self.app_id


def whole_seconds(seconds: float) -> int:
    """A lifetime as the platform's answers carry it: whole seconds, at least 1."""
    return max(1, int(seconds))


class CredentialError(Exception):
    """A v3 token endpoint refuses the request: ``code`` and ``msg`` for the answer."""

    def __init__(self, code: int, msg: str) -> None:
        self.code = code
        self.msg = msg
        super().__init__(f"{code} {msg}")


@dataclass(slots=True)
class TokenInfo:
    app_id: str
    expires_at: float
    kind: str  # "tenant", "user" or "app"
    revoked: bool = False
    tenant_key: str | None = None  # None: the emulator's home tenant
    scopes: frozenset[str] | None = None  # a user token's granted scopes; None: unchecked


class TokenStore:
    def __init__(self, lifetime: float = float(TOKEN_MAX_LIFETIME)) -> None:
        self.lifetime = positive_seconds("token_lifetime", lifetime)
        self.reissue_window = lifetime * TOKEN_REISSUE_WINDOW / TOKEN_MAX_LIFETIME
        self.apps: dict[str, AppInfo] = {}
        self.tokens: dict[str, TokenInfo] = {}
        # The token currently handed out per (kind, app_id, tenant_key).
        self._current: dict[tuple[str, str, str | None], str] = {}

    def add_app(
        self,
        app_id: str,
        app_secret: str,
        *,
        user_id_permission: bool,
        name: str = "",
        redirect_uris: Iterable[str] = (),
        refresh_user_token: bool = True,
        store: bool = False,
        tenant_keys: Iterable[str] = (),
    ) -> AppInfo:
        app = AppInfo(
            app_id,
            app_secret,
            user_id_permission,
            name,
            tuple(redirect_uris),
            refresh_user_token,
            store,
            tuple(tenant_keys),
        )
        self.apps[app_id] = app
        return app

    def authenticate(self, body: object, *, store: bool) -> AppInfo:
        """The app whose ``app_id`` / ``app_secret`` the JSON ``body`` carries.

        A malformed body, an unknown app or one of the other kind (a custom app at a
        store endpoint or the reverse) → 10003; a wrong secret → 10014.
        """
        app: AppInfo | None = None
        secret: object = None
        if isinstance(body, dict):
            app_id, secret = body.get("app_id"), body.get("app_secret")
            app = self.apps.get(app_id) if isinstance(app_id, str) else None
        if app is None or not isinstance(secret, str):
            raise CredentialError(TOKEN_BAD_PARAM, "app_id or app_secret is invalid")
        if app.store != store:
            kind = "a store app" if store else "a custom app"
            raise CredentialError(TOKEN_BAD_PARAM, f"app_id is not {kind}")
        if not hmac.compare_digest(secret.encode(), app.app_secret.encode()):
            raise CredentialError(TOKEN_BAD_SECRET, "app secret invalid")
        return app

    def _reused(
        self, kind: str, prefix: str, app_id: str, now: float, tenant_key: str | None = None
    ) -> tuple[str, float]:
        key = (kind, app_id, tenant_key)
        current = self._current.get(key)
        if current is not None:
            info = self.tokens[current]
            left = info.expires_at - now
            if not info.revoked and left > self.reissue_window:
                return current, left
        token = prefix + secrets.token_hex(20)
        self.tokens[token] = TokenInfo(app_id, now + self.lifetime, kind, tenant_key=tenant_key)
        self._current[key] = token
        return token, self.lifetime

    def tenant_token(
        self, app_id: str, now: float, tenant_key: str | None = None
    ) -> tuple[str, float]:
        """The token for ``app_id`` (in ``tenant_key``; None: the home tenant) and its
        seconds left, reusing the current one if fresh."""
        return self._reused("tenant", "t-", app_id, now, tenant_key)

    def app_token(self, app_id: str, now: float) -> tuple[str, float]:
        """A store app's app access token and its seconds left, reused like tenant tokens."""
        return self._reused("app", "a-", app_id, now)

    def user_token(
        self,
        app_id: str,
        expires_in: float,
        now: float,
        *,
        tenant_key: str | None = None,
        scopes: frozenset[str] | None = None,
        nbytes: int = 20,
    ) -> str:
        token = "u-" + secrets.token_hex(nbytes)
        self.tokens[token] = TokenInfo(
            app_id, now + expires_in, "user", tenant_key=tenant_key, scopes=scopes
        )
        return token

    def cap(self, token: str, until: float) -> None:
        """End ``token`` at ``until`` at the latest (a refreshed user token's grace)."""
        info = self.tokens.get(token)
        if info is not None:
            info.expires_at = min(info.expires_at, until)

    def live(self, token: str, kind: str, now: float) -> TokenInfo | None:
        """The token's record if it is of ``kind``, not revoked and not expired."""
        info = self.tokens.get(token)
        if info is None or info.kind != kind or info.revoked or now >= info.expires_at:
            return None
        return info

    def revoke(self, token: str) -> bool:
        info = self.tokens.get(token)
        if info is None:
            return False
        info.revoked = True
        return True

    def check(self, authorization: str | None, now: float) -> tuple[TokenInfo | None, int, str]:
        """Resolve an ``Authorization`` header: ``(info, 0, token)`` or ``(None, code, token)``."""
        if not authorization:
            return None, AUTH_MISSING, ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # "Bearer" with nothing after it, or a bare value: nothing usable was sent.
            return None, AUTH_MISSING if not token else AUTH_BAD_FORMAT, token
        if not token.startswith(("t-", "u-")):
            return None, AUTH_BAD_FORMAT, token
        info = self.tokens.get(token)
        if info is None:
            return None, AUTH_USER_INVALID if token.startswith("u-") else AUTH_INVALID, token
        if info.revoked:
            return None, AUTH_INVALID, token
        if now >= info.expires_at:
            return None, AUTH_USER_EXPIRED if info.kind == "user" else AUTH_INVALID, token
        if info.scopes is not None and info.scopes.isdisjoint(_VC_SCOPES):
            return None, AUTH_SCOPE_MISSING, token
        return info, 0, token
