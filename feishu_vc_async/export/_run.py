"""The export job: meetings → fan-out → rows on disk, with checkpoint and summary.

The meetings come from a file, or are found by date range while the export runs::

    meeting_list (its own budget) ──▶ LargestFirst ──▶ fan-out (participant_list) ──▶ sink
        discovery task: each meeting found is recorded in the checkpoint, then queued;
        the fan-out takes the largest found so far; both run at once, each at its limit.

``export_command`` is what ``feishu-vc export`` runs; ``run_export`` is the async core,
also used by ``feishu-vc demo`` against its in-process emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TextIO
from urllib.parse import urlsplit

import anyio

from .._constants import API_MEETING_LIST, LOGGER_NAME, PARTICIPANT_LIST_PATH
from .._stats import EndpointStats
from ..client import VCClient
from ..discovery import LargestFirst, MeetingIterator, largest_first
from ..errors import AuthError, FeishuError, LoginRequiredError, RateLimiterError, TokenStoreError
from ..fanout import FanOutProgress, MeetingFailure, PageItem, Queries
from ..models import MeetingQuery
from ..ratelimit import RateLimit, RateLimiter
from ._config import ConfigError, ExportConfig, redact_url
from ._input import MeetingList
from ._lock import output_lock
from ._progress import make_display
from ._range import MeetingRange
from ._sink import ExportSink, FailureRecord, SinkPaths, error_text, failure_record

__all__ = ["ExportRun", "run_export"]

logger = logging.getLogger(LOGGER_NAME + ".export")

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
_MAX_LISTED_FAILURES = 20


class ExportRun:
    """One run of an export, as the bar, the log lines and the summary all read it.

    Meetings, pages, participants, requests, rates and times are the fan-out's own
    counters (:attr:`progress`, from the moment the fan-out starts); rows are the
    sink's (what is in the output). Nothing here is a copy: a display reads this object
    while the run goes on, and the summary reads it when it is over.
    """

    def __init__(
        self,
        sink: ExportSink,
        *,
        rate_limit: RateLimit | None,
        meeting_range: MeetingRange | None = None,
    ):
        self.sink = sink
        self.rate_limit = rate_limit
        self.meeting_range = meeting_range
        self.progress: FanOutProgress | None = None
        # A range export's listing while it runs, and what stopped it early, if anything.
        self.listing: MeetingIterator | None = None
        self.listing_stats: EndpointStats | None = None
        self.discovery_error: FeishuError | None = None
        self.meetings_done_before = 0  # finished by earlier runs (resume)
        self.failures: list[FailureRecord] = []  # this run's
        # Every meeting not exported, with its reason: this run's failures and those that
        # earlier runs gave up for good (what FILE.failures.jsonl holds).
        self.unexported: list[FailureRecord] = []
        self.already_complete = False
        self.fatal: str | None = None  # why the whole run stopped (credentials refused, ...)

    @property
    def paths(self) -> SinkPaths:
        return self.sink.paths

    # --- meetings --------------------------------------------------------------------

    @property
    def meetings_total(self) -> int:
        """The meetings of this export: a file's, or a range export's found so far."""
        return self.sink.known

    @property
    def discovering(self) -> bool:
        """A range export whose discovery has not reached the end of the range."""
        found = self.sink.discovery
        return found is not None and not found.position.done

    @property
    def discovery_requests(self) -> int:
        return 0 if self.listing_stats is None else self.listing_stats.requests

    @property
    def discovery(self) -> str | None:
        if self.meeting_range is None:
            return None
        state = "listing" if self.discovering else "done"
        if self.discovery_error is not None:
            state = "stopped"
        return (
            f"{self.meetings_total} meetings found with {self.discovery_requests} "
            f"meeting_list requests ({state})"
        )

    @property
    def meetings_done(self) -> int:
        """Meetings finished, earlier runs included."""
        if self.progress is None:
            return self.sink.completed
        return self.progress.done + self.progress.skipped

    @property
    def meetings_failed(self) -> int:
        """Meetings that failed in this run, and those earlier runs gave up for good."""
        if self.progress is None:
            return self.sink.given_up
        return self.progress.failed + self.progress.skipped_failed

    @property
    def finished(self) -> bool:
        """Every meeting done or given up for good: the output is final."""
        return self.sink.finalized

    # --- the fan-out's counters (zero before it starts) ------------------------------

    @property
    def pages(self) -> int:
        return 0 if self.progress is None else self.progress.pages

    @property
    def participants(self) -> int:
        return 0 if self.progress is None else self.progress.participants

    @property
    def requests(self) -> int:
        return 0 if self.progress is None else self.progress.requests

    @property
    def retries(self) -> int:
        return 0 if self.progress is None else self.progress.retries

    @property
    def rate_limited(self) -> int:
        return 0 if self.progress is None else self.progress.rate_limited

    @property
    def rate(self) -> float:
        return 0.0 if self.progress is None else self.progress.rate

    @property
    def elapsed(self) -> float:
        return 0.0 if self.progress is None else self.progress.elapsed

    @property
    def eta(self) -> float | None:
        if self.progress is None or self.discovering:
            return None  # how much is left is not known yet
        return self.progress.eta

    # --- the output ------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows written by this run."""
        return self.sink.rows_this_run

    @property
    def rows_total(self) -> int:
        """Rows in the output, earlier runs included."""
        return self.sink.total_rows

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return EXIT_USAGE
        if self.failures or self.discovering or self.meetings_done < self.meetings_total:
            return EXIT_FAILURES
        return EXIT_OK


