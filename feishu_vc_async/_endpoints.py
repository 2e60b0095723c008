"""Every endpoint the library calls, described once as data.

An :class:`Endpoint` says how to call it (method, path), what it costs (the limiter
bucket it counts against, if any), what it needs (a bearer token or not) and what it
answers (a decoder into an :class:`Answer`). The one request loop in ``_transport``
serves them all; nothing there knows a particular endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from ._constants import (
    API_MEETING_LIST,
    API_PARTICIPANT_LIST,
    API_PREFIX,
    APP_ACCESS_TOKEN_PATH,
    APP_TICKET_RESEND_PATH,
    MEETING_LIST_PATH,
    PARTICIPANT_LIST_PATH,
    STORE_TENANT_TOKEN_PATH,
    TENANT_TOKEN_PATH,
    USER_INFO_PATH,
    USER_TOKEN_PATH,
)
from ._token_answers import (
    ACKNOWLEDGEMENT_DECODER,
    APP_ACCESS_TOKEN_DECODER,
    TENANT_TOKEN_DECODER,
    USER_INFO_DECODER,
    USER_TOKEN_DECODER,
    Acknowledgement,
    AppAccessTokenResponse,
    TenantTokenResponse,
    UserInfo,
    UserTokenResponse,
)
from .errors import APIError, AuthError
from .meetings import MEETING_LIST_DECODER, MeetingListPage
from .models import PARTICIPANT_LIST_DECODER, ParticipantPage

__all__ = [
    "APP_ACCESS_TOKEN",
    "APP_TICKET_RESEND",
    "MEETING_LIST",
    "PARTICIPANT_LIST",
    "STORE_TENANT_TOKEN",
    "TENANT_TOKEN",
    "USER_INFO",
    "USER_TOKEN",
    "Answer",
    "Endpoint",
]

T_co = TypeVar("T_co", covariant=True)


class Answer(Protocol[T_co]):
    """A decoded body: the platform's ``code`` and ``msg``, the body's log id, and the
    value a successful answer carries (``None``: code 0 but the value is missing)."""

    @property
    def code(self) -> int: ...
    @property
    def msg(self) -> str: ...
    @property
    def body_log_id(self) -> str | None: ...
    def value(self) -> T_co | None: ...


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint(Generic[T_co]):
    """One endpoint of the platform.

    ``bucket`` names the gateway budget the endpoint counts against (``None``: the client
    does not pace it). ``token``: the request carries ``Authorization: Bearer``.
    ``refusal`` is the error class of a non-zero code the error table does not know (a
    token endpoint's refusals are credential problems). ``idempotent``: sending the
    request twice does no harm (default: a GET), so it is sent again after an answer
    that was cut short; a single-use refresh token must never be.
    """

    method: str
    path: str
    decode: Callable[[bytes], Answer[T_co]]
    bucket: str | None = None
    token: bool = True
    refusal: type[APIError] = APIError
    idempotent: bool | None = None

    def __post_init__(self) -> None:
        if self.idempotent is None:
            object.__setattr__(self, "idempotent", self.method == "GET")

    @property
    def name(self) -> str:
        """The path without its ``/open-apis/`` prefix: ``vc/v1/participant_list``."""
        return self.path.removeprefix(API_PREFIX)

    def __repr__(self) -> str:
        return f"<Endpoint {self.method} {self.path}>"


PARTICIPANT_LIST: Final[Endpoint[ParticipantPage]] = Endpoint(
    method="GET",
    path=PARTICIPANT_LIST_PATH,
    decode=PARTICIPANT_LIST_DECODER.decode,
    bucket=API_PARTICIPANT_LIST,
)

MEETING_LIST: Final[Endpoint[MeetingListPage]] = Endpoint(
    method="GET",
    path=MEETING_LIST_PATH,
    decode=MEETING_LIST_DECODER.decode,
    bucket=API_MEETING_LIST,
)

TENANT_TOKEN: Final[Endpoint[TenantTokenResponse]] = Endpoint(
    method="POST",
    path=TENANT_TOKEN_PATH,
    decode=TENANT_TOKEN_DECODER.decode,
    token=False,
    refusal=AuthError,
    idempotent=True,  # asking again returns the same token
)

USER_TOKEN: Final[Endpoint[UserTokenResponse]] = Endpoint(
    method="POST",
    path=USER_TOKEN_PATH,
    decode=USER_TOKEN_DECODER.decode,
    token=False,
    refusal=AuthError,
    # A code and a refresh token are single-use: an answer cut short leaves the outcome
    # unknown, and sending them again could only end the session.
    idempotent=False,
)

USER_INFO: Final[Endpoint[UserInfo]] = Endpoint(
    method="GET",
    path=USER_INFO_PATH,
    decode=USER_INFO_DECODER.decode,
)

APP_ACCESS_TOKEN: Final[Endpoint[AppAccessTokenResponse]] = Endpoint(
    method="POST",
    path=APP_ACCESS_TOKEN_PATH,
    decode=APP_ACCESS_TOKEN_DECODER.decode,
    token=False,
    refusal=AuthError,
    idempotent=True,  # asking again returns the same token
)

STORE_TENANT_TOKEN: Final[Endpoint[TenantTokenResponse]] = Endpoint(
    method="POST",
    path=STORE_TENANT_TOKEN_PATH,
    decode=TENANT_TOKEN_DECODER.decode,
    token=False,
    refusal=AuthError,
    idempotent=True,
)

APP_TICKET_RESEND: Final[Endpoint[Acknowledgement]] = Endpoint(
    method="POST",
    path=APP_TICKET_RESEND_PATH,
    decode=ACKNOWLEDGEMENT_DECODER.decode,
    token=False,
    refusal=AuthError,
    idempotent=True,  # a second push does no harm
)
