"""The export: meetings → fan-out → output, with its progress kept by the ledger.

The meetings are given, or found by date range while the export runs::

    meeting_list (its own budget) ──▶ LargestFirst ──▶ fan-out (participant_list) ──▶ output
        discovery task: each meeting found is recorded in the ledger, then queued;
        the fan-out takes the largest found so far; both run at once, each at its limit.

::

    async with VCClient(AppCredentials(app_id, secret)) as client:
        run = await export(client, ExportJob(MeetingRange(query), file_output("out.jsonl")))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import anyio

from .._constants import API_MEETING_LIST, LOGGER_NAME, MEETING_LIST_PATH, PARTICIPANT_LIST_PATH
from .._stats import EndpointStats
from ..client import VCClient
from ..discovery import LargestFirst, MeetingIterator, largest_first
from ..errors import AuthError, DecodeError, FeishuError, RateLimiterError, TokenStoreError
from ..fanout import FanOutProgress, MeetingFailure, PageItem, Queries
from ..models import MeetingQuery
from ._failures import FailureRecord, error_text, failure_record
from ._input import MeetingList
from ._job import ExportJob
from ._ledger import Ledger
from ._range import MeetingRange

__all__ = ["ExportRun", "export", "not_the_platform", "stops_the_run"]

logger = logging.getLogger(LOGGER_NAME + ".export")

Watch = Callable[["ExportRun"], AbstractAsyncContextManager[Any]]


def stops_the_run(error: FeishuError) -> bool:
    """Whether ``error`` is one every other meeting would hit too: refused credentials,
    an ended user session, an unusable token store or shared limiter, a token that
    cannot be had (its endpoint failing after its own retries), or a 4xx answer that is
    not the platform's (a wrong base path: no request of this host will be). Such an
    error stops the whole run once instead of failing (and retrying) every meeting one
    by one. Any other failure of participant_list is the meeting's own; one of
    meeting_list, the listing's."""
    if isinstance(error, AuthError | TokenStoreError | RateLimiterError):
        return True
    if isinstance(error, DecodeError) and not_the_platform(error):
        return True
    return error.path is not None and error.path not in (PARTICIPANT_LIST_PATH, MEETING_LIST_PATH)


def not_the_platform(error: DecodeError) -> bool:
    """A 4xx (other than the gateway's 429) whose body is not the platform's JSON."""
    status = error.http_status or 0
    return 400 <= status < 500 and status != 429


class ExportRun:
    """One run of an export, as a progress display and a summary read it, while it runs
    and after.

    Its parts are the sources themselves, nothing is copied: :attr:`progress` (the
    fan-out's meetings, pages, participants and requests, once it has started),
    :attr:`ledger` (the output's rows and the export's meetings, earlier runs included),
    :attr:`listing` (a range export's meeting_list counters), and what the run itself
    learns: its :attr:`failures`, a :attr:`discovery_error` (the listing stopped early:
    the meetings found are still exported), a :attr:`fatal` error (the run stopped, see
    :func:`stops_the_run`).
    """

    def __init__(self, job: ExportJob, ledger: Ledger, client: VCClient) -> None:
        self.job = job
        self.ledger = ledger
        self.client = client
        self.progress: FanOutProgress | None = None
        self.listing: EndpointStats = client.stats.endpoint(API_MEETING_LIST)
        self._listing_base = self.listing.requests
        self.discovery_error: FeishuError | None = None
        self.fatal: FeishuError | None = None
        self.failures: list[FailureRecord] = []  # this run's
        # Every meeting not exported, with its reason: this run's failures and those that
        # earlier runs gave up for good.
        self.unexported: list[FailureRecord] = []
        self.already_complete = False  # a resume of a final export: nothing requested
        self.done_before = 0  # meetings finished by earlier runs

    @property
    def listing_requests(self) -> int:
        """meeting_list requests of this run."""
        return self.listing.requests - self._listing_base

    @property
    def discovering(self) -> bool:
        """A range export whose discovery has not reached the end of the range."""
        found = self.ledger.discovery
        return found is not None and not found.position.done

    @property
    def meetings_done(self) -> int:
        """Meetings finished, earlier runs included."""
        progress = self.progress
        if progress is None:
            return self.ledger.completed
        return progress.done + progress.skipped

    @property
    def meetings_failed(self) -> int:
        """Meetings that failed in this run, and those earlier runs gave up for good."""
        progress = self.progress
        if progress is None:
            return self.ledger.given_up
        return progress.failed + progress.skipped_failed

    @property
    def finished(self) -> bool:
        """Every meeting done or given up for good: the output is final."""
        return self.ledger.finalized

    @property
    def complete(self) -> bool:
        """Stopped by nothing, and every meeting exported (none failed, none left)."""
        return (
            self.fatal is None
            and not self.failures
            and not self.discovering
            and self.meetings_done >= self.ledger.known
        )


