"""The meetings an export did not get, as it reports and keeps them."""

from __future__ import annotations

import msgspec

from ..errors import APIError, DecodeError
from ..fanout import MeetingFailure

__all__ = ["FailureRecord", "error_text", "failure_record"]


class FailureRecord(msgspec.Struct, kw_only=True):
    meeting_no: str
    key: str
    error: str
    code: int | None
    message: str
    log_id: str | None
    http_status: int | None
    pages_fetched: int
    # The platform's answer will not change (no such meeting, no permission, data gone,
    # a refused parameter): a resume does not ask again unless told to.
    permanent: bool = False


def error_text(error: BaseException, *, redact_pii: bool) -> str:
    """What an export shows and stores of an error. Under ``redact_pii`` the start of
    an undecodable body is left out: a cut-short page holds phones, emails and IP
    addresses that no pattern can reliably pick out (an employee id looks like anything),
    and the log id still identifies the answer for the platform's support. Secrets and
    tokens are already scrubbed from every error (``_scrub``)."""
    if isinstance(error, DecodeError):
        return error.describe(snippet=not redact_pii)
    return str(error)


def failure_record(item: MeetingFailure, *, redact_pii: bool = False) -> FailureRecord:
    """What a failed meeting's record says."""
    error = item.error
    # An API error's own words; its code and log id have fields of their own.
    message = error.msg if isinstance(error, APIError) and error.msg else None
    return FailureRecord(
        meeting_no=item.query.meeting_no,
        key=item.query.key,
        error=type(error).__name__,
        code=error.code,
        message=message or error_text(error, redact_pii=redact_pii),
        log_id=error.log_id,
        http_status=error.http_status,
        pages_fetched=item.pages_fetched,
        permanent=error.permanent,
    )
