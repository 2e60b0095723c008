"""Where access tokens come from: a caller's token, app credentials, a user session, a
store app's tenants.

* :class:`StaticTokenProvider`: a token the caller holds (``t-`` or ``u-``);
* :class:`UserTokenProvider`: a user token plus the caller's refresh callback;
* :class:`TenantTokenProvider`: tenant tokens of a custom app, from its credentials;
* :class:`UserSessionProvider`: a stored user session (``feishu-vc auth login``, or
  tokens a web backend obtained), refreshed when due, safely across processes: under
  the :class:`SessionStore`'s lock (:class:`FileSessionStore`, :class:`MemorySessionStore`,
  yours) or a :class:`RedisLock`;
* :class:`StoreAppTokenProvider`: a store app's tenant tokens from its app_ticket
  (:class:`AppTicketSource`: :class:`MemoryTicketStore`, :class:`FileTicketStore`,
  :class:`RedisTicketStore`, a callable; fed by :func:`handle_app_ticket_event`);
* :class:`SharedTokens`: tenant (and store app) tokens shared through Redis by every
  process of an app, one fetch per expiry among them (``shared=`` of the providers
  above and of :class:`AppCredentials`);
* :class:`TokenProvider`: the protocol any of them (or yours) implements; a provider
  sends its own requests through a :class:`Sender` (the client's request loop);
* :class:`AppCredentials` and :data:`Auth`: what ``VCClient(auth)`` takes (credentials,
  a provider, or a held token), made a provider by :func:`token_provider_for`.
"""

from __future__ import annotations

from ._app import AppCredentials, Auth, token_provider_for
from ._protocol import (
    Sender,
    TokenProvider,
    check_token,
)
from ._redis import RedisLock, RedisTicketStore
from ._session import UserSessionProvider
from ._session_store import (
    FileLock,
    FileSessionStore,
    MemorySessionStore,
    SessionEnded,
    SessionEndRecorder,
    SessionLock,
    SessionStore,
    StoredSession,
    default_token_file,
)
from ._shared_tokens import SharedTokens
from ._static import StaticTokenProvider, UserTokenProvider
from ._store_app import StoreAppTokenProvider
from ._tenant import TenantTokenProvider
from ._tickets import (
    AppTicketSink,
    AppTicketSource,
    CallableTicketSource,
    FileTicketStore,
    MemoryTicketStore,
    StaticTicket,
    handle_app_ticket_event,
    ticket_source,
)
from ._user_session import UserSession

__all__ = [
    "AppCredentials",
    "AppTicketSink",
    "AppTicketSource",
    "Auth",
    "CallableTicketSource",
    "FileLock",
    "FileSessionStore",
    "FileTicketStore",
    "MemorySessionStore",
    "MemoryTicketStore",
    "RedisLock",
    "RedisTicketStore",
    "Sender",
    "SessionEndRecorder",
    "SessionEnded",
    "SessionLock",
    "SessionStore",
    "SharedTokens",
    "StaticTicket",
    "StaticTokenProvider",
    "StoreAppTokenProvider",
    "StoredSession",
    "TenantTokenProvider",
    "TokenProvider",
    "UserSession",
    "UserSessionProvider",
    "UserTokenProvider",
    "check_token",
    "default_token_file",
    "handle_app_ticket_event",
    "ticket_source",
    "token_provider_for",
]
