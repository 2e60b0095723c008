"""The identity side over HTTP: the token endpoints, the authorize page and user_info.

Each handler answers from the state it is given (apps and tokens, OAuth, tickets,
tenants, armed failures), which :class:`~._identity.Identity` owns and its controls
change, and records the answer in the shared :class:`~._answering.Answering`. A token
endpoint takes its armed failure (``fail_token_endpoint``) before any check of its own.
The package docstring states every rule.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .._constants import (
    APP_ACCESS_TOKEN_PATH,
    APP_TICKET_RESEND_PATH,
    AUTHORIZE_PATH,
    LOGID_HEADER,
    STORE_TENANT_TOKEN_PATH,
    TENANT_TOKEN_PATH,
    USER_INFO_PATH,
    USER_TOKEN_PATH,
)
from ..models import JSON_ENCODER
from ._answering import Answering, Arrival, error_response, json_response
from ._faults import EndpointFailures
from ._oauth import AuthorizeError, AuthorizeRequest, OAuthError, OAuthServer
from ._oauth_pages import consent_page, error_page
from ._store_apps import TicketBook, push_ticket
from ._tenants import Tenants
from ._tokens import (
    AUTH_SCOPE_MISSING,
    AUTH_USER_INVALID,
    TOKEN_BAD_APP_TOKEN,
    TOKEN_BAD_PARAM,
    TOKEN_BAD_TICKET,
    CredentialError,
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
# (body, now) -> (the app_id to record, the answer), or CredentialError.
_V3Answer = Callable[[object, float], tuple[str, dict[str, Any]]]


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


def _ok(body: dict[str, Any], log_id: str) -> web.Response:
    return json_response(JSON_ENCODER.encode(body), log_id)


def _flat(status: int, body: dict[str, Any], log_id: str) -> web.Response:
    """A v2 token answer: flat JSON, never cached (RFC 6749 section 5.1)."""
    return json_response(
        JSON_ENCODER.encode(body), log_id, status=status, headers={"Cache-Control": "no-store"}
    )


def _tenant_answer(token: str, left: float) -> dict[str, Any]:
    return {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": whole_seconds(left)}


def _page(status: int, text: str, log_id: str) -> web.Response:
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


def _redirect(location: str, log_id: str) -> web.Response:
    return web.Response(
        status=302,
        headers={"Location": location, LOGID_HEADER: log_id, "Cache-Control": "no-store"},
    )


class IdentityEndpoints:
    """The handlers of every identity endpoint; ``add_routes`` puts them on a server."""

    def __init__(
        self,
        answering: Answering,
        tokens: TokenStore,
        tenants: Tenants,
        oauth: OAuthServer,
        tickets: TicketBook,
        failures: EndpointFailures,
    ) -> None:
        self._answering, self._tokens, self._tenants = answering, tokens, tenants
        self._oauth, self._tickets, self._failures = oauth, tickets, failures
        self._pushes: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(TENANT_TOKEN_PATH, self._tenant_token)
        app.router.add_get(AUTHORIZE_PATH, self._authorize_page)
        app.router.add_post(AUTHORIZE_PATH, self._authorize_decision)
        app.router.add_post(USER_TOKEN_PATH, self._user_token)
        app.router.add_get(USER_INFO_PATH, self._user_info)
        app.router.add_post(APP_TICKET_RESEND_PATH, self._ticket_resend)
        app.router.add_post(APP_ACCESS_TOKEN_PATH, self._app_access_token)
        app.router.add_post(STORE_TENANT_TOKEN_PATH, self._store_tenant_token)

    async def close(self) -> None:
        pushes = list(self._pushes)
        for task in pushes:
            task.cancel()
        await asyncio.gather(*pushes, return_exceptions=True)

    def _record_token_request(
        self, request: web.Request, at: Arrival, status: int, code: int | None, **more: Any
    ) -> None:
        """Record a token endpoint's answer: no bearer token, the secrets are in the body,
        which is never recorded."""
        self._answering.record(request, at, status, code, token_request=True, **more)

    def _injected(self, request: web.Request, at: Arrival, endpoint: str) -> web.Response | None:
        """The armed failure of ``endpoint``, if one is due."""
        failure = self._failures.take(endpoint)
        if failure is None:
            return None
        if failure.code is None:
            self._record_token_request(request, at, 500, None, fault="html")
            return web.Response(
                body=_HTML_500,
                status=500,
                headers={"Content-Type": _HTML, LOGID_HEADER: at.log_id},
            )
        fault = "server_error"
        if endpoint == "user_token":
            err = OAuthError(failure.code, "injected failure")
            self._record_token_request(request, at, err.status, err.code, fault=fault)
            return _flat(err.status, err.body(), at.log_id)
        self._record_token_request(request, at, 500, failure.code, fault=fault)
        return error_response(500, failure.code, "internal error", at.log_id)

    def _known_app(self, app_id: str | None) -> str | None:
        return app_id if app_id in self._tokens.apps else None

    # --- user OAuth -----------------------------------------------------------------

    async def _authorize_page(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        record = self._answering.record
        app_id = self._known_app(request.query.get("client_id"))
        try:
            auth = self._oauth.parse_authorize(request.query)
        except AuthorizeError as exc:
            record(request, at, 400, None, app_id=app_id)
            return _page(400, error_page(str(exc)), at.log_id)
        oauth = self._oauth
        if oauth.auto_approve:
            location = oauth.decide(auth, approve=True, user=oauth.user, now=at.mono)
            record(request, at, 302, None, app_id=app_id)
            return _redirect(location, at.log_id)
        pending = oauth.hold(auth)
        record(request, at, 200, None, app_id=app_id)
        return _page(200, consent_page(auth, oauth.user, pending, AUTHORIZE_PATH), at.log_id)

    async def _authorize_decision(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        form = await request.post()
        decision = _form_text(form, "decision")
        auth: AuthorizeRequest | None = None
        if decision in ("approve", "deny"):
            auth = self._oauth.take(_form_text(form, "request_id"))
        if auth is None:
            self._answering.record(request, at, 400, None)
            message = "this authorization request is unknown or was already decided"
            return _page(400, error_page(message), at.log_id)
        approve = decision == "approve"
        location = self._oauth.decide(auth, approve=approve, user=self._oauth.user, now=at.mono)
        self._answering.record(request, at, 302, None, app_id=auth.app.app_id)
        return _redirect(location, at.log_id)

    async def _user_token(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        failed = self._injected(request, at, "user_token")
        if failed is not None:
            return failed
        body = await _json_body(request)
        app_id = self._known_app(_field(body, "client_id"))
        try:
            answer = self._oauth.token(body, at.mono)
        except OAuthError as err:
            self._record_token_request(request, at, err.status, err.code, app_id=app_id)
            return _flat(err.status, err.body(), at.log_id)
        self._record_token_request(request, at, 200, 0, app_id=app_id)
        return _flat(200, answer, at.log_id)

    async def _user_info(self, request: web.Request) -> web.Response:
        at = self._answering.arrive()
        info, code, token = self._tokens.check(request.headers.get("Authorization"), at.mono)
        if code == AUTH_SCOPE_MISSING:  # who you are needs no VC scope
            info, code = self._tokens.tokens[token], 0
        if info is not None and info.kind != "user":
            info, code = None, AUTH_USER_INVALID
        if info is None:
            return self._answering.refuse_token(request, at, token, code)
        user = self._oauth.user_of(token) or self._oauth.user
        tenant = info.tenant_key or self._tenants.home_key
        open_id, union_id = user.ids(tenant)
        data = {
            "name": user.name,
            "en_name": user.name,
            "open_id": open_id,
            "union_id": union_id,
            "tenant_key": tenant,
        }
        self._answering.record(request, at, 200, 0, token=token, app_id=info.app_id)
        return _ok({"code": 0, "msg": "success", "data": data}, at.log_id)

    # --- the v3 token endpoints: custom apps, store apps ----------------------------

    async def _v3(
        self,
        request: web.Request,
        endpoint: str,
        answer: _V3Answer,
        *,
        record_any_app_id: bool = False,
    ) -> web.Response:
        """A v3 token endpoint: the armed failure, then ``answer``. A refusal records the
        app_id sent if it is a known app's; ``record_any_app_id``, whatever was sent."""
        at = self._answering.arrive()
        failed = self._injected(request, at, endpoint)
        if failed is not None:
            return failed
        body = await _json_body(request)
        try:
            app_id, result = answer(body, at.mono)
        except CredentialError as err:
            sent = _field(body, "app_id")
            known = sent if record_any_app_id else self._known_app(sent)
            self._record_token_request(request, at, 400, err.code, app_id=known)
            return error_response(400, err.code, err.msg, at.log_id)
        tenant = _field(body, "tenant_key") or None
        self._record_token_request(request, at, 200, 0, app_id=app_id, tenant_key=tenant)
        return _ok(result, at.log_id)

    async def _tenant_token(self, request: web.Request) -> web.Response:
        # The custom-app endpoint has always logged the app_id it was sent, known or not.
        return await self._v3(request, "tenant_token", self._custom_tenant, record_any_app_id=True)

    async def _ticket_resend(self, request: web.Request) -> web.Response:
        return await self._v3(request, "app_ticket_resend", self._resend)

    async def _app_access_token(self, request: web.Request) -> web.Response:
        return await self._v3(request, "app_access_token", self._app_token)

    async def _store_tenant_token(self, request: web.Request) -> web.Response:
        return await self._v3(request, "store_tenant_token", self._store_tenant)

    def _custom_tenant(self, body: object, now: float) -> tuple[str, dict[str, Any]]:
        app = self._tokens.authenticate(body, store=False)
        return app.app_id, _tenant_answer(*self._tokens.tenant_token(app.app_id, now))

    def _resend(self, body: object, now: float) -> tuple[str, dict[str, Any]]:
        app = self._tokens.authenticate(body, store=True)
        ticket = self._tickets.issue(app.app_id, now)
        url = self._tickets.url(app.app_id)
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
        return info.app_id, _tenant_answer(*self._tokens.tenant_token(info.app_id, now, tenant_key))
