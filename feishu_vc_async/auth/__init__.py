"""Where access tokens come from: a caller's token, app credentials, or a user-token refresh.

* :class:`StaticTokenProvider`: a token the caller holds (``t-`` or ``u-``);
* :class:`UserTokenProvider`: a user token plus the caller's refresh callback;
* :class:`TenantTokenProvider`: tenant tokens of a custom app, from its credentials;
* :class:`TokenProvider`: the protocol any of them (or yours) implements; a provider
  sends its own requests through a :class:`Sender` (the client's request loop).
"""

from __future__ import annotations

from .._deprecated import module_getattr
from ._protocol import Sender, TokenProvider, check_token
from ._static import StaticTokenProvider, UserTokenProvider
from ._tenant import TenantTokenProvider

__all__ = [
    "Sender",
    "StaticTokenProvider",
    "TenantTokenProvider",
    "TokenProvider",
    "UserTokenProvider",
    "check_token",
]


# Old names that keep working, with a DeprecationWarning, for one release.
__getattr__ = module_getattr(
    __name__, {"SessionContext": ("Sender (providers call sender.call(endpoint, ...))", Sender)}
)
