"""Registered apps and the access tokens the emulator has issued.

Tenant tokens follow the platform: a token lives ``lifetime`` seconds; asking again
while more than ``lifetime * 1800 / 7200`` remain returns the same token with the
smaller ``expire``; after that a new token is issued and the old one stays valid until
its own end. A revoked token is never handed out again. Times are monotonic seconds
passed in by the caller, so lifetimes can be scaled to seconds in tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .._constants import TOKEN_MAX_LIFETIME, TOKEN_REISSUE_WINDOW

__all__ = ["AppInfo", "TokenInfo", "TokenStore"]

AUTH_MISSING = 99991661
AUTH_INVALID = 99991663
AUTH_BAD_FORMAT = 99991671
AUTH_USER_EXPIRED = 99991677


@dataclass(slots=True)
class AppInfo:
    app_id: str
    app_secret: str = field(repr=False)
    user_id_permission: bool = False


@dataclass(slots=True)
class TokenInfo:
    app_id: str
    expires_at: float
    kind: str  # "tenant" or "user"
    revoked: bool = False


class TokenStore:
    def __init__(self, lifetime: float = float(TOKEN_MAX_LIFETIME)) -> None:
        if not lifetime > 0:
            raise ValueError(f"token_lifetime={lifetime!r}: must be more than 0 seconds")
        self.lifetime = lifetime
        self.reissue_window = lifetime * TOKEN_REISSUE_WINDOW / TOKEN_MAX_LIFETIME
        self.apps: dict[str, AppInfo] = {}
        self.tokens: dict[str, TokenInfo] = {}
        self._current: dict[str, str] = {}

    def add_app(self, app_id: str, app_secret: str, *, user_id_permission: bool) -> None:
        self.apps[app_id] = AppInfo(app_id, app_secret, user_id_permission)

    def tenant_token(self, app_id: str, now: float) -> tuple[str, float]:
        """The token for ``app_id`` and its seconds left, reusing the current one if fresh."""
        current = self._current.get(app_id)
        if current is not None:
            info = self.tokens[current]
            left = info.expires_at - now
            if not info.revoked and left > self.reissue_window:
                return current, left
        token = "t-" + secrets.token_hex(20)
        self.tokens[token] = TokenInfo(app_id, now + self.lifetime, "tenant")
        self._current[app_id] = token
        return token, self.lifetime

    def user_token(self, app_id: str, expires_in: float, now: float) -> str:
        token = "u-" + secrets.token_hex(20)
        self.tokens[token] = TokenInfo(app_id, now + expires_in, "user")
        return token

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
        if info is None or info.revoked:
            return None, AUTH_INVALID, token
        if now >= info.expires_at:
            return None, AUTH_USER_EXPIRED if info.kind == "user" else AUTH_INVALID, token
        return info, 0, token
