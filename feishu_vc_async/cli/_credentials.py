"""Who a CLI command acts as: the credential options every command that calls the
platform shares (``export``, ``meetings``), and their resolution into the client's
``auth`` (``_options`` builds the client from it, once).

::

    add_credential_arguments(parser)                 # --auth, --app-type, --app-id, ...
    base_url, auth = resolve_credentials(args, env, redis_url=redis)

* ``--auth tenant`` (default), ``--app-type custom`` (default): app credentials →
  tenant token, or ``--access-token`` a token the caller holds;
* ``--auth tenant --app-type store``: a store app's token for ``--tenant-key``, from
  the app_ticket in ``--app-ticket-file`` (or ``$FEISHU_APP_TICKET``);
* ``--auth user``: the session ``feishu-vc auth login`` stored in the token file
  (``--token-file``, ``$FEISHU_VC_TOKEN_FILE``, else the XDG config directory),
  refreshed as it runs; under a Redis lock when a Redis URL is in use, else the file's.

With a Redis URL (``--redis-url``), tenant tokens (and a store app's app token) are
shared through it (:class:`~feishu_vc_async.auth.SharedTokens`, under ``--redis-prefix``):
processes of one app fetch one token per expiry among them, and each fetches its own
while Redis cannot be used.

Everything is checked here, before any request: a missing option, a session that was
never stored. Errors are :class:`~feishu_vc_async.errors.ConfigError` (exit code 2),
naming the option and never a secret.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .._constants import APP_TICKET_WAIT, FEISHU_BASE_URL, LARK_BASE_URL
from .._validate import base_url as check_base_url
from ..auth import (
    AppCredentials,
    AppTicketSource,
    Auth,
    FileSessionStore,
    FileTicketStore,
    RedisLock,
    SessionLock,
    SharedTokens,
    StaticTicket,
    StoreAppTokenProvider,
    UserSessionProvider,
    default_token_file,
)
from ..auth._session_store import ENV_TOKEN_FILE, entry_key
from ..errors import AppTicketError, ConfigError, TokenStoreError

__all__ = [
    "ENV_ACCESS_TOKEN",
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "ENV_APP_TICKET",
    "ENV_BASE_URL",
    "ENV_TOKEN_FILE",
    "add_app_arguments",
    "add_credential_arguments",
    "add_host_arguments",
    "add_token_file_argument",
    "resolve_app",
    "resolve_base_url",
    "resolve_credentials",
    "resolve_token_file",
    "session_store",
]

ENV_APP_ID: Final = "FEISHU_APP_ID"
ENV_APP_SECRET: Final = "FEISHU_APP_SECRET"
ENV_ACCESS_TOKEN: Final = "FEISHU_ACCESS_TOKEN"
ENV_BASE_URL: Final = "FEISHU_BASE_URL"
ENV_APP_TICKET: Final = "FEISHU_APP_TICKET"


# --- the options ------------------------------------------------------------------------


def add_app_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument("--app-id", help=f"app id (env {ENV_APP_ID})")
    group.add_argument("--app-secret", help=f"app secret (env {ENV_APP_SECRET})")


def add_host_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--base-url", help=f"API host (env {ENV_BASE_URL}; default {FEISHU_BASE_URL})"
    )
    group.add_argument("--lark", action="store_true", help=f"use {LARK_BASE_URL}")


def add_token_file_argument(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"the user-session store (env {ENV_TOKEN_FILE}; default "
        "$XDG_CONFIG_HOME/feishu-vc/tokens.json, i.e. ~/.config/feishu-vc/tokens.json)",
    )


def add_credential_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Every credential option, in one group (returned, for a command's own additions)."""
    group = parser.add_argument_group(
        "credentials (prefer the environment: arguments are visible to other local users)"
    )
    group.add_argument(
        "--auth",
        choices=("tenant", "user"),
        default="tenant",
        help="tenant: the app's own token (default); user: the session stored by "
        "`feishu-vc auth login`, refreshed while the command runs",
    )
    group.add_argument(
        "--app-type",
        choices=("custom", "store"),
        default="custom",
        help="custom: an app of one tenant (default); store: a store app, for --tenant-key",
    )
    add_app_arguments(group)
    group.add_argument(
        "--access-token",
        help=f"a tenant (t-...) or user (u-...) access token you hold (env {ENV_ACCESS_TOKEN})",
    )
    add_token_file_argument(group)
    group.add_argument(
        "--user",
        metavar="OPEN_ID",
        help="--auth user: which stored user, when several logged in to the app",
    )
    group.add_argument(
        "--tenant-key", metavar="KEY", help="--app-type store: the tenant to act for"
    )
    group.add_argument(
        "--app-ticket-file",
        metavar="FILE",
        help="--app-type store: a file holding the current app_ticket, kept up to date by "
        f"your event handler (or env {ENV_APP_TICKET}, a fixed ticket)",
    )
    add_host_arguments(group)
    return group


