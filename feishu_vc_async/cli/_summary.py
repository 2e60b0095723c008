"""The end of an export, in words: what was exported, at what rate, what was not, and
why a run stopped.

Everything here reads the run (``ExportRun``) and the client's counters; advice about
flags is given only where running again with them can help.
"""

from __future__ import annotations

from typing import TextIO
from urllib.parse import urlsplit

from .._constants import API_MEETING_LIST, API_PARTICIPANT_LIST
from ..errors import (
    AuthError,
    DecodeError,
    FeishuError,
    LoginRequiredError,
    RateLimiterError,
    TokenStoreError,
)
from ..export import ExportRun, FailureRecord, FileOutput
from ..export._failures import error_text
from ..export._run import not_the_platform
from ._progress import RunView, in_first_period, view_of

__all__ = ["achieved_text", "fatal_text", "print_summary"]

_MAX_LISTED_FAILURES = 20
# The APIs a summary counts, by bucket, in the words it uses.
_APIS = ((API_PARTICIPANT_LIST, "participant_list"), (API_MEETING_LIST, "meeting_list"))


def fatal_text(error: FeishuError, *, base_url: str, redis: bool, redact_pii: bool) -> str:
    """Why a run stopped, for an error every meeting would have hit."""
    if isinstance(error, LoginRequiredError):
        return f"the user session ended: {error}"
    if isinstance(error, TokenStoreError):
        return f"the token store cannot be used: {error}"
    if isinstance(error, AuthError):
        if not error.http_status:  # decided here (a ticket that never came), not refused
            return str(error)
        return f"the platform refused the credentials: {error}"
    if isinstance(error, RateLimiterError):
        if not redis:
            return f"the rate limiter cannot be used: {error}"
        return (
            f"the shared rate limiter cannot be used: {error.problem}; pass --redis-fallback "
            "to pace this process at its share while Redis is unreachable"
        )
    host = urlsplit(base_url).netloc or base_url
    said = error_text(error, redact_pii=redact_pii)
    if isinstance(error, DecodeError) and not_the_platform(error):
        return (
            f"{base_url} does not answer as the platform does ({said}): is --base-url "
            "right? It is the API host alone, such as https://open.feishu.cn, without a path"
        )
    return f"cannot get an access token from {host}: {said}"


def print_summary(run: ExportRun, *, out: TextIO, err: TextIO, quiet: bool) -> None:
    """What was exported, at what rate, and what was not (with log ids)."""
    where = run.job.output.where
    if not quiet:
        if run.already_complete:
            given_up = f", {len(run.unexported)} failed for good" if run.unexported else ""
            print(
                f"Nothing to do: the export to {where} is finished "
                f"({run.meetings_done}/{run.ledger.known} meetings{given_up}, "
                f"{run.ledger.rows_total} rows); nothing was requested.",
                file=out,
            )
        else:
            _print_done(run, out)
    if run.unexported:
        _print_unexported(run, err if quiet else out)


def _print_done(run: ExportRun, out: TextIO) -> None:
    failed = run.meetings_failed
    print(
        f"Exported {run.meetings_done} of {run.ledger.known} meetings"
        + (f" ({failed} failed)" if failed else "")
        + f", {run.ledger.rows_total} participants → {run.job.output.where}",
        file=out,
    )
    _print_discovery(run, out)
    if run.done_before:
        print(
            f"  resumed: {run.done_before} meetings were done by an earlier run; this run "
            f"wrote {run.ledger.rows_this_run} rows in {run.ledger.pages_this_run} pages",
            file=out,
        )
    for bucket, name in _APIS:
        stats = run.client.stats.endpoints.get(bucket)
        if stats is None or not stats.requests:
            continue
        line = (
            f"  {name}: {stats.requests} requests ({stats.retries} retries, "
            f"{stats.rate_limited} rate-limited)"
        )
        if bucket == API_PARTICIPANT_LIST:
            view = view_of(run)
            line += f" in {view.elapsed:.1f} s: {achieved_text(view)}"
        print(line, file=out)


def _print_discovery(run: ExportRun, out: TextIO) -> None:
    """A range export: the instants the range was read as, and what discovery found."""
    state = run.ledger.discovery
    asked = run.job.range
    if state is None or asked is None:
        return
    line = f"  range: {asked.instants(state.range)}"
    if asked.since_text is not None and asked.until_text is not None:
        line += (
            f", --since {asked.since_text!r} and --until {asked.until_text!r} read in {asked.zone}"
        )
    print(line, file=out)
    print(f"  discovery: {view_of(run).discovery}", file=out)
    error = run.discovery_error
    if error is not None:
        resume = ": run the same command with --resume to continue the listing"
        advice = "" if error.permanent else resume
        print(
            f"  discovery stopped early: {error_text(error, redact_pii=True)}; the meetings "
            f"found were exported{advice}",
            file=out,
        )


def achieved_text(view: RunView) -> str:
    """The request rate a run achieved, against its limit."""
    limit = view.rate_limit
    achieved = view.requests / view.elapsed if view.elapsed > 0 else 0.0
    if limit is None:
        return f"{achieved:.3g} req/s, no limit"
    if in_first_period(view):
        # Too short to be a rate: the pacing's first request goes at once, and a few
        # requests over a fraction of a second read as a multiple of the limit.
        return (
            f"all within the limit's first period ({limit}: at most {limit.requests} "
            "requests in any period); too short a run to measure a rate"
        )
    return (
        f"{achieved:.3g} req/s achieved, limit {limit} = {limit.requests / limit.period:.3g} req/s"
    )


def _print_unexported(run: ExportRun, stream: TextIO) -> None:
    records: list[FailureRecord] = run.unexported
    output = run.job.output
    kept = f" (also in {output.paths.failures})" if isinstance(output, FileOutput) else ""
    print(f"Meetings not exported{kept}:", file=stream)
    for record in records[:_MAX_LISTED_FAILURES]:
        code = record.code if record.code is not None else "-"
        kind = "for good" if record.permanent else "transient"
        print(
            f"  {record.meeting_no}  code={code}  {record.message}  "
            f"log_id={record.log_id or '-'}  ({kind})",
            file=stream,
        )
    more = len(records) - _MAX_LISTED_FAILURES
    if more > 0:
        print(f"  ... and {more} more", file=stream)
    permanent = sum(1 for r in records if r.permanent)
    transient = len(records) - permanent
    if transient:
        print(
            f"  {transient} failed on a transient error: run the same command with --resume "
            "to retry them",
            file=stream,
        )
    if permanent:
        print(
            f"  {permanent} failed for good (no such meeting, data gone, no permission, a "
            "refused parameter): --resume does not ask again, --retry-failed does",
            file=stream,
        )
    if run.finished and not run.already_complete:
        print("  The export is finished: every other meeting is in the output.", file=stream)
