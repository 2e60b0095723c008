"""`feishu-vc auth login | status | logout` over real sockets.

The CLI runs in a worker thread (its own event loop, as ``asyncio.run`` gives it) while
the emulator serves from the test's loop. The first test signs in through a real
headless Chromium; the others follow the redirect without a browser (the emulator's
``authorize`` decides, the test delivers the redirect to the CLI's listener).
"""

from __future__ import annotations

import asyncio
import io
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import anyio
import pytest

from feishu_vc_async._constants import OFFLINE_ACCESS_SCOPE, VC_SCOPES
from feishu_vc_async.auth import FileSessionStore
from feishu_vc_async.cli import main
from feishu_vc_async.emulator import Emulator, OAuthUser
from tests._browser import Browser
from tests._cli import run_cli
from tests._sessions import leaks

pytestmark = pytest.mark.anyio


def _env(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"FEISHU_APP_ID": emu.app_id, "FEISHU_APP_SECRET": emu.app_secret, **extra}


def _login_argv(emu: Emulator, token_file: Path, *extra: str) -> list[str]:
    return [
        "auth",
        "login",
        "--no-browser",
        "--accounts-url",
        emu.accounts_url,
        "--base-url",
        emu.base_url,
        "--token-file",
        str(token_file),
        *extra,
    ]


