"""The emulator's token endpoint and the auth checks of participant_list."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from feishu_vc_async._constants import LOGID_HEADER, PARTICIPANT_LIST_PATH, TENANT_TOKEN_PATH
from feishu_vc_async._token_answers import TenantTokenResponse
from feishu_vc_async.emulator import Clocks, Emulator, Faults


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _token(
    session: aiohttp.ClientSession, emu: Emulator, body: object
) -> tuple[int, dict[str, Any], Any]:
    async with session.post(emu.base_url + TENANT_TOKEN_PATH, json=body) as r:
        return r.status, await r.json(), r.headers


async def _api(
    session: aiohttp.ClientSession, emu: Emulator, authorization: str | None
) -> tuple[int, int]:
    headers = {} if authorization is None else {"Authorization": authorization}
    params = emu.meetings[0].to_params()
    async with session.get(
        emu.base_url + PARTICIPANT_LIST_PATH, params=params, headers=headers
    ) as r:
        body = await r.json()
        assert body["error" if body["code"] else "data"] is not None
        assert r.headers[LOGID_HEADER]
        return r.status, body["code"]


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_tenant_token_lifetime_and_reissue_window(session: Any) -> None:
    mono = FakeClock(100.0)
    async with Emulator(
        meetings=2, seed=1, token_lifetime=8.0, clocks=Clocks(monotonic=mono)
    ) as emu:
        creds = {"app_id": emu.app_id, "app_secret": emu.app_secret}
        status, body, headers = await _token(session, emu, creds)
        assert status == 200
        assert headers[LOGID_HEADER]
        answer = msgspec.convert(body, TenantTokenResponse)
        assert (answer.code, answer.msg, answer.expire) == (0, "ok", 8)
        first = answer.tenant_access_token
        assert first is not None
        assert first.startswith("t-")
        # The reissue window scales with the lifetime: 8 * 1800 / 7200 = 2 seconds.
        mono.now = 105.5
        _, body, _ = await _token(session, emu, creds)
        assert (body["tenant_access_token"], body["expire"]) == (first, 2)
        mono.now = 106.5
        _, body, _ = await _token(session, emu, creds)
        second = body["tenant_access_token"]
        assert second != first
        assert body["expire"] == 8
        assert await _api(session, emu, f"Bearer {first}") == (200, 0)  # old one still valid
        mono.now = 108.0
        assert await _api(session, emu, f"Bearer {first}") == (400, 99991663)  # expired
        assert await _api(session, emu, f"Bearer {second}") == (200, 0)
        flagged = [r for r in emu.requests if r.token_request]
        assert len(flagged) == 3
        assert all(emu.app_secret not in repr(r) for r in emu.requests)


async def test_token_endpoint_refusals(session: Any) -> None:
    async with Emulator(meetings=2, seed=1) as emu:
        status, body, headers = await _token(
            session, emu, {"app_id": emu.app_id, "app_secret": "wrong"}
        )
        assert (status, body["code"]) == (400, 10014)
        assert body["error"]["log_id"] == headers[LOGID_HEADER]
        assert "tenant_access_token" not in body
        status, body, _ = await _token(session, emu, {"app_id": "cli_nope", "app_secret": "x"})
        assert (status, body["code"]) == (400, 10003)
        status, body, _ = await _token(session, emu, ["not", "an", "object"])
        assert (status, body["code"]) == (400, 10003)
        assert [r.code for r in emu.requests] == [10014, 10003, 10003]


async def test_auth_errors_on_the_api(session: Any) -> None:
    mono = FakeClock(0.0)
    async with Emulator(meetings=2, seed=1, clocks=Clocks(monotonic=mono)) as emu:
        good = emu.tenant_token()
        assert await _api(session, emu, None) == (400, 99991661)
        assert await _api(session, emu, "") == (400, 99991661)
        assert await _api(session, emu, "Bearer ") == (400, 99991661)
        assert await _api(session, emu, "Bearer abc123") == (400, 99991671)
        assert await _api(session, emu, f"Basic {good}") == (400, 99991671)
        assert await _api(session, emu, "Bearer t-unknown") == (400, 99991663)
        assert await _api(session, emu, f"Bearer {good}") == (200, 0)
        emu.revoke_token(good)
        assert await _api(session, emu, f"Bearer {good}") == (400, 99991663)
        assert emu.tenant_token() != good  # a revoked token is never handed out again
        user = emu.add_user_token(expires_in=10.0)
        assert user.startswith("u-")
        assert await _api(session, emu, f"Bearer {user}") == (200, 0)
        mono.now = 10.0
        assert await _api(session, emu, f"Bearer {user}") == (400, 99991677)
        # Auth failures never reach the gateway: no app was charged for them.
        assert all(r.app_id is None for r in emu.requests if r.code not in (0, None))


async def test_revoke_after_n_requests(session: Any) -> None:
    async with Emulator(meetings=2, seed=1, faults=Faults(revoke_token_after=3)) as emu:
        token = emu.tenant_token()
        codes = [(await _api(session, emu, f"Bearer {token}"))[1] for _ in range(5)]
        assert codes == [0, 0, 0, 99991663, 99991663]
        fresh = emu.tenant_token()
        assert fresh != token
        assert await _api(session, emu, f"Bearer {fresh}") == (200, 0)
