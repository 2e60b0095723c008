"""User login: OAuth 2.0 authorization code with PKCE, redirected to a loopback listener.

::

    session = await login(app_id="cli_...", app_secret="...", on_url=print)
    store.write(session)                      # e.g. a FileSessionStore, under its lock

:func:`login` listens on 127.0.0.1 (an ephemeral port unless told otherwise) for the
redirect ``http://127.0.0.1:<port>/callback``, builds the authorize URL (the accounts
host, not the API host) with a random ``state`` and an S256 ``code_challenge``, shows
it (``on_url``) and opens a browser if asked, then waits for the redirect: a ``code``
with this login's ``state`` is exchanged at the v2 token endpoint (with the
``code_verifier``), and ``authen/v1/user_info`` says who signed in. A refusal
(``error=access_denied``), another ``state`` or no redirect within ``redirect_timeout`` s
raise :class:`~feishu_vc_async.errors.LoginError`; the browser gets a small page either
way ("you can close this tab").

The pieces serve a web backend that runs the flow itself: :func:`pkce_pair`,
:func:`authorize_url`, :func:`exchange_code` and :func:`fetch_user_info`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from .._clock import Clock, wall_time
from .._constants import (
    AUTHORIZE_PATH,
    FEISHU_ACCOUNTS_URL,
    FEISHU_BASE_URL,
    LOGGER_NAME,
    LOGIN_TIMEOUT,
    OFFLINE_ACCESS_SCOPE,
    VC_SCOPES,
)
from .._endpoints import USER_INFO, USER_TOKEN
from .._token_answers import UserInfo, UserTokenResponse
from .._validate import ACCOUNTS_URL_PRESETS, positive_seconds
from .._validate import base_url as check_base_url
from .._validate import port as check_port
from ..client import VCClient
from ..errors import FeishuError, LoginError
from ..ratelimit import Limits
from ._app import AppCredentials
from ._user_session import UserSession

__all__ = [
    "CALLBACK_PATH",
    "DEFAULT_SCOPES",
    "authorize_url",
    "exchange_code",
    "fetch_user_info",
    "login",
    "pkce_pair",
]

logger = logging.getLogger(LOGGER_NAME)

CALLBACK_PATH: Final = "/callback"
# offline_access brings the refresh token; either VC scope lets a token read VC data.
DEFAULT_SCOPES: Final = (OFFLINE_ACCESS_SCOPE, *VC_SCOPES)


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE ``(code_verifier, code_challenge)``: 86 random base64url characters
    and their S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    accounts_url: str,
    *,
    app_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_challenge: str,
) -> str:
    """The authorize page's URL on ``accounts_url`` (``accounts.feishu.cn``)."""
    query = {
        "client_id": app_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(dict.fromkeys(scopes)),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{accounts_url}{AUTHORIZE_PATH}?{urlencode(query)}"


async def exchange_code(
    client: VCClient,
    *,
    app_id: str,
    app_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> UserTokenResponse:
    """Trade an authorization code for tokens (sent once: a code is single-use)."""
    return await client.call(
        USER_TOKEN,
        json={
            "grant_type": "authorization_code",
            "client_id": app_id,
            "client_secret": app_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
        secrets=(app_secret, code, code_verifier),
    )


async def fetch_user_info(
    access_token: str, *, base_url: str, session: aiohttp.ClientSession | None = None
) -> UserInfo:
    """Who ``access_token`` belongs to (``authen/v1/user_info``)."""
    async with VCClient(
        access_token, base_url=base_url, session=session, limits=Limits.unlimited()
    ) as client:
        return await client.call(USER_INFO)


_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>feishu-vc login</title></head>
<body><main><h1 id="result">{title}</h1><p>{text}</p></main></body></html>
"""


class _Redirect:
    """The loopback listener: the first redirect to ``/callback`` decides the login."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def _page(self, status: int, title: str, text: str) -> web.Response:
        return web.Response(
            status=status,
            text=_PAGE.format(title=html.escape(title), text=html.escape(text)),
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    async def handle(self, request: web.Request) -> web.Response:
        if self.outcome.done():
            return self._page(409, "Already done", "This login has ended; close this tab.")
        query = request.query
        if query.get("state") != self.state:
            self.outcome.set_exception(
                LoginError(
                    "the redirect's state is not this login's (a stale tab, or a forged "
                    "request): nothing was stored; run the login again"
                )
            )
            return self._page(400, "Login failed", "The state did not match. Close this tab.")
        error = query.get("error")
        if error:
            reason = (
                "the user refused to authorize the app (access_denied)"
                if error == "access_denied"
                else f"the authorize page answered error={error[:64]!r}"
            )
            self.outcome.set_exception(LoginError(reason))
            return self._page(200, "Login refused", "Nothing was stored. You can close this tab.")
        code = query.get("code")
        if not code:
            self.outcome.set_exception(LoginError("the redirect carried neither code nor error"))
            return self._page(400, "Login failed", "No code arrived. Close this tab.")
        self.outcome.set_result(code)
        return self._page(200, "Signed in", "feishu-vc got the code: you can close this tab.")


@contextlib.asynccontextmanager
async def _listener(redirect: _Redirect, port: int) -> AsyncIterator[str]:
    """Serve ``redirect`` on 127.0.0.1 (``port``, 0: ephemeral); yield the redirect URI."""
    app = web.Application()
    app.router.add_get(CALLBACK_PATH, redirect.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://127.0.0.1:{bound}{CALLBACK_PATH}"
    finally:
        await runner.cleanup()


async def login(
    *,
    app_id: str,
    app_secret: str,
    base_url: str = FEISHU_BASE_URL,
    accounts_url: str = FEISHU_ACCOUNTS_URL,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    on_url: Callable[[str], None] = print,
    open_browser: Callable[[str], bool] | None = None,
    redirect_timeout: float = LOGIN_TIMEOUT,
    port: int = 0,
    clock: Clock = wall_time,
) -> UserSession:
    """Sign a user in through their browser and return the session (see the module doc).

    ``on_url`` gets the authorize URL once the listener is up; ``open_browser`` (e.g.
    ``webbrowser.open``) is then called with it, if given. ``offline_access`` is always
    requested. ``clock`` stamps ``obtained_at`` (unix seconds).
    """
    base = check_base_url(base_url, "base_url")
    accounts = check_base_url(accounts_url, "accounts_url", ACCOUNTS_URL_PRESETS)
    wait = positive_seconds("redirect_timeout", redirect_timeout)
    listen_on = check_port("port", port)
    wanted = tuple(dict.fromkeys((OFFLINE_ACCESS_SCOPE, *scopes)))
    verifier, challenge = pkce_pair()
    redirect = _Redirect(secrets.token_urlsafe(32))
    async with _listener(redirect, listen_on) as redirect_uri:
        url = authorize_url(
            accounts,
            app_id=app_id,
            redirect_uri=redirect_uri,
            scopes=wanted,
            state=redirect.state,
            code_challenge=challenge,
        )
        on_url(url)
        if open_browser is not None and not open_browser(url):
            logger.info("no browser could be opened: open the URL yourself")
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can drop a cancellation.
            async with asyncio.timeout(wait):
                code = await redirect.outcome
        except TimeoutError:
            raise LoginError(
                f"no redirect from the browser within {wait:g} s: nothing was stored"
            ) from None
    credentials = AppCredentials(app_id, app_secret)
    async with VCClient(credentials, base_url=base, limits=Limits.unlimited()) as client:
        started = clock()
        answer = await exchange_code(
            client,
            app_id=app_id,
            app_secret=app_secret,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
        )
        session = UserSession.from_answer(answer, app_id=app_id, obtained_at=started)
        try:
            info = await fetch_user_info(
                session.access_token, base_url=base, session=client.session
            )
        except FeishuError as exc:  # the tokens are good: keep them, unnamed
            logger.warning("signed in, but user_info failed (%s): the user stays unnamed", exc)
            return session
    return session.with_user(info)
