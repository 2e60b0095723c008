"""The Emulator's identity side: user OAuth, store apps, tenants, token-endpoint faults.

:class:`IdentityEndpoints` is mixed into :class:`~._server.Emulator`; it holds the
aiohttp handlers of the identity endpoints and the controls tests use. The rules live
in ``_oauth`` (authorize and v2 token), ``_store_apps`` (tickets), ``_tokens`` (apps and
tokens) and ``_tenants`` (per-tenant data); this module wires them to HTTP. The package
docstring states every rule.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from .._constants import (
    APP_ACCESS_TOKEN_PATH,
    APP_TICKET_RESEND_PATH,
    AUTHORIZE_PATH,
    LOGID_HEADER,
    STORE_TENANT_TOKEN_PATH,
    USER_INFO_PATH,
    USER_TOKEN_PATH,
)
from ..models import JSON_ENCODER
from ._answering import _JSON, Answering
from ._data import Dataset
from ._faults import EndpointFailures, TokenEndpoint
from ._oauth import (
    OAUTH_ERRORS,
    AuthorizeError,
    AuthorizeRequest,
    OAuthError,
    OAuthServer,
    OAuthUser,
    consent_page,
    error_page,
)
from ._options import DEFAULT_REDIRECT_URIS
from ._store_apps import StoreApp, TicketBook, check_loopback_url, push_ticket
from ._tenants import Tenants, TenantView, derive_key
from ._tokens import (
    AUTH_SCOPE_MISSING,
    AUTH_USER_INVALID,
    TOKEN_BAD_APP_TOKEN,
    TOKEN_BAD_PARAM,
    TOKEN_BAD_TICKET,
    AppInfo,
    CredentialError,
    TokenInfo,
    TokenStore,
    whole_seconds,
)

__all__ = ["IdentityEndpoints"]

_HTML = "text/html; charset=utf-8"
# A bare server failure in front of the endpoint: not the endpoint's own JSON answer.
_HTML_500 = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


async def _json_body(request: web.Request) -> object:
    """The request's JSON body, or None when it is not JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


def _field(body: object, name: str) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _form_text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