# --- resolution -----------------------------------------------------------------------


def _arg(args: argparse.Namespace, name: str) -> Any:
    """An option's value, or None when the command does not define it."""
    return getattr(args, name, None)


def resolve_base_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """``--base-url`` / ``--lark`` / ``$FEISHU_BASE_URL`` / Feishu, checked."""
    given = _arg(args, "base_url")
    if given and _arg(args, "lark"):
        raise ConfigError("give either --base-url or --lark, not both")
    if _arg(args, "lark"):
        url = LARK_BASE_URL
    else:  # given empty is a mistake to name, not a reason to fall back
        url = given if given is not None else env.get(ENV_BASE_URL) or FEISHU_BASE_URL
    try:
        return check_base_url(url, "--base-url")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def resolve_app(args: argparse.Namespace, env: Mapping[str, str], *, why: str) -> tuple[str, str]:
    """``--app-id`` and ``--app-secret`` (each falling back to the environment), both
    required; ``why`` completes "... needs app credentials" in the message."""
    app_id = _arg(args, "app_id") or env.get(ENV_APP_ID) or None
    secret = _arg(args, "app_secret") or env.get(ENV_APP_SECRET) or None
    if not app_id or not secret:
        missing = "--app-id" if not app_id else "--app-secret"
        env_name = ENV_APP_ID if not app_id else ENV_APP_SECRET
        raise ConfigError(f"{why} needs app credentials: {missing} (or {env_name}) is missing")
    return app_id, secret


def resolve_token_file(args: argparse.Namespace, env: Mapping[str, str]) -> Path:
    given = _arg(args, "token_file")
    return Path(given).expanduser() if given else default_token_file(env)


def session_store(
    args: argparse.Namespace, env: Mapping[str, str], *, base_url: str, app_id: str
) -> FileSessionStore:
    """The token file's store for this host and app (and ``--user``, if given)."""
    return FileSessionStore(
        resolve_token_file(args, env),
        base_url=base_url,
        app_id=app_id,
        open_id=_arg(args, "user") or None,
    )


def _tenant_credentials(
    args: argparse.Namespace, env: Mapping[str, str], shared: SharedTokens | None
) -> Auth:
    """``--auth tenant --app-type custom``: app credentials, or a token held."""
    arg_token: str | None = _arg(args, "access_token") or None
    arg_id: str | None = _arg(args, "app_id") or None
    arg_secret: str | None = _arg(args, "app_secret") or None
    if arg_token and (arg_id or arg_secret):
        raise ConfigError("give either --access-token or --app-id/--app-secret, not both")
    if arg_token:
        return arg_token
    if arg_id or arg_secret:
        app_id = arg_id or env.get(ENV_APP_ID) or None
        secret = arg_secret or env.get(ENV_APP_SECRET) or None
    else:
        app_id = env.get(ENV_APP_ID) or None
        secret = env.get(ENV_APP_SECRET) or None
        token = env.get(ENV_ACCESS_TOKEN) or None
        if token and (app_id or secret):
            raise ConfigError(
                f"both {ENV_ACCESS_TOKEN} and {ENV_APP_ID}/{ENV_APP_SECRET} are set; "
                "unset one, or choose with --access-token / --app-id"
            )
        if token:
            return token
    if app_id and not secret:
        raise ConfigError(f"--app-id needs --app-secret (or {ENV_APP_SECRET})")
    if secret and not app_id:
        raise ConfigError(f"--app-secret needs --app-id (or {ENV_APP_ID})")
    if not app_id:
        raise ConfigError(
            f"no credentials: set {ENV_APP_ID} and {ENV_APP_SECRET} (or --app-id and "
            f"--app-secret) for a tenant token, or {ENV_ACCESS_TOKEN} (--access-token) "
            "for a token you already hold, or log in with `feishu-vc auth login` and "
            "use --auth user"
        )
    assert secret is not None
    return AppCredentials(app_id, secret, shared=shared)


def _refuse(args: argparse.Namespace, names: tuple[str, ...], why: str) -> None:
    for name in names:
        if _arg(args, name):
            raise ConfigError(f"--{name.replace('_', '-')} does not apply to {why}")


