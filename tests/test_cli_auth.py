"""`feishu-vc auth login | status | logout` over real sockets.

The CLI runs in a worker thread (its own event loop, as ``asyncio.run`` gives it) while
the emulator serves from the test's loop. The first test signs in through a real
headless Chromium; the others follow the redirect without a browser (the emulator's
``authorize`` decides, the test delivers the redirect to the CLI's listener).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import stat
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import anyio
import pytest

from feishu_vc_async._constants import OFFLINE_ACCESS_SCOPE, VC_SCOPES
from feishu_vc_async.auth import FileSessionStore, UserSession
from feishu_vc_async.cli import main
from feishu_vc_async.emulator import Emulator, OAuthUser, UserOAuth
from feishu_vc_async.export._input_writer import write_meetings_csv
from tests._browser import Browser
from tests._cli import export_argv, run_cli
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
    async with Emulator(
        meetings=3, seed=1, rate_limit=None, oauth=UserOAuth(user_token_lifetime=3600)
    ) as emu:
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


async def test_login_refuses_a_port_past_65535_before_listening() -> None:
    from feishu_vc_async.auth.oauth import login

    shown: list[str] = []
    with pytest.raises(ValueError, match="port=70000: must be an integer from 0 to 65535"):
        await login(app_id="cli_a", app_secret="s", on_url=shown.append, port=70000)
    assert shown == []


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


async def _sign_in_through_the_cli(emu: Emulator, token_file: Path) -> None:
    cli = Cli(_login_argv(emu, token_file), _env(emu))
    assert "Signed in" in await _follow(emu.authorize(await cli.url()))
    assert await cli.result() == 0, cli.err.getvalue()


async def test_a_refused_refresh_ends_the_session_and_status_says_when_and_why(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "tokens.json"
    status = ["auth", "status", "--token-file", str(token_file)]
    async with Emulator(meetings=3, seed=1, rate_limit=None) as emu:
        await _sign_in_through_the_cli(emu, token_file)
        store = FileSessionStore(token_file, base_url=emu.base_url, app_id=emu.app_id)
        session = store.read()
        assert session is not None
        assert session.refresh_token is not None
        # Both tokens revoked: the export's first request is refused, its refresh too.
        emu.revoke_token(session.access_token)
        emu.revoke_token(session.refresh_token)
        meetings = tmp_path / "meetings.csv"
        write_meetings_csv(meetings, emu.meetings)
        export = [
            *export_argv(emu, meetings, tmp_path / "out.jsonl"),
            "--auth", "user", "--token-file", str(token_file),
        ]  # fmt: skip
        code, _, stderr = await run_cli(export, _env(emu))
        assert code == 2, stderr
        assert "code=20064" in stderr
        code, text, _ = await run_cli(status, {})
        assert code == 1, text  # once: 0, and both expiries as if the session were alive

        entry = store.entry()
        assert entry is not None
        assert entry.ended is not None
        assert entry.ended.code == 20064
        assert abs(entry.ended.at - time.time()) < 60
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        (stored,) = json.loads(token_file.read_text())["sessions"].values()
        assert stored["ended"] == {"at": entry.ended.at, "code": 20064}  # and no token
        (stored,) = json.loads(token_file.read_text())["sessions"].values()
        assert stored["ended"] == {"at": entry.ended.at, "code": 20064}  # and no token
        when = datetime.fromtimestamp(entry.ended.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert (
            f"  session ended: refused by the platform at {when} (code 20064): run "
            "`feishu-vc auth login`\n"
        ) in text
        assert "access token:" not in text
        assert f"(1 session in {token_file}, none of them usable)" in text

        # An export as that user now stops before asking anything.
        asked = len(emu.requests)
        code, _, stderr = await run_cli(export, _env(emu))
        assert code == 2
        assert (
            f"feishu-vc export: error: --auth user: the session of {session.who} for app "
            f"{emu.app_id} at {emu.base_url} has ended: refused by the platform at {when} "
            "(code 20064): run `feishu-vc auth login`\n"
        ) == stderr
        assert len(emu.requests) == asked

        await _sign_in_through_the_cli(emu, token_file)  # a new login clears it
        entry = store.entry()
        assert entry is not None
        assert entry.ended is None
        code, again, _ = await run_cli(status, {})
        assert code == 0
        assert "session ended" not in again
        assert "refresh token: expires" in again
        assert leaks(emu, [stderr, text, again]) == []


async def test_status_says_a_session_whose_tokens_ran_out_has_ended(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    now = time.time()
    old = now - 10 * 86_400
    sessions = {
        "http://h1": UserSession(
            app_id="cli_a", access_token="u-a", expires_in=7200, obtained_at=old,
            refresh_token="ur-a", refresh_expires_in=86_400, open_id="ou_a",
        ),
        "http://h2": UserSession(
            app_id="cli_a", access_token="u-b", expires_in=7200, obtained_at=old, open_id="ou_b"
        ),
    }  # fmt: skip
    for base_url, session in sessions.items():
        FileSessionStore(token_file, base_url=base_url, app_id="cli_a").write(session)
    code, text, _ = await run_cli(["auth", "status", "--token-file", str(token_file)], {})
    assert code == 1
    stamp = datetime.fromtimestamp(old + 86_400, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        f"  session ended: its refresh token expired at {stamp}: run `feishu-vc auth login`\n"
    ) in text
    stamp = datetime.fromtimestamp(old + 7200, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        f"  session ended: its access token expired at {stamp} and it has no refresh token "
        "(offline_access not granted): run `feishu-vc auth login`\n"
    ) in text
    assert f"(2 sessions in {token_file}, none of them usable)" in text


async def test_a_wrong_secret_is_not_advised_to_run_again(tmp_path: Path) -> None:
    """A rerun cannot help a refused secret: the message gives the platform's refusal and
    no advice to run anything again."""
    token_file = tmp_path / "tokens.json"
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        env = {**_env(emu), "FEISHU_APP_SECRET": "not-the-secret"}
        cli = Cli(_login_argv(emu, token_file), env)
        await _follow(emu.authorize(await cli.url()))
        assert await cli.result() == 2
    message = cli.err.getvalue()
    assert message.startswith("feishu-vc auth login: error: code=20002 ")
    assert not re.search(r"again|run `", message), message
    assert not token_file.exists()
