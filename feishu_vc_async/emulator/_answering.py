"""What every endpoint of the emulator answers with: the record of each request, its log
id, the platform's JSON bodies and the refusal of a token.

One :class:`Answering` serves every part of the emulator that answers HTTP (the VC data
APIs in ``_vc_apis``, the identity endpoints in ``_identity_endpoints``): each part holds
the same one, so the request log is a single list in answer order and log ids one
sequence, whichever part answered.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from aiohttp import web

from .._constants import LOGID_HEADER
from ..models import JSON_ENCODER
from ._options import Clocks

__all__ = [
    "AUTH_STATUS",
    "JSON_TYPE",
    "Answering",
    "Arrival",
    "RequestRecord",
    "error_response",
    "json_response",
    "most_in_window",
]

JSON_TYPE = "application/json; charset=utf-8"
AUTH_STATUS = 400
_AUTH_MSGS = {
    99991661: "Missing access token for authorization. Please make a request with token attached.",
    99991663: "Invalid access token for authorization. Please make a request with token attached.",
    99991668: "Invalid user access token. Please make a request with a valid token.",
    99991671: "Invalid access token format, must start with 't-' or 'u-'.",
    99991677: "user access token expired",
    99991679: "The user has not granted the app the scope this API needs.",
}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulator answered (or dropped: ``status`` 0 for a reset)."""

    time: float  # monotonic seconds at arrival (the emulator's ``monotonic`` clock)
    wall: float  # wall-clock seconds at arrival (the emulator's ``clock``)
    method: str
    path: str
    params: dict[str, str]
    token: str | None = field(repr=False)  # the bearer token sent, if any
    status: int
    code: int | None  # body code; None for a non-JSON body or a reset
    log_id: str
    token_request: bool = False  # any token endpoint
    app_id: str | None = None
    fault: str | None = None  # the injected fault, if any
    # The tenant it was for: a VC API call's (the home tenant for a custom app), or the
    # tenant_key of a store app's tenant-token request.
    tenant_key: str | None = None


class Arrival(NamedTuple):
    """When a request arrived (both clocks), and the log id its answer carries."""

    mono: float
    wall: float
    log_id: str


def json_response(
    body: bytes, log_id: str, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer carrying ``log_id`` in ``X-Tt-Logid``, with any further ``headers``."""
    all_headers = {"Content-Type": JSON_TYPE, LOGID_HEADER: log_id}
    if headers:
        all_headers.update(headers)
    return web.Response(body=body, status=status, headers=all_headers)


def error_response(
    status: int, code: int, msg: str, log_id: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The platform's error envelope ``{"code", "msg", "error": {"log_id"}}``."""
    body = JSON_ENCODER.encode({"code": code, "msg": msg, "error": {"log_id": log_id}})
    return json_response(body, log_id, status=status, headers=headers)


class Answering:
    """The request log, the log ids, and the refusal every token check shares."""

    def __init__(self, clocks: Clocks) -> None:
        self.requests: list[RequestRecord] = []
        # Called with each record as it is logged, before its answer is sent.
        self.on_record: Callable[[RequestRecord], None] | None = None
        self._wall, self._monotonic = clocks.wall, clocks.monotonic
        self._logid_prefix = ""
        self._logid_n = 0

    def start(self) -> None:
        """Log ids from now on start as the platform's do: a time and a random part."""
        self._logid_prefix = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)

    def arrive(self) -> Arrival:
        """A request has arrived: the time on both clocks and its answer's log id."""
        mono, wall = self._monotonic(), self._wall()
        self._logid_n += 1
        return Arrival(mono, wall, f"{self._logid_prefix}{self._logid_n:08X}")

    def record(
        self,
        request: web.Request,
        at: Arrival,
        status: int,
        code: int | None,
        *,
        token: str | None = None,
        app_id: str | None = None,
        fault: str | None = None,
        token_request: bool = False,
        tenant_key: str | None = None,
    ) -> None:
        """Log the answer to ``request``. A token endpoint's body (secrets, codes) is never
        recorded: ``token_request`` marks it instead."""
        record = RequestRecord(
            at.mono,
            at.wall,
            request.method,
            request.path,
            dict(request.query),
            token,
            status,
            code,
            at.log_id,
            token_request,
            app_id,
            fault,
            tenant_key,
        )
        self.requests.append(record)
        if self.on_record is not None:
            self.on_record(record)

    def refuse_token(
        self, request: web.Request, at: Arrival, token: str, code: int
    ) -> web.Response:
        """The answer (and record) of a request whose token the auth check refused."""
        self.record(request, at, AUTH_STATUS, code, token=token or None)
        return error_response(AUTH_STATUS, code, _AUTH_MSGS[code], at.log_id)


def most_in_window(
    records: Sequence[RequestRecord], period: float, path: str, *, admitted_only: bool
) -> int:
    """The most of ``records`` to ``path`` that arrived within any ``period`` seconds (a
    half-open span); ``admitted_only``: those the gateway let through."""
    times = sorted(
        r.time
        for r in records
        if r.path == path and not (admitted_only and (r.status == 429 or r.app_id is None))
    )
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= period:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
