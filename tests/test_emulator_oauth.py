"""User OAuth on the emulator over real sockets: the consent page in a headless browser,
the v2 token endpoint's codes, refresh rotation and grace, user tokens on the VC API."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from feishu_vc_async._constants import (
    AUTHORIZE_PATH,
    LOGID_HEADER,
    PARTICIPANT_LIST_PATH,
    TENANT_TOKEN_PATH,
    USER_INFO_PATH,
    USER_TOKEN_PATH,
)
from feishu_vc_async.emulator import AuthorizeError, Clocks, Emulator, OAuthUser, UserOAuth
from feishu_vc_async.ratelimit import RateLimit
from tests._browser import Browser
from tests._login import REDIRECT, SCOPE, VC, FakeClock, Login, pkce, query_of
from tests._loopback import Loopback


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def post_token(
    session: aiohttp.ClientSession, emu: Emulator, body: object
) -> tuple[int, dict[str, Any]]:
    async with session.post(emu.base_url + USER_TOKEN_PATH, json=body) as r:
        assert r.headers[LOGID_HEADER]
        return r.status, await r.json()


async def api(session: aiohttp.ClientSession, emu: Emulator, token: str) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    params = emu.meetings[0].to_params()
    async with session.get(
        emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
    ) as r:
        return r.status, (await r.json())["code"]


# --- in a real browser -----------------------------------------------------------------


async def test_browser_approve_sends_code_and_state_to_the_listener(
    browser: Browser, session: Any
) -> None:
    async with Emulator(meetings=3, seed=1, rate_limit=None) as emu, Loopback() as listener:
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(16)
        url = emu.authorize_url(listener.url, code_challenge=challenge, scope=SCOPE, state=state)
        assert url.startswith(emu.accounts_url + AUTHORIZE_PATH)
        await browser.open(url)
        assert await browser.text("app-name") == emu.app_id
        assert await browser.text("user") == emu.user.name
        assert (await browser.text("scopes")).split() == SCOPE.split()
        await browser.click("approve")
        hit = await listener.next()
        assert hit.method == "GET"
        assert set(hit.query) == {"code", "state"}
        assert hit.query["state"] == state
        assert (await browser.url()).startswith(listener.url + "?")
        assert "Login complete" in await browser.text()

        body = {
            "grant_type": "authorization_code",
            "client_id": emu.app_id,
            "client_secret": emu.app_secret,
            "code": hit.query["code"],
            "redirect_uri": listener.url,
            "code_verifier": verifier,
        }
        status, answer = await post_token(session, emu, body)
        assert status == 200
        assert list(answer) == [
            "code",
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "token_type",
            "scope",
        ]
        assert answer["code"] == 0
        assert answer["access_token"].startswith("u-")
        assert len(answer["access_token"]) > 1000  # real ones are 1-2 KB
        assert answer["refresh_token"].startswith("ur-")
        assert (answer["expires_in"], answer["token_type"]) == (7200, "Bearer")
        assert answer["refresh_token_expires_in"] == 365 * 86_400
        assert answer["scope"] == SCOPE
        assert await api(session, emu, answer["access_token"]) == (200, 0)
        # The code was for one use: the browser's second try finds it used.
        assert (await post_token(session, emu, body)) == (
            400,
            {
                "code": 20065,
                "error": "invalid_grant",
                "error_description": "the authorization code has been used",
            },
        )
        records = [r for r in emu.requests if r.path == USER_TOKEN_PATH]
        assert [r.code for r in records] == [0, 20065]
        assert all(r.token_request and r.app_id == emu.app_id for r in records)


async def test_browser_deny_sends_access_denied(browser: Browser) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu, Loopback() as listener:
        _, challenge = pkce()
        url = emu.authorize_url(listener.url, code_challenge=challenge, scope=VC, state="xyz")
        await browser.open(url)
        await browser.click("deny")
        hit = await listener.next()
        assert hit.query == {"error": "access_denied", "state": "xyz"}
        page, decision = [r for r in emu.requests if r.path == AUTHORIZE_PATH]
        assert (page.method, page.status, decision.method, decision.status) == (
            "GET",
            200,
            "POST",
            302,
        )


async def test_browser_sees_an_error_page_for_a_bad_request(browser: Browser) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        _, challenge = pkce()
        url = emu.authorize_url("https://evil.example/cb", code_challenge=challenge)
        await browser.open(url)
        assert "redirect_uri" in await browser.text("error")


# --- the authorize page without a browser ----------------------------------------------


async def test_authorize_request_validation(session: Any) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        _, challenge = pkce()
        good = {
            "client_id": emu.app_id,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": SCOPE,
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        refusals: list[tuple[dict[str, str], str]] = [
            ({"client_id": "cli_unknown"}, "client_id"),
            ({"client_id": ""}, "client_id"),
            ({"redirect_uri": ""}, "redirect_uri"),
            ({"redirect_uri": "http://127.0.0.1:8123/other"}, "redirect_uri"),
            ({"redirect_uri": "https://127.0.0.1:8123/callback"}, "redirect_uri"),
            ({"redirect_uri": "http://10.0.0.1:8123/callback"}, "redirect_uri"),
            ({"redirect_uri": "http://127.0.0.1:8123/callback#frag"}, "redirect_uri"),
            ({"response_type": "token"}, "response_type"),
            ({"code_challenge_method": ""}, "PKCE"),
            ({"code_challenge_method": "plain"}, "S256"),
            ({"code_challenge": ""}, "code_challenge"),
            ({"code_challenge": "short"}, "code_challenge"),
        ]
        for change, needle in refusals:
            params = {**good, **change}
            async with session.get(
                emu.accounts_url + AUTHORIZE_PATH, params=params, allow_redirects=False
            ) as r:
                assert r.status == 400, change
                assert r.content_type == "text/html"
                assert r.headers[LOGID_HEADER]
                page = await r.text()
                assert 'id="error"' in page
                assert needle in page, change
            with pytest.raises(AuthorizeError):
                emu.authorize(f"{emu.accounts_url}{AUTHORIZE_PATH}?{urlencode(params)}")

        async with session.get(emu.accounts_url + AUTHORIZE_PATH, params=good) as r:
            assert r.status == 200
            page = await r.text()
            assert 'id="approve"' in page
            assert 'id="deny"' in page
            request_id = page.split('name="request_id" value="')[1].split('"')[0]
        form = {"request_id": request_id, "decision": "approve"}
        async with session.post(
            emu.accounts_url + AUTHORIZE_PATH, data=form, allow_redirects=False
        ) as r:
            assert r.status == 302
            location = r.headers["Location"]
            assert location.startswith(REDIRECT + "?")
            assert query_of(location)["state"] == "s1"
        async with session.post(
            emu.accounts_url + AUTHORIZE_PATH, data=form, allow_redirects=False
        ) as r:
            assert r.status == 400  # a request is decided once

        # Without a state the redirect carries none; a registered query is kept.
        emu.add_app("cli_q", "secret", redirect_uris=["http://localhost/cb?app=1"])
        url = emu.authorize_url(
            "http://localhost:9/cb?app=1", code_challenge=challenge, app_id="cli_q"
        )
        location = emu.authorize(url, approve=False)
        assert location == "http://localhost:9/cb?app=1&error=access_denied"


async def test_auto_approve_redirects_at_once(session: Any) -> None:
    async with (
        Emulator(meetings=1, seed=1, rate_limit=None, oauth=UserOAuth(auto_approve=True)) as emu,
        Loopback() as listener,
    ):
        _, challenge = pkce()
        url = emu.authorize_url(listener.url, code_challenge=challenge, scope=SCOPE, state="a")
        async with session.get(url) as r:  # follows the 302 to the listener
            assert r.status == 200
        hit = await listener.next()
        assert hit.query["state"] == "a"
        assert [r.status for r in emu.requests] == [302]


# --- the token endpoint ----------------------------------------------------------------


async def test_token_endpoint_refusals(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1,
        seed=1,
        rate_limit=None,
        clocks=Clocks(monotonic=mono),
        oauth=UserOAuth(code_lifetime=10.0),
    ) as emu:
        login = Login(emu)
        other_app = emu.add_app()
        other = Login(emu, app=other_app)
        cases: list[tuple[object, int]] = [
            (["not", "an", "object"], 20063),
            ({**login.exchange(), "code": 12}, 20063),
            ({**login.exchange(), "grant_type": "password"}, 20063),
            ({**login.exchange(), "grant_type": ""}, 20001),
            ({**login.exchange(), "code_verifier": ""}, 20001),
            ({k: v for k, v in login.exchange().items() if k != "redirect_uri"}, 20001),
            (login.exchange(client_secret="wrong"), 20002),
            (login.exchange(client_id="cli_unknown"), 20002),
            (login.exchange(code="nope"), 20003),
            (login.exchange(code=other.code), 20003),  # another app's code
            (login.exchange(redirect_uri="http://127.0.0.1:8124/callback"), 20071),
            (login.exchange(code_verifier=pkce()[0]), 20049),
            (login.exchange(code_verifier="too-short"), 20049),
            (login.exchange(scope=f"{VC} contact:user.base:readonly"), 20067),
        ]
        for body, code in cases:
            status, answer = await post_token(session, emu, body)
            assert (status, answer["code"]) == (400, code), body
            assert set(answer) == {"code", "error", "error_description"}
        # A form-encoded body (RFC 6749's default) is not what this endpoint takes.
        async with session.post(emu.base_url + USER_TOKEN_PATH, data=login.exchange()) as r:
            assert (r.status, (await r.json())["code"]) == (400, 20063)
        # None of the refusals used the code up; it expires after code_lifetime.
        mono.now = 9.9
        assert (await post_token(session, emu, other.exchange()))[0] == 200
        mono.now = 10.0
        assert (await post_token(session, emu, login.exchange()))[1]["code"] == 20004


async def test_user_of_a_tenant_without_the_app_is_refused() -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        emu.user = OAuthUser("Outsider", tenant_key="0123456789abcdef")
        login = Login(emu)
        async with aiohttp.ClientSession() as session:
            status, answer = await post_token(session, emu, login.exchange())
        assert (status, answer["code"]) == (400, 20010)


async def test_refresh_rotation_and_grace(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1,
        seed=1,
        rate_limit=None,
        clocks=Clocks(monotonic=mono),
        oauth=UserOAuth(refresh_grace=5.0),
    ) as emu:
        login = Login(emu)
        first = (await post_token(session, emu, login.exchange()))[1]
        mono.now = 100.0
        status, second = await post_token(session, emu, login.refresh(first["refresh_token"]))
        assert status == 200
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        assert second["refresh_token_expires_in"] == 365 * 86_400 - 100
        # The old refresh token died at once; a second refresher loses the session.
        status, answer = await post_token(session, emu, login.refresh(first["refresh_token"]))
        assert (status, answer["code"]) == (400, 20073)
        # The old access token works for the grace period only.
        mono.now = 104.9
        assert await api(session, emu, first["access_token"]) == (200, 0)
        mono.now = 105.0
        assert await api(session, emu, first["access_token"]) == (400, 99991677)
        assert await api(session, emu, second["access_token"]) == (200, 0)
        # The new one rotates in turn; a revoked refresh token answers 20064.
        status, third = await post_token(session, emu, login.refresh(second["refresh_token"]))
        assert status == 200
        emu.revoke_token(third["refresh_token"])
        status, answer = await post_token(session, emu, login.refresh(third["refresh_token"]))
        assert (status, answer["code"]) == (400, 20064)
        # Garbage, or another app's refresh token: 20026.
        assert (await post_token(session, emu, login.refresh("ur-garbage")))[1]["code"] == 20026
        other_app = emu.add_app()
        other = Login(emu, app=other_app)
        foreign = (await post_token(session, emu, other.exchange()))[1]["refresh_token"]
        assert (await post_token(session, emu, login.refresh(foreign)))[1]["code"] == 20026


async def test_refresh_limits_scopes_and_switch(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1,
        seed=1,
        rate_limit=None,
        clocks=Clocks(monotonic=mono),
        oauth=UserOAuth(refresh_token_lifetime=50.0),
    ) as emu:
        login = Login(emu)
        first = (await post_token(session, emu, login.exchange()))[1]
        assert first["refresh_token_expires_in"] == 50
        # Narrowing on refresh: allowed, but a VC token without the VC scope is refused.
        status, narrow = await post_token(
            session, emu, login.refresh(first["refresh_token"], scope="offline_access")
        )
        assert (status, narrow["scope"]) == (200, "offline_access")
        assert await api(session, emu, narrow["access_token"]) == (400, 99991679)
        status, answer = await post_token(
            session, emu, login.refresh(narrow["refresh_token"], scope="contact:user.base:readonly")
        )
        assert (status, answer["code"]) == (400, 20067)
        # The grant's refresh tokens end with it, 50 s after the approval.
        mono.now = 50.0
        status, answer = await post_token(session, emu, login.refresh(narrow["refresh_token"]))
        assert (status, answer["code"]) == (400, 20037)

        # Without offline_access there is no refresh token at all.
        status, answer = await post_token(session, emu, Login(emu, scope=VC).exchange())
        assert status == 200
        assert "refresh_token" not in answer
        assert "refresh_token_expires_in" not in answer
        assert answer["scope"] == VC

        # The app's "refresh user_access_token" switch off: 20074.
        locked = emu.add_app(refresh_user_token=False)
        login = Login(emu, app=locked)
        first = (await post_token(session, emu, login.exchange()))[1]
        status, answer = await post_token(session, emu, login.refresh(first["refresh_token"]))
        assert (status, answer["code"]) == (400, 20074)
        assert answer["error"] == "unauthorized_client"


async def test_user_tokens_on_the_vc_api(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1,
        seed=1,
        rate_limit=RateLimit(3, 60.0),
        clocks=Clocks(monotonic=mono),
        oauth=UserOAuth(user_token_lifetime=10.0),
    ) as emu:
        answer = (await post_token(session, emu, Login(emu).exchange()))[1]
        user_token = answer["access_token"]
        assert answer["expires_in"] == 10
        assert await api(session, emu, user_token) == (200, 0)
        assert await api(session, emu, "u-" + "0" * 40) == (400, 99991668)
        no_vc = (await post_token(session, emu, Login(emu, scope="offline_access").exchange()))[1]
        assert await api(session, emu, no_vc["access_token"]) == (400, 99991679)
        # A user token is charged to its app's bucket, with the app's tenant tokens.
        tenant = emu.tenant_token()
        assert await api(session, emu, tenant) == (200, 0)
        assert await api(session, emu, tenant) == (200, 0)
        assert (await api(session, emu, user_token))[0] == 429
        mono.now = 10.0
        assert await api(session, emu, user_token) == (400, 99991677)
        revoked = (await post_token(session, emu, Login(emu).exchange()))[1]["access_token"]
        emu.revoke_token(revoked)
        assert await api(session, emu, revoked) == (400, 99991663)
        assert all(emu.app_secret not in repr(r) for r in emu.requests)
        assert all(user_token not in repr(r) for r in emu.requests)


# --- armed failures --------------------------------------------------------------------


async def test_armed_failures_of_the_token_endpoints(session: Any) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        login = Login(emu)
        emu.fail_token_endpoint("user_token", 2, code=20050)
        emu.fail_token_endpoint("user_token", code=20072)
        emu.fail_token_endpoint("user_token")
        seen = []
        for _ in range(5):
            async with session.post(emu.base_url + USER_TOKEN_PATH, json=login.exchange()) as r:
                body = await r.read()
                seen.append((r.status, r.content_type, body[:1]))
        assert seen == [
            (500, "application/json", b"{"),
            (500, "application/json", b"{"),
            (503, "application/json", b"{"),
            (500, "text/html", b"<"),
            (200, "application/json", b"{"),
        ]
        assert [r.fault for r in emu.requests] == [
            "server_error",
            "server_error",
            "server_error",
            "html",
            None,
        ]
        with pytest.raises(ValueError, match="v2"):
            emu.fail_token_endpoint("user_token", code=10003)
        with pytest.raises(ValueError, match="endpoint"):
            emu.fail_token_endpoint("nope", 1)  # type: ignore[arg-type]

        # The custom app's tenant token endpoint: fail twice, then answer.
        emu.fail_token_endpoint("tenant_token", 2)
        emu.fail_token_endpoint("tenant_token", code=99)
        creds = {"app_id": emu.app_id, "app_secret": emu.app_secret}
        statuses = []
        for _ in range(4):
            async with session.post(emu.base_url + TENANT_TOKEN_PATH, json=creds) as r:
                statuses.append((r.status, r.content_type))
                if r.content_type == "application/json":
                    code = (await r.json())["code"]
        assert statuses == [
            (500, "text/html"),
            (500, "text/html"),
            (500, "application/json"),
            (200, "application/json"),
        ]
        assert code == 0


async def _user_info(session: aiohttp.ClientSession, emu: Emulator, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(emu.base_url + USER_INFO_PATH, headers=headers) as r:
        assert r.headers[LOGID_HEADER]
        return r.status, await r.json()


async def test_user_info_names_who_approved_the_grant(session: Any) -> None:
    async with Emulator(meetings=1, seed=1, rate_limit=None) as emu:
        emu.user = OAuthUser(name="Ada", open_id="ou_fixed")
        login = Login(emu, scope="offline_access")  # no VC scope: user_info needs none
        status, answer = await post_token(session, emu, login.exchange())
        assert status == 200
        status, body = await _user_info(session, emu, answer["access_token"])
        assert status == 200
        assert body["code"] == 0
        assert body["data"]["name"] == "Ada"
        assert body["data"]["open_id"] == "ou_fixed"
        assert body["data"]["union_id"].startswith("on_")
        assert body["data"]["tenant_key"] == emu.tenant_key
        # A refreshed token is still Ada's; the refresh token used is no longer live.
        assert emu.live_refresh_tokens() == [answer["refresh_token"]]
        status, fresh = await post_token(session, emu, login.refresh(answer["refresh_token"]))
        assert emu.live_refresh_tokens() == [fresh["refresh_token"]]
        assert (await _user_info(session, emu, fresh["access_token"]))[1]["data"]["name"] == "Ada"
        # Derived ids are stable per name and tenant.
        assert OAuthUser(name="Bo").ids("t1") == OAuthUser(name="Bo").ids("t1")
        assert OAuthUser(name="Bo").ids("t1") != OAuthUser(name="Bo").ids("t2")
        status, body = await _user_info(session, emu, emu.tenant_token())
        assert (status, body["code"]) == (400, 99991668)
        status, body = await _user_info(session, emu, "u-unknown")
        assert (status, body["code"]) == (400, 99991668)
        issued = emu.issued_tokens()
        for secret in (answer["access_token"], fresh["refresh_token"], login.code):
            assert secret in issued
        assert [r.code for r in emu.requests if r.path == USER_INFO_PATH] == [
            0,
            0,
            99991668,
            99991668,
        ]