async def export(client: VCClient, job: ExportJob, *, watch: Watch | None = None) -> ExportRun:
    """Run ``job`` with ``client`` (open, any ``VCClient`` including a tenant view of
    ``client.for_tenant(key)``) and return the run.

    Raises, before any request, the export's typed errors (``ExportError``: the output
    exists, is in use, the saved progress does not fit...). A failure every meeting
    would share stops the run (``run.fatal``) with the progress committed; each other
    failed meeting is in ``run.failures``. Cancellation leaves the progress committed.
    ``watch(run)``, an async context manager, is held while the meetings are fetched
    (a progress display)."""
    if not client.is_open:
        raise RuntimeError("export: the client is not open (`async with client:` first)")
    found = job.range
    ledger = Ledger(
        job.output,
        identity=job.identity,
        page_size=job.page_size,
        discovery=None if found is None else found.query,
        meetings=job.queries,
        commit_interval=job.commit_interval,
        held_rows=job.held_rows,
        spool_dir=job.spool_dir,
    )
    run = ExportRun(job, ledger, client)
    async with job.output.lock():
        await _run_locked(run, watch)
    return run


def _source(run: ExportRun) -> tuple[Queries, LargestFirst | None]:
    """What the fan-out reads: the given meetings (largest first where sizes are known),
    or a range export's queue, filled first with what earlier runs found."""
    queries: Sequence[MeetingQuery] = run.job.queries
    state = run.ledger.discovery
    if state is None:
        sizes = queries.sizes if isinstance(queries, MeetingList) else None
        if sizes:  # a list without sizes needs no pass over its keys
            return largest_first(queries, lambda query: sizes.get(query.key)), None
        return queries, None
    queue = LargestFirst()
    for found in state.found:
        queue.put(found.query, found.meeting.participant_count)
    if state.position.done:
        queue.close()
    return queue, queue


def _expected_rows(run: ExportRun) -> Callable[[MeetingQuery], int | None]:
    """How many rows each meeting should hold, as its listing said (which bounds its
    pages): a range export's meeting_list, or a meetings file's number_of_participants."""
    queries = run.job.queries
    sizes = queries.sizes if isinstance(queries, MeetingList) else {}
    ledger = run.ledger

    def expected(query: MeetingQuery) -> int | None:
        described = ledger.described(query.key)
        return described.participant_count if described is not None else sizes.get(query.key)

    return expected


async def _run_locked(run: ExportRun, watch: Watch | None) -> None:
    """The run, once it holds the output's lock."""
    ledger, client, job = run.ledger, run.client, run.job
    resume = await ledger.open(job.mode)
    run.done_before = ledger.completed
    if ledger.finalized:
        run.already_complete = True
        run.unexported = await ledger.unexported([])
        return
    source, queue = _source(run)
    fan_out = client.fan_out(
        source,
        concurrency=job.concurrency,
        page_size=job.page_size,
        resume=resume,
        retry_failed=job.mode == "retry_failed",
        expected_rows=_expected_rows(run),
    )
    run.progress = fan_out.progress
    discovery = ledger.discovery
    if discovery is not None and discovery.position.done:
        run.progress.total = ledger.known  # a resumed range export found everything before
    finished = False
    try:
        async with watch(run) if watch else nullcontext(), anyio.create_task_group() as tasks:
            if queue is not None and discovery is not None and not discovery.position.done:
                tasks.start_soon(_discover, run, queue)
            try:
                # The fan-out innermost: leaving the loop cancels its requests before
                # anything else awaits, so a fatal failure (an unusable token, shared by
                # every meeting waiting on the same fetch) stops the workers before they
                # ask again.
                async with fan_out as results:
                    async for item in results:
                        if isinstance(item, PageItem):
                            await ledger.page(item)
                        elif not await _failed(run, item):
                            break
            finally:
                tasks.cancel_scope.cancel()  # discovery ends with the fan-out
        if run.fatal is None and run.discovery_error is not None:
            run.fatal = run.discovery_error if stops_the_run(run.discovery_error) else None
        finished = run.fatal is None
    finally:
        if finished:
            await ledger.finish()
        else:
            await ledger.abort()
        run.unexported = await ledger.record_failures(run.failures)


async def _failed(run: ExportRun, item: MeetingFailure) -> bool:
    """Record a failed meeting; ``False`` when its error stops the run."""
    if stops_the_run(item.error):
        run.fatal = item.error
        return False
    await run.ledger.failure(item)
    run.failures.append(failure_record(item, redact_pii=run.job.output.redact_pii))
    return True


async def _discover(run: ExportRun, queue: LargestFirst) -> None:
    """A range export's discovery: each meeting found is recorded in the ledger (with
    where the listing stands), then queued for the fan-out. A failure of the listing
    (after the client's own retries) stops discovery, not the export: the meetings found
    are still exported, and a resume continues the listing."""
    ledger = run.ledger
    state = ledger.discovery
    assert state is not None
    listing: MeetingIterator = run.client.meetings(
        state.range,
        position=state.position,
        seen=[found.meeting.key for found in state.found],
    )
    wanted, skip = state.range, run.job.skip
    try:
        async for meeting in listing:
            query = MeetingRange.read(wanted, meeting)
            if query is None or (skip is not None and skip(query)):
                continue
            await ledger.found(query, meeting, listing.position)
            queue.put(query, meeting.participant_count)
        await ledger.discovery_at(listing.position)
        if run.progress is not None:  # every meeting is known now: an ETA can be had
            run.progress.total = ledger.known
    except FeishuError as exc:
        run.discovery_error = exc
        redact = run.job.output.redact_pii
        logger.warning("discovery stopped: %s", error_text(exc, redact_pii=redact))
    finally:
        queue.close()