class Cli:
    """One `feishu-vc` run in a worker thread, its output readable while it runs."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self._task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(main, list(argv), env=env, stdout=self.out, stderr=self.err)
        )

    async def url(self, timeout: float = 60.0) -> str:
        """The authorization URL: the line of its own the CLI prints."""
        with anyio.fail_after(timeout):
            while True:
                for line in self.out.getvalue().splitlines():
                    if line.startswith("http"):
                        return line
                assert not self._task.done(), self.err.getvalue()
                await asyncio.sleep(0.01)

    async def result(self) -> int:
        with anyio.fail_after(120):
            return await self._task

    def texts(self) -> list[str]:
        return [self.out.getvalue(), self.err.getvalue()]


async def _follow(location: str) -> str:
    """Deliver the authorize page's redirect to the CLI's listener, as a browser does."""
    async with aiohttp.ClientSession() as session, session.get(location) as response:
        return await response.text()


async def test_login_through_a_real_browser_stores_the_session(
    browser: Browser, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    async with Emulator(meetings=3, seed=1, rate_limit=None) as emu:
        cli = Cli(_login_argv(emu, token_file, "--timeout", "60"), _env(emu))
        url = await cli.url()
        assert url.startswith(emu.accounts_url + "/open-apis/authen/v1/authorize?")
        query = dict(parse_qsl(urlsplit(url).query))
        assert query["code_challenge_method"] == "S256"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", query["redirect_uri"])
        await browser.open(url)
        assert await browser.text("app-name") == emu.app_id
        assert (await browser.text("scopes")).split() == [OFFLINE_ACCESS_SCOPE, *VC_SCOPES]
        await browser.click("approve")
        assert await browser.text("result") == "Signed in"
        assert "close this tab" in await browser.text()
        assert await cli.result() == 0, cli.err.getvalue()
        stored = FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id).read()
        assert stored is not None
        open_id, _ = emu.user.ids(emu.tenant_key)
        assert (stored.name, stored.open_id, stored.tenant_key) == (
            emu.user.name,
            open_id,
            emu.tenant_key,
        )
        assert stored.refresh_token in emu.live_refresh_tokens()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        out = cli.out.getvalue()
        assert f"Signed in as {emu.user.name} ({open_id})" in out
        assert str(token_file) in out
        assert leaks(emu, [*cli.texts(), await browser.text()], emu.app_secret) == []


async def test_login_status_logout(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    async with Emulator(meetings=3, seed=1, rate_limit=None, user_token_lifetime=3600) as emu:
        env = _env(emu)
        for name in ("Alice", "Bob"):
            emu.user = OAuthUser(name=name)
            cli = Cli(_login_argv(emu, token_file, "--scopes", "vc:room:readonly"), env)
            assert "Signed in" in await _follow(emu.authorize(await cli.url()))
            assert await cli.result() == 0, cli.err.getvalue()
        status = ["auth", "status", "--token-file", str(token_file)]
        code, text, _ = await run_cli(status, {})
        assert code == 0
        assert "Alice (ou_" in text
        assert "Bob (ou_" in text
        assert text.count("scopes:        offline_access vc:room:readonly") == 2
        assert "access token:  expires" in text
        assert "(in 59m" in text or "(in 1h" in text
        assert "refresh token: expires" in text
        assert "(2 sessions in" in text

        logout = ["auth", "logout", "--token-file", str(token_file)]
        code, _, err = await run_cli(logout, {})
        assert code == 2
        assert "2 sessions match" in err
        bob_id, _ = OAuthUser(name="Bob").ids(emu.tenant_key)
        code, out, _ = await run_cli([*logout, "--user", bob_id], {})
        assert code == 0
        assert "Forgot Bob" in out
        code, out, _ = await run_cli(logout, env)
        assert code == 0
        assert "Forgot Alice" in out
        code, gone, _ = await run_cli(status, {})
        assert code == 1
        assert "Not logged in" in gone
        assert leaks(emu, [text, err, out, gone]) == []


@pytest.mark.parametrize("how", ["deny", "wrong-state", "timeout"])
async def test_a_login_that_does_not_complete_exits_2_and_stores_nothing(
    tmp_path: Path, how: str
) -> None:
    token_file = tmp_path / "tokens.json"
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        extra = ["--timeout", "0.5"] if how == "timeout" else []
        cli = Cli(_login_argv(emu, token_file, *extra), _env(emu))
        url = await cli.url()
        if how == "deny":
            page = await _follow(emu.authorize(url, approve=False))
            assert "Login refused" in page
        elif how == "wrong-state":
            location = emu.authorize(url)
            parts = urlsplit(location)
            query = dict(parse_qsl(parts.query))
            query["state"] = "forged"
            page = await _follow(parts._replace(query=urlencode(query)).geturl())
            assert "state did not match" in page
        assert await cli.result() == 2
        message = cli.err.getvalue()
        expected = {
            "deny": "the user refused to authorize the app (access_denied)",
            "wrong-state": "the redirect's state is not this login's",
            "timeout": "no redirect from the browser within 0.5 s",
        }[how]
        assert f"feishu-vc auth login: error: {expected}" in message
        assert not token_file.exists()
        assert [r for r in emu.requests if r.token_request] == []  # no code was exchanged


async def test_login_options_are_checked_before_anything_listens() -> None:
    argv = ["auth", "login", "--no-browser", "--base-url", "http://127.0.0.1:9"]
    env = {"FEISHU_APP_ID": "a", "FEISHU_APP_SECRET": "s"}
    for extra, environment, message in [
        ([], env, "--accounts-url: required with --base-url http://127.0.0.1:9"),
        (["--accounts-url", "lark"], {}, "needs app credentials: --app-id (or FEISHU_APP_ID)"),
        (["--accounts-url", "ftp://x"], env, "--accounts-url='ftp://x': must be an http://"),
        (["--accounts-url", "feishu", "--timeout", "0"], env, "--timeout=0.0: must be"),
    ]:
        code, _, err = await run_cli([*argv, *extra], environment)
        assert code == 2
        assert message in err


async def test_the_token_file_defaults_to_the_xdg_config_dir(tmp_path: Path) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        env = _env(emu, XDG_CONFIG_HOME=str(tmp_path))
        argv = _login_argv(emu, tmp_path / "unused")[:-2]  # without --token-file
        cli = Cli(argv, env)
        await _follow(emu.authorize(await cli.url()))
        assert await cli.result() == 0, cli.err.getvalue()
        default = tmp_path / "feishu-vc" / "tokens.json"
        assert FileSessionStore(default, base_url=emu.base_url, app_id=emu.app_id).read()
        assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700
        env_file = tmp_path / "elsewhere.json"
        cli = Cli(argv, {**env, "FEISHU_VC_TOKEN_FILE": str(env_file)})
        await _follow(emu.authorize(await cli.url()))
        assert await cli.result() == 0, cli.err.getvalue()
        assert env_file.exists()
