"""``feishu-vc auth login | status | logout``: a user session in the token file.

``login`` runs the browser login (:func:`feishu_vc_async.oauth.login`) and stores the
session, under the file's lock, as the entry of (API host, app, user). ``status`` shows
who is logged in, the scopes and both expiries; ``logout`` forgets an entry. No command
ever prints a token. Exit codes: 0 done; 1 ``status`` found no usable session (none, or
each ended: its refresh token refused by the platform or expired); 2 bad options, a
refused or unfinished login, an unusable token file.
"""

from __future__ import annotations

import argparse
import asyncio
import webbrowser
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from .._clock import wall_time
from .._constants import FEISHU_BASE_URL, LARK_BASE_URL, LOGIN_TIMEOUT, VC_SCOPES
from .._validate import ACCOUNTS_URL_PRESETS, port, positive_seconds
from .._validate import base_url as check_base_url
from ..auth import FileSessionStore, StoredSession, UserSession
from ..auth._session_store import read_token_file, token_file_lock, write_token_file
from ..errors import ConfigError, FeishuError
from ._credentials import (
    ENV_APP_ID,
    ENV_BASE_URL,
    add_app_arguments,
    add_host_arguments,
    add_token_file_argument,
    resolve_app,
    resolve_base_url,
    resolve_token_file,
)
from ._exit import EXIT_FAILURES, EXIT_OK, EXIT_USAGE

__all__ = ["add_auth_command"]


# The API host → its accounts host, for the default of --accounts-url.
_ACCOUNTS_OF = {
    FEISHU_BASE_URL: ACCOUNTS_URL_PRESETS["feishu"],
    LARK_BASE_URL: ACCOUNTS_URL_PRESETS["lark"],
}


def add_auth_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "auth",
        help="log a user in (OAuth in the browser), show or forget the stored session",
        description="User sessions for --auth user: `login` signs in through the browser "
        "and stores the tokens (owner-only), `status` shows them, `logout` forgets them.",
    )
    actions = parser.add_subparsers(dest="auth_command", metavar="ACTION", required=True)

    login = actions.add_parser(
        "login",
        help="sign in through the browser and store the session",
        description="OAuth 2.0 authorization code with PKCE: the browser is redirected to "
        "a listener on 127.0.0.1 (register http://127.0.0.1/callback, or with --port the "
        "exact URI, in the app's security settings). Exit 2 if the user refuses, the "
        "state does not match or no redirect comes within --timeout.",
    )
    add_app_arguments(login)
    add_host_arguments(login)
    login.add_argument(
        "--accounts-url",
        metavar="URL",
        help="the authorize page's host: feishu (https://accounts.feishu.cn), lark "
        "(https://accounts.larksuite.com) or a URL; default: the one of --base-url",
    )
    add_token_file_argument(login)
    login.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser: print the URL (on a line of its own) and wait",
    )
    login.add_argument(
        "--timeout",
        type=float,
        default=LOGIN_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the browser (default {LOGIN_TIMEOUT:g})",
    )
    login.add_argument(
        "--port",
        type=int,
        default=0,
        help="listen on this port, 0..65535 (default 0: any free one)",
    )
    login.add_argument(
        "--scopes",
        metavar="'SCOPE ...'",
        help=f"space-separated scopes besides offline_access (default {' '.join(VC_SCOPES)})",
    )
    login.set_defaults(handler=_login)

    status = actions.add_parser(
        "status",
        help="who is logged in, scopes and expiries, or when and why a session ended",
        description="Every stored session (or those of --app-id, --base-url). Exit 0: one "
        "is usable; 1: none is (none stored, or each ended: its refresh token refused "
        "by the platform or expired).",
    )
    _add_filters(status)
    status.set_defaults(handler=_status)

    logout = actions.add_parser("logout", help="forget a stored session")
    _add_filters(logout)
    logout.add_argument("--user", metavar="OPEN_ID", help="which user, when several are stored")
    logout.set_defaults(handler=_logout)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-id", help=f"only this app's sessions (env {ENV_APP_ID})")
    add_host_arguments(parser)
    add_token_file_argument(parser)


def _fail(command: str, message: object, err: TextIO) -> int:
    print(f"feishu-vc auth {command}: error: {message}", file=err)
    return EXIT_USAGE


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(moment: float | None, now: float) -> str:
    if moment is None:
        return "unknown"
    left = moment - now
    ago = "in " + _span(left) if left > 0 else "expired " + _span(-left) + " ago"
    return f"{_stamp(moment)} ({ago})"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _ended(entry: StoredSession, now: float) -> str | None:
    """Why the entry's session can give no more tokens, or ``None`` while it can."""
    if entry.ended is not None:
        return str(entry.ended)
    session = entry.session
    if session.refresh_token is None:
        if session.expires_at > now:
            return None
        return (
            f"its access token expired at {_stamp(session.expires_at)} and it has no "
            "refresh token (offline_access not granted)"
        )
    refresh_end = session.refresh_expires_at
    if refresh_end is not None and refresh_end <= now:
        return f"its refresh token expired at {_stamp(refresh_end)}"
    return None