def _fatal_reason(error: FeishuError, cfg: ExportConfig) -> str | None:
    """Errors that every other meeting would hit too: stop once instead of failing (and
    retrying) them all one by one."""
    if isinstance(error, LoginRequiredError):
        return f"the user session ended: {error}"
    if isinstance(error, TokenStoreError):
        return f"the token store cannot be used: {error}"
    if isinstance(error, AuthError):
        return f"the platform refused the credentials: {error}"
    if isinstance(error, RateLimiterError):
        if cfg.redis_url is None:
            return f"the rate limiter cannot be used: {error}"
        # The library's hint names its own argument; a CLI user has a flag for it.
        return (
            f"the shared rate limiter cannot be used: {error.problem}; pass --redis-fallback "
            "to pace this process alone while Redis is unreachable"
        )
    path = getattr(error, "path", "")
    if path and path != PARTICIPANT_LIST_PATH:
        # Not the meeting's own request but one every meeting needs: the access token,
        # already retried within its bounds by the client.
        host = urlsplit(cfg.base_url).netloc or cfg.base_url
        return (
            f"cannot get an access token from {host}: "
            f"{error_text(error, redact_pii=cfg.redact_pii)}"
        )
    return None


def _make_client(cfg: ExportConfig) -> tuple[VCClient, list[RateLimiter]]:
    """The run's client and its Redis limiters, if any (the run closes them; one per
    API's budget); no I/O until the client is entered. Settings the client refuses raise
    ``ConfigError``."""
    limiters: list[RateLimiter] = []
    if cfg.redis_url is not None:
        from ..ratelimit import RedisRateLimiter

        try:
            limiters = [
                RedisRateLimiter(
                    cfg.redis_url,
                    rate,
                    prefix=cfg.redis_prefix,
                    fallback_local=cfg.redis_fallback,
                )
                for rate in (cfg.rate_limit, cfg.meeting_list_rate_limit)
            ]
        except (TypeError, ValueError):
            # redis-py's message may quote the URL, password included: not repeated here.
            raise ConfigError(
                f"--redis-url {redact_url(cfg.redis_url)!r}: not a usable Redis URL"
            ) from None
    try:
        client = VCClient(
            app_id=cfg.app_id,
            app_secret=cfg.app_secret,
            access_token=cfg.access_token,
            token_provider=cfg.token_provider,
            base_url=cfg.base_url,
            rate_limit=cfg.rate_limit,
            limiter=limiters[0] if limiters else None,
            meeting_list_rate_limit=cfg.meeting_list_rate_limit,
            meeting_list_limiter=limiters[1] if limiters else None,
            max_retries=cfg.max_retries,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return client, limiters


async def run_export(
    cfg: ExportConfig,
    queries: Sequence[MeetingQuery] = (),
    *,
    progress_stream: TextIO | None = None,
) -> ExportRun:
    """Export ``queries`` (a meetings file's), or the meetings of ``cfg.meeting_range``
    found as the export runs, as ``cfg`` says. Raises ``ConfigError`` or
    ``CheckpointError`` (before any request) when the settings, the output or the
    checkpoint do not fit, and ``OutputInUseError`` when another run holds the output;
    cancellation leaves the checkpoint consistent."""
    found = cfg.meeting_range
    sink = ExportSink(
        cfg.out,
        fmt=cfg.fmt,
        queries=queries,
        discovery=None if found is None else found.query,
        identity=cfg.identity,
        columns=cfg.columns,
        redact_pii=cfg.redact_pii,
        page_size=cfg.page_size,
        csv_raw=cfg.csv_raw,
    )
    run = ExportRun(sink, rate_limit=cfg.rate_limit, meeting_range=found)
    client, limiters = _make_client(cfg)  # before any file is touched
    try:
        with output_lock(sink.paths.lock, out=cfg.out):
            await _run_locked(cfg, queries, run, client, progress_stream)
    finally:
        for limiter in limiters:
            await limiter.aclose()
    return run


async def _run_locked(
    cfg: ExportConfig,
    queries: Sequence[MeetingQuery],
    run: ExportRun,
    client: VCClient,
    progress_stream: TextIO | None,
) -> None:
    """The run, once it holds the output's lock."""
    sink = run.sink
    resume = sink.open(resume=cfg.resume, overwrite=cfg.overwrite, retry_failed=cfg.retry_failed)
    run.meetings_done_before = sink.completed
    if sink.finalized:
        run.already_complete = True
        run.unexported = sink.unexported([])
        return
    state = sink.discovery
    source: Queries = queries
    sizes = queries.sizes if isinstance(queries, MeetingList) else None
    if sizes:  # a file without sizes needs no pass over its keys
        source = largest_first(queries, lambda query: sizes.get(query.key))
    queue: LargestFirst | None = None
    if state is not None:
        # What earlier runs found goes first (the fan-out skips what is done); discovery
        # then goes on from where it stood.
        source = queue = LargestFirst()
        for found in state.found:
            queue.put(found.query, found.meeting.participant_count)
        if state.position.done:
            queue.close()
    fan_out = client.fan_out(
        source,
        concurrency=cfg.concurrency,
        page_size=cfg.page_size,
        resume=resume,
        retry_failed=cfg.retry_failed,
    )
    run.progress = fan_out.progress
    if state is not None and state.position.done:
        run.progress.total = sink.known  # a resumed range export found everything before
    display = make_display(cfg.progress, run, log_interval=cfg.log_interval, stream=progress_stream)
    finished = False
    try:
        async with client, display, anyio.create_task_group() as discovery:
            if state is not None and queue is not None and not state.position.done:
                discovery.start_soon(_discover, client, cfg, run, queue)
            try:
                # The fan-out innermost: leaving the loop cancels its requests before
                # anything else awaits, so a fatal failure (an unusable token, shared by
                # every meeting waiting on the same fetch) stops the workers before they
                # ask again.
                async with fan_out as results:
                    async for item in results:
                        if isinstance(item, PageItem):
                            sink.write(item)
                            continue
                        assert isinstance(item, MeetingFailure)
                        run.fatal = _fatal_reason(item.error, cfg)
                        if run.fatal is not None:
                            break
                        sink.record_failure(item)
                        run.failures.append(failure_record(item, redact_pii=cfg.redact_pii))
            finally:
                # Discovery ends with the fan-out: done already, or stopped with it.
                discovery.cancel_scope.cancel()
        if run.fatal is None and run.discovery_error is not None:
            run.fatal = _fatal_reason(run.discovery_error, cfg)
        finished = run.fatal is None
    finally:
        if finished:
            sink.finish()
        else:
            sink.abort()
        run.unexported = sink.write_failures(run.failures)


async def _discover(
    client: VCClient, cfg: ExportConfig, run: ExportRun, queue: LargestFirst
) -> None:
    """A range export's discovery: each meeting found is recorded in the checkpoint's
    state (with where the listing stands), then queued for the fan-out. A failure of the
    listing (after the client's own retries) stops discovery, not the export: the
    meetings found are still exported, and ``--resume`` continues the listing."""
    sink = run.sink
    state = sink.discovery
    assert state is not None
    listing = client.meetings(
        state.range,
        position=state.position,
        seen=[found.meeting.key for found in state.found],
    )
    run.listing = listing
    run.listing_stats = client.stats.endpoint(API_MEETING_LIST)
    try:
        async for meeting in listing:
            try:
                query = meeting.query(user_id_type=cfg.user_id_type)
            except ValueError as exc:  # listed without a readable end: cannot be read
                logger.warning("meeting_list: %s; skipped", exc)
                continue
            sink.add_found(query, meeting, listing.position)
            queue.put(query, meeting.participant_count)
        sink.discovery_at(listing.position)
        if run.progress is not None:  # every meeting is known now: an ETA can be had
            run.progress.total = sink.known
    except FeishuError as exc:
        run.discovery_error = exc
        logger.warning("discovery stopped: %s", error_text(exc, redact_pii=cfg.redact_pii))
    finally:
        queue.close()














