"""OAuth helpers for the emulator's tests: PKCE pairs, a scripted login, a fake clock."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qsl, urlsplit

from feishu_vc_async.emulator import Emulator

__all__ = ["REDIRECT", "SCOPE", "VC", "FakeClock", "Login", "pkce", "query_of"]

VC = "vc:room:readonly"
SCOPE = f"{VC} offline_access"
REDIRECT = "http://127.0.0.1:8123/callback"  # a loopback port the app did not register


class FakeClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def pkce() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair, computed here independently."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


class Login:
    """One authorization of an app by the emulator's user, approved without a browser."""

    def __init__(
        self,
        emu: Emulator,
        *,
        scope: str = SCOPE,
        app: tuple[str, str] | None = None,
        redirect: str = REDIRECT,
    ) -> None:
        self.app_id, self.secret = app or (emu.app_id, emu.app_secret)
        self.verifier, challenge = pkce()
        self.redirect = redirect
        url = emu.authorize_url(
            redirect, code_challenge=challenge, scope=scope, state="st", app_id=self.app_id
        )
        self.code = query_of(emu.authorize(url))["code"]

    def exchange(self, **override: str) -> dict[str, str]:
        body = {
            "grant_type": "authorization_code",
            "client_id": self.app_id,
            "client_secret": self.secret,
            "code": self.code,
            "redirect_uri": self.redirect,
            "code_verifier": self.verifier,
        }
        body.update(override)
        return body

    def refresh(self, refresh_token: str, **override: str) -> dict[str, str]:
        body = {
            "grant_type": "refresh_token",
            "client_id": self.app_id,
            "client_secret": self.secret,
            "refresh_token": refresh_token,
        }
        body.update(override)
        return body
