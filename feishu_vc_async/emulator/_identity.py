"""The Emulator's identity side: apps and their tokens, user OAuth, store apps, tenants.

:class:`Identity` is a part the :class:`~._server.Emulator` holds: it owns the identity
state, puts its endpoints (``_identity_endpoints``) on the server, and its methods are
the controls and ground truth the Emulator hands on (``emu.add_store_app``,
``emu.authorize``, ``emu.revoke_token``, ...). The rules live in ``_tokens`` (apps and
tokens), ``_oauth`` (authorize and v2 token), ``_store_apps`` (tickets) and ``_tenants``
(per-tenant data); the package docstring states every rule.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from .._constants import AUTHORIZE_PATH
from ._answering import Answering
from ._faults import EndpointFailures, TokenEndpoint
from ._identity_endpoints import IdentityEndpoints
from ._oauth import OAUTH_ERRORS, OAuthServer, OAuthUser
from ._options import DEFAULT_REDIRECT_URIS, AppTickets, DefaultApp, UserOAuth
from ._store_apps import StoreApp, TicketBook, push_ticket
from ._tenants import Tenants, TenantView, derive_key
from ._tokens import AppInfo, TokenStore

__all__ = ["Identity"]


class Identity:
    """Apps, tokens, OAuth grants, app tickets and tenants, with their controls."""

    def __init__(
        self,
        answering: Answering,
        tokens: TokenStore,
        tenants: Tenants,
        *,
        seed: int,
        app: DefaultApp,
        oauth: UserOAuth,
        tickets: AppTickets,
        monotonic: Callable[[], float],
        served_at: Callable[[], str],
    ) -> None:
        self.tokens, self.tenants = tokens, tenants
        creds = random.Random(f"app:{seed}")
        self.app_id = app.app_id or f"cli_{creds.getrandbits(64):016x}"
        self.app_secret = app.app_secret or f"{creds.getrandbits(128):032x}"
        tokens.add_app(
            self.app_id,
            self.app_secret,
            user_id_permission=app.user_id_permission,
            redirect_uris=app.redirect_uris,
            refresh_user_token=app.refresh_user_token,
        )
        self.oauth = OAuthServer(tokens, oauth, home_tenant=tenants.home_key)
        self.tickets = TicketBook(tickets)
        self._failures = EndpointFailures()
        self._endpoints = IdentityEndpoints(
            answering, tokens, tenants, self.oauth, self.tickets, self._failures
        )
        self._seed, self._monotonic = seed, monotonic
        self._served_at = served_at  # the server's base URL, known once it listens

    def add_routes(self, app: web.Application) -> None:
        self._endpoints.add_routes(app)

    async def close(self) -> None:
        await self._endpoints.close()

    # --- tenants --------------------------------------------------------------------

    @property
    def tenant_key(self) -> str:
        """The home tenant: custom apps and ``emu.meetings`` belong to it."""
        return self.tenants.home_key

    def tenant(self, tenant_key: str) -> TenantView:
        """Ground truth of a tenant (the home one, or one of a store app)."""
        if tenant_key not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_key!r}")
        return TenantView(tenant_key, self.tenants.dataset(tenant_key))

    # --- apps and tokens ------------------------------------------------------------

    def add_app(
        self,
        app_id: str | None = None,
        app_secret: str | None = None,
        *,
        user_id_permission: bool = False,
        name: str = "",
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        refresh_user_token: bool = True,
    ) -> tuple[str, str]:
        """Register another custom app (of the home tenant); returns its credentials."""
        app_id = app_id or "cli_" + secrets.token_hex(8)
        app_secret = app_secret or secrets.token_hex(16)
        self.tokens.add_app(
            app_id,
            app_secret,
            user_id_permission=user_id_permission,
            name=name,
            redirect_uris=redirect_uris,
            refresh_user_token=refresh_user_token,
        )
        return app_id, app_secret

    def tenant_token(self, app_id: str | None = None, *, tenant_key: str | None = None) -> str:
        """The tenant token the token endpoint would hand ``app_id`` now (no request); a
        store app's needs the ``tenant_key`` of one of its tenants."""
        app = self.tokens.apps.get(app_id or self.app_id)
        if app is None:
            raise KeyError(f"unknown app {app_id!r}")
        if app.store and tenant_key not in app.tenant_keys:
            raise KeyError(f"tenant {tenant_key!r} has not installed {app.app_id!r}")
        if not app.store and tenant_key not in (None, self.tenant_key):
            raise KeyError(f"a custom app belongs to the home tenant, not {tenant_key!r}")
        # A custom app's tokens are the home tenant's: recorded as None, as the endpoint does.
        key = tenant_key if app.store else None
        return self.tokens.tenant_token(app.app_id, self._monotonic(), key)[0]

    def add_user_token(self, expires_in: float = 7200.0, *, app_id: str | None = None) -> str:
        """Register a static ``u-`` token of ``app_id`` (default app) living ``expires_in`` s."""
        app = app_id or self.app_id
        if app not in self.tokens.apps:
            raise KeyError(f"unknown app {app!r}")
        return self.tokens.user_token(app, expires_in, self._monotonic())

    def revoke_token(self, token: str) -> None:
        """Revoke an access token (99991663 from now on) or a refresh token (20064)."""
        if not self.tokens.revoke(token) and not self.oauth.revoke(token):
            raise KeyError("unknown token")

    def live_refresh_tokens(self, app_id: str | None = None) -> list[str]:
        """The app's (default app's) refresh tokens that still work (neither used nor
        revoked), in order of issue: after a session's refreshes, only its last one."""
        return self.oauth.live_refresh_tokens(app_id or self.app_id)

    def issued_tokens(self) -> list[str]:
        """Every secret the emulator handed out: tenant, app and user access tokens,
        refresh tokens, authorization codes and app tickets. For tests that check none
        of them leaks into a log, an error or a file."""
        return [*self.tokens.tokens, *self.oauth.issued(), *self.tickets.issued()]

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
        self._failures.arm(endpoint, times, code)

    # --- user OAuth -----------------------------------------------------------------

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
        return f"{self._served_at()}{AUTHORIZE_PATH}?{urlencode(params)}"

    def authorize(self, url: str, *, approve: bool = True, user: OAuthUser | None = None) -> str:
        """What a browser would be redirected to after the user decides on ``url`` (an
        authorize URL), without a browser. ``AuthorizeError`` (a ValueError) where the
        page would show an error."""
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        request = self.oauth.parse_authorize(query)
        return self.oauth.decide(
            request, approve=approve, user=user or self.oauth.user, now=self._monotonic()
        )

    # --- store apps -----------------------------------------------------------------

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
        n = sum(a.store for a in self.tokens.apps.values())
        app_id = app_id or "cli_" + derive_key(f"store-app:{self._seed}:{n}")
        app_secret = app_secret or "".join(
            derive_key(f"store-secret:{self._seed}:{n}:{half}") for half in (0, 1)
        )
        if isinstance(tenants, int):
            keys = tuple(derive_key(f"tenant:{self._seed}:{app_id}:{i}") for i in range(tenants))
        else:
            keys = tuple(dict.fromkeys(tenants))
        count = len(self.tenants.dataset(None).meetings) if meetings is None else meetings
        for key in keys:
            self.tenants.add(key, count)
        if ticket_callback_url is not None:
            self.tickets.push_to(app_id, ticket_callback_url)
        self.tokens.add_app(
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
            stores = [a for a in self.tokens.apps.values() if a.store]
            if len(stores) != 1:
                raise ValueError(f"{len(stores)} store apps registered: name the app_id")
            return stores[0]
        app = self.tokens.apps.get(app_id)
        if app is None or not app.store:
            raise KeyError(f"unknown store app {app_id!r}")
        return app

    def app_ticket(self, app_id: str | None = None) -> str:
        """The store app's current app_ticket (default: the only store app)."""
        return self.tickets.current(self._store_app(app_id).app_id, self._monotonic())

    def rotate_app_ticket(self, app_id: str | None = None) -> str:
        """Issue a new ticket and make the older ones stale at once; nothing is pushed, so
        a client holding the old one gets 10012 until it asks for a resend."""
        return self.tickets.issue(self._store_app(app_id).app_id, self._monotonic(), grace=0.0)

    async def push_app_ticket(self, app_id: str | None = None) -> str:
        """Issue a new ticket and push it now (the platform's hourly push); the older
        ones stay valid for ``ticket_grace``. Returns the new ticket."""
        app = self._store_app(app_id)
        ticket = self.tickets.issue(app.app_id, self._monotonic())
        url = self.tickets.url(app.app_id)
        if url is not None:
            await push_ticket(url, app.app_id, ticket)
        return ticket
