"""The tasks: discover one tenant's window of meetings, fetch one meeting.

::

    discover(tenant, start, end, db)  ── meeting_list ──▶ one fetch_meeting per meeting
                                                          not in the tables yet
    fetch_meeting(tenant, meeting, db) ── participant_list ──▶ the database, committed
                                                          ──▶ acknowledged

Exactly once by the output's transaction: a meeting's rows and its mark in the meetings
table commit together, and a fetch first looks at the marks (under the lock of that
meeting's own export, ``worker:<number>@<start>``, so two deliveries of one meeting run
one after the other and the second finds it held). Distinct meetings take distinct
locks: workers write the same tables side by side. Each task acknowledges its message
itself (``ack_type=manual``) after its commit; a task that raises is not acknowledged
and comes back after the broker's ``redeliver_after``. A meeting the platform refuses
for good (not found, no permission) is acknowledged with its failure logged.

Task arguments carry no secret: a database URL with a password is refused when
enqueued (give the workers ``PGPASSWORD`` or a ``.pgpass`` instead).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from taskiq import AsyncBroker, Context, TaskiqDepends

from .._constants import LOGGER_NAME
from ..client import VCClient
from ..errors import FeishuError
from ..export import ExportJob, database_output, export
from ..meetings import MeetingListQuery
from ..models import MeetingQuery, MeetingStatus

__all__ = [
    "DISCOVER_TASK",
    "FETCH_TASK",
    "WindowNote",
    "WorkerTaskError",
    "WorkerTasks",
    "window_note",
]

logger = logging.getLogger(LOGGER_NAME + ".workers")

FETCH_TASK = "feishu_vc.fetch_meeting"
DISCOVER_TASK = "feishu_vc.discover"
_MANUAL = {"ack_type": "manual"}
# Filled in by taskiq with the message in hand (its acknowledgement among it).
_CONTEXT: Any = TaskiqDepends()


class WindowNote(msgspec.Struct, array_like=True):
    """What a discovery found (meeting_no, meeting_start_time), for the enqueuing
    ``run``: kept beside the rows under :func:`window_note`'s name."""

    run: str
    meetings: list[tuple[str, int]]


def window_note(start: int, end: int) -> str:
    """The name of a window's discovery: its lock, and its note in the progress table."""
    return f"worker-discover:{start}-{end}"


class WorkerTaskError(FeishuError):
    """A task that did not get its meeting(s) committed: left unacknowledged."""


class WorkerTasks:
    """The tasks registered on ``broker``. A worker sets :attr:`client` (its own, from
    its settings) before it listens; an enqueuing process needs none."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self.client: VCClient | None = None
        self.fetch = broker.register_task(_fetch_task(self), FETCH_TASK, **_MANUAL)
        self.discover = broker.register_task(_discover_task(self), DISCOVER_TASK, **_MANUAL)

    # --- enqueuing ---------------------------------------------------------------------

    async def enqueue_discovery(
        self,
        tenant_key: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        run: str = "",
    ) -> None:
        """Queue the discovery of ``tenant_key``'s meetings ended in [start, end];
        ``run`` names this enqueuing in the window's note (``_enqueue``)."""
        await self.discover.kiq(tenant_key, start, end, _no_secret(db_url), db_schema, run)

    async def enqueue_fetch(
        self, tenant_key: str, query: MeetingQuery, db_url: str, db_schema: str | None = None
    ) -> None:
        """Queue the fetch of one meeting's participants into the database."""
        await self.fetch.kiq(
            tenant_key,
            query.meeting_no,
            query.meeting_start_time,
            query.meeting_end_time,
            _no_secret(db_url),
            db_schema,
        )

    # --- the tasks, as a worker runs them ------------------------------------------------

    def _client(self, tenant_key: str) -> VCClient:
        if self.client is None:
            raise WorkerTaskError("no client: the worker sets WorkerTasks.client first")
        return self.client.for_tenant(tenant_key) if tenant_key else self.client

    async def fetch_meeting(
        self,
        tenant_key: str,
        meeting_no: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
    ) -> str:
        """Fetch one meeting into the database unless it is there: "held", "written",
        or "failed" (refused for good, logged). Returns after the commit."""
        query = MeetingQuery(
            meeting_no=meeting_no,
            meeting_start_time=start,
            meeting_end_time=end,
            meeting_status=MeetingStatus.ENDED,
        )
        output = database_output(
            db_url, schema=db_schema, tenant_key=tenant_key, name=f"worker:{query.key}"
        )
        async with output.lock():
            if (meeting_no, start) in await output.meetings_held(start):
                return "held"
            job = ExportJob([query], output, mode="overwrite", commit_interval=0)
            run = await export(self._client(tenant_key), job)
        if run.fatal is not None:
            raise WorkerTaskError(f"{query.key}: {run.fatal}")
        if any(not f.permanent for f in run.failures):
            raise WorkerTaskError(f"{query.key}: {run.failures[0].error}")
        if run.failures:
            logger.warning("%s: given up: %s", query.key, run.failures[0].error)
            return "failed"
        return "written"

    async def discover_window(
        self,
        tenant_key: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        run: str = "",
    ) -> int:
        """List the tenant's meetings ended in [start, end] and queue a fetch for each
        one the tables do not hold, then note what was found (``window_note``, for
        ``run``) beside the rows; returns how many were queued."""
        listing = self._client(tenant_key).meetings(
            MeetingListQuery(start_time=start, end_time=end)
        )
        found = [meeting.query() async for meeting in listing]
        name = window_note(start, end)
        output = database_output(db_url, schema=db_schema, tenant_key=tenant_key, name=name)
        async with output.lock():
            first = min((q.meeting_start_time for q in found), default=start)
            held = await output.meetings_held(first)
            wanted = [q for q in found if (q.meeting_no, q.meeting_start_time) not in held]
            for query in wanted:
                await self.enqueue_fetch(tenant_key, query, db_url, db_schema)
            # Last, once every fetch is in the stream: the enqueuer's sign of discovery.
            note = WindowNote(run, [(q.meeting_no, q.meeting_start_time) for q in found])
            await output.save_note(name, msgspec.msgpack.encode(note))
        return len(wanted)


# The tasks as taskiq registers them: plain functions (it renames what it registers,
# which a bound method refuses), each bound to its WorkerTasks.


def _fetch_task(tasks: WorkerTasks) -> Callable[..., Awaitable[str]]:
    async def fetch_meeting(
        tenant_key: str,
        meeting_no: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        context: Context = _CONTEXT,
    ) -> str:
        outcome = await tasks.fetch_meeting(tenant_key, meeting_no, start, end, db_url, db_schema)
        await _ack(context)
        return outcome

    return fetch_meeting


def _discover_task(tasks: WorkerTasks) -> Callable[..., Awaitable[int]]:
    async def discover(
        tenant_key: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        run: str = "",
        context: Context = _CONTEXT,
    ) -> int:
        queued = await tasks.discover_window(tenant_key, start, end, db_url, db_schema, run)
        await _ack(context)
        return queued

    return discover


async def _ack(context: Any) -> None:
    """Acknowledge the message in hand (a broker without acknowledgements has none)."""
    if isinstance(context, Context) and context.is_ackable:
        await context.ack()


def _no_secret(db_url: str) -> str:
    if urlsplit(db_url).password is not None:
        raise ValueError(
            "db_url: a password would travel through the broker; give the workers "
            "PGPASSWORD or a .pgpass file instead"
        )
    return db_url