class IdentityEndpoints(Answering):
    """Mixed into Emulator: identity endpoints, their controls and ground truth."""

    # Provided by Emulator.
    _tokens: TokenStore
    _clock: Callable[[], float]
    _monotonic: Callable[[], float]
    _data: Dataset
    base_url: str
    app_id: str

    def _init_identity(
        self,
        *,
        seed: int,
        make_dataset: Callable[[int, int], Dataset],
        user_token_lifetime: float,
        refresh_token_lifetime: float,
        code_lifetime: float,
        refresh_grace: float,
        auto_approve: bool,
        ticket_callback_url: str | None,
        ticket_grace: float,
    ) -> None:
        self._seed = seed
        self._tenants = Tenants(seed, derive_key(f"home-tenant:{seed}"), self._data, make_dataset)
        self._oauth = OAuthServer(
            self._tokens,
            home_tenant=self._tenants.home_key,
            code_lifetime=code_lifetime,
            user_token_lifetime=user_token_lifetime,
            refresh_token_lifetime=refresh_token_lifetime,
            refresh_grace=refresh_grace,
        )
        self._tickets = TicketBook(ticket_grace)
        self._ticket_urls: dict[str, str] = {}
        self._pushes: set[asyncio.Task[None]] = set()
        self._token_failures = EndpointFailures()
        self.user = OAuthUser()
        self.auto_approve = auto_approve
        self.ticket_callback_url = ticket_callback_url

    def _add_identity_routes(self, app: web.Application) -> None:
        app.router.add_get(AUTHORIZE_PATH, self._authorize_page)
        app.router.add_post(AUTHORIZE_PATH, self._authorize_decision)
        app.router.add_post(USER_TOKEN_PATH, self._user_token)
        app.router.add_get(USER_INFO_PATH, self._user_info)
        app.router.add_post(APP_TICKET_RESEND_PATH, self._ticket_resend)
        app.router.add_post(APP_ACCESS_TOKEN_PATH, self._app_access_token)
        app.router.add_post(STORE_TENANT_TOKEN_PATH, self._store_tenant_token)

    async def _close_identity(self) -> None:
        pushes = list(self._pushes)
        for task in pushes:
            task.cancel()
        await asyncio.gather(*pushes, return_exceptions=True)

    # --- the tenant-resolution hook of the VC APIs ----------------------------------

    def _dataset_for(self, info: TokenInfo) -> Dataset:
        """The meetings a token may read: those of its tenant."""
        return self._tenants.dataset(info.tenant_key)

    def _bucket(self, api: str, info: TokenInfo) -> tuple[str, str, str]:
        """The gateway's bucket of a request: per API, per app, per tenant."""
        return (api, info.app_id, info.tenant_key or self._tenants.home_key)

    # --- controls and ground truth --------------------------------------------------

    @property
    def accounts_url(self) -> str:
        """Base URL of the emulated accounts host (accounts.feishu.cn): the same server."""
        return self.base_url

    @property
    def tenant_key(self) -> str:
        """The home tenant: custom apps and ``emu.meetings`` belong to it."""
        return self._tenants.home_key

    def tenant(self, tenant_key: str) -> TenantView:
        """Ground truth of a tenant (the home one, or one of a store app)."""
        if tenant_key not in self._tenants:
            raise KeyError(f"unknown tenant {tenant_key!r}")
        return TenantView(tenant_key, self._tenants.dataset(tenant_key))

    def live_refresh_tokens(self, app_id: str | None = None) -> list[str]:
        """The app's (default app's) refresh tokens that still work (neither used nor
        revoked), in order of issue: after a session's refreshes, only its last one."""
        return self._oauth.live_refresh_tokens(app_id or self.app_id)

    def issued_tokens(self) -> list[str]:
        """Every secret the emulator handed out: tenant, app and user access tokens,
        refresh tokens, authorization codes and app tickets. For tests that check none
        of them leaks into a log, an error or a file."""
        return [*self._tokens.tokens, *self._oauth.issued(), *self._tickets.issued()]

    def authorize_url(
        self,
        redirect_uri: str,
        *,
        code_challenge: str,
        scope: str = "",
        state: str | None = None,
        app_id: str | None = None,
    ) -> str:
        """The authorize URL a client would open for ``app_id`` (default app), with S256."""
        params = {
            "client_id": app_id or self.app_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if state is not None:
            params["state"] = state
        return f"{self.accounts_url}{AUTHORIZE_PATH}?{urlencode(params)}"

    def authorize(self, url: str, *, approve: bool = True, user: OAuthUser | None = None) -> str:
        """What a browser would be redirected to after the user decides on ``url`` (an
        authorize URL), without a browser. ``AuthorizeError`` (a ValueError) where the
        page would show an error."""
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        request = self._oauth.parse_authorize(query)
        return self._oauth.decide(
            request, approve=approve, user=user or self.user, now=self._monotonic()
        )

    def add_store_app(
        self,
        app_id: str | None = None,
        app_secret: str | None = None,
        *,
        tenants: int | Sequence[str] = 2,
        meetings: int | None = None,
        user_id_permission: bool = False,
        name: str = "",
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        refresh_user_token: bool = True,
        ticket_callback_url: str | None = None,
    ) -> StoreApp:
        """Register a store app installed by ``tenants`` (a count, or tenant keys).

        A new tenant gets ``meetings`` meetings of its own (default: as many as the home
        tenant). The app_ticket pushes go to ``ticket_callback_url`` (default: the
        emulator's ``ticket_callback_url``); it must be on 127.0.0.1.
        """
        # Derived from the seed, like the default app: the same tenants and data each run.
        n = sum(a.store for a in self._tokens.apps.values())
        app_id = app_id or "cli_" + derive_key(f"store-app:{self._seed}:{n}")
        app_secret = app_secret or "".join(
            derive_key(f"store-secret:{self._seed}:{n}:{half}") for half in (0, 1)
        )
        if isinstance(tenants, int):
            keys = tuple(derive_key(f"tenant:{self._seed}:{app_id}:{i}") for i in range(tenants))
        else:
            keys = tuple(dict.fromkeys(tenants))
        count = len(self._data.meetings) if meetings is None else meetings
        for key in keys:
            self._tenants.add(key, count)
        if ticket_callback_url is not None:
            self._ticket_urls[app_id] = check_loopback_url(ticket_callback_url)
        self._tokens.add_app(
            app_id,
            app_secret,
            user_id_permission=user_id_permission,
            name=name,
            redirect_uris=redirect_uris,
            refresh_user_token=refresh_user_token,
            store=True,
            tenant_keys=keys,
        )
        return StoreApp(app_id, app_secret, keys)

    def _store_app(self, app_id: str | None) -> AppInfo:
        if app_id is None:
            stores = [a for a in self._tokens.apps.values() if a.store]
            if len(stores) != 1:
                raise ValueError(f"{len(stores)} store apps registered: name the app_id")
            return stores[0]
        app = self._tokens.apps.get(app_id)
        if app is None or not app.store:
            raise KeyError(f"unknown store app {app_id!r}")
        return app

    def app_ticket(self, app_id: str | None = None) -> str:
        """The store app's current app_ticket (default: the only store app)."""
        return self._tickets.current(self._store_app(app_id).app_id, self._monotonic())

    def rotate_app_ticket(self, app_id: str | None = None) -> str:
        """Issue a new ticket and make the older ones stale at once; nothing is pushed, so
        a client holding the old one gets 10012 until it asks for a resend."""
        return self._tickets.issue(self._store_app(app_id).app_id, self._monotonic(), grace=0.0)

    async def push_app_ticket(self, app_id: str | None = None) -> str:
        """Issue a new ticket and push it now (the platform's hourly push); the older
        ones stay valid for ``ticket_grace``. Returns the new ticket."""
        app = self._store_app(app_id)
        ticket = self._tickets.issue(app.app_id, self._monotonic())
        url = self._ticket_url(app.app_id)
        if url is not None:
            await push_ticket(url, app.app_id, ticket)
        return ticket

    def fail_token_endpoint(
        self, endpoint: TokenEndpoint = "tenant_token", times: int = 1, *, code: int | None = None
    ) -> None:
        """The next ``times`` requests to ``endpoint`` fail before any check.

        ``code=None``: a bare HTTP 500 with an nginx HTML page. Otherwise the endpoint's
        own error: for ``user_token`` a flat v2 body with the table's status (20050 →
        500, 20072 → 503); for the v3 endpoints ``{"code", "msg", "error"}`` with HTTP
        500. Armed failures queue up in order.
        """
        if endpoint == "user_token" and code is not None and code not in OAUTH_ERRORS:
            raise ValueError(f"code={code!r}: not a v2 token endpoint code")
        self._token_failures.arm(endpoint, times, code)

    # --- handlers -------------------------------------------------------------------

    def _ticket_url(self, app_id: str) -> str | None:
        url = self._ticket_urls.get(app_id) or self.ticket_callback_url
        return None if url is None else check_loopback_url(url)

    def _log_token(
        self,
        request: web.Request,
        mono: float,
        wall: float,
        log_id: str,
        status: int,
        code: int | None,
        *,
        app_id: str | None = None,
        fault: str | None = None,
    ) -> None:
        """Record a token endpoint's answer (no bearer token: the secrets are in the body,
        which is never recorded)."""
        self._record(
            request,
            mono,
            wall,
            None,
            status,
            code,
            log_id,
            token_request=True,
            app_id=app_id,
            fault=fault,
        )

    def _injected(
        self, request: web.Request, endpoint: str, mono: float, wall: float, log_id: str
    ) -> web.Response | None:
        """The armed failure of ``endpoint``, if one is due."""
        failure = self._token_failures.take(endpoint)
        if failure is None:
            return None
        if failure.code is None:
            self._log_token(request, mono, wall, log_id, 500, None, fault="html")
            return web.Response(
                body=_HTML_500, status=500, headers={"Content-Type": _HTML, LOGID_HEADER: log_id}
            )
        fault = "server_error"
        if endpoint == "user_token":
            err = OAuthError(failure.code, "injected failure")
            self._log_token(request, mono, wall, log_id, err.status, err.code, fault=fault)
            return self._flat(err.status, err.body(), log_id)
        self._log_token(request, mono, wall, log_id, 500, failure.code, fault=fault)
        return self._json(500, failure.code, "internal error", log_id)

    def _flat(self, status: int, body: dict[str, Any], log_id: str) -> web.Response:
        """A v2 token answer: flat JSON, never cached (RFC 6749 section 5.1)."""
        return web.Response(
            body=JSON_ENCODER.encode(body),
            status=status,
            headers={"Content-Type": _JSON, LOGID_HEADER: log_id, "Cache-Control": "no-store"},
        )

    def _ok(self, body: dict[str, Any], log_id: str) -> web.Response:
        return web.Response(
            body=JSON_ENCODER.encode(body), headers={"Content-Type": _JSON, LOGID_HEADER: log_id}
        )

    def _page(self, status: int, text: str, log_id: str) -> web.Response:
        return web.Response(
            text=text,
            status=status,
            headers={
                "Content-Type": _HTML,
                LOGID_HEADER: log_id,
                "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
            },
        )

    def _redirect(self, location: str, log_id: str) -> web.Response:
        return web.Response(
            status=302,
            headers={"Location": location, LOGID_HEADER: log_id, "Cache-Control": "no-store"},
        )

    def _known_app(self, app_id: str | None) -> str | None:
        return app_id if app_id in self._tokens.apps else None

    async def _authorize_page(self, request: web.Request) -> web.Response:
        mono, wall, log_id = self._monotonic(), self._clock(), self._log_id()
        app_id = self._known_app(request.query.get("client_id"))
        try:
            auth = self._oauth.parse_authorize(request.query)
        except AuthorizeError as exc:
            self._record(request, mono, wall, None, 400, None, log_id, app_id=app_id)
            return self._page(400, error_page(str(exc)), log_id)
        if self.auto_approve:
            location = self._oauth.decide(auth, approve=True, user=self.user, now=mono)
            self._record(request, mono, wall, None, 302, None, log_id, app_id=app_id)
            return self._redirect(location, log_id)
        pending = self._oauth.hold(auth)
        self._record(request, mono, wall, None, 200, None, log_id, app_id=app_id)
        return self._page(200, consent_page(auth, self.user, pending, AUTHORIZE_PATH), log_id)

    async def _authorize_decision(self, request: web.Request) -> web.Response:
        mono, wall, log_id = self._monotonic(), self._clock(), self._log_id()
        form = await request.post()
        decision = _form_text(form, "decision")
        auth: AuthorizeRequest | None = None
        if decision in ("approve", "deny"):
            auth = self._oauth.take(_form_text(form, "request_id"))
        if auth is None:
            self._record(request, mono, wall, None, 400, None, log_id)
            message = "this authorization request is unknown or was already decided"
            return self._page(400, error_page(message), log_id)
        approve = decision == "approve"
        location = self._oauth.decide(auth, approve=approve, user=self.user, now=mono)
        self._record(request, mono, wall, None, 302, None, log_id, app_id=auth.app.app_id)
        return self._redirect(location, log_id)

    async def _user_token(self, request: web.Request) -> web.Response:
        mono, wall, log_id = self._monotonic(), self._clock(), self._log_id()
        failed = self._injected(request, "user_token", mono, wall, log_id)
        if failed is not None:
            return failed
        body = await _json_body(request)
        app_id = self._known_app(_field(body, "client_id"))
        try:
            answer = self._oauth.token(body, mono)
        except OAuthError as err:
            self._log_token(request, mono, wall, log_id, err.status, err.code, app_id=app_id)
            return self._flat(err.status, err.body(), log_id)
        self._log_token(request, mono, wall, log_id, 200, 0, app_id=app_id)
        return self._flat(200, answer, log_id)

    async def _user_info(self, request: web.Request) -> web.Response:
        mono, wall, log_id = self._monotonic(), self._clock(), self._log_id()
        info, code, token = self._tokens.check(request.headers.get("Authorization"), mono)
        if code == AUTH_SCOPE_MISSING:  # who you are needs no VC scope
            info, code = self._tokens.tokens[token], 0
        if info is not None and info.kind != "user":
            info, code = None, AUTH_USER_INVALID
        if info is None:
            return self._auth_refusal(request, mono, wall, token, code, log_id)
        user = self._oauth.user_of(token) or self.user
        tenant = info.tenant_key or self._tenants.home_key
        open_id, union_id = user.ids(tenant)
        data = {
            "name": user.name,
            "en_name": user.name,
            "open_id": open_id,
            "union_id": union_id,
            "tenant_key": tenant,
        }
        self._record(request, mono, wall, token, 200, 0, log_id, app_id=info.app_id)
        return self._ok({"code": 0, "msg": "success", "data": data}, log_id)

    async def _v3(
        self,
        request: web.Request,
        endpoint: str,
        answer: Callable[[object, float], tuple[str, dict[str, Any]]],
    ) -> web.Response:
        """A v3 token endpoint: armed failure, then ``answer(body, now)`` → (app, body)."""
        mono, wall, log_id = self._monotonic(), self._clock(), self._log_id()
        failed = self._injected(request, endpoint, mono, wall, log_id)
        if failed is not None:
            return failed
        body = await _json_body(request)
        try:
            app_id, result = answer(body, mono)
        except CredentialError as err:
            known = self._known_app(_field(body, "app_id"))
            self._log_token(request, mono, wall, log_id, 400, err.code, app_id=known)
            return self._json(400, err.code, err.msg, log_id)
        self._log_token(request, mono, wall, log_id, 200, 0, app_id=app_id)
        return self._ok(result, log_id)

    async def _ticket_resend(self, request: web.Request) -> web.Response:
        return await self._v3(request, "app_ticket_resend", self._resend)

    async def _app_access_token(self, request: web.Request) -> web.Response:
        return await self._v3(request, "app_access_token", self._app_token)

    async def _store_tenant_token(self, request: web.Request) -> web.Response:
        return await self._v3(request, "store_tenant_token", self._store_tenant)

    def _resend(self, body: object, now: float) -> tuple[str, dict[str, Any]]:
        app = self._tokens.authenticate(body, store=True)
        ticket = self._tickets.issue(app.app_id, now)
        url = self._ticket_url(app.app_id)
        if url is not None:
            # The platform pushes after answering: the client waits for its event.
            task = asyncio.get_running_loop().create_task(push_ticket(url, app.app_id, ticket))
            self._pushes.add(task)
            task.add_done_callback(self._pushes.discard)
        return app.app_id, {"code": 0, "msg": "ok"}

    def _app_token(self, body: object, now: float) -> tuple[str, dict[str, Any]]:
        app = self._tokens.authenticate(body, store=True)
        ticket = _field(body, "app_ticket")
        if not ticket or not self._tickets.valid(app.app_id, ticket, now):
            raise CredentialError(TOKEN_BAD_TICKET, "app_ticket is invalid")
        token, left = self._tokens.app_token(app.app_id, now)
        answer = {"code": 0, "msg": "ok", "app_access_token": token, "expire": whole_seconds(left)}
        return app.app_id, answer

    def _store_tenant(self, body: object, now: float) -> tuple[str, dict[str, Any]]:
        app_token, tenant_key = _field(body, "app_access_token"), _field(body, "tenant_key")
        if not app_token or not tenant_key:
            raise CredentialError(TOKEN_BAD_PARAM, "app_access_token and tenant_key are required")
        info = self._tokens.live(app_token, "app", now)
        if info is None:
            raise CredentialError(TOKEN_BAD_APP_TOKEN, "app access token invalid")
        if tenant_key not in self._tokens.apps[info.app_id].tenant_keys:
            raise CredentialError(TOKEN_BAD_PARAM, "tenant_key has not installed the app")
        token, left = self._tokens.tenant_token(info.app_id, now, tenant_key)
        return info.app_id, {
            "code": 0,
            "msg": "ok",
            "tenant_access_token": token,
            "expire": whole_seconds(left),
        }