def _user_credentials(
    args: argparse.Namespace,
    env: Mapping[str, str],
    base_url: str,
    redis_url: str | None,
    redis_prefix: str,
) -> Auth:
    """``--auth user``: the stored session, refreshed under the file's or Redis's lock."""
    _refuse(args, ("access_token", "tenant_key", "app_ticket_file"), "--auth user")
    app_id, secret = resolve_app(args, env, why="--auth user (to refresh the session)")
    store = session_store(args, env, base_url=base_url, app_id=app_id)
    try:
        entry = store.entry()
    except TokenStoreError as exc:
        raise ConfigError(str(exc)) from None
    if entry is None:
        user = f" as {store.open_id}" if store.open_id else ""
        raise ConfigError(
            f"--auth user: no login{user} for app {app_id} at {base_url} in {store.path}: "
            "run `feishu-vc auth login` first"
        )
    session = entry.session
    if entry.ended is not None:  # a refresh would only be refused again
        raise ConfigError(
            f"--auth user: the session of {session.who} for app {app_id} at {base_url} "
            f"has ended: {entry.ended}: run `feishu-vc auth login`"
        )
    lock: SessionLock | None = None
    if redis_url is not None:
        # Processes on other hosts share the session too: the file's flock cannot see them.
        digest = hashlib.sha256(entry_key(base_url, app_id, session.open_id).encode())
        lock = RedisLock(redis_url, f"{redis_prefix}:session-lock:{digest.hexdigest()[:24]}")
    return UserSessionProvider(app_id, secret, store, lock=lock)


def _store_credentials(
    args: argparse.Namespace, env: Mapping[str, str], shared: SharedTokens | None
) -> Auth:
    """``--app-type store``: a store app's tenant token, from its app_ticket."""
    _refuse(args, ("access_token", "user"), "--app-type store")
    app_id, secret = resolve_app(args, env, why="--app-type store")
    tenant_key: str | None = _arg(args, "tenant_key") or None
    # A worker acts for the tenant each task names (``tenants_from_tasks``).
    if not tenant_key and not _arg(args, "tenants_from_tasks"):
        raise ConfigError("--app-type store needs --tenant-key: the tenant to act for")
    ticket_file: str | None = _arg(args, "app_ticket_file") or None
    tickets: AppTicketSource
    if ticket_file is not None:
        tickets, wait = _ticket_file(Path(ticket_file).expanduser()), APP_TICKET_WAIT
    elif env.get(ENV_APP_TICKET):
        # A fixed ticket cannot change while waiting: a stale one fails at once.
        try:
            tickets, wait = StaticTicket(env[ENV_APP_TICKET], f"${ENV_APP_TICKET}"), 0.0
        except ValueError as exc:  # blank: says so, never what it holds
            raise ConfigError(str(exc)) from None
    else:
        raise ConfigError(
            f"--app-type store needs the app_ticket: --app-ticket-file FILE or {ENV_APP_TICKET}"
        )
    return StoreAppTokenProvider(
        app_id, secret, tickets, tenant_key=tenant_key, ticket_wait=wait, shared=shared
    )


def _ticket_file(path: Path) -> FileTicketStore:
    """``--app-ticket-file``, read once now: a missing or empty file is named before any
    request (the platform would only refuse the credentials)."""
    held = "the store app's current app_ticket (your event handler writes it there)"
    if not path.is_file():
        raise ConfigError(f"--app-ticket-file {path}: no such file (it should hold {held})")
    store = FileTicketStore(path)
    try:
        store.read()
    except AppTicketError:
        raise ConfigError(
            f"--app-ticket-file {path} is empty: it should hold {held}, and nothing else"
        ) from None
    except TokenStoreError as exc:
        raise ConfigError(f"--app-ticket-file: {exc}") from None
    return store


def resolve_credentials(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    redis_url: str | None = None,
    redis_prefix: str = "feishu_vc",
) -> tuple[str, Auth]:
    """The options of :func:`add_credential_arguments` (and the environment) → the API
    host and the client's ``auth``, checked once, here. ``redis_url``: the command's
    Redis, which then also holds the user session's lock and shares tenant tokens."""
    base_url = resolve_base_url(args, env)
    return base_url, _auth(args, env, base_url, redis_url, redis_prefix)


def _auth(
    args: argparse.Namespace,
    env: Mapping[str, str],
    base_url: str,
    redis_url: str | None,
    redis_prefix: str,
) -> Auth:
    if _arg(args, "auth") == "user":
        return _user_credentials(args, env, base_url, redis_url, redis_prefix)
    try:
        shared = None if redis_url is None else SharedTokens(redis_url, prefix=redis_prefix)
    except ValueError as exc:
        raise ConfigError(f"--redis-prefix: {exc}") from None
    if _arg(args, "app_type") == "store":
        return _store_credentials(args, env, shared)
    _refuse(args, ("token_file", "user"), "--auth tenant")
    _refuse(args, ("tenant_key", "app_ticket_file"), "--app-type custom")
    return _tenant_credentials(args, env, shared)
