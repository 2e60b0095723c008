"""Helpers for the user-session tests: a signed-in session without a browser, the
emulator's token-endpoint records, and a check that no issued token leaked into text."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from feishu_vc_async import VCClient
from feishu_vc_async._constants import USER_TOKEN_PATH
from feishu_vc_async.auth import UserSession
from feishu_vc_async.auth.oauth import exchange_code, fetch_user_info
from feishu_vc_async.emulator import Emulator, RequestRecord
from tests._login import SCOPE, Login

__all__ = ["leaks", "refreshes", "sign_in", "user_token_records"]


async def sign_in(
    emu: Emulator, *, clock: Callable[[], float] = time.time, scope: str = SCOPE
) -> UserSession:
    """A user session as `feishu-vc auth login` stores it, approved without a browser."""
    login = Login(emu, scope=scope)
    async with VCClient(
        app_id=emu.app_id, app_secret=emu.app_secret, base_url=emu.base_url, rate_limit=None
    ) as client:
        started = clock()
        answer = await exchange_code(
            client,
            app_id=emu.app_id,
            app_secret=emu.app_secret,
            code=login.code,
            redirect_uri=login.redirect,
            code_verifier=login.verifier,
        )
        session = UserSession.from_answer(answer, app_id=emu.app_id, obtained_at=started)
        info = await fetch_user_info(
            session.access_token, base_url=emu.base_url, session=client.session
        )
    return session.with_user(info)


def user_token_records(emu: Emulator) -> list[RequestRecord]:
    return [r for r in emu.requests if r.path == USER_TOKEN_PATH]


def refreshes(emu: Emulator) -> int:
    """Successful v2 token answers after the sign-in's exchange."""
    return sum(1 for r in user_token_records(emu) if r.code == 0) - 1


def leaks(emu: Emulator, texts: Iterable[str], *extra: str) -> list[str]:
    """Every token, code, ticket (and ``extra`` secret) the emulator issued that occurs in
    one of ``texts``, shortened for the assertion message."""
    joined = "\n".join(texts)
    return [t[:12] + "…" for t in (*emu.issued_tokens(), *extra) if t and t in joined]
