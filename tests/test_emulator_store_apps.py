"""Store apps on the emulator over real sockets: the app_ticket push to a callback server
of the test's own, app and tenant tokens, stale tickets, per-tenant data and buckets."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from feishu_vc_async._constants import (
    APP_ACCESS_TOKEN_PATH,
    APP_TICKET_RESEND_PATH,
    LOGID_HEADER,
    PARTICIPANT_LIST_PATH,
    STORE_TENANT_TOKEN_PATH,
    TENANT_TOKEN_PATH,
    USER_TOKEN_PATH,
)
from feishu_vc_async.emulator import AppTickets, Clocks, Emulator, OAuthUser, StoreApp, TenantView
from feishu_vc_async.models import PARTICIPANT_LIST_DECODER, MeetingQuery
from feishu_vc_async.ratelimit import RateLimit
from tests._login import FakeClock, Login
from tests._loopback import Loopback


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def post(
    session: aiohttp.ClientSession, emu: Emulator, path: str, body: object
) -> tuple[int, dict[str, Any]]:
    async with session.post(emu.base_url + path, json=body) as r:
        assert r.headers[LOGID_HEADER]
        return r.status, await r.json()


async def fetch(
    session: aiohttp.ClientSession, emu: Emulator, token: str, query: MeetingQuery
) -> tuple[int, dict[str, Any]]:
    params = {**query.to_params(), "page_size": "100"}
    async with session.get(
        emu.base_url + PARTICIPANT_LIST_PATH,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        return r.status, await r.json()


def one_page(truth: TenantView) -> MeetingQuery:
    """A meeting of the tenant whose participants fit on one page of 100."""
    return next(
        q for q in truth.meetings if truth.meeting_info(q.meeting_no).participant_count <= 100
    )


def creds(app: StoreApp) -> dict[str, str]:
    return {"app_id": app.app_id, "app_secret": app.app_secret}


async def app_token(
    session: aiohttp.ClientSession, emu: Emulator, app: StoreApp, ticket: str
) -> tuple[int, dict[str, Any]]:
    return await post(session, emu, APP_ACCESS_TOKEN_PATH, {**creds(app), "app_ticket": ticket})


async def tenant_token(
    session: aiohttp.ClientSession, emu: Emulator, app_access_token: str, tenant_key: str
) -> tuple[int, dict[str, Any]]:
    body = {"app_access_token": app_access_token, "tenant_key": tenant_key}
    return await post(session, emu, STORE_TENANT_TOKEN_PATH, body)


async def test_ticket_push_tokens_and_per_tenant_meetings(session: Any) -> None:
    async with (
        Loopback("/events") as events,
        Emulator(
            meetings=4, seed=2, rate_limit=None, tickets=AppTickets(ticket_callback_url=events.url)
        ) as emu,
    ):
        app = emu.add_store_app(tenants=2)
        assert len(set(app.tenant_keys)) == 2
        assert emu.tenant_key not in app.tenant_keys
        assert app.app_secret not in repr(app)

        assert await post(session, emu, APP_TICKET_RESEND_PATH, creds(app)) == (
            200,
            {"code": 0, "msg": "ok"},
        )
        hit = await events.next()
        assert hit.method == "POST"
        ticket = emu.app_ticket(app.app_id)
        assert hit.body == {
            "type": "event_callback",
            "event": {"app_id": app.app_id, "app_ticket": ticket, "type": "app_ticket"},
        }

        status, answer = await app_token(session, emu, app, ticket)
        assert status == 200
        assert set(answer) == {"code", "msg", "app_access_token", "expire"}
        assert (answer["code"], answer["msg"], answer["expire"]) == (0, "ok", 7200)
        assert answer["app_access_token"].startswith("a-")
        # An app access token is not a bearer token of the VC APIs.
        status, body = await fetch(session, emu, answer["app_access_token"], emu.meetings[0])
        assert (status, body["code"]) == (400, 99991671)

        seen: dict[str, set[str]] = {}
        for key in app.tenant_keys:
            status, tenant = await tenant_token(session, emu, answer["app_access_token"], key)
            assert status == 200
            assert set(tenant) == {"code", "msg", "tenant_access_token", "expire"}
            truth = emu.tenant(key)
            query = truth.meetings[0]
            status, body = await fetch(session, emu, tenant["tenant_access_token"], query)
            assert status == 200
            page = PARTICIPANT_LIST_DECODER.decode(msgspec.json.encode(body))
            assert page.data is not None
            assert page.data.participants == truth.participants(query)
            seen[key] = {q.meeting_no for q in truth.meetings}
            # The home tenant's meetings are not this tenant's.
            status, body = await fetch(session, emu, tenant["tenant_access_token"], emu.meetings[0])
            assert (status, body["code"]) == (400, 126009)
        first, second = app.tenant_keys
        assert seen[first].isdisjoint(seen[second])
        assert seen[first].isdisjoint(q.meeting_no for q in emu.meetings)
        assert emu.tenant(emu.tenant_key).meetings == emu.meetings
        with pytest.raises(KeyError):
            emu.tenant("not-a-tenant")
        # A later push (the platform's hourly one) arrives too.
        pushed = await emu.push_app_ticket()
        assert (await events.next()).body["event"]["app_ticket"] == pushed


async def test_stale_ticket_then_resend_recovers(session: Any) -> None:
    mono = FakeClock()
    async with (
        Loopback("/events") as events,
        Emulator(meetings=1, seed=2, rate_limit=None, clocks=Clocks(monotonic=mono)) as emu,
    ):
        app = emu.add_store_app(tenants=1, ticket_callback_url=events.url)
        held = emu.app_ticket()
        assert (await app_token(session, emu, app, held))[0] == 200
        emu.rotate_app_ticket()  # stale at once, nothing pushed
        status, answer = await app_token(session, emu, app, held)
        assert (status, answer["code"]) == (400, 10012)
        assert answer["error"]["log_id"]
        assert (await post(session, emu, APP_TICKET_RESEND_PATH, creds(app)))[0] == 200
        fresh = (await events.next()).body["event"]["app_ticket"]
        assert fresh != held
        assert (await app_token(session, emu, app, fresh))[0] == 200
        assert events.hits.empty()


async def test_superseded_ticket_keeps_working_for_the_grace(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1,
        seed=2,
        rate_limit=None,
        clocks=Clocks(monotonic=mono),
        tickets=AppTickets(ticket_grace=30.0),
    ) as emu:
        app = emu.add_store_app(tenants=1)  # no callback URL: the resend pushes nowhere
        held = emu.app_ticket(app.app_id)
        assert (await post(session, emu, APP_TICKET_RESEND_PATH, creds(app)))[0] == 200
        assert emu.app_ticket(app.app_id) != held
        mono.now = 29.9
        assert (await app_token(session, emu, app, held))[0] == 200
        mono.now = 30.0
        assert (await app_token(session, emu, app, held))[1]["code"] == 10012
        assert (await app_token(session, emu, app, emu.app_ticket(app.app_id)))[0] == 200


async def test_store_token_refusals(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=1, seed=2, rate_limit=None, token_lifetime=8.0, clocks=Clocks(monotonic=mono)
    ) as emu:
        app = emu.add_store_app(tenants=1)
        ticket = emu.app_ticket(app.app_id)
        custom = {"app_id": emu.app_id, "app_secret": emu.app_secret}
        wrong = {**creds(app), "app_secret": "wrong"}
        cases: list[tuple[str, object, int]] = [
            (APP_TICKET_RESEND_PATH, wrong, 10014),
            (APP_TICKET_RESEND_PATH, custom, 10003),
            (APP_TICKET_RESEND_PATH, ["x"], 10003),
            (APP_ACCESS_TOKEN_PATH, {**wrong, "app_ticket": ticket}, 10014),
            (APP_ACCESS_TOKEN_PATH, {**custom, "app_ticket": ticket}, 10003),
            (APP_ACCESS_TOKEN_PATH, creds(app), 10012),
            (APP_ACCESS_TOKEN_PATH, {**creds(app), "app_ticket": "made-up"}, 10012),
            (TENANT_TOKEN_PATH, creds(app), 10003),  # a store app at the custom endpoint
            (STORE_TENANT_TOKEN_PATH, {"app_access_token": "a-x"}, 10003),
            (STORE_TENANT_TOKEN_PATH, {"app_access_token": "a-x", "tenant_key": "k"}, 99991664),
        ]
        for path, body, code in cases:
            status, answer = await post(session, emu, path, body)
            assert (status, answer["code"]) == (400, code), (path, body)
            assert answer["error"]["log_id"]
        good = (await app_token(session, emu, app, ticket))[1]["app_access_token"]
        status, answer = await tenant_token(session, emu, good, emu.tenant_key)
        assert (status, answer["code"]) == (400, 10003)  # the home tenant did not install it
        status, answer = await tenant_token(session, emu, emu.tenant_token(), app.tenant_keys[0])
        assert (status, answer["code"]) == (400, 99991664)  # a tenant token is not an app token
        mono.now = 8.0
        status, answer = await tenant_token(session, emu, good, app.tenant_keys[0])
        assert (status, answer["code"]) == (400, 99991664)  # expired
        with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
            emu.add_store_app(ticket_callback_url="http://example.com/events")
        emu.add_store_app()
        with pytest.raises(ValueError, match="store apps"):
            emu.app_ticket()  # two store apps now: which one?


async def test_store_tokens_follow_the_reissue_rule(session: Any) -> None:
    mono = FakeClock(100.0)
    async with Emulator(
        meetings=1, seed=2, rate_limit=None, token_lifetime=8.0, clocks=Clocks(monotonic=mono)
    ) as emu:
        app = emu.add_store_app(tenants=1)
        key = app.tenant_keys[0]
        ticket = emu.app_ticket()
        first_app = (await app_token(session, emu, app, ticket))[1]
        first = (await tenant_token(session, emu, first_app["app_access_token"], key))[1]
        assert first["expire"] == 8
        mono.now = 105.5  # 2.5 s left: more than the reissue window of 2 s
        again_app = (await app_token(session, emu, app, ticket))[1]
        assert (again_app["app_access_token"], again_app["expire"]) == (
            first_app["app_access_token"],
            2,
        )
        again = (await tenant_token(session, emu, again_app["app_access_token"], key))[1]
        assert (again["tenant_access_token"], again["expire"]) == (first["tenant_access_token"], 2)
        mono.now = 106.5
        fresh_app = (await app_token(session, emu, app, ticket))[1]
        assert fresh_app["app_access_token"] != first_app["app_access_token"]
        fresh = (await tenant_token(session, emu, fresh_app["app_access_token"], key))[1]
        assert fresh["tenant_access_token"] != first["tenant_access_token"]
        query = emu.tenant(key).meetings[0]
        assert (await fetch(session, emu, first["tenant_access_token"], query))[0] == 200
        assert (await fetch(session, emu, fresh["tenant_access_token"], query))[0] == 200


async def test_each_tenant_is_a_bucket_of_its_own(session: Any) -> None:
    mono = FakeClock()
    async with Emulator(
        meetings=2, seed=2, rate_limit=RateLimit(2, 60.0), clocks=Clocks(monotonic=mono)
    ) as emu:
        app = emu.add_store_app(tenants=2)
        a_token = (await app_token(session, emu, app, emu.app_ticket()))[1]["app_access_token"]
        statuses: dict[str, list[int]] = {}
        for key in app.tenant_keys:
            token = (await tenant_token(session, emu, a_token, key))[1]["tenant_access_token"]
            # The control hands out the token the endpoint does, per tenant.
            assert emu.tenant_token(app.app_id, tenant_key=key) == token
            query = emu.tenant(key).meetings[0]
            statuses[key] = [(await fetch(session, emu, token, query))[0] for _ in range(3)]
        assert list(statuses.values()) == [[200, 200, 429], [200, 200, 429]]
        with pytest.raises(KeyError):
            emu.tenant_token(app.app_id)  # which tenant?
        # The custom app of the home tenant has its own bucket as well.
        home = [
            (await fetch(session, emu, emu.tenant_token(), emu.meetings[0]))[0] for _ in range(3)
        ]
        assert home == [200, 200, 429]


async def test_a_tenant_users_login_reads_that_tenants_meetings(session: Any) -> None:
    async with Emulator(meetings=6, seed=2, rate_limit=None) as emu:
        app = emu.add_store_app(tenants=2, name="Meeting Export")
        key = app.tenant_keys[1]
        emu.user = OAuthUser("Tenant Two Admin", tenant_key=key)
        login = Login(emu, app=(app.app_id, app.app_secret))
        status, answer = await post(session, emu, USER_TOKEN_PATH, login.exchange())
        assert status == 200
        truth = emu.tenant(key)
        query = one_page(truth)
        status, body = await fetch(session, emu, answer["access_token"], query)
        assert status == 200
        page = PARTICIPANT_LIST_DECODER.decode(msgspec.json.encode(body))
        assert page.data is not None
        assert page.data.participants == truth.participants(query)
        # The home tenant's user has not installed this store app.
        emu.user = OAuthUser()
        status, answer = await post(
            session, emu, USER_TOKEN_PATH, Login(emu, app=(app.app_id, app.app_secret)).exchange()
        )
        assert (status, answer["code"]) == (400, 20010)
