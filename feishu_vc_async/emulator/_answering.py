"""What every endpoint of the emulator answers with: a log id, the platform's JSON error
body, the refusal of a token, and the record of each request.

The identity endpoints (``_identity``) and the VC data endpoints (``_server``) both
answer this way, so it is one base class of the emulator rather than a part of either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .._constants import LOGID_HEADER
from ..models import JSON_ENCODER

__all__ = ["AUTH_STATUS", "Answering", "RequestRecord"]

_JSON = "application/json; charset=utf-8"
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
    token_request: bool = False  # the tenant token endpoint
    app_id: str | None = None
    fault: str | None = None  # the injected fault, if any


class Answering:
    """The answering and request-log side of the emulator; ``Emulator`` sets the state."""

    requests: list[RequestRecord]
    _logid_prefix: str
    _logid_n: int

    def _log_id(self) -> str:
        self._logid_n += 1
        return f"{self._logid_prefix}{self._logid_n:08X}"

    def _json(
        self, status: int, code: int, msg: str, log_id: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = JSON_ENCODER.encode({"code": code, "msg": msg, "error": {"log_id": log_id}})
        all_headers = {"Content-Type": _JSON, LOGID_HEADER: log_id}
        if headers:
            all_headers.update(headers)
        return web.Response(body=body, status=status, headers=all_headers)

    def _auth_refusal(
        self, request: web.Request, mono: float, wall: float, token: str, code: int, log_id: str
    ) -> web.Response:
        """The answer (and record) of a request whose token the auth check refused."""
        self._record(request, mono, wall, token or None, AUTH_STATUS, code, log_id)
        return self._json(AUTH_STATUS, code, _AUTH_MSGS[code], log_id)

    def _record(
        self,
        request: web.Request,
        mono: float,
        wall: float,
        token: str | None,
        status: int,
        code: int | None,
        log_id: str,
        *,
        token_request: bool = False,
        app_id: str | None = None,
        fault: str | None = None,
    ) -> None:
        self.requests.append(
            RequestRecord(
                mono,
                wall,
                request.method,
                request.path,
                dict(request.query),
                token,
                status,
                code,
                log_id,
                token_request,
                app_id,
                fault,
            )
        )