def _describe(entry: StoredSession, now: float) -> list[str]:
    session = entry.session
    tenant = f", tenant {session.tenant_key}" if session.tenant_key else ""
    head = [
        f"{session.who}{tenant}: app {session.app_id} at {entry.base_url}",
        f"  scopes:        {session.scope or '(none)'}",
    ]
    ended = _ended(entry, now)
    if ended is not None:  # its tokens' expiries no longer mean anything
        return [*head, f"  session ended: {ended}: run `feishu-vc auth login`"]
    return [
        *head,
        f"  access token:  expires {_when(session.expires_at, now)}",
        "  refresh token: "
        + (
            f"expires {_when(session.refresh_expires_at, now)}"
            if session.refresh_token
            else "none (offline_access not granted: log in again when the access token ends)"
        ),
    ]


def _accounts_url(args: argparse.Namespace, base_url: str) -> str:
    given: str | None = args.accounts_url
    if given is None:
        found = _ACCOUNTS_OF.get(base_url)
        if found is None:
            raise ConfigError(
                f"--accounts-url: required with --base-url {base_url} (the authorize page's "
                "host: feishu, lark or a URL)"
            )
        return found
    try:
        return check_base_url(given, "--accounts-url", ACCOUNTS_URL_PRESETS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _login(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from ..auth.oauth import login

    try:
        base_url = resolve_base_url(args, env)
        app_id, secret = resolve_app(args, env, why="auth login")
        accounts = _accounts_url(args, base_url)
        try:
            timeout = positive_seconds("--timeout", args.timeout)
            listen_on = port("--port", args.port)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        scopes = tuple(args.scopes.split()) if args.scopes is not None else VC_SCOPES
        path = resolve_token_file(args, env)
    except ConfigError as exc:
        return _fail("login", exc, err)

    def show(url: str) -> None:
        print(
            f"Open this URL in a browser to sign in (waiting up to {timeout:g} s):",
            file=out,
        )
        print(url, file=out, flush=True)

    async def run() -> UserSession:
        session = await login(
            app_id=app_id,
            app_secret=secret,
            base_url=base_url,
            accounts_url=accounts,
            scopes=scopes,
            on_url=show,
            open_browser=None if args.no_browser else webbrowser.open,
            redirect_timeout=timeout,
            port=listen_on,
        )
        store = FileSessionStore(path, base_url=base_url, app_id=app_id)
        async with store.lock():
            store.write(session)
        return session

    try:
        session = asyncio.run(run())
    except (FeishuError, OSError) as exc:
        return _fail("login", exc, err)
    entry = StoredSession(base_url=base_url, session=session)
    print(f"Signed in as {_describe(entry, wall_time())[0]}", file=out)
    for line in _describe(entry, wall_time())[1:]:
        print(line, file=out)
    print(f"  stored in:     {path}", file=out)
    return EXIT_OK


def _selected(args: argparse.Namespace, env: Mapping[str, str]) -> list[StoredSession]:
    """The token file's entries matching --app-id / host options (all when not given)."""
    path = resolve_token_file(args, env)
    entries = read_token_file(path)
    app_id = args.app_id or env.get(ENV_APP_ID)
    if app_id:
        entries = [e for e in entries if e.session.app_id == app_id]
    if args.base_url or args.lark or env.get(ENV_BASE_URL):
        base_url = resolve_base_url(args, env)
        entries = [e for e in entries if e.base_url == base_url]
    user = getattr(args, "user", None)
    if user:
        entries = [e for e in entries if e.session.open_id == user]
    return entries


def _status(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    try:
        entries = _selected(args, env)
    except FeishuError as exc:
        return _fail("status", exc, err)
    path = resolve_token_file(args, env)
    if not entries:
        print(
            f"Not logged in (no matching session in {path}): run `feishu-vc auth login`", file=out
        )
        return EXIT_FAILURES
    now = wall_time()
    for entry in entries:
        for line in _describe(entry, now):
            print(line, file=out)
    usable = sum(_ended(entry, now) is None for entry in entries)
    none_usable = "" if usable else ", none of them usable"
    print(f"({len(entries)} session{'s' * (len(entries) != 1)} in {path}{none_usable})", file=out)
    return EXIT_OK if usable else EXIT_FAILURES


def _logout(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    path = resolve_token_file(args, env)

    async def run() -> StoredSession | None:
        async with token_file_lock(path).lock():
            entries = _selected(args, env)
            if len(entries) > 1:
                names = "; ".join(
                    f"{e.session.who} of app {e.session.app_id} at {e.base_url}" for e in entries
                )
                raise ConfigError(
                    f"{len(entries)} sessions match ({names}): narrow with --app-id, "
                    "--base-url or --user"
                )
            if not entries:
                return None
            gone = entries[0]
            write_token_file(path, [e for e in read_token_file(path) if e.key != gone.key])
            return gone

    try:
        gone = asyncio.run(run())
    except FeishuError as exc:
        return _fail("logout", exc, err)
    if gone is None:
        print(f"No matching session in {path}: nothing to forget", file=out)
        return EXIT_OK
    print(
        f"Forgot {gone.session.who} of app {gone.session.app_id} at {gone.base_url} "
        f"(removed from {path})",
        file=out,
    )
    return EXIT_OK
