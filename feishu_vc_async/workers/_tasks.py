"""The tasks: discover one tenant's window of meetings, fetch a chunk of its meetings.

::

    discover(tenant, start, end, db)   ── meeting_list ──▶ one fetch_meetings per chunk
                                                           of meetings not in the tables
    fetch_meetings(tenant, chunk, db)  ── participant_list, the fan-out ──▶ the database,
                                          committed as it goes ──▶ acknowledged

**Why chunks.** A task of one meeting pays a task's cost (a message, a lock, a look at
the tables, an acknowledgement) for a meeting of often one page; a chunk is one export
of many meetings through the fan-out, which keeps the tenant's budget full at the
single-process CPU per page. A chunk killed midway loses nothing: its message comes
back and the export skips the meetings already committed.

Exactly once by the output's transaction: a meeting's rows and its mark in the meetings
table commit together, and a chunk first looks at the marks (under its own lock,
``worker:<chunk>``, so two deliveries of one chunk run one after the other and the
second finds its meetings held). A meeting in two chunks (two enqueuings of one window)
is written under that meeting's lock in the database: the second replaces the first.
Each task acknowledges its message itself (``ack_type=manual``) after its commit; a task
that raises is not acknowledged and comes back after the broker's ``redeliver_after``;
a worker told to stop hands its chunk back (unacknowledged) once the meeting being
written is committed. A meeting the platform refuses for good (not found, no
permission) is acknowledged with its failure logged.

Task arguments carry no secret: a database URL with a password is refused when
enqueued (give the workers ``PGPASSWORD`` or a ``.pgpass`` instead).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
from taskiq import AsyncBroker, Context, TaskiqDepends

from .._cancel import unless_set
from .._constants import LOGGER_NAME
from ..client import VCClient
from ..errors import FeishuError
from ..export import ExportJob, database_output, export
from ..meetings import MeetingListQuery
from ..models import MeetingQuery, MeetingStatus

__all__ = [
    "CHUNK",
    "DISCOVER_TASK",
    "FETCH_TASK",
    "WindowNote",
    "WorkerTaskError",
    "WorkerTasks",
    "window_note",
]

logger = logging.getLogger(LOGGER_NAME + ".workers")

FETCH_TASK = "feishu_vc.fetch_meetings"
DISCOVER_TASK = "feishu_vc.discover"
# Meetings per fetch task: enough pages to keep a tenant's fan-out busy for a while,
# few enough that the chunks of a window spread over the workers.
CHUNK = 50
_MANUAL = {"ack_type": "manual"}
# Filled in by taskiq with the message in hand (its acknowledgement among it).
_CONTEXT: Any = TaskiqDepends()
# A chunk's meetings as they travel: (meeting_no, start, end).
Chunk = Sequence[Sequence[Any]]


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
    its settings) before it listens, and sets :attr:`stopping` to have the chunks in
    hand handed back; an enqueuing process needs neither."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self.client: VCClient | None = None
        self.stopping = asyncio.Event()
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
        chunk: int = CHUNK,
    ) -> None:
        """Queue the discovery of ``tenant_key``'s meetings ended in [start, end], to be
        fetched ``chunk`` meetings a task; ``run`` names this enqueuing in the window's
        note (``_enqueue``)."""
        if chunk < 1:
            raise ValueError(f"chunk: expected meetings per task >= 1, not {chunk}")
        db_url = _no_secret(db_url)
        await self.discover.kiq(tenant_key, start, end, db_url, db_schema, run, chunk)

    async def enqueue_fetch(
        self,
        tenant_key: str,
        queries: Sequence[MeetingQuery],
        db_url: str,
        db_schema: str | None = None,
    ) -> None:
        """Queue the fetch of these meetings' participants into the database (one task)."""
        chunk = [(q.meeting_no, q.meeting_start_time, q.meeting_end_time) for q in queries]
        await self.fetch.kiq(tenant_key, chunk, _no_secret(db_url), db_schema)

    # --- the tasks, as a worker runs them ------------------------------------------------

    def _client(self, tenant_key: str) -> VCClient:
        if self.client is None:
            raise WorkerTaskError("no client: the worker sets WorkerTasks.client first")
        return self.client.for_tenant(tenant_key) if tenant_key else self.client

    async def fetch_meetings(
        self, tenant_key: str, chunk: Chunk, db_url: str, db_schema: str | None = None
    ) -> bool:
        """Fetch the chunk's meetings the tables do not hold into the database,
        committed as the export commits (every half second: a transaction a meeting
        costs the database several times the CPU a page does). True when the chunk is
        done (written, or refused for good and logged); False when handed back on
        :attr:`stopping`. Raises
        :class:`WorkerTaskError` when some meeting is still to be fetched."""
        queries = [
            MeetingQuery(
                meeting_no=str(number),
                meeting_start_time=int(start),
                meeting_end_time=int(end),
                meeting_status=MeetingStatus.ENDED,
            )
            for number, start, end in chunk
        ]
        if not queries:
            return True
        keys = "\n".join(q.key for q in queries).encode()
        name = f"worker:{hashlib.sha256(keys).hexdigest()[:24]}"
        output = database_output(db_url, schema=db_schema, tenant_key=tenant_key, name=name)
        async with output.lock():
            held = await output.meetings_held(min(q.meeting_start_time for q in queries))
            wanted = [q for q in queries if (q.meeting_no, q.meeting_start_time) not in held]
            if not wanted:
                return True
            job = ExportJob(wanted, output, mode="overwrite")
            # Cut short by a stop: the export finishes the meeting it is writing first.
            done = await unless_set(export(self._client(tenant_key), job), self.stopping)
        if done.cancelled():
            return False
        run = done.result()
        if run.fatal is not None:
            raise WorkerTaskError(f"{name}: {run.fatal}")
        if any(not f.permanent for f in run.failures):
            raise WorkerTaskError(f"{name}: {run.failures[0].error}")
        for failure in run.failures:
            logger.warning("%s: given up: %s", failure.key, failure.error)
        return True

    async def discover_window(
        self,
        tenant_key: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        run: str = "",
        chunk: int = CHUNK,
    ) -> int:
        """List the tenant's meetings ended in [start, end] and queue the ones the
        tables do not hold, ``chunk`` a task, then note what was found
        (``window_note``, for ``run``) beside the rows; returns how many were queued."""
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
            for at in range(0, len(wanted), chunk):
                await self.enqueue_fetch(tenant_key, wanted[at : at + chunk], db_url, db_schema)
            # Last, once every fetch is in the stream: the enqueuer's sign of discovery.
            note = WindowNote(run, [(q.meeting_no, q.meeting_start_time) for q in found])
            await output.save_note(name, msgspec.msgpack.encode(note))
        return len(wanted)


# The tasks as taskiq registers them: plain functions (it renames what it registers,
# which a bound method refuses), each bound to its WorkerTasks.


def _fetch_task(tasks: WorkerTasks) -> Callable[..., Awaitable[bool]]:
    async def fetch_meetings(
        tenant_key: str,
        chunk: list[list[Any]],
        db_url: str,
        db_schema: str | None = None,
        context: Context = _CONTEXT,
    ) -> bool:
        done = await tasks.fetch_meetings(tenant_key, chunk, db_url, db_schema)
        if done:  # handed back otherwise: unacknowledged, it comes back to a worker
            await _ack(context)
        return done

    return fetch_meetings


def _discover_task(tasks: WorkerTasks) -> Callable[..., Awaitable[int]]:
    async def discover(
        tenant_key: str,
        start: int,
        end: int,
        db_url: str,
        db_schema: str | None = None,
        run: str = "",
        chunk: int = CHUNK,
        context: Context = _CONTEXT,
    ) -> int:
        queued = await tasks.discover_window(tenant_key, start, end, db_url, db_schema, run, chunk)
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
